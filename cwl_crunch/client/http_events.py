"""One event stream per HTTP client, shared by every thread that waits on it.

A workflow runner waits on hundreds of steps at once; a stream each would cost the
server a poller each. The follower thread reads ``/events/stream`` (resuming after the
last event id it saw when the connection drops) and wakes the waiters whose jobs ended.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import httpx

from cwl_crunch.client.http_transport import Transport, decode, error_of, server_sent_events
from cwl_crunch.model import FINAL_STATES, JobRecord
from cwl_crunch.model.codec import event_from_dict, record_from_dict

_READ_TIMEOUT = 40.0
"""Seconds without a byte before the stream counts as dropped (the server sends a
heartbeat every 15 s)."""
_RETRY_PAUSE = 1.0
_RECORDS_KEPT = 20_000


def _record_in(payload: Mapping[str, Any]) -> JobRecord | None:
    carried = payload.get("record")
    return record_from_dict(carried) if isinstance(carried, dict) else None


KeepOutput = Callable[[str, Mapping[str, Any]], None]
"""Called with an ended job's output PDH and what its final event carried of it
(``manifest`` text, base64 ``blocks`` by locator), before its waiters are woken."""


class EventFollower:
    def __init__(self, transport: Transport, start_after: Callable[[], int],
                 keep_output: KeepOutput | None = None) -> None:
        self._transport = transport
        self._start_after = start_after
        self._keep_output = keep_output
        self._lock = threading.Lock()
        # Waiters by the jobs they wait on: an event wakes only those (a runner has a
        # hundred threads waiting; waking all of them for every event cost it more CPU
        # than anything else it did).
        self._interested: dict[str, set[threading.Condition]] = {}
        self._ended: set[str] = set()
        self._seen: set[str] = set()
        self._records: OrderedDict[str, JobRecord] = OrderedDict()
        """Final records the stream carried, so a waiter needs no second request."""
        """Jobs with an event since following began: their end cannot be missed."""
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._socket: socket.socket | None = None
        self.error: Exception | None = None

    def start(self) -> None:
        """Begin following from now (idempotent); events before now are not needed:
        the caller reads the records afterwards."""
        with self._lock:
            if self._thread is None:
                position = self._start_after()
                self._thread = threading.Thread(target=self._run, args=(position,),
                                                name="event-follower", daemon=True)
                self._thread.start()

    def unseen(self, uuids: set[str], patience: float) -> set[str]:
        """Those of ``uuids`` the follower has no event of yet, after waiting up to
        ``patience`` seconds for them (a job submitted a moment ago shows up soon): for
        those, the caller must read the record to know it did not end before."""
        deadline = time.monotonic() + patience
        with self._lock, self._waiting_on(uuids) as waiter:
            while True:
                missing = uuids - self._seen
                remaining = deadline - time.monotonic()
                if not missing or remaining <= 0 or self._stopping.is_set():
                    return missing
                waiter.wait(remaining)

    def wait_any(self, uuids: set[str], deadline: float | None) -> set[str]:
        """Those of ``uuids`` that ended since following began; waits for at least one
        (or the deadline)."""
        with self._lock, self._waiting_on(uuids) as waiter:
            while True:
                ended = uuids & self._ended
                if ended or self._stopping.is_set():
                    return ended
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return set()
                waiter.wait(5.0 if remaining is None else min(remaining, 5.0))

    @contextlib.contextmanager
    def _waiting_on(self, uuids: set[str]) -> Iterator[threading.Condition]:
        """A condition notified on any event of ``uuids`` (and at stop); with _lock held."""
        waiter = threading.Condition(self._lock)
        for uuid in uuids:
            self._interested.setdefault(uuid, set()).add(waiter)
        try:
            yield waiter
        finally:
            for uuid in uuids:
                waiters = self._interested.get(uuid)
                if waiters is not None:
                    waiters.discard(waiter)
                    if not waiters:
                        del self._interested[uuid]

    def final_record(self, uuid: str) -> JobRecord | None:
        with self._lock:
            return self._records.get(uuid)

    def has_ended(self, uuid: str) -> bool:
        """Whether job ``uuid`` ended since following began (no waiting)."""
        with self._lock:
            return uuid in self._ended

    @property
    def stopped(self) -> bool:
        return self._stopping.is_set()

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            for waiters in self._interested.values():
                for waiter in waiters:
                    waiter.notify()
            sock = self._socket
        if sock is not None:
            # Closing the response from here would not wake the thread blocked reading
            # it; shutting the socket down does, and the server sees the stream end.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _run(self, position: int) -> None:
        while not self._stopping.is_set():
            try:
                position = self._read(position)
            except (httpx.TransportError, httpx.StreamError):
                pass  # dropped: resume after the last event seen
            except Exception as error:  # noqa: BLE001 - kept for the waiters to see
                self.error = error
            if not self._stopping.wait(_RETRY_PAUSE):
                continue

    def _read(self, position: int) -> int:
        with self._transport.http.stream(
                "GET", "/events/stream", headers={"Last-Event-ID": str(position)},
                timeout=httpx.Timeout(_READ_TIMEOUT, connect=10.0)) as response:
            stream = response.extensions.get("network_stream")
            with self._lock:
                self._socket = stream.get_extra_info("socket") if stream is not None else None
            if self._stopping.is_set():
                return position
            if response.status_code != 200:
                response.read()
                raise error_of(response)
            for event_id, kind, data in server_sent_events(response):
                if self._stopping.is_set():
                    break
                if kind != "job" or event_id is None:
                    continue
                payload = decode(data)
                event = event_from_dict(payload)
                position = event.id
                record = _record_in(payload)
                carried = payload.get("output")
                if record is not None and record.output_pdh and isinstance(carried, dict) \
                        and self._keep_output is not None:
                    self._keep_output(record.output_pdh, carried)
                with self._lock:
                    self._seen.add(event.job_uuid)
                    if event.state in FINAL_STATES:
                        self._ended.add(event.job_uuid)
                    if record is not None:
                        self._records[record.uuid] = record
                        while len(self._records) > _RECORDS_KEPT:
                            self._records.popitem(last=False)
                    for waiter in self._interested.get(event.job_uuid, ()):
                        waiter.notify()
        return position
