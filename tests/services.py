"""Real services for integration tests: a private Mosquitto on a free loopback port.

Tests that kill or restart the broker use their own instance, never the machine's shared one.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout_s} s")


def _give_to_mosquitto_user(folder: Path) -> None:
    """Started as root, Mosquitto drops to the ``mosquitto`` user and could not write its
    persistence file into a root-owned folder (it carries on without persistence, silently)."""
    if os.geteuid() != 0:
        return
    try:
        user = pwd.getpwnam("mosquitto")
    except KeyError:
        return
    os.chown(folder, user.pw_uid, user.pw_gid)


class MosquittoServer:
    """A Mosquitto broker of our own: start, stop (graceful or kill -9), restart on the same port."""

    def __init__(
        self, port: int | None = None, persistence: bool = True, access: Path | None = None
    ) -> None:
        """``access``: a folder with ``password_file`` and ``acl_file`` (``microfab broker acl
        --mosquitto``); they are copied into the broker's folder and anonymous clients refused."""
        self.port = port or free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="microfab-mosquitto-"))
        self.config = self.dir / "mosquitto.conf"
        security = ["allow_anonymous true"]
        if access is not None:
            for name in ("password_file", "acl_file"):
                shutil.copy(access / name, self.dir / name)
                _give_to_mosquitto_user(self.dir / name)
            security = [
                "allow_anonymous false",
                f"password_file {self.dir / 'password_file'}",
                f"acl_file {self.dir / 'acl_file'}",
            ]
        lines = [
            f"listener {self.port} 127.0.0.1",
            *security,
            f"persistence {'true' if persistence else 'false'}",
            f"persistence_location {self.dir}/",
            "max_queued_messages 1000000",
            "max_inflight_messages 0",
            "log_dest none",
        ]
        self.config.write_text("\n".join(lines) + "\n")
        _give_to_mosquitto_user(self.dir)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port)

    def stop(self, kill: bool = False) -> None:
        if self.process is None:
            return
        if kill:
            self.process.kill()
        else:
            self.process.terminate()
        self.process.wait(timeout=10)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def cleanup(self) -> None:
        self.stop(kill=True)
        shutil.rmtree(self.dir, ignore_errors=True)


@contextmanager
def mosquitto_server(
    persistence: bool = True, access: Path | None = None
) -> Iterator[MosquittoServer]:
    server = MosquittoServer(persistence=persistence, access=access)
    server.start()
    try:
        yield server
    finally:
        server.cleanup()
