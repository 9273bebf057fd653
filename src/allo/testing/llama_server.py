"""A real OpenAI-compatible server for tests: llama.cpp's, on loopback, with a small model.

The OpenAI-compatible provider is tested against ``python -m llama_cpp.server`` serving
the packaged Qwen2.5-Coder-0.5B (the ``local-llm`` extra), so that the SDK, the HTTP
wire format and the error paths are exercised for real, without any network.

``LLM_MARKS`` marks a test module that needs the local model: skipped when the runtime
or the weights are not installed, except in CI (``CI=true``), where that is a failure.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pytest

from allo.gateway import weights

TEST_MODEL = "qwen2.5-coder-0.5b"
# In CI the local-model runs must happen: a missing runtime or model is a failure.
LLM_REQUIRED = os.environ.get("CI") == "true"


def llm_installed() -> bool:
    """Whether llama-cpp-python and the packaged test model are installed (no loading)."""
    return importlib.util.find_spec("llama_cpp") is not None and weights.packaged_available(
        TEST_MODEL
    )


# Marks of a test module that runs the local model: skipped without it, except in CI.
LLM_MARKS = [
    pytest.mark.llm,
    pytest.mark.skipif(
        not llm_installed() and not LLM_REQUIRED,
        reason="pip install 'allo[local-llm]' to run the local-model tests (CI always does)",
    ),
]


@dataclass(frozen=True, slots=True)
class LlamaServer:
    """A running server: its OpenAI base URL and the model id it serves."""

    base_url: str
    model: str
    process: subprocess.Popen[bytes]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def llama_server(
    model_path: Path,
    *,
    alias: str = TEST_MODEL,
    n_ctx: int = 2048,
    threads: int = 2,
    startup_timeout: float = 180.0,
) -> Iterator[LlamaServer]:
    """Start ``python -m llama_cpp.server`` on a free loopback port; stop it on exit.

    Waits until ``/v1/models`` answers. ``RuntimeError`` with the end of the server's
    output when it exits or does not answer within ``startup_timeout`` seconds.
    """
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(model_path),
        "--model_alias",
        alias,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        str(n_ctx),
        "--n_threads",
        str(threads),
        "--n_threads_batch",
        str(threads),
    ]
    base_url = f"http://127.0.0.1:{port}/v1"
    # A file, not a pipe: a chatty server would block once a pipe's buffer is full.
    with tempfile.TemporaryFile() as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
        try:
            _wait_until_ready(process, base_url, startup_timeout, output)
            yield LlamaServer(base_url=base_url, model=alias, process=process)
        finally:
            _stop(process)


def _wait_until_ready(
    process: subprocess.Popen[bytes], base_url: str, timeout: float, output: IO[bytes]
) -> None:
    # Loopback only: ignore any proxy configured in the environment.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"llama_cpp.server exited with status {process.returncode} before answering:"
                f"\n{_tail(output)}"
            )
        try:
            with opener.open(f"{base_url}/models", timeout=2.0) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.25)
    raise RuntimeError(
        f"llama_cpp.server did not answer on {base_url} within {timeout:g} s:\n{_tail(output)}"
    )


def _tail(output: IO[bytes], size: int = 4000) -> str:
    """The last ``size`` bytes the server wrote (stdout and stderr together)."""
    output.flush()
    end = output.seek(0, os.SEEK_END)
    output.seek(max(0, end - size))
    return output.read().decode("utf-8", errors="replace")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)
