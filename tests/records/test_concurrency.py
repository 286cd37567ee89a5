"""Many writers at once, on SQLite and on PostgreSQL: threads sharing one Database and
processes with their own (tests/records/concurrent_writers.py), as the processes using
one cluster do. Nothing may be lost or duplicated, identical work must be queued once
(every other submission joins or reuses it), no job may be claimed twice nor the host's
capacity overcommitted, and a follower of the event log must miss no event.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from concurrent_writers import LOG, OUTPUT, PHASES
from sqlalchemy import select

import cwl_crunch
from cwl_crunch.model import JobState
from cwl_crunch.records import jobs
from cwl_crunch.records.database import Database

THREADS = 4
PROCESSES = 4
TWINS = 10  # pieces of work every participant submits
OWN = 10  # jobs each participant submits that nobody else does
CAPACITY = 2.0  # cores of the one host every participant claims for (each job: 1 core)
HELPER = Path(__file__).with_name("concurrent_writers.py")


class Participants:
    """THREADS threads sharing one Database, and PROCESSES processes, run each phase
    together."""

    def __init__(self, database_url: str, log_dir: Path) -> None:
        self.database = Database(database_url)
        self.logs = [log_dir / f"participant-{who}.log"
                     for who in range(THREADS, THREADS + PROCESSES)]
        self.processes = [
            subprocess.Popen([sys.executable, str(HELPER), database_url, str(who)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=log.open("w"), text=True)
            for who, log in zip(range(THREADS, THREADS + PROCESSES), self.logs, strict=True)]
        for process in self.processes:
            self._read(process)  # "ready": every process has opened the database

    def _read(self, process: subprocess.Popen[str]) -> str:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            process.wait(10)
            raise AssertionError("a participant process failed:\n" + "\n".join(
                log.read_text() for log in self.logs))
        return line

    def run(self, phase: str, *arguments: object) -> list:
        """Each participant's result of ``phase``, threads first."""
        request = json.dumps([phase, *arguments]) + "\n"
        for process in self.processes:
            assert process.stdin is not None
            process.stdin.write(request)
            process.stdin.flush()
        with ThreadPoolExecutor(THREADS) as pool:
            futures = [pool.submit(PHASES[phase], self.database, who, *arguments)
                       for who in range(THREADS)]
            results = [future.result() for future in futures]
        return results + [json.loads(self._read(process)) for process in self.processes]

    def close(self) -> None:
        for process in self.processes:
            assert process.stdin is not None
            process.stdin.close()
        for process in self.processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.database.close()


class EventFollower(threading.Thread):
    """Reads the event log as a follower does: each time, the events after the last id seen."""

    def __init__(self, database_url: str) -> None:
        super().__init__()
        self.database = Database(database_url)
        self.seen: list[int] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        try:
            while True:
                stopping = self.stopping.is_set()  # then one more read: the rest
                with self.database.reading() as connection:
                    found = jobs.events_after(connection, self.seen[-1] if self.seen else 0)
                self.seen.extend(event.id for event in found)
                if stopping and not found:
                    return
                time.sleep(0.001)
        finally:
            self.database.close()


@pytest.mark.slow
def test_concurrent_writers_lose_duplicate_and_overcommit_nothing(database_url, tmp_path):
    Database(database_url).close()  # the schema: made once, not by every participant
    follower = EventFollower(database_url)
    follower.start()
    participants = Participants(database_url, tmp_path)
    timings = {}
    try:
        for phase, arguments in [("submit", (TWINS, OWN)), ("claim", (CAPACITY,)),
                                 ("resubmit", (TWINS,))]:
            started = time.monotonic()
            timings[phase] = participants.run(phase, *arguments)
            timings[phase + " seconds"] = time.monotonic() - started
    finally:
        participants.close()
        follower.stopping.set()
        follower.join(30)
    submitted, claimed, resubmitted = (timings["submit"], timings["claim"],
                                       timings["resubmit"])
    print({name: round(value, 2) for name, value in timings.items() if "seconds" in name})

    database = Database(database_url)
    try:
        with database.reading() as connection:
            rows = {row.uuid: row for row in connection.execute(select(jobs.JOBS)).all()}
            events = jobs.events_after(connection, 0, limit=100_000)
    finally:
        database.close()
    participants_count = THREADS + PROCESSES

    # Nothing lost, nothing duplicated.
    first_uuids = [uuid for result in submitted for uuid, _kind, _n in result]
    again_uuids = [uuid for result in resubmitted for uuid in result]
    assert len(first_uuids) == participants_count * (TWINS + OWN)
    assert len(again_uuids) == participants_count * TWINS
    assert len(set(first_uuids + again_uuids)) == len(first_uuids + again_uuids)
    assert set(rows) == set(first_uuids + again_uuids)

    # Identical work was queued once: one leader per twin, every other submission joined
    # it (or, once it had finished, reused it), and it ran once.
    leaders = {}
    for key in range(TWINS):
        group = [rows[uuid] for result in submitted for uuid, kind, n in result
                 if kind == "twin" and n == key]
        assert len(group) == participants_count
        running_itself = [row for row in group if row.reused_job_uuid is None]
        assert len(running_itself) == 1, f"twin {key}: {len(running_itself)} leaders"
        leaders[key] = running_itself[0].uuid
        assert {row.reused_job_uuid for row in group} == {None, leaders[key]}
    own = [uuid for result in submitted for uuid, kind, _n in result if kind == "own"]
    for uuid in first_uuids:
        row = rows[uuid]
        assert (row.state, row.exit_code, row.output_pdh, row.log_pdh) == \
            (JobState.COMPLETE, 0, OUTPUT, LOG)
    for uuid in again_uuids:
        assert rows[uuid].state == JobState.COMPLETE
        assert rows[uuid].reused_job_uuid in leaders.values()

    # Each job that runs itself was claimed exactly once; the followers never.
    claims = [uuid for result in claimed for uuid in result]
    assert sorted(claims) == sorted([*leaders.values(), *own])
    count = Counter((event.job_uuid, event.state) for event in events)
    for uuid in first_uuids:
        assert [count[uuid, state] for state in (JobState.QUEUED, JobState.RUNNING,
                                                 JobState.COMPLETE)] == [1, 1, 1], uuid
    for uuid in again_uuids:  # born Complete: reused, never queued
        assert [count[uuid, state] for state in (JobState.QUEUED, JobState.COMPLETE)] == [0, 1]

    # The host's capacity was never overcommitted (followers hold nothing).
    in_use = peak = 0.0
    for event in events:
        row = rows[event.job_uuid]
        if row.reused_job_uuid is None and event.state == JobState.RUNNING:
            in_use += row.cores
        elif row.reused_job_uuid is None and event.state == JobState.COMPLETE \
                and count[event.job_uuid, JobState.RUNNING]:
            in_use -= row.cores
        peak = max(peak, in_use)
    assert peak <= CAPACITY
    assert in_use == 0

    # The follower, reading while everyone wrote, missed no event: ids became visible
    # in increasing order.
    ids = [event.id for event in events]
    assert ids == sorted(set(ids))
    assert follower.seen == ids


@pytest.mark.slow
def test_identical_submissions_through_two_clusters_run_once(database_url, tmp_path):
    """Two EmbeddedClients (each with its dispatcher) on one home and one database, as
    two programs using one cluster: every submission of the same work gets one result."""
    home = tmp_path / "home"
    first = cwl_crunch.connect(home=home, database_url=database_url, poll_interval=0.05)
    second = cwl_crunch.connect(home=home, database_url=database_url, poll_interval=0.05)
    command = ["sh", "-c", "sleep 0.3; date +%s%N > out/when.txt"]
    try:
        with ThreadPoolExecutor(6) as pool:
            futures = list(pool.map(
                lambda cluster: cluster.submit(command, cores=0.25),
                [first, second] * 3))
        records = cwl_crunch.wait_all(futures, timeout=60)
        assert {record.state for record in records} == {JobState.COMPLETE}
        assert len({record.output_pdh for record in records}) == 1
        ran = [record for record in records if record.reused_job_uuid is None]
        assert len(ran) == 1
        assert {record.reused_job_uuid for record in records} == {None, ran[0].uuid}
        again = second.submit(command, cores=0.25)
        assert again.done() and again.result().reused_job_uuid == ran[0].uuid
        assert first.read_text(again.output, "when.txt") == \
            second.read_text(ran[0].output_pdh, "when.txt")
    finally:
        first.close()
        second.close()
