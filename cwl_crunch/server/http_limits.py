"""Limits on a request's target and headers, refused as the API refuses anything: a
status that says what was wrong (414, 431) and a JSON body, sent once the client has
sent its request.

Two places enforce them, because where a request is refused depends on how it arrived:

- ``HeadLimits`` (ASGI) checks every request whose head h11 could parse.
- ``LimitedH11Protocol`` (uvicorn's h11 protocol) answers a head h11 stopped buffering
  (``MAX_HEAD``). uvicorn itself answers that with a plain-text 400 and closes the socket
  at once; the client, still sending, then sees ``Connection reset by peer`` instead of
  any answer (a 180 KB query string did so in CI). Here the answer is sent, and what the
  client goes on sending is read and discarded, up to ``DRAIN_BYTES`` or
  ``DRAIN_SECONDS``, before the connection is closed.

The server is always run with this protocol, never uvicorn's ``auto`` choice, so that
installing httptools (which answers differently) changes nothing.
"""

from __future__ import annotations

import asyncio
import http
import json
from typing import Any

import h11
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

MAX_TARGET = 16 << 10
"""Bytes of a request target (path and query string as sent): longer gets a 414. The
HTTP client asks for at most 200 job UUIDs per URL, about 7 KB."""
MAX_HEADERS = 32 << 10
"""Bytes of all header lines together: more gets a 431."""
MAX_HEAD = MAX_TARGET + MAX_HEADERS + (1 << 10)
"""Bytes of an unfinished request head kept in memory (h11's own default is 16 KiB)."""
DRAIN_BYTES = 16 << 20
"""Bytes of a refused request read and discarded before its connection is closed."""
DRAIN_SECONDS = 10.0
"""Seconds a refused request's connection stays open for the client to finish sending."""


def too_long_target(length: int) -> str:
    return f"request URI (path and query string) of {length} bytes or more: the limit " \
           f"is {MAX_TARGET}"


def too_many_header_bytes(length: int) -> str:
    return f"request header fields of {length} bytes or more: the limit is {MAX_HEADERS}"


class HeadLimits:
    """414 for a target over ``MAX_TARGET``, 431 for headers over ``MAX_HEADERS``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            query = scope.get("query_string", b"")
            target = len(scope.get("raw_path") or scope["path"].encode()) + \
                (len(query) + 1 if query else 0)
            header_bytes = sum(len(name) + len(value) + 4 for name, value in scope["headers"])
            refusal = (414, too_long_target(target)) if target > MAX_TARGET else \
                (431, too_many_header_bytes(header_bytes)) if header_bytes > MAX_HEADERS \
                else None
            if refusal is not None:
                response = JSONResponse({"error": "HTTPError", "detail": refusal[1]},
                                        status_code=refusal[0])
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class LimitedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, refusing an unparsable or oversized head as described in
    the module's docstring."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._discarded: int | None = None  # bytes read since the refusal, once refused
        self._closer: asyncio.TimerHandle | None = None

    def data_received(self, data: bytes) -> None:
        if self._discarded is None:
            super().data_received(data)
            return
        self._discarded += len(data)
        if self._discarded > DRAIN_BYTES:
            self.transport.close()

    def send_400_response(self, msg: str) -> None:
        """Called by uvicorn when h11 refused the head (too long, or malformed)."""
        pending, _ = self.conn.trailing_data
        line_end = pending.find(b"\n")
        if len(pending) <= MAX_HEAD:
            status, detail = 400, "malformed HTTP request"
        elif line_end < 0 or line_end > MAX_TARGET:
            status, detail = 414, too_long_target(len(pending) if line_end < 0 else line_end)
        else:
            status, detail = 431, too_many_header_bytes(len(pending) - line_end)
        body = json.dumps({"error": "HTTPError", "detail": detail}).encode()
        headers = [(b"content-type", b"application/json"),
                   (b"content-length", str(len(body)).encode()), (b"connection", b"close")]
        for event in (h11.Response(status_code=status, headers=headers,
                                   reason=http.HTTPStatus(status).phrase.encode()),
                      h11.Data(data=body), h11.EndOfMessage()):
            self.transport.write(self.conn.send(event) or b"")
        self._discarded = 0
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self._closer = self.loop.call_later(DRAIN_SECONDS, self.transport.close)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._closer is not None:
            self._closer.cancel()
        super().connection_lost(exc)
