"""Many submitters at once against one server, on SQLite and on PostgreSQL: threads of
this process and processes of their own (tests/server/concurrent_submitter.py), each
with its own client. Every distinct job exists exactly once, and the work they all
submit runs once: every other submission of it joins or reuses that one run.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api_helpers import api_config, http_client
from concurrent_submitter import DISTINCT, SHARED, spec, submit_all
from sqlalchemy import select

from cwl_crunch.records.jobs import JOBS
from cwl_crunch.server.serve import ServerThread

THREADS = 4
PROCESSES = 4
HELPER = Path(__file__).with_name("concurrent_submitter.py")
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServerThread]:
    url = "" if request.param == "sqlite" else request.getfixturevalue("postgres_fresh_url")
    with ServerThread(api_config(tmp_path / "home", database_url=url)) as started:
        yield started


def run_submitters(server: ServerThread, tmp_path: Path) -> dict[int, list[list[Any]]]:
    """Every submitter's results, by submitter; all of them start at one signal."""
    token = server.create_token()
    logs = [tmp_path / f"submitter-{who}.log" for who in range(PROCESSES)]
    processes = [subprocess.Popen([sys.executable, str(HELPER), server.url, token, str(who)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=log.open("w"), text=True)
                 for who, log in enumerate(logs)]
    try:
        for process in processes:
            assert process.stdout is not None
            assert process.stdout.readline() == "ready\n", failure(processes, logs)
        results: dict[int, list[list[Any]]] = {}
        errors: list[BaseException] = []
        start = threading.Barrier(THREADS + 1)

        def thread(who: int) -> None:
            client = http_client(server, token)
            try:
                start.wait()
                results[who] = submit_all(client, who)
            except BaseException as error:  # noqa: BLE001 - reported by the test
                errors.append(error)
            finally:
                client.close()

        threads = [threading.Thread(target=thread, args=(PROCESSES + n,))
                   for n in range(THREADS)]
        for each in threads:
            each.start()
        for process in processes:
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        start.wait()
        for who, process in enumerate(processes):
            assert process.stdout is not None
            line = process.stdout.readline()
            assert line, failure(processes, logs)
            results[who] = json.loads(line)
        for each in threads:
            each.join(60)
        assert not errors, errors
        for process in processes:
            assert process.wait(30) == 0, failure(processes, logs)
        return results
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()


def failure(processes: list[subprocess.Popen[str]], logs: list[Path]) -> str:
    return "a submitter process failed:\n" + "\n".join(log.read_text() for log in logs)


def test_concurrent_submitters_lose_nothing_duplicate_nothing_and_run_shared_work_once(
        server: ServerThread, tmp_path: Path) -> None:
    results = run_submitters(server, tmp_path)
    assert sorted(results) == list(range(THREADS + PROCESSES))
    submitted = [row for rows in results.values() for row in rows]
    assert len(submitted) == (THREADS + PROCESSES) * (DISTINCT + SHARED)
    assert len({uuid for uuid, *_ in submitted}) == len(submitted)  # one record each
    client = http_client(server, server.create_token())
    records = {r.uuid: r for r in client.wait([uuid for uuid, *_ in submitted], timeout=60)}
    assert all(r.finished for r in records.values()), \
        Counter(r.state for r in records.values())
    with server.core.database.reading() as connection:
        rows = connection.execute(select(JOBS.c.uuid, JOBS.c.command, JOBS.c.reused_job_uuid,
                                         JOBS.c.reuse_key)).all()
    assert len(rows) == len(submitted)
    by_command = Counter(tuple(row.command) for row in rows)
    # Every distinct job exists exactly once, as the record its submitter was given.
    for who, rows_of_one in results.items():
        for uuid, kind, number, _ in rows_of_one:
            command = spec(kind, who, number).command
            if kind == "own":
                assert by_command[command] == 1, command
            assert tuple(records[uuid].spec.command) == command
    # Each piece of shared work: one record per submitter, exactly one of them ran it
    # (no reused_job_uuid: the leader), every other one joined or reused that one.
    runs: dict[str, list[Any]] = defaultdict(list)
    for row in rows:
        runs[row.reuse_key].append(row)
    for number in range(SHARED):
        command = spec("shared", 0, number).command
        twins = [row for row in rows if tuple(row.command) == command]
        assert len(twins) == THREADS + PROCESSES
        assert len({row.reuse_key for row in twins}) == 1
        leaders = [row.uuid for row in twins if row.reused_job_uuid is None]
        assert len(leaders) == 1, twins
        assert all(row.reused_job_uuid in (None, leaders[0]) for row in twins), twins
        outputs = {records[row.uuid].output_pdh for row in twins}
        assert all(records[row.uuid].succeeded for row in twins)
        assert len(outputs) == 1 and None not in outputs
    # And nothing else was collapsed: each own job ran itself.
    own = [row for row in rows if row.command[1].startswith("submitter ")]
    assert len(own) == (THREADS + PROCESSES) * DISTINCT
    assert all(row.reused_job_uuid is None for row in own)
    assert all(len(runs[row.reuse_key]) == 1 for row in own)
    client.close()
