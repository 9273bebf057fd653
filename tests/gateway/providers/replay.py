"""Replays recorded API responses through the SDKs' own HTTP client (httpx2).

The recordings under ``recordings/`` are written in the providers' wire formats (JSON
bodies, server-sent events); a ``Replay`` answers every request with one of them and
keeps the requests the SDK sent, so tests can check both directions of the exchange.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2

RECORDINGS = Path(__file__).parent / "recordings"


def recorded(
    name: str, status: int = 200, headers: dict[str, str] | None = None
) -> httpx2.Response:
    """The recorded body ``name`` as a response (SSE for ``.sse`` files)."""
    content_type = "text/event-stream" if name.endswith(".sse") else "application/json"
    return httpx2.Response(
        status,
        headers={"content-type": content_type, **(headers or {})},
        content=(RECORDINGS / name).read_bytes(),
    )


class Replay:
    """An httpx2 mock transport handler that records what it was sent."""

    def __init__(self, answer: Callable[[httpx2.Request], httpx2.Response]) -> None:
        self.answer = answer
        self.requests: list[httpx2.Request] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        request.read()
        self.requests.append(request)
        return self.answer(request)

    def client(self) -> httpx2.Client:
        """An HTTP client whose every request this replay answers."""
        return httpx2.Client(transport=httpx2.MockTransport(self))

    @property
    def last(self) -> httpx2.Request:
        """The last request sent."""
        return self.requests[-1]

    def last_json(self) -> Any:
        """The JSON body of the last request."""
        return json.loads(self.last.content)


def answer_with(response: httpx2.Response) -> Callable[[httpx2.Request], httpx2.Response]:
    """A handler that always gives ``response``."""
    return lambda request: response


def fail_with(error: type[httpx2.TransportError]) -> Callable[[httpx2.Request], httpx2.Response]:
    """A handler whose transport raises ``error`` (a timeout, a reset connection)."""

    def handler(request: httpx2.Request) -> httpx2.Response:
        raise error("simulated", request=request)

    return handler
