"""The job event stream (``GET /api/v1/events/stream``, server-sent events): a reader
that drops the connection and comes back with ``Last-Event-ID`` (or ``?after=``) misses
no event and sees none twice; a job's token sees its own subtree only; and
``HttpClient.wait``, which follows the stream, returns when the jobs end or time runs out.

The stream is parsed here by hand, not with the client's parser, so that a fault on
either side cannot hide one on the other.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_helpers import error_body, http_client, raw_http, server_signer
from polling import wait_until

from cwl_crunch.client.http import HttpClient
from cwl_crunch.model import FINAL_STATES, JobOutcome, JobSpec, JobState
from cwl_crunch.records.blob_signing import token_uuid_of
from cwl_crunch.server import events_api
from cwl_crunch.server.serve import ServerThread
from cwl_crunch.store.locators import manifest_locators, strip_signatures
from cwl_crunch.worker.processes import this_worker

QUICK = {"cores": 0.05, "ram": 1 << 20, "reuse": False}
"""Many at once on a small machine, each run for real."""


def read_stream(server: ServerThread, token: str, count: int, *, after: int | None = None,
                last_event_id: str | None = None, idle: float = 1.0) -> list[dict[str, Any]]:
    """Up to ``count`` events from a new connection, then drop it (fewer if none come for
    ``idle`` seconds)."""
    headers = {"Authorization": f"Bearer {token}"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    params = {} if after is None else {"after": after}
    events: list[dict[str, Any]] = []
    fields: dict[str, str] = {}
    try:
        with httpx.stream("GET", f"{server.url}/api/v1/events/stream", params=params,
                          headers=headers, timeout=httpx.Timeout(idle, connect=10)) as response:
            assert response.status_code == 200, response.read()
            assert response.headers["content-type"].startswith("text/event-stream")
            for line in response.iter_lines():
                if line.startswith(":"):
                    continue
                if line:
                    name, _, value = line.partition(":")
                    fields[name] = value.removeprefix(" ")
                    continue
                if not fields:
                    continue  # the blank line after a comment
                event = json.loads(fields["data"])
                assert fields["event"] == "job" and int(fields["id"]) == event["id"], fields
                events.append(event)
                fields = {}
                if len(events) >= count:
                    break
    except httpx.ReadTimeout:
        pass
    return events


def all_events(server: ServerThread, after: int = 0) -> list[dict[str, Any]]:
    """Every event the server holds after ``after``, read from its database."""
    found: list[dict[str, Any]] = []
    while batch := server.core.events(after, 0):
        found += [{"id": e.id, "job_uuid": e.job_uuid, "state": e.state} for e in batch]
        after = batch[-1].id
    return found


def submitting(client: HttpClient, count: int, uuids: list[str]) -> threading.Thread:
    """A thread submitting ``count`` quick jobs, their uuids appended to ``uuids``."""
    def run() -> None:
        for index in range(count):
            uuids.append(client.submit(JobSpec(command=("true", str(index)), **QUICK)).uuid)

    thread = threading.Thread(target=run, name="submitter")
    thread.start()
    return thread


@pytest.mark.parametrize("resume", ["Last-Event-ID", "after"])
def test_a_reader_that_keeps_reconnecting_misses_and_repeats_no_event(
        api_server: ServerThread, api_client: HttpClient, api_token: str, resume: str) -> None:
    start = api_client.last_event_id()
    uuids: list[str] = []
    producer = submitting(api_client, 50, uuids)
    seen: list[dict[str, Any]] = []
    reconnects = 0
    deadline = time.monotonic() + 60
    done = False
    while not done:
        assert time.monotonic() < deadline, f"{len(seen)} events after 60 s"
        position = seen[-1]["id"] if seen else start
        if resume == "after":
            chunk = read_stream(api_server, api_token, 7, after=position)
        else:
            chunk = read_stream(api_server, api_token, 7, last_event_id=str(position))
        seen += chunk
        reconnects += 1
        if not chunk and not producer.is_alive():
            # Quiet for a second and nothing more to submit: done once every job ended
            # and every event there is has been read.
            records = api_client.get_jobs(uuids)
            done = all(r.finished for r in records) and \
                api_client.last_event_id() == (seen[-1]["id"] if seen else start)
    producer.join()
    assert len(uuids) == 50
    expected = all_events(api_server, start)
    assert [e["id"] for e in seen] == [e["id"] for e in expected]  # none lost, none twice
    assert [(e["job_uuid"], e["state"]) for e in seen] == \
        [(e["job_uuid"], e["state"]) for e in expected]
    assert {e["job_uuid"] for e in seen if e["state"] == "Complete"} == set(uuids)
    assert len(seen) >= 150 and reconnects > len(seen) / 7


def test_a_stream_from_zero_replays_the_whole_log(api_server: ServerThread,
                                                  api_client: HttpClient,
                                                  api_token: str) -> None:
    jobs = [api_client.submit(JobSpec(command=("true", str(i)), **QUICK)).uuid
            for i in range(3)]
    api_client.wait(jobs, timeout=30)
    expected = all_events(api_server)
    assert len(expected) == 9
    for replay in (read_stream(api_server, api_token, 1000),
                   read_stream(api_server, api_token, 1000, last_event_id=""),
                   read_stream(api_server, api_token, 1000, after=0)):
        assert [{k: e[k] for k in ("id", "job_uuid", "state")} for e in replay] == expected
    # ?after= wins over Last-Event-ID.
    second = expected[1]["id"]
    assert read_stream(api_server, api_token, 1, after=second, last_event_id="0")[0]["id"] \
        == expected[2]["id"]


@pytest.mark.parametrize("bad", ["abc", "-1", "1.5", "0x10", str(1 << 63), "9" * 400])
def test_a_bad_last_event_id_is_refused(api_http: httpx.Client, bad: str) -> None:
    body = error_body(api_http.get("/events/stream", headers={"Last-Event-ID": bad}), 400)
    assert "Last-Event-ID" in body["detail"]


@pytest.mark.parametrize("after", ["-1", "x", str(1 << 63)])
def test_a_bad_after_is_refused(api_http: httpx.Client, after: str) -> None:
    error_body(api_http.get("/events/stream", params={"after": after}), 422)
    error_body(api_http.get("/events", params={"after": after}), 422)


def test_a_job_tokens_stream_shows_its_own_subtree_only(
        api_server: ServerThread, api_client: HttpClient) -> None:
    start = api_client.last_event_id()
    claim = api_client.start_own_job(JobSpec(command=("runner",)), this_worker())
    runner = http_client(api_server, claim.token)
    children = [runner.submit(JobSpec(command=("true", f"child {i}"), **QUICK)).uuid
                for i in range(3)]
    others = [api_client.submit(JobSpec(command=("true", f"other {i}"), **QUICK)).uuid
              for i in range(3)]
    api_client.wait(children + others, timeout=30)
    grandchild = http_client(api_server, runner.start_own_job(
        JobSpec(command=("sub-runner",)), this_worker()).token)
    below = grandchild.submit(JobSpec(command=("true", "grandchild"), **QUICK)).uuid
    api_client.wait([below], timeout=30)
    subtree = {claim.job.uuid, *children, grandchild.caller_job(), below}
    everything = all_events(api_server, start)
    expected = [e for e in everything if e["job_uuid"] in subtree]
    assert len(expected) < len(everything)  # others' events are there to be left out
    shown = read_stream(api_server, claim.token, 1000, after=start)
    assert [(e["id"], e["job_uuid"], e["state"]) for e in shown] == \
        [(e["id"], e["job_uuid"], e["state"]) for e in expected]
    # The long poll filters the same way, and says where to go on from.
    with raw_http(api_server, claim.token) as http:
        polled = http.get("/events", params={"after": start}).json()
    assert [e["id"] for e in polled["events"]] == [e["id"] for e in expected]
    assert polled["last"] == everything[-1]["id"]
    for client in (runner, grandchild):
        client.close()


# HttpClient.wait ----------------------------------------------------------------------
@pytest.fixture
def gate(tmp_path: Path) -> Iterator[Path]:
    """A file whose existence lets gated jobs end (opened in any case at teardown)."""
    path = tmp_path / "gate"
    yield path
    path.touch()


def gated(gate: Path, name: str) -> JobSpec:
    return JobSpec(command=("sh", "-c", f"while [ ! -e {gate} ]; do sleep 0.02; done"),
                   name=name, **QUICK)


def test_wait_returns_as_soon_as_the_jobs_end(api_client: HttpClient, gate: Path) -> None:
    jobs = [api_client.submit(gated(gate, f"gated {i}")).uuid for i in range(4)]
    quick = api_client.submit(JobSpec(command=("true", "quick"), **QUICK)).uuid
    [done] = api_client.wait([quick], timeout=30)
    assert done.succeeded
    result: list[Any] = []
    waiter = threading.Thread(target=lambda: result.append(api_client.wait(jobs, 60)))
    waiter.start()
    waiter.join(0.5)
    assert waiter.is_alive()  # still waiting: the jobs run
    released = time.monotonic()
    gate.touch()
    waiter.join(30)
    assert not waiter.is_alive()
    assert time.monotonic() - released < 5
    [records] = result
    assert [r.uuid for r in records] == jobs
    assert all(r.succeeded for r in records)
    # Already finished: at once, and in the order asked (repeats kept).
    assert [r.uuid for r in api_client.wait([jobs[1], quick, jobs[1]])] == \
        [jobs[1], quick, jobs[1]]


def test_wait_honours_its_timeout(api_client: HttpClient, gate: Path) -> None:
    job = api_client.submit(gated(gate, "gated")).uuid
    for timeout in (0.3, 1.5):
        started = time.monotonic()
        [record] = api_client.wait([job], timeout=timeout)
        took = time.monotonic() - started
        assert timeout <= took < timeout + 2, took
        assert not record.finished
    gate.touch()
    [record] = api_client.wait([job], timeout=30)
    assert record.state in FINAL_STATES and record.succeeded


def connections_to(server: ServerThread) -> int:
    """Established TCP connections from a client to the server (from /proc/net/tcp)."""
    port = int(server.url.rsplit(":", 1)[1])
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        remote_port, state = int(fields[2].split(":")[1], 16), fields[3]
        count += remote_port == port and state == "01"  # ESTABLISHED
    return count


def test_closing_a_client_that_waited_closes_its_event_stream(
        api_server: ServerThread, api_token: str) -> None:
    client = http_client(api_server, api_token)
    job = client.submit(JobSpec(command=("true",), **QUICK)).uuid
    assert client.wait([job], timeout=30)[0].finished
    client.close()
    wait_until(lambda: connections_to(api_server) == 0, timeout=3,
               what="the client's connections to close")


def test_a_job_tokens_stream_ends_once_the_job_ends(
        api_server: ServerThread, api_client: HttpClient,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # The server runs in this process: a short recheck instead of the 15 s one.
    monkeypatch.setattr(events_api, "TOKEN_RECHECK", 0.2)
    claim = api_client.start_own_job(JobSpec(command=("runner",)), this_worker())
    headers = {"Authorization": f"Bearer {claim.token}"}
    # Well under the 15 s heartbeat: a stream still open then fails the read.
    timeout = httpx.Timeout(8.0, connect=10)
    with httpx.stream("GET", f"{api_server.url}/api/v1/events/stream", headers=headers,
                      timeout=timeout) as response:
        assert response.status_code == 200
        lines = response.iter_lines()
        assert next(lines).startswith(": cwl-crunch")
        api_client.finish_job(claim.job.uuid, JobOutcome(JobState.COMPLETE, 0, None, None))
        ended_at = time.monotonic()
        rest = list(lines)  # ends when the server closes the stream
    assert time.monotonic() - ended_at < 5
    assert any(f'"job_uuid": "{claim.job.uuid}"' in line for line in rest)  # its own end
    with raw_http(api_server, claim.token) as http:
        error_body(http.get("/events/last"), 401)


# Small outputs ride along -------------------------------------------------------------
def test_a_final_event_carries_a_small_output_and_not_a_large_one(
        api_server: ServerThread, api_client: HttpClient, api_token: str) -> None:
    start = api_client.last_event_id()
    big = events_api.INLINE_OUTPUT_BYTES + 1
    small_job = api_client.submit(JobSpec(("sh", "-c", "echo said > out/said.txt"), **QUICK))
    big_job = api_client.submit(JobSpec(("sh", "-c", f"head -c {big} /dev/zero > out/big"),
                                        **QUICK))
    small, large = api_client.wait([small_job.uuid, big_job.uuid], timeout=30)
    ended = {e["job_uuid"]: e for e in read_stream(api_server, api_token, 100, after=start)
             if e["state"] == "Complete"}
    carried = ended[small.uuid]["output"]
    store = api_server.core.store
    # The manifest carried is the stored one, its locators signed for the stream's token.
    manifest = carried["manifest"].encode()
    assert strip_signatures(manifest) == store.manifest_text(small.output_pdh or "")
    [signed] = manifest_locators(manifest)
    assert server_signer(api_server).problem(signed, token_uuid_of(api_token)) is None
    [locator] = carried["blocks"]
    assert signed.startswith(locator + "+A")
    assert base64.b64decode(carried["blocks"][locator]) == b"said\n"
    assert "output" not in ended[large.uuid]
    assert ended[large.uuid]["record"]["output_pdh"] == large.output_pdh


def test_a_waiter_reads_a_small_output_without_asking_again(
        api_server: ServerThread, api_token: str) -> None:
    client = http_client(api_server, api_token)
    asked: list[str] = []
    client._transport.http.event_hooks["request"].append(
        lambda request: asked.append(request.url.path))
    job = client.submit(JobSpec(("sh", "-c", "echo said > out/said.txt"), **QUICK))
    [done] = client.wait([job.uuid], timeout=30)
    # wait() may have read the record itself (the follower had not seen the job yet);
    # the job's final event comes all the same, carrying the output.
    wait_until(lambda: client._cache.manifest(done.output_pdh or ""), what="the event")
    asked.clear()
    assert b"".join(client.read_file(done.output_pdh or "", "said.txt")) == b"said\n"
    assert [entry.path for entry in client.list_collection(done.output_pdh or "")] == [
        "said.txt"]
    assert asked == []
    client.close()


def test_a_carried_output_that_does_not_check_out_is_not_kept(
        api_server: ServerThread, api_token: str, tmp_path: Path) -> None:
    (tmp_path / "said.txt").write_text("said\n")
    pdh = api_server.core.put_paths([tmp_path / "said.txt"])  # nothing of it kept yet
    client = http_client(api_server, api_token)
    # The follower calls this with what a final event carried.
    client._keep_carried_output(pdh, {"manifest": "cwl-crunch-manifest 1\n", "blocks": {}})
    assert client._cache.manifest(pdh) is None  # another collection's manifest
    real = api_server.core.store.manifest_text(pdh).decode()
    [locator] = {loc for file in api_server.core.store.manifest(pdh).files()
                 for loc in file.locators}
    client._keep_carried_output(pdh, {"manifest": real, "blocks": {
        locator: base64.b64encode(b"lies\n").decode()}})
    assert client._cache.manifest(pdh) is not None
    assert client._cache.block(locator) is None  # bytes that are not the block's
    client.close()
