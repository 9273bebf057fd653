"""A throw-away ``redis-server`` per test, on a free loopback port in a temporary folder.

Debian's ``redis-server`` (``apt-get install redis-server``) and the ``redis`` client
(``pip install 'allo[broker]'``) are needed; tests marked with :data:`REDIS_MARKS` are
skipped without them, except in CI (``CI=true``, see .ci/run), where they must run.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.util import find_spec
from pathlib import Path

import pytest

REDIS_SERVER = shutil.which("redis-server")
REDIS_CLIENT = find_spec("redis") is not None
# In CI the broker tests must happen: a missing server or client is a failure, not a skip.
REDIS_REQUIRED = os.environ.get("CI") == "true"

# Marks of a test module that runs a real Redis: skipped without one, except in CI.
REDIS_MARKS = [
    pytest.mark.redis,
    pytest.mark.skipif(
        (REDIS_SERVER is None or not REDIS_CLIENT) and not REDIS_REQUIRED,
        reason="needs Debian's redis-server and pip install 'allo[broker]' (CI always runs it)",
    ),
]


def free_port() -> int:
    """A loopback port free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pong(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One ``redis-server`` process; ``appendonly`` keeps every write in an fsynced AOF
    so that it survives :meth:`kill` and :meth:`start` again."""

    def __init__(self, folder: Path, *, appendonly: bool = False) -> None:
        if REDIS_SERVER is None:
            raise RuntimeError("redis-server is not installed: apt-get install -y redis-server")
        self.binary = REDIS_SERVER
        self.folder = folder
        self.appendonly = appendonly
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _command(self) -> list[str]:
        command = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.folder),
            "--save",
            "",
            "--logfile",
            str(self.folder / "redis.log"),
        ]
        if self.appendonly:
            command += ["--appendonly", "yes", "--appendfsync", "always"]
        else:
            command += ["--appendonly", "no"]
        return command

    def start(self, seconds: float = 20.0) -> None:
        """Start the server (again) and wait until it answers PING."""
        self.folder.mkdir(parents=True, exist_ok=True)
        for _attempt in range(3):
            self.process = subprocess.Popen(
                self._command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline and self.process.poll() is None:
                if _pong(self.port):
                    return
                time.sleep(0.02)
            self.stop()
            if self.appendonly:  # the data belongs to this port's server: keep it
                break
            self.port = free_port()  # the port was taken in between: try another one
        log = self.folder / "redis.log"
        tail = log.read_text(errors="replace")[-1000:] if log.exists() else ""
        raise RuntimeError(f"redis-server did not start on port {self.port}: {tail}")

    def kill(self) -> None:
        """``kill -9``: no shutdown, no final save."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


@contextmanager
def redis_server(folder: Path, *, appendonly: bool = False) -> Iterator[RedisServer]:
    """A running server for the block, stopped afterwards."""
    server = RedisServer(folder, appendonly=appendonly)
    server.start()
    try:
        yield server
    finally:
        server.stop()
