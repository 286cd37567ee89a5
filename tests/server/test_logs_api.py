"""GET /jobs/{uuid}/logs/{name}: a running job's log read live from the worker's files,
a finished job's from its log collection, offsets that carry over between the two; no
way out of the log directory; a job's token reads only its own subtree. And GET
/collections/{pdh}/files/{path}: one file as a download."""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_helpers import error_body, raw_http
from polling import wait_until

from cwl_crunch.client import JobOutcome, JobSpec
from cwl_crunch.server.serve import ServerThread
from cwl_crunch.worker.processes import this_worker


@pytest.fixture
def gate(tmp_path: Path, api_server: ServerThread) -> Iterator[Path]:
    """A file gated jobs wait for; made at the end at the latest, so no job is left
    running when the server closes."""
    path = tmp_path / "gate"
    yield path
    path.touch()


def gated(gate: Path, before: str, after: str) -> list[str]:
    """A command that prints ``before``, waits for the gate, then prints ``after``."""
    return ["sh", "-c", f"printf %s '{before}'; while [ ! -e '{gate}' ]; do sleep 0.02; done; "
                        f"printf %s '{after}'"]


def submit(server: ServerThread, command: list[str], **spec: Any) -> str:
    spec.setdefault("cores", 0.25)
    job = server.core.submit(JobSpec(tuple(command), reuse=False, **spec))
    return job.uuid


def finished(server: ServerThread, uuid: str) -> None:
    wait_until(lambda: server.core.get_job(uuid).finished, timeout=30, what=f"job {uuid} ends")


def read_log(http: httpx.Client, uuid: str, name: str, **params: int) -> dict[str, Any]:
    response = http.get(f"/jobs/{uuid}/logs/{name}", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_running_jobs_log_is_read_live_then_continues_from_the_log_collection(
        api_server, api_http, gate):
    uuid = submit(api_server, gated(gate, "before the gate\n", "after the gate\n"))
    first = wait_until(lambda: (body := read_log(api_http, uuid, "stdout.txt"))["text"]
                       and body, what="the first line, live")
    assert first["text"] == "before the gate\n"
    assert (first["source"], first["state"], first["final"]) == ("live", "Running", False)
    assert first["offset"] == len("before the gate\n")
    worker = read_log(api_http, uuid, "worker.txt")
    assert "running: sh -c" in worker["text"] and worker["source"] == "live"
    # Nothing new yet: the same offset back, still following.
    again = read_log(api_http, uuid, "stdout.txt", offset=first["offset"])
    assert (again["text"], again["offset"], again["final"]) == ("", first["offset"], False)

    gate.touch()
    finished(api_server, uuid)
    rest = read_log(api_http, uuid, "stdout.txt", offset=first["offset"])
    assert rest["text"] == "after the gate\n"
    assert (rest["source"], rest["state"], rest["final"]) == ("collection", "Complete", True)
    assert rest["offset"] == rest["size"] == len("before the gate\nafter the gate\n")
    # Really from the store: the worker removes the job's dir just after its end.
    wait_until(lambda: not (api_server.core.config.work / uuid).exists(), timeout=30,
               what=f"job {uuid}'s dir to be removed")


def test_a_redirected_stdout_is_followed_live_in_the_job_dir(api_server, api_http, gate):
    uuid = submit(api_server, gated(gate, "row 1\n", "row 2\n"), stdout="out/table.tsv")
    first = wait_until(lambda: (body := read_log(api_http, uuid, "stdout.txt"))["text"]
                       and body, what="the redirected stdout, live")
    assert (first["text"], first["source"]) == ("row 1\n", "live")
    gate.touch()
    finished(api_server, uuid)
    whole = read_log(api_http, uuid, "stdout.txt")
    assert (whole["text"], whole["source"], whole["final"]) == ("row 1\nrow 2\n",
                                                                "collection", True)


def test_finished_jobs_log_comes_in_pieces_that_never_cut_a_character(api_server, api_http):
    text = "line one\nzwei: ä\ndrei: €uro\n"
    uuid = submit(api_server, ["printf", "%s", text])
    finished(api_server, uuid)
    whole = read_log(api_http, uuid, "stdout.txt")
    assert (whole["text"], whole["source"], whole["final"]) == (text, "collection", True)
    assert whole["size"] == whole["offset"] == len(text.encode())
    for limit in (1, 2, 5):
        pieces, offset = [], 0
        while True:
            body = read_log(api_http, uuid, "stdout.txt", offset=offset, limit=limit)
            pieces.append(body["text"])
            if body["final"]:
                break
            assert body["offset"] > offset, body  # always progress, even with limit=1
            offset = body["offset"]
        assert "".join(pieces) == text
        assert all("\ufffd" not in piece for piece in pieces), pieces
    beyond = read_log(api_http, uuid, "stdout.txt", offset=10_000)
    assert (beyond["text"], beyond["offset"], beyond["final"]) == ("", 10_000, True)
    assert "exit code 0" in read_log(api_http, uuid, "worker.txt")["text"]
    assert read_log(api_http, uuid, "stderr.txt")["text"] == ""


def test_a_queued_jobs_log_is_empty_and_not_final(api_server, api_http, gate):
    # The blocker takes every core of the dispatcher, so the next job stays Queued.
    cores = api_server.core.dispatcher.capacity.cores
    blocker = submit(api_server, gated(gate, "", ""), cores=cores)
    wait_until(lambda: api_server.core.get_job(blocker).state == "Running", what="blocker runs")
    waiting = api_server.core.submit(JobSpec(("true",), cores=0.25, reuse=False)).uuid
    body = read_log(api_http, waiting, "stdout.txt")
    assert (body["text"], body["source"], body["final"], body["state"]) == (
        "", "none", False, "Queued")
    api_server.core.cancel(waiting)
    done = read_log(api_http, waiting, "stdout.txt")
    assert (done["source"], done["final"], done["state"]) == ("none", True, "Cancelled")


@pytest.mark.parametrize("name", [
    "..%2F..%2Fsecret.txt", "..%2Fsecret.txt", "%2E%2E", "secret.txt", "config.toml",
    "worker.txt%2F..%2F..%2Fsecret.txt", "worker.txt%00", "%2E", "worker.txt%2F..",
])
def test_a_log_name_cannot_leave_the_log_dir(api_server, api_http, name, gate):
    uuid = submit(api_server, gated(gate, "", ""))
    wait_until(lambda: read_log(api_http, uuid, "worker.txt")["text"], what="job started")
    work = api_server.core.config.work
    for secret in (work / "secret.txt", work / uuid / "secret.txt", work / uuid / "logs.txt"):
        secret.write_text("SECRET")
    response = api_http.get(f"/jobs/{uuid}/logs/{name}")
    assert response.status_code in (400, 404), response.text
    assert "SECRET" not in response.text


def test_a_job_cannot_show_other_files_through_a_symlink_in_its_log(api_server, api_http,
                                                                      tmp_path, gate):
    secret = tmp_path / "secret.txt"
    secret.write_text("SECRET")
    # The job swaps its stdout file for a link to a file outside its directory.
    uuid = submit(api_server, ["sh", "-c", f"rm out/o.txt; ln -s '{secret}' out/o.txt; "
                                           f"echo linked >&2; while [ ! -e '{gate}' ]; do "
                                           "sleep 0.02; done"], stdout="out/o.txt")
    wait_until(lambda: read_log(api_http, uuid, "stderr.txt")["text"], what="the link made")
    body = read_log(api_http, uuid, "stdout.txt")
    assert "SECRET" not in body["text"]
    assert body["source"] != "live"


def test_a_jobs_token_reads_only_the_logs_of_its_own_subtree(api_server, api_http):
    core = api_server.core
    runs = [core.start_own_job(JobSpec((f"runner-{n}",), name=n), this_worker())
            for n in ("a", "b")]
    (a, b) = runs
    try:
        with raw_http(api_server, a.token) as as_a, raw_http(api_server, b.token) as as_b:
            created = as_a.post("/jobs", json={"command": ["sh", "-c", "echo child of a"],
                                               "name": "child", "cores": 0.25})
            assert created.status_code == 201, created.text
            child = created.json()["uuid"]
            assert core.get_job(child).parent_uuid == a.job.uuid
            finished(api_server, child)
            assert read_log(as_a, child, "stdout.txt")["text"] == "child of a\n"
            assert read_log(as_a, a.job.uuid, "worker.txt")["source"] == "none"
            assert read_log(api_http, child, "stdout.txt")["text"] == "child of a\n"
            error_body(as_b.get(f"/jobs/{child}/logs/stdout.txt"), 403)
            error_body(as_b.get(f"/jobs/{a.job.uuid}/logs/worker.txt"), 403)
            error_body(as_a.get(f"/jobs/{b.job.uuid}/logs/worker.txt"), 403)
            output = core.get_job(child).log_pdh
            error_body(as_b.get(f"/collections/{output}/files/stdout.txt"), 403)
            assert as_a.get(f"/collections/{output}/files/stdout.txt").text == "child of a\n"
        with raw_http(api_server, None) as anonymous:
            error_body(anonymous.get(f"/jobs/{child}/logs/stdout.txt"), 401)
        error_body(api_http.get("/jobs/local-job-000000000000000/logs/stdout.txt"), 404)
    finally:
        for run in runs:
            core.finish_job(run.job.uuid, JobOutcome("Complete", 0, None, None))


def test_download_streams_one_file_under_its_name(api_server, api_http):
    uuid = submit(api_server, ["sh", "-c", "mkdir -p out/sub && printf 'a\\tb\\n' > "
                                           "'out/sub/tab le ä.tsv' && seq 1 50000 > out/n.txt"])
    finished(api_server, uuid)
    pdh = api_server.core.get_job(uuid).output_pdh
    response = api_http.get(f"/collections/{pdh}/files/sub/{urllib.parse.quote('tab le ä.tsv')}")
    assert response.status_code == 200, response.text
    assert response.content == b"a\tb\n"
    assert response.headers["content-length"] == "4"
    assert response.headers["content-type"] == "application/octet-stream"
    disposition = response.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="tab le _.tsv"'), disposition
    assert "filename*=UTF-8''tab%20le%20%C3%A4.tsv" in disposition
    assert response.headers["x-content-type-options"] == "nosniff"
    numbers = api_http.get(f"/collections/{pdh}/files/n.txt")
    assert numbers.text == "".join(f"{n}\n" for n in range(1, 50_001))
    error_body(api_http.get(f"/collections/{pdh}/files/sub"), 404)  # a directory
    error_body(api_http.get(f"/collections/{pdh}/files/missing.txt"), 404)
    error_body(api_http.get(f"/collections/{pdh}/files/sub/%2E%2E/%2E%2E/n.txt"), 404)
    other = "0" * 64 + "+1"
    assert api_http.get(f"/collections/{other}/files/n.txt").status_code in (400, 404)
    assert api_http.get("/collections/not-a-pdh/files/n.txt").status_code in (400, 404)
