"""MTConnect connector: read the DataItems mapped in the factory model from MTConnect agents.

Every machine with ``connect.mtconnect`` names its agent (``http://10.0.0.7:5000``), optionally a
device of it, and maps DataItem ids (``exec``, ``pc_good``, ``Xload``; ``microfab connect
mtconnect --probe`` lists them). One polling task per (agent, device) speaks the agent's REST
protocol over HTTP with httpx and reads the XML with the standard library:

1. ``current`` once per connection: the value every DataItem holds (``held``: a running total
   only sets the baseline), and the ``instanceId`` and ``nextSequence`` of the agent's buffer;
2. then every ``poll_s``, ``sample?from=NEXT&count=1000``: every observation since the last one
   read, in sequence order with the agent's timestamps, and the new ``nextSequence``.

So nothing is missed and nothing read twice. After a link loss, when the agent is the same
instance and still holds the next sequence, reading resumes with ``sample?from=`` where it
stopped: the observations of the gap are read in order (counts made while the link was down are
counted once), and the machine's last state is restated when the gap held no change of it. When
the agent restarted (a new ``instanceId``) or its buffer no longer reaches back (``OUT_OF_RANGE``)
the connector starts again from ``current`` and the counters re-baseline, as after any loss.

A value ``UNAVAILABLE`` is skipped, unless a state point maps it. Link losses (no answer, refused,
HTTP 5xx), back-off and ``offline``/``LINK-DOWN`` are :mod:`microfab.connect.polling`'s.
"""

from __future__ import annotations

import datetime as dt
import logging
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

import httpx

from microfab.connect.mapping import PointMapper
from microfab.connect.polling import (
    Device,
    LinkLost,
    PollingConnector,
    Reading,
    describe_link_error,
    now_ms,
    refused,
)
from microfab.connect.publisher import Publisher
from microfab.errors import InputError
from microfab.model.factory import Factory, MTConnectSource, PointStream

logger = logging.getLogger(__name__)

SOURCE = "mtconnect"
UNAVAILABLE = "UNAVAILABLE"
SAMPLE_COUNT = 1000
"""Observations asked for per ``sample`` request (the rest come at the next poll)."""


@dataclass(frozen=True, slots=True)
class Observation:
    """One observation of a streams document."""

    item: str
    sequence: int
    value: str
    ts: dt.datetime | None


@dataclass(frozen=True, slots=True)
class Streams:
    """A parsed ``MTConnectStreams`` document (or the error code of an ``MTConnectError``)."""

    instance_id: str
    next_sequence: int
    first_sequence: int
    observations: list[Observation]
    error: str | None = None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def parse_streams(text: str | bytes) -> Streams:
    """The header and observations (in sequence order) of a streams or error document."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise LinkLost(f"the agent sent a document that is not XML ({exc})") from None
    header = next((e for e in root.iter() if _local(e.tag) == "Header"), None)
    if header is None:
        raise LinkLost(f"the agent sent a {_local(root.tag)} document without a Header")
    instance = header.get("instanceId", "")
    if _local(root.tag) == "MTConnectError":
        codes = [e.get("errorCode", "") for e in root.iter() if _local(e.tag) == "Error"]
        return Streams(instance, 0, 0, [], error=codes[0] if codes else "UNKNOWN")
    if _local(root.tag) != "MTConnectStreams":
        raise LinkLost(f"the agent sent {_local(root.tag)}, not MTConnectStreams")
    observations: list[Observation] = []
    for element in root.iter():
        item, sequence = element.get("dataItemId"), element.get("sequence")
        if item is None or sequence is None:
            continue
        value = (element.text or "").strip()
        if _local(element.tag) in ("Normal", "Warning", "Fault", "Unavailable"):
            value = _local(element.tag).upper()  # a condition: its state is the element name
        observations.append(
            Observation(item, int(sequence), value, _time(element.get("timestamp")))
        )
    observations.sort(key=lambda o: o.sequence)
    return Streams(
        instance,
        int(header.get("nextSequence", "0")),
        int(header.get("firstSequence", "0")),
        observations,
    )


def _time(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    try:
        ts = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=dt.UTC)
    return ts.astimezone(dt.UTC).replace(microsecond=ts.microsecond // 1000 * 1000)


@dataclass
class _Agent(Device):
    url: str = ""
    device: str | None = None
    items: dict[str, list[int]] = field(default_factory=dict)
    """DataItem id -> machines (indexes into ``mappers``) that map it."""
    instance_id: str | None = None
    next_sequence: int | None = None
    last_state: dict[int, tuple[str, str]] = field(default_factory=dict)
    """Per machine: the state point and its last raw value read."""

    def path(self, request: str) -> str:
        return f"/{self.device}/{request}" if self.device else f"/{request}"


@dataclass
class _Session:
    client: httpx.AsyncClient
    resumed: bool
    pending: list[Reading]


class MTConnectConnector(PollingConnector[_Agent, _Session]):
    """Reads the MTConnect agents of the factory model; see the module docstring."""

    name = SOURCE
    noun = "MTConnect agent"
    logger = logger
    link_errors = (httpx.HTTPError, OSError, TimeoutError)

    def __init__(
        self,
        factory: Factory,
        publisher: Publisher,
        agent: str | None = None,
        *,
        reconnect_s: float = 1.0,
        max_reconnect_s: float = 10.0,
        timeout_s: float = 4.0,
        poll_s: float | None = None,
    ) -> None:
        agents = _agents_of(factory, agent, poll_s)
        super().__init__(
            publisher,
            agents,
            reconnect_s=reconnect_s,
            max_reconnect_s=max_reconnect_s,
            timeout_s=timeout_s,
        )

    async def _open(self, device: _Agent) -> _Session:
        client = httpx.AsyncClient(base_url=device.url, timeout=self.timeout_s)
        try:
            current = await self._get(device, client, device.path("current"))
            if current.error is not None:
                raise LinkLost(f"the agent refused 'current': {current.error}")
            resumed = (
                device.instance_id == current.instance_id
                and device.next_sequence is not None
                and device.next_sequence >= current.first_sequence
            )
            pending: list[Reading] = []
            if not resumed:
                if device.instance_id is not None and device.instance_id != current.instance_id:
                    logger.info("MTConnect agent %s: a new agent instance", device.label)
                device.instance_id = current.instance_id
                device.next_sequence = current.next_sequence
                pending = self._readings(device, current.observations, held=True)
        except BaseException:
            await client.aclose()
            raise
        return _Session(client, resumed, pending)

    def _resumed(self, device: _Agent, session: _Session) -> bool:
        return session.resumed

    async def _close(self, device: _Agent, session: _Session | None) -> None:
        if session is not None:
            await session.client.aclose()

    def _describe(self, exc: BaseException) -> str:
        if refused(exc):
            return "connection refused"
        if isinstance(exc, httpx.TimeoutException):
            return "no answer (timed out)"
        if isinstance(exc, httpx.ConnectError):
            text = str(exc)
            return "connection refused" if "refused" in text.lower() else text or "cannot connect"
        if isinstance(exc, httpx.HTTPError):
            return str(exc) or type(exc).__name__
        return describe_link_error(exc)

    async def _get(self, device: _Agent, client: httpx.AsyncClient, path: str) -> Streams:
        response = await client.get(path)
        if response.status_code >= 500:
            raise LinkLost(f"the agent answered HTTP {response.status_code}")
        streams = parse_streams(response.content)
        if streams.error is None and response.status_code >= 400:
            raise LinkLost(f"the agent answered HTTP {response.status_code}")
        return streams

    async def _read(self, device: _Agent, session: _Session) -> list[Reading]:
        readings, session.pending = session.pending, []
        path = device.path(f"sample?from={device.next_sequence}&count={SAMPLE_COUNT}")
        sample = await self._get(device, session.client, path)
        if sample.error is not None or sample.instance_id != device.instance_id:
            why = (
                f"'{sample.error}'"
                if sample.error is not None
                else "a new agent instance (it restarted)"
            )
            logger.warning(
                "MTConnect agent %s: sample from %s refused with %s; reading 'current' again, "
                "counters re-baseline",
                device.label,
                device.next_sequence,
                why,
            )
            current = await self._get(device, session.client, device.path("current"))
            if current.error is not None:
                raise LinkLost(f"the agent refused 'current': {current.error}")
            for mapper in device.mappers:
                mapper.forget_counts()
            device.instance_id = current.instance_id
            device.next_sequence = current.next_sequence
            return readings + self._readings(device, current.observations, held=True)
        device.next_sequence = sample.next_sequence
        readings += self._readings(device, sample.observations, held=False)
        # after a replayed gap with no state change: the machine is in its last state again
        now = now_ms()
        for index, mapper in enumerate(device.mappers):
            last = device.last_state.get(index)
            replayed = last is not None and any(
                r.machine == index and r.point == last[0] for r in readings
            )
            if last is not None and not mapper.live and not replayed:
                readings.append(Reading(index, last[0], last[1], now, held=True))
        return readings

    def _readings(
        self, device: _Agent, observations: list[Observation], *, held: bool
    ) -> list[Reading]:
        readings: list[Reading] = []
        for o in observations:
            for index in device.items.get(o.item, ()):
                mapper = device.mappers[index]
                spec = next(p for p in mapper.points if p.point == o.item)
                if spec.stream is PointStream.STATE:
                    if o.value == UNAVAILABLE and UNAVAILABLE not in spec.states:
                        continue
                    device.last_state[index] = (o.item, o.value)
                elif o.value == UNAVAILABLE:
                    continue
                readings.append(Reading(index, o.item, o.value, o.ts, held=held))
        return readings


def _agents_of(factory: Factory, agent: str | None, poll_s: float | None) -> list[_Agent]:
    wanted = agent.rstrip("/").lower() if agent else None
    agents: dict[tuple[str, str | None], _Agent] = {}
    known: list[str] = []
    for ref in factory.machines():
        source: MTConnectSource | None = (
            ref.machine.connect.mtconnect if ref.machine.connect else None
        )
        if source is None:
            continue
        url = source.agent.rstrip("/")
        known.append(url)
        if wanted is not None and url.lower() != wanted:
            continue
        key = (url.lower(), source.device)
        found = agents.get(key)
        if found is None:
            label = f"{url} device {source.device}" if source.device else url
            found = agents[key] = _Agent(
                label=label, poll_s=poll_s or source.poll_s, url=url, device=source.device
            )
        found.poll_s = min(found.poll_s, poll_s or source.poll_s)
        index = found.add_machine(
            PointMapper(SOURCE, ref.path, list(source.points)), source.heartbeat_s
        )
        for point in source.points:
            found.items.setdefault(point.point, []).append(index)
    if not agents:
        if agent is None:
            raise InputError(
                "no machine of the factory model has connect.mtconnect; map its DataItems in the "
                "factory file (see docs/connectors.md) and run 'microfab factory apply' again"
            )
        raise InputError(
            f"no machine of the factory model is mapped to {agent}; mapped agents: "
            + (", ".join(sorted(set(known))) or "none")
        )
    return list(agents.values())


async def probe_lines(agent: str, timeout_s: float = 4.0) -> list[str]:
    """The agent's devices and their DataItems (id, category, type, subType, component), as
    lines to print, from its ``probe`` document."""
    async with httpx.AsyncClient(base_url=agent.rstrip("/"), timeout=timeout_s) as client:
        response = await client.get("/probe")
    try:
        root = ET.fromstring(response.content)
    except ET.ParseError as exc:
        raise InputError(f"{agent}/probe did not answer an MTConnect document ({exc})") from None
    if _local(root.tag) != "MTConnectDevices":
        raise InputError(f"{agent}/probe answered {_local(root.tag)}, not MTConnectDevices")
    lines: list[str] = []
    for device in (e for e in root.iter() if _local(e.tag) == "Device"):
        lines.append(f"device {device.get('name')} (uuid {device.get('uuid')})")
        lines.append(f"  {'id':<16}{'category':<10}{'type':<22}{'subType':<10}component")

        def walk(element: ET.Element, component: str) -> None:
            for child in element:
                name = _local(child.tag)
                if name == "DataItem":
                    lines.append(
                        f"  {child.get('id', ''):<16}{child.get('category', ''):<10}"
                        f"{child.get('type', ''):<22}{child.get('subType') or '':<10}{component}"
                    )
                elif name in ("DataItems", "Components"):
                    walk(child, component)
                else:
                    walk(child, child.get("name") or name)

        walk(device, device.get("name") or "Device")
    return lines
