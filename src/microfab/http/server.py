"""Serving the app with uvicorn: in the foreground (``microfab serve``) or on a background thread
(``microfab demo``, tests).

The listening socket is bound here first, so a taken port is one clear error before anything
starts, ``--port 0`` picks a free port, and the URL printed is the one really listened on.

``X-Forwarded-For`` and ``X-Forwarded-Proto`` are believed only from the reverse proxies named in
``MICROFAB_TRUSTED_PROXIES`` (default none).
"""

from __future__ import annotations

import contextlib
import errno
import socket
import threading
import time
from typing import Any

import uvicorn

from microfab.errors import InputError
from microfab.settings import load_settings


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: a free one)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise InputError(
            f"--host {host}: not an address of this machine ({exc.strerror})"
        ) from None
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise InputError(
                f"cannot listen on {host}:{port}: the port is in use; give another --port "
                "(--port 0 picks a free one)"
            ) from None
        raise InputError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket, host: str) -> str:
    port = sock.getsockname()[1]
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else ("[::1]" if host == "::" else host)
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/"


class _Server(uvicorn.Server):
    """uvicorn's server that, when told to exit, first ends the dashboards' live streams, so
    that open pages do not hold the graceful shutdown until uvicorn cancels them."""

    def __init__(self, app: Any, log_level: str) -> None:
        super().__init__(_config(app, log_level))
        self.app = app

    def close_streams(self) -> None:
        feed = getattr(getattr(self.app, "state", None), "feed", None)
        if feed is not None:
            feed.close()

    def handle_exit(self, sig: int, frame: Any) -> None:  # Ctrl-C / SIGTERM
        self.close_streams()
        super().handle_exit(sig, frame)


def _config(app: Any, log_level: str) -> uvicorn.Config:
    proxies = load_settings().trusted_proxy_list()
    return uvicorn.Config(
        app,
        log_level=log_level,
        access_log=False,
        # X-Forwarded-For/-Proto only from the proxies in MICROFAB_TRUSTED_PROXIES (default
        # none; uvicorn alone would believe 127.0.0.1, i.e. anything on the same machine)
        proxy_headers=bool(proxies),
        forwarded_allow_ips=proxies or [],
        timeout_graceful_shutdown=2,  # open dashboards hold an SSE stream; don't wait on them
        lifespan="on",
    )


def serve_forever(app: Any, sock: socket.socket, *, log_level: str = "warning") -> None:
    """Serve until Ctrl-C / SIGTERM (uvicorn handles both)."""
    server = _Server(app, log_level)
    server.run(sockets=[sock])


class BackgroundServer:
    """The app served on a daemon thread; :meth:`stop` ends it."""

    def __init__(
        self, app: Any, host: str = "127.0.0.1", port: int = 0, *, log_level: str = "warning"
    ) -> None:
        self.sock = bind(host, port)
        self.url = url_of(self.sock, host)
        self.server = _Server(app, log_level)
        self.thread = threading.Thread(target=self._run, name="microfab-web", daemon=True)

    def _run(self) -> None:
        self.server.run(sockets=[self.sock])

    def start(self, timeout_s: float = 10.0) -> BackgroundServer:
        self.thread.start()
        deadline = time.monotonic() + timeout_s
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the web server did not start at {self.url}")
            time.sleep(0.02)
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        self.server.close_streams()
        self.server.should_exit = True
        self.thread.join(timeout_s)
        with contextlib.suppress(OSError):
            self.sock.close()

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
