"""A small MTConnect agent serving one simulated CNC, for connector tests, demos and docs.

:class:`SimulatedMTConnectAgent` answers ``/probe``, ``/current`` and ``/sample?from=N&count=M``
(also under ``/DEVICE/...``) on ``127.0.0.1:PORT`` with documents in the standard's format
(``MTConnectDevices`` / ``MTConnectStreams`` / ``MTConnectError``, schema 1.8, a ``Header`` with
``instanceId``, ``firstSequence``, ``lastSequence`` and ``nextSequence``). Every change of a
DataItem is one observation with the next sequence number, kept in a ring buffer of
``buffer_size`` observations, as a real agent keeps them. Its DataItems::

    avail      AVAILABILITY      AVAILABLE / UNAVAILABLE
    exec       EXECUTION         ACTIVE (1), READY (2), STOPPED (3)
    pc_good    PART_COUNT GOOD   running total of good parts
    pc_bad     PART_COUNT BAD    running total of scrap parts
    temp       TEMPERATURE       °C
    sspeed     ROTARY_VELOCITY   spindle speed, rev/min

:meth:`stop` closes the HTTP listener but keeps the buffer (the network went away; the agent kept
recording), :meth:`restart_agent` starts a new instance (new ``instanceId``, sequences from 1).
:func:`mtconnect_machine_points` returns the matching ``connect.mtconnect.points``.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlparse
from xml.sax.saxutils import escape, quoteattr

DEVICE = "cnc-1"
STREAMS_NS = "urn:mtconnect.org:MTConnectStreams:1.8"
DEVICES_NS = "urn:mtconnect.org:MTConnectDevices:1.8"
ERROR_NS = "urn:mtconnect.org:MTConnectError:1.8"
EXECUTION = {1: "ACTIVE", 2: "READY", 3: "STOPPED"}

# id, category, type, subType, element name in streams, component
DATA_ITEMS: list[tuple[str, str, str, str | None, str, str]] = [
    ("avail", "EVENT", "AVAILABILITY", None, "Availability", "Device"),
    ("exec", "EVENT", "EXECUTION", None, "Execution", "Controller"),
    ("pc_good", "EVENT", "PART_COUNT", "GOOD", "PartCount", "Controller"),
    ("pc_bad", "EVENT", "PART_COUNT", "BAD", "PartCount", "Controller"),
    ("temp", "SAMPLE", "TEMPERATURE", None, "Temperature", "Controller"),
    ("sspeed", "SAMPLE", "ROTARY_VELOCITY", None, "RotaryVelocity", "Controller"),
]


def mtconnect_machine_points() -> list[dict[str, Any]]:
    """``connect.mtconnect.points`` for the simulated CNC."""
    return [
        {"point": "exec", "stream": "state",
         "states": {"ACTIVE": "running", "READY": "idle", "STOPPED": "unplanned_stop"}},
        {"point": "pc_good", "stream": "count", "field": "good"},
        {"point": "pc_bad", "stream": "count", "field": "scrap"},
        {"point": "temp", "stream": "telemetry", "metric": "temperature_c"},
    ]  # fmt: skip


@dataclass(frozen=True)
class _Observation:
    sequence: int
    item: str
    value: str
    ts: str


class SimulatedMTConnectAgent:
    """One CNC behind an MTConnect agent; see the module docstring."""

    def __init__(self, port: int, host: str = "127.0.0.1", buffer_size: int = 1024) -> None:
        self.port = port
        self.host = host
        self.buffer_size = buffer_size
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.instance_id = 1_700_000_000
        self._new_instance()

    def _new_instance(self) -> None:
        self.instance_id += 1
        self._buffer: deque[_Observation] = deque(maxlen=self.buffer_size)
        self._next = 1
        self._current: dict[str, _Observation] = {}
        for item in DATA_ITEMS:
            self._observe(item[0], "UNAVAILABLE")
        self._observe("avail", "AVAILABLE")
        self._observe("pc_good", "0")
        self._observe("pc_bad", "0")

    def _observe(self, item: str, value: str) -> None:
        with self._lock:
            if item in self._current and self._current[item].value == value:
                return  # an agent records changes only
            ts = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            observation = _Observation(self._next, item, value, ts)
            self._next += 1
            self._buffer.append(observation)
            self._current[item] = observation

    # ------------------------------------------------------------------ the machine

    def set_state(self, code: int) -> None:
        self._observe("exec", EXECUTION[code])

    def set_counts(self, good: int, scrap: int) -> None:
        self._observe("pc_good", str(good))
        self._observe("pc_bad", str(scrap))

    def set_temperature(self, celsius: float) -> None:
        self._observe("temp", f"{celsius:g}")

    def set_spindle(self, rpm: float) -> None:
        self._observe("sspeed", f"{rpm:g}")

    def restart_agent(self) -> None:
        """A new agent instance: new instanceId, sequence numbers from 1, current values kept."""
        values = {item: o.value for item, o in self._current.items()}
        self._new_instance()
        for item, value in values.items():
            self._observe(item, value)

    # ------------------------------------------------------------------ documents

    def _header(self, ns_doc: str) -> str:
        first = self._buffer[0].sequence if self._buffer else self._next
        return (
            f'<Header creationTime="{dt.datetime.now(dt.UTC):%Y-%m-%dT%H:%M:%SZ}" '
            f'sender="microfab-sim" instanceId="{self.instance_id}" version="1.8.0" '
            f'bufferSize="{self.buffer_size}" firstSequence="{first}" '
            f'lastSequence="{self._next - 1}" nextSequence="{{next}}"/>'
        )

    def probe(self) -> str:
        items: dict[str, list[str]] = {"Device": [], "Controller": []}
        for item, category, kind, sub, _, component in DATA_ITEMS:
            sub_attr = f' subType="{sub}"' if sub else ""
            items[component].append(
                f'<DataItem id="{item}" category="{category}" type="{kind}"{sub_attr}/>'
            )
        return (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<MTConnectDevices xmlns="{DEVICES_NS}">'
            + self._header(DEVICES_NS).replace(' nextSequence="{next}"', "")
            + f'<Devices><Device id="d1" name="{DEVICE}" uuid="sim-{DEVICE}">'
            + f"<DataItems>{''.join(items['Device'])}</DataItems><Components>"
            + '<Controller id="c1" name="controller">'
            + f"<DataItems>{''.join(items['Controller'])}</DataItems></Controller>"
            + "</Components></Device></Devices></MTConnectDevices>"
        )

    def _streams(self, observations: list[_Observation], next_sequence: int) -> str:
        by_component: dict[str, list[str]] = {"Device": [], "Controller": []}
        spec = {d[0]: d for d in DATA_ITEMS}
        for o in observations:
            _, _, _, sub, element, component = spec[o.item]
            sub_attr = f' subType="{sub}"' if sub else ""
            by_component[component].append(
                f'<{element} dataItemId="{o.item}" sequence="{o.sequence}" '
                f'timestamp="{o.ts}"{sub_attr}>{escape(o.value)}</{element}>'
            )
        parts = []
        for component, name, cid in (("Device", DEVICE, "d1"), ("Controller", "controller", "c1")):
            elements = by_component[component]
            if not elements:
                continue
            events = [e for e in elements if not e.startswith(("<Temperature", "<RotaryVelocity"))]
            samples = [e for e in elements if e.startswith(("<Temperature", "<RotaryVelocity"))]
            body = (f"<Samples>{''.join(samples)}</Samples>" if samples else "") + (
                f"<Events>{''.join(events)}</Events>" if events else ""
            )
            parts.append(
                f'<ComponentStream component="{component}" name={quoteattr(name)} '
                f'componentId="{cid}">{body}</ComponentStream>'
            )
        return (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<MTConnectStreams xmlns="{STREAMS_NS}">'
            + self._header(STREAMS_NS).replace("{next}", str(next_sequence))
            + f'<Streams><DeviceStream name="{DEVICE}" uuid="sim-{DEVICE}">'
            + "".join(parts)
            + "</DeviceStream></Streams></MTConnectStreams>"
        )

    def current(self) -> str:
        with self._lock:
            observations = sorted(self._current.values(), key=lambda o: o.sequence)
            return self._streams(observations, self._next)

    def sample(self, start: int | None, count: int) -> tuple[int, str]:
        with self._lock:
            first = self._buffer[0].sequence if self._buffer else self._next
            start = first if start is None else start
            if start < first or start > self._next:
                return 400, self._error(
                    "OUT_OF_RANGE",
                    f"'from' must be between {first} and {self._next}",
                )
            chosen = [o for o in self._buffer if o.sequence >= start][:count]
            following = chosen[-1].sequence + 1 if chosen else start
            return 200, self._streams(chosen, following)

    def _error(self, code: str, text: str) -> str:
        return (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<MTConnectError xmlns="{ERROR_NS}">'
            + self._header(ERROR_NS).replace(' nextSequence="{next}"', "")
            + f'<Errors><Error errorCode="{code}">{escape(text)}</Error></Errors>'
            + "</MTConnectError>"
        )

    def answer(self, target: str) -> tuple[int, str]:
        url = urlparse(target)
        parts = [p for p in url.path.split("/") if p]
        if len(parts) == 2 and parts[0] == DEVICE:
            parts = parts[1:]
        elif len(parts) == 2:
            return 404, self._error("NO_DEVICE", f"no device named {parts[0]}")
        request = parts[0] if parts else "probe"
        query = parse_qs(url.query)
        if request == "probe":
            return 200, self.probe()
        if request == "current":
            return 200, self.current()
        if request == "sample":
            try:
                start = int(query["from"][0]) if "from" in query else None
                count = int(query.get("count", ["100"])[0])
            except ValueError:
                return 400, self._error("INVALID_REQUEST", "from and count are numbers")
            return self.sample(start, count)
        return 400, self._error("UNSUPPORTED", f"'{request}' is not a request of this agent")

    # ------------------------------------------------------------------ the HTTP listener

    async def start(self) -> None:
        self.start_sync()

    async def stop(self) -> None:
        self.stop_sync()

    def start_sync(self) -> None:
        if self._server is not None:
            return
        agent = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, body = agent.answer(self.path)
                data = body.encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (ConnectionResetError, BrokenPipeError):
                    return  # the client went away mid-answer (a connector stopping)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        server = ThreadingHTTPServer((self.host, self.port), Handler)
        server.daemon_threads = True
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        thread.start()
        self._server, self._thread = server, thread

    def stop_sync(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    async def __aenter__(self) -> SimulatedMTConnectAgent:
        await self.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()
