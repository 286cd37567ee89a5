"""Requests to ``cwl-crunch server``: the token on every call, errors turned back into
the exception classes the server raised, and server-sent events parsed."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any, BinaryIO

import httpx

from cwl_crunch import errors

# Seconds: connecting is quick or the server is not there; reads may be long polls.
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 300.0
DOWNLOAD_TIMEOUT = 60.0
"""Seconds a download may go without receiving a byte (an image export starts after
the engine has read the image: 5 s for 260 MB here)."""


JOB_RECONNECT = 600.0
"""Seconds a client with a job's token keeps trying to reach a server that refuses
connections, once it knows the token is a job's: a job should outlive a restart of its
server (a workflow runner inside a job would otherwise fail the run)."""
RECONNECT_PAUSE = 1.0
"""Seconds between attempts to connect again (see ``reconnect_for``)."""
SAFE_AGAIN = frozenset({"GET", "HEAD"})
"""Methods sent again after the connection broke mid-request: they change nothing, so a
request the dying server may have seen can be repeated (a submission cannot)."""


class Transport:
    def __init__(self, url: str, token: str, *, reconnect_for: float = 0.0) -> None:
        """``reconnect_for``: seconds to keep trying while the server refuses connections
        (a job's programs must outlive a restart of their server; a request that could not
        connect never reached it, so sending it again is safe; a GET is sent again too
        when the connection broke before its answer)."""
        self.url = url.rstrip("/")
        self._reconnect_for = reconnect_for
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(
            base_url=f"{self.url}/api/v1", headers=headers,
            timeout=httpx.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT))

    def call(self, method: str, path: str, *, ok: tuple[int, ...] = (200, 201),
             timeout: float | None = None, **kwargs: Any) -> httpx.Response:
        """One request; an exception unless the status is in ``ok``."""
        if timeout is not None:
            kwargs["timeout"] = httpx.Timeout(timeout, connect=CONNECT_TIMEOUT)
        give_up = time.monotonic() + self._reconnect_for
        while True:
            try:
                response = self.http.request(method, path, **kwargs)
                break
            except httpx.TransportError as error:
                self._pause_or_raise(method, error, give_up)
        if response.status_code not in ok:
            raise error_of(response)
        return response

    def keep_trying(self, seconds: float) -> None:
        """From now on, keep trying for at least ``seconds`` (see ``__init__``)."""
        self._reconnect_for = max(self._reconnect_for, seconds)

    def _pause_or_raise(self, method: str, error: httpx.TransportError,
                        give_up: float) -> None:
        """Sleep before the next attempt, or raise: the server stayed away too long, or
        sending the request again could do twice what it asks."""
        again = isinstance(error, httpx.ConnectError) or (
            method in SAFE_AGAIN and isinstance(error, (httpx.NetworkError,
                                                        httpx.RemoteProtocolError)))
        if not again or time.monotonic() + RECONNECT_PAUSE > give_up:
            raise self._unreachable(error) from None
        time.sleep(RECONNECT_PAUSE)

    def _unreachable(self, error: httpx.TransportError) -> errors.ApiError:
        return errors.ApiError(f"cannot reach the cluster at {self.url}: "
                               f"{error or type(error).__name__}")

    def read_body(self, path: str) -> bytearray:
        """A GET's body read in chunks into one buffer that nothing else refers to (an
        httpx response and its stream refer to each other: a body kept there would
        live until the cycle collector runs, so big downloads would pile up)."""
        give_up = time.monotonic() + self._reconnect_for
        while True:
            body = bytearray()
            try:
                with self.http.stream("GET", path) as response:
                    if response.status_code != 200:
                        response.read()
                        raise error_of(response)
                    for chunk in response.iter_bytes():
                        body += chunk
                return body
            except httpx.TransportError as error:
                self._pause_or_raise("GET", error, give_up)

    def download(self, path: str, into: BinaryIO) -> int:
        """A GET's body written to ``into`` as it arrives (no retry: a broken transfer
        raises, and the caller starts over); the bytes written."""
        written = 0
        try:
            with self.http.stream("GET", path, timeout=httpx.Timeout(
                    DOWNLOAD_TIMEOUT, connect=CONNECT_TIMEOUT)) as response:
                if response.status_code != 200:
                    response.read()
                    raise error_of(response)
                for chunk in response.iter_bytes():
                    into.write(chunk)
                    written += len(chunk)
        except httpx.TransportError as error:
            raise self._unreachable(error) from None
        return written

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.call(method, path, **kwargs).json()

    def close(self) -> None:
        self.http.close()


def error_of(response: httpx.Response) -> errors.CrunchError:
    """The exception the server reported, as its own class where it is one of ours."""
    try:
        body = response.json()
        name, detail = str(body.get("error", "")), str(body.get("detail", ""))
    except (ValueError, AttributeError):
        name, detail = "", response.text[:500]
    kind = getattr(errors, name, None)
    message = detail or f"HTTP {response.status_code}"
    if response.status_code == 401:  # as the embedded client says of a bad token
        return errors.TokenError(message)
    if kind is errors.CorruptManifest:
        return errors.CorruptManifest(str(body.get("collection")), str(body.get("reason")))
    if kind is errors.CorruptBlock:
        return errors.CorruptBlock(str(body.get("block")), body.get("collection"),
                                   str(body.get("reason")))
    if isinstance(kind, type) and issubclass(kind, errors.CrunchError) \
            and not issubclass(kind, (errors.CorruptBlock, errors.JobFailed, errors.ApiError)):
        return kind(message)
    return errors.ApiError(f"{response.request.method} {response.request.url.path}: "
                           f"HTTP {response.status_code}: {message}", response.status_code)


def server_sent_events(response: httpx.Response) -> Iterator[tuple[str | None, str, str]]:
    """``(id, event, data)`` of each event in a ``text/event-stream`` response; a
    heartbeat comment yields ``(None, "", "")`` so a reader can check its deadline."""
    event_id: str | None = None
    kind, data = "message", list[str]()
    for line in response.iter_lines():
        if line == "":
            if data:
                yield event_id, kind, "\n".join(data)
            event_id, kind, data = None, "message", []
        elif line.startswith(":"):
            yield None, "", ""
        else:
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "id":
                event_id = value
            elif field == "event":
                kind = value
            elif field == "data":
                data.append(value)


def decode(data: str) -> Any:
    return json.loads(data)
