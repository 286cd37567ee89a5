"""One participant of tests/records/test_concurrency.py: submits, claims and finishes
jobs through cwl_crunch.records, as a thread of the test or as a process of its own.

As a process: ``python concurrent_writers.py URL WHO``; prints ``ready``, then for each
JSON line ``[phase, *arguments]`` on stdin runs that phase and prints its result as one
JSON line.
"""

from __future__ import annotations

import json
import random
import sys
import time
from typing import Any

from cwl_crunch.model import JobOutcome, JobSpec, JobState, WorkerInfo
from cwl_crunch.records import jobs
from cwl_crunch.records.database import Database
from cwl_crunch.records.reuse_key import reuse_key

HOST = "testhost"
OUTPUT = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa+1"
LOG = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb+1"


def twin_spec(key: int) -> JobSpec:
    """The same work, whoever submits it."""
    return JobSpec(command=("twin", str(key)), cores=1.0, ram=1000)


def own_spec(who: int, number: int) -> JobSpec:
    return JobSpec(command=("own", str(who), str(number)), cores=1.0, ram=1000)


def _insert(database: Database, spec: JobSpec) -> str:
    with database.writing() as connection:
        uuid: str = jobs.insert_job(connection, "local", spec, parent_uuid=None,
                                    key=reuse_key(spec), output_problem=lambda pdh: None)["uuid"]
    return uuid


def submit(database: Database, who: int, twins: int, own: int) -> list[list[Any]]:
    """Every twin once and ``own`` jobs of its own, in an order of its own:
    [uuid, "twin" or "own", number]."""
    work = [("twin", key) for key in range(twins)] + [("own", n) for n in range(own)]
    random.Random(who).shuffle(work)
    return [[_insert(database, twin_spec(n) if kind == "twin" else own_spec(who, n)), kind, n]
            for kind, n in work]


def claim_and_finish(database: Database, who: int, capacity: float) -> list[str]:
    """Claim queued jobs while they fit ``capacity`` cores on HOST (shared by every
    participant, as by every process of one machine), finish each; the uuids claimed."""
    worker = WorkerInfo(host=HOST, pid=100000 + who, pid_start=1)
    rng = random.Random(who)
    claimed: list[str] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with database.writing() as connection:
            candidates = jobs.queued_candidates(connection, 1)
            if not candidates:
                return claimed
            uuid, cores, _ram = candidates[0]
            used, _ = jobs.usage_on_host(connection, HOST)
            fits = used + cores <= capacity
            if fits:
                jobs.claim(connection, uuid, JobState.QUEUED, worker)
        if not fits:
            time.sleep(0.001)
            continue
        claimed.append(uuid)
        time.sleep(rng.random() * 0.002)  # "running": overlaps other participants' claims
        with database.writing() as connection:
            jobs.finish(connection, jobs.get_job(connection, uuid),
                        JobOutcome(JobState.COMPLETE, 0, OUTPUT, LOG))
    raise TimeoutError("the queue did not drain")


def resubmit(database: Database, who: int, twins: int) -> list[str]:
    """Every twin again (all finished now: each must be reused)."""
    order = list(range(twins))
    random.Random(who + 1000).shuffle(order)
    return [_insert(database, twin_spec(key)) for key in order]


PHASES: dict[str, Any] = {"submit": submit, "claim": claim_and_finish, "resubmit": resubmit}


def main() -> None:
    url, who = sys.argv[1], int(sys.argv[2])
    database = Database(url)
    print("ready", flush=True)
    try:
        for line in sys.stdin:
            phase, *arguments = json.loads(line)
            print(json.dumps(PHASES[phase](database, who, *arguments)), flush=True)
    finally:
        database.close()


if __name__ == "__main__":
    main()
