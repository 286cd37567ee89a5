"""Requests the API must refuse: malformed or mistyped JSON, unknown fields, bodies too
large, blocks that are not what their locator says, bad locators and PDHs, paths that
would climb out of a collection or a job directory, jobs that do not exist.

Each refusal is a 4xx whose body is JSON ``{"error", "detail"}``, and leaves nothing
behind: no job record, no block or manifest in the store.
"""

from __future__ import annotations

import hashlib
import json
import socket
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_helpers import (
    api_config,
    error_body,
    job_count,
    raw_http,
    signed_for,
    store_files,
)

from cwl_crunch.client.http import HttpClient
from cwl_crunch.errors import PathNotFound
from cwl_crunch.server.app import MAX_JSON_BODY
from cwl_crunch.server.serve import ServerThread
from cwl_crunch.store import locator_for

NO_SUCH_JOB = "local-job-000000000000000"
HEADER = "cwl-crunch-manifest 1\n"


@pytest.fixture
def unchanged(api_server: ServerThread) -> Iterator[None]:
    """The test leaves no job record and no stored block or manifest behind."""
    jobs, files = job_count(api_server), store_files(api_server)
    yield
    assert job_count(api_server) == jobs
    assert store_files(api_server) == files


def raw_request(server: ServerThread, head: str) -> tuple[int, dict[str, Any]]:
    """Send a request head (and no body) on a socket of its own: (status, JSON body)."""
    port = int(server.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head.replace("\n", "\r\n").encode() + b"\r\n")
        answer = b""
        while b"\r\n\r\n" not in answer or len(answer.split(b"\r\n\r\n", 1)[1]) < \
                int(_header(answer, b"content-length") or 0):
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    status = int(answer.split(b" ", 2)[1])
    assert _header(answer, b"content-type") == b"application/json", answer
    return status, json.loads(answer.split(b"\r\n\r\n", 1)[1])


def _header(answer: bytes, name: bytes) -> bytes | None:
    for line in answer.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == name:
            return value.strip()
    return None


# Job bodies -------------------------------------------------------------------------
@pytest.mark.parametrize("body", [b'{"command": ["true"', b"not json", b"",
                                  b'{"command": ["true"]} trailing', b"\xff\xfe"])
def test_malformed_json_is_refused(api_http: httpx.Client, unchanged: None,
                                   body: bytes) -> None:
    for path in ("/jobs", "/jobs/own", f"/jobs/{NO_SUCH_JOB}/finish", "/blocks/missing"):
        response = api_http.post(path, content=body,
                                 headers={"Content-Type": "application/json"})
        found = error_body(response, 422)
        assert found["error"] == ("SubmitError" if path.startswith("/jobs/own") or
                                  path == "/jobs" else "RequestValidationError")


WRONG = [
    ({"command": ["true"], "cores": "many"}, "cores"),
    ({"command": ["true"], "cores": True}, "cores"),
    ({"command": ["true"], "ram": 1.5}, "ram"),
    ({"command": ["true"], "ram": "1G"}, "ram"),
    ({"command": ["true"], "ram": 1 << 64}, "ram"),
    ({"command": ["true"], "priority": -(1 << 63) - 1}, "priority"),
    ({"command": ["true"], "time_limit": "soon"}, "time_limit"),
    ({"command": "true"}, "command"),
    ({"command": [1, 2]}, "command"),
    ({"command": []}, "command"),
    ({}, "command"),
    ({"command": ["true"], "reuse": "yes"}, "reuse"),
    ({"command": ["true"], "environment": {"A": 1}}, "environment"),
    ({"command": ["true"], "environment": ["A=1"]}, "environment"),
    ({"command": ["true"], "mounts": {"in": {"kind": "tape"}}}, "mounts"),
    ({"command": ["true"], "mounts": {"in": {"kind": "collection"}}}, "pdh"),
    ({"command": ["true"], "mounts": {"in": "a string"}}, "mounts"),
    ({"command": ["true"], "properties": {"k": None}}, "properties"),
    ([["command", ["true"]]], "body"),
]


@pytest.mark.parametrize(("body", "field"), WRONG, ids=[f for _, f in WRONG])
def test_wrong_types_are_refused_naming_the_field(api_http: httpx.Client, unchanged: None,
                                                  body: Any, field: str) -> None:
    found = error_body(api_http.post("/jobs", json=body), 422)
    assert found["error"] == "SubmitError" and field in found["detail"], found
    own = error_body(api_http.post("/jobs/own", json={
        "spec": body, "worker": {"host": "h", "pid": 1, "pid_start": 1}}), 422)
    assert field in own["detail"] or "spec" in own["detail"], own


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity"])
def test_numbers_json_cannot_say_are_refused(api_http: httpx.Client, unchanged: None,
                                             number: str) -> None:
    """Python's parser takes them; a record holding one could not be sent back."""
    for field in ("cores", "time_limit"):
        text = f'{{"command": ["true"], "reuse": false, "{field}": {number}}}'
        found = error_body(api_http.post("/jobs", content=text,
                                         headers={"Content-Type": "application/json"}), 422)
        assert field in found["detail"]


@pytest.mark.parametrize(("body", "field"), [
    ({"command": ["true"], "cores": -1}, "cores"),
    ({"command": ["true"], "cores": 1e9}, "cores"),
    ({"command": ["true"], "ram": 0}, "ram"),
    ({"command": [""]}, "command"),
    ({"command": ["true"], "environment": {"A=B": "1"}}, "environment"),
    ({"command": ["true"], "image": " debian"}, "image"),
])
def test_specs_that_can_never_run_are_refused(api_http: httpx.Client, unchanged: None,
                                              body: dict[str, Any], field: str) -> None:
    found = error_body(api_http.post("/jobs", json=body), 400)
    assert found["error"] == "SubmitError" and field in found["detail"], found


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/jobs", {"command": ["true"], "colour": "red"}, "colour"),
    ("/jobs", {"command": ["true"], "mounts": {"in": {"kind": "literal", "content": "x",
                                                      "mode": "0644"}}}, "mode"),
    ("/jobs/own", {"spec": {"command": ["x"]}, "worker": {"host": "h", "pid": 1,
                                                          "pid_start": 1, "uid": 0}}, "uid"),
    ("/jobs/own", {"spec": {"command": ["x"]}, "worker": {"host": "h", "pid": 1,
                                                          "pid_start": 1}, "x": 1}, "x"),
    (f"/jobs/{NO_SUCH_JOB}/finish", {"state": "Complete", "exit_code": 0, "output_pdh": None,
                                     "log_pdh": None, "note": "hi"}, "note"),
    (f"/jobs/{NO_SUCH_JOB}/process", {"pgid": 1, "pgid_start": 1, "pid": 2}, "pid"),
    ("/blocks/missing", {"locators": [], "more": True}, "more"),
])
def test_unknown_fields_are_refused_by_name(api_http: httpx.Client, unchanged: None,
                                            path: str, body: Any, field: str) -> None:
    found = error_body(api_http.post(path, json=body), 422)
    assert field in found["detail"], found


# Sizes ------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/api/v1/jobs", "/api/v1/jobs/own", "/api/v1/blocks/missing",
                                  f"/api/v1/jobs/{NO_SUCH_JOB}/finish"])
def test_a_json_body_declared_larger_than_the_limit_is_refused_unread(
        api_server: ServerThread, api_token: str, unchanged: None, path: str) -> None:
    status, body = raw_request(api_server, (
        f"POST {path} HTTP/1.1\nHost: test\nAuthorization: Bearer {api_token}\n"
        f"Content-Type: application/json\nContent-Length: {MAX_JSON_BODY + 1}\n"))
    assert status == 413 and body["error"] and str(MAX_JSON_BODY) in body["detail"], body


def test_a_json_body_just_under_the_limit_is_read(api_http: httpx.Client,
                                                  unchanged: None) -> None:
    body = json.dumps({"command": ["true"], "colour": "x" * (MAX_JSON_BODY - 100)})
    assert len(body) <= MAX_JSON_BODY
    answer = api_http.post("/jobs", content=body, headers={"Content-Type": "application/json"})
    assert "colour" in error_body(answer, 422)["detail"]


def test_blocks_must_be_what_their_locator_says(api_server: ServerThread,
                                                api_http: httpx.Client,
                                                unchanged: None) -> None:
    data = b"the block's real content\n"
    locator = locator_for(data)
    octets = {"Content-Type": "application/octet-stream"}
    longer = error_body(api_http.put(f"/blocks/{locator}", content=data + b"!",
                                     headers=octets), 400)
    assert "longer" in longer["detail"]
    # Much longer, streamed: refused once it passes the length, not read to the end.
    def endless() -> Iterator[bytes]:
        for _ in range(64):
            yield b"x" * (1 << 20)
    error_body(api_http.put(f"/blocks/{locator}", content=endless(), headers=octets), 400)
    for wrong in (data[:-1], data.upper(), b""):
        found = error_body(api_http.put(f"/blocks/{locator}", content=wrong,
                                        headers=octets), 400)
        assert "hashes to" in found["detail"]
    assert api_server.core.store.missing_blocks([locator]) == [locator]
    # Larger than any block the store keeps: refused before reading.
    size = api_server.core.store.block_size + 1
    huge = f"{hashlib.sha256(b'').hexdigest()}+{size}"
    assert "larger" in error_body(api_http.put(f"/blocks/{huge}", content=b"x",
                                               headers=octets), 413)["detail"]


def test_a_manifest_naming_blocks_the_server_lacks_is_refused(
        api_server: ServerThread, api_token: str, api_http: httpx.Client,
        unchanged: None) -> None:
    locator = locator_for(b"never uploaded")
    # Named bare, it is refused as unproven (before the store is asked: whether the
    # server has a block is not told to a token that cannot prove it may use it).
    text = f"{HEADER}f a.txt - 14 {locator}\n"
    found = error_body(api_http.post("/collections", content=text), 403)
    assert locator in found["detail"]
    # Signed for this token, the store is asked, and lacks it.
    text = f"{HEADER}f a.txt - 14 {signed_for(api_server, locator, api_token)}\n"
    found = error_body(api_http.post("/collections", content=text), 400)
    assert locator in found["detail"]


# Locators, PDHs, paths --------------------------------------------------------------
BAD_HASHES = ["nothex", "A" * 64 + "+3", "a" * 64 + "+0", "a" * 64 + "+03", "a" * 63 + "+3",
              "a" * 64 + "+-3", "a" * 64, "a" * 64 + "+3+hint", "a" * 64 + "+3 "]


@pytest.mark.parametrize("bad", BAD_HASHES)
def test_bad_locators_and_pdhs_are_refused(api_server: ServerThread, api_client: HttpClient,
                                           api_http: httpx.Client, tmp_path: Path,
                                           bad: str) -> None:
    (tmp_path / "f").write_text("content\n")
    pdh = api_client.put_paths([tmp_path / "f"])
    block = locator_for(b"content\n")
    jobs, files = job_count(api_server), store_files(api_server)
    quoted = urllib.parse.quote(bad, safe="+")
    for response in (api_http.get(f"/collections/{quoted}"),
                     api_http.get(f"/collections/{quoted}/entries"),
                     api_http.get(f"/collections/{quoted}/manifest"),
                     api_http.get(f"/collections/{quoted}/blocks/{block}"),
                     api_http.get(f"/collections/{pdh}/blocks/{quoted}"),
                     api_http.put(f"/blocks/{quoted}", content=b"content\n"),
                     api_http.post("/blocks/missing", json={"locators": [block, bad]})):
        found = error_body(response, 400)
        assert found["error"] == "InvalidManifest" and "expected" in found["detail"], found
    mount = {"command": ["true"], "mounts": {"in": {"kind": "collection", "pdh": bad}}}
    assert error_body(api_http.post("/jobs", json=mount), 400)["error"] == "SubmitError"
    assert (job_count(api_server), store_files(api_server)) == (jobs, files)


TRAVERSALS = ["..", "../etc", "a/../../etc", "%2e%2e", "%2e%2e/etc", "%2E%2E%2Fetc",
              "/etc/passwd", "/..", "a/b/../../..", "%00"]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_collection_paths_cannot_climb_out(api_server: ServerThread, api_client: HttpClient,
                                           api_http: httpx.Client, tmp_path: Path,
                                           path: str) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "b").write_text("b\n")
    pdh = api_client.put_paths([tmp_path / "a"])
    files = store_files(api_server)
    # In the URL as written here: the server decodes %2e, %2F and %00 itself.
    response = api_http.get(f"/collections/{pdh}/entries?path={path}")
    found = error_body(response, 404)
    assert found["error"] == "PathNotFound" and pdh in found["detail"], found
    with pytest.raises(PathNotFound):
        api_client.list_collection(pdh, urllib.parse.unquote(path))
    with pytest.raises(PathNotFound):
        b"".join(api_client.read_file(pdh, urllib.parse.unquote(path)))
    assert store_files(api_server) == files


JOB_PATHS = ["../x", "/etc", "a/../../x", "..", "/"]


@pytest.mark.parametrize("where", ["output_path", "cwd", "stdin", "stdout", "stderr",
                                   "mount target", "mount path"])
def test_job_paths_cannot_climb_out_of_the_job_directory(
        api_server: ServerThread, api_client: HttpClient, api_http: httpx.Client,
        tmp_path: Path, where: str) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "b").write_text("b\n")
    pdh = api_client.put_paths([tmp_path / "a"])
    jobs = job_count(api_server)
    for path in JOB_PATHS:
        if where == "mount target":
            job: dict[str, Any] = {"mounts": {path: {"kind": "literal", "content": "x"}}}
        elif where == "mount path":
            job = {"mounts": {"in": {"kind": "collection", "pdh": pdh, "path": path}}}
        else:
            job = {where: path}
        found = error_body(api_http.post("/jobs", json={"command": ["true"], **job}), 400)
        assert found["error"] == "SubmitError", found
    assert job_count(api_server) == jobs


@pytest.mark.parametrize("name", ["../x", "/abs", "a/../b", "%2E%2E/x", "%2e%2e/x", "a/./b",
                                  "a//b", ".", "a/"])
def test_a_manifest_cannot_name_a_path_that_climbs_out(api_server: ServerThread,
                                                       api_client: HttpClient,
                                                       api_http: httpx.Client, tmp_path: Path,
                                                       name: str) -> None:
    (tmp_path / "f").write_text("content\n")
    api_client.put_paths([tmp_path / "f"])  # its block is on the server
    files = store_files(api_server)
    text = f"{HEADER}f {name} - 8 {locator_for(b'content' + chr(10).encode())}\n"
    found = error_body(api_http.post("/collections", content=text), 400)
    assert found["error"] == "InvalidManifest"
    assert store_files(api_server) == files


# Jobs that do not exist ------------------------------------------------------------
def test_unknown_jobs_are_404(api_http: httpx.Client, unchanged: None) -> None:
    worker = {"host": "h", "pid": 1, "pid_start": 1}
    outcome = {"state": "Complete", "exit_code": 0, "output_pdh": None, "log_pdh": None}
    for response in (api_http.get(f"/jobs/{NO_SUCH_JOB}"),
                     api_http.get("/jobs", params={"uuid": [NO_SUCH_JOB]}),
                     api_http.post(f"/jobs/{NO_SUCH_JOB}/cancel"),
                     api_http.post(f"/jobs/{NO_SUCH_JOB}/claim", json=worker),
                     api_http.post(f"/jobs/{NO_SUCH_JOB}/process",
                                   json={"pgid": 1, "pgid_start": 1}),
                     api_http.post(f"/jobs/{NO_SUCH_JOB}/finish", json=outcome),
                     api_http.get("/jobs/..%2F..%2Fetc%2Fpasswd")):
        found = error_body(response, 404)
        assert found["error"] in ("JobNotFound", "HTTPError"), found


def test_unknown_routes_and_methods_answer_json_too(api_http: httpx.Client) -> None:
    assert error_body(api_http.get("/no/such/route"), 404)["error"] == "HTTPError"
    assert error_body(api_http.delete("/jobs"), 405)["error"] == "HTTPError"


# What the records database could not store ------------------------------------------
@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def either_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServerThread]:
    """A server on each records database (PostgreSQL refuses more: NUL in text, numbers
    wider than a column); room for a 1 TiB job."""
    url = "" if request.param == "sqlite" else request.getfixturevalue("postgres_fresh_url")
    with ServerThread(api_config(tmp_path / "home", database_url=url,
                                 max_ram=1 << 41)) as server:
        yield server


UNSTORABLE = ["a\x00b", "\ud800"]  # NUL; a lone surrogate (valid JSON: "\ud800")


@pytest.mark.parametrize("text", UNSTORABLE, ids=["nul", "surrogate"])
def test_text_no_database_can_store_is_refused(either_server: ServerThread,
                                               text: str) -> None:
    token = either_server.create_token()
    jobs = job_count(either_server)
    worker = {"host": "elsewhere", "pid": 1, "pid_start": 1}
    outcome = {"state": "Complete", "exit_code": 0, "output_pdh": None, "log_pdh": None}
    bodies: list[tuple[str, Any]] = [
        ("/jobs", {"command": ["true"], "name": text}),
        ("/jobs", {"command": ["true", text]}),
        ("/jobs", {"command": ["true"], "environment": {"A": text}}),
        ("/jobs", {"command": ["true"], "environment": {text: "1"}}),
        ("/jobs", {"command": ["true"], "properties": {"k": text}}),
        ("/jobs", {"command": ["true"], "mounts": {text: {"kind": "literal", "content": ""}}}),
        ("/jobs", {"command": ["true"], "stdout": text}),
        ("/jobs/own", {"spec": {"command": ["x"]}, "worker": {**worker, "host": text}}),
        (f"/jobs/{NO_SUCH_JOB}/finish", {**outcome, "failure_reason": text}),
        (f"/jobs/{NO_SUCH_JOB}/finish", {**outcome, "output_pdh": text}),
        ("/blocks/missing", {"locators": [text]}),
    ]
    with raw_http(either_server, token) as http:
        for path, body in bodies:
            content = json.dumps(body)  # escapes both: the server's parser makes them again
            found = error_body(http.post(path, content=content,
                                         headers={"Content-Type": "application/json"}), 422)
            assert "NUL" in found["detail"] or "surrogate" in found["detail"], found
        if text == "a\x00b":
            for response in (http.get("/jobs/a%00b"), http.post("/jobs/a%00b/cancel"),
                             http.get("/jobs", params={"uuid": [NO_SUCH_JOB, text]}),
                             http.get("/jobs", params={"parent": text}),
                             http.get("/jobs", params={"state": ["Queued", text]})):
                error_body(response, 422)
        # A literal file may hold any Unicode, NUL too; not a lone surrogate.
        literal = {"command": ["true"], "reuse": False,
                   "mounts": {"f": {"kind": "literal", "content": text}}}
        answer = http.post("/jobs", content=json.dumps(literal),
                           headers={"Content-Type": "application/json"})
        if text == "\ud800":
            error_body(answer, 422)
            assert job_count(either_server) == jobs
        else:
            assert answer.status_code == 201, answer.text
            assert answer.json()["spec"]["mounts"]["f"]["content"] == text


def test_the_widest_numbers_the_api_takes_are_stored(either_server: ServerThread) -> None:
    """Every bound the API documents is one the database holds: at the bound, stored and
    read back; past it, a 422 (not a 500 from the database)."""
    int32, int64 = (1 << 31) - 1, (1 << 63) - 1
    with raw_http(either_server, either_server.create_token()) as http:
        job = http.post("/jobs", json={"command": ["true", "wide"], "ram": 1 << 40,
                                       "priority": int32, "reuse": False})
        assert job.status_code == 201, job.text
        stored = http.get(f"/jobs/{job.json()['uuid']}").json()["spec"]
        assert (stored["ram"], stored["priority"]) == (1 << 40, int32)
        own = http.post("/jobs/own", json={
            "spec": {"command": ["runner"], "priority": -int32 - 1},
            "worker": {"host": "elsewhere", "pid": int32, "pid_start": int64}})
        assert own.status_code == 201, own.text
        uuid = own.json()["job"]["uuid"]
        assert http.post(f"/jobs/{uuid}/process",
                         json={"pgid": int32, "pgid_start": int64}).status_code == 200
        done = http.post(f"/jobs/{uuid}/finish", json={
            "state": "Failed", "exit_code": -int32 - 1, "output_pdh": None, "log_pdh": None})
        assert done.status_code == 200 and done.json()["exit_code"] == -int32 - 1, done.text
        jobs = job_count(either_server)
        for path, body in (
                ("/jobs", {"command": ["true"], "priority": int32 + 1}),
                ("/jobs", {"command": ["true"], "ram": int64 + 1}),
                ("/jobs/own", {"spec": {"command": ["x"]},
                               "worker": {"host": "h", "pid": int32 + 1, "pid_start": 1}}),
                ("/jobs/own", {"spec": {"command": ["x"]},
                               "worker": {"host": "h", "pid": 1, "pid_start": int64 + 1}}),
                (f"/jobs/{uuid}/process", {"pgid": int32 + 1, "pgid_start": 1}),
                (f"/jobs/{uuid}/finish", {"state": "Failed", "exit_code": int32 + 1,
                                          "output_pdh": None, "log_pdh": None})):
            error_body(http.post(path, json=body), 422)
        assert job_count(either_server) == jobs
        # Event ids: any 64-bit ``after`` is an answer (none after it), not a 500.
        for after in (int32, int32 + 1, int64):
            polled = http.get("/events", params={"after": after})
            assert polled.status_code == 200, polled.text
            assert polled.json() == {"events": [], "last": after}
            with http.stream("GET", "/events/stream",
                             headers={"Last-Event-ID": str(after)}) as streamed:
                assert streamed.status_code == 200
                assert next(streamed.iter_lines()).startswith(":")


@pytest.mark.parametrize("path", ["/api/v1/jobs", "/api/v1/blocks/missing"])
def test_a_json_body_sent_in_chunks_past_the_limit_is_refused(
        api_http: httpx.Client, unchanged: None, path: str) -> None:
    sent = 0

    def chunks() -> Iterator[bytes]:  # no Content-Length: chunked transfer encoding
        nonlocal sent
        yield b'{"command": ["true"], "colour": "'
        while sent < 4 * MAX_JSON_BODY:
            sent += 1 << 20
            yield b"x" * (1 << 20)
        yield b'"}'

    answer = api_http.post(path.removeprefix("/api/v1"), content=chunks(),
                           headers={"Content-Type": "application/json"})
    found = error_body(answer, 413)
    assert str(MAX_JSON_BODY) in found["detail"], found
