"""Waiting for jobs by following the event stream (never by re-reading every record)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from cwl_crunch.model.jobs import JobRecord
from cwl_crunch.model.states import FINAL_STATES

if TYPE_CHECKING:
    from cwl_crunch.model.client import ClusterClient

# Upper bound (seconds) of one wait for events; short enough to notice a timeout.
_EVENT_WAIT = 5.0


def wait_for_jobs(
    client: ClusterClient, uuids: Sequence[str], timeout: float | None = None
) -> list[JobRecord]:
    """Block until every job in ``uuids`` is finished or ``timeout`` passes."""
    deadline = None if timeout is None else time.monotonic() + timeout
    # Note the event position before reading states, so no change can slip between.
    after = client.last_event_id()
    records = {record.uuid: record for record in client.get_jobs(list(dict.fromkeys(uuids)))}
    pending = {uuid for uuid, record in records.items() if not record.finished}
    while pending:
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            break
        wait = _EVENT_WAIT if remaining is None else min(_EVENT_WAIT, remaining)
        events = client.events(after, timeout=wait)
        if not events:
            continue
        after = events[-1].id
        ended = {e.job_uuid for e in events if e.state in FINAL_STATES} & pending
        if ended:
            for record in client.get_jobs(sorted(ended)):
                records[record.uuid] = record
            pending -= ended
    return [records[uuid] for uuid in uuids]
