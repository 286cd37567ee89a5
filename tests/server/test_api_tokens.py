"""Tokens over HTTP: no request without a valid one, and what a job's token may reach.

A person's token reaches everything. A job's token (a claim's, or the one a job finds in
its environment) reaches its own job and the jobs below it, the collections those were
given or made and what it uploaded itself; its submissions become its job's children;
it ends with its job.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_helpers import error_body, http_client, job_count, raw_http
from polling import wait_until
from sqlalchemy import select

import cwl_crunch
from cwl_crunch.client.http import HttpClient
from cwl_crunch.errors import ApiError, TokenError
from cwl_crunch.model import CollectionMount, JobOutcome, JobSpec
from cwl_crunch.records.tokens import TOKENS
from cwl_crunch.server.serve import ServerThread
from cwl_crunch.worker.processes import this_worker

NO_SUCH_PDH = "0" * 64 + "+1"
PLACEHOLDERS = {"uuid": "local-job-000000000000000", "pdh": NO_SUCH_PDH,
                "locator": NO_SUCH_PDH}


def operations(server: ServerThread) -> list[tuple[str, str]]:
    """(method, path) of every /api/v1 operation the API documents, placeholders filled."""
    paths = httpx.get(f"{server.url}/openapi.json").json()["paths"]
    return sorted((method.upper(), re.sub(r"\{(\w+)\}",
                                          lambda m: PLACEHOLDERS.get(m[1], "x"), path))
                  for path, item in paths.items() if path.startswith("/api/v1/")
                  for method in item)


def revoked_token(client: HttpClient) -> str:
    claim = client.start_own_job(JobSpec(command=("finished-runner",)), this_worker())
    client.finish_job(claim.job.uuid, JobOutcome("Complete", 0, None, None))
    return claim.token


# No valid token, no answer ---------------------------------------------------------
@pytest.mark.parametrize("kind", ["missing", "not bearer", "malformed", "unknown", "revoked"])
def test_every_operation_but_cluster_refuses_a_request_without_a_valid_token(
        api_server: ServerThread, api_client: HttpClient, kind: str) -> None:
    headers = {
        "missing": {},
        "not bearer": {"Authorization": "Basic dXNlcjpwYXNz"},
        "malformed": {"Authorization": "Bearer not-a-token"},
        "unknown": {"Authorization": "Bearer crunch/local-tok-000000000000000/secret"},
        "revoked": {"Authorization": f"Bearer {revoked_token(api_client)}"},
    }[kind]
    found = operations(api_server)
    assert len(found) >= 19
    jobs_before = job_count(api_server)
    with raw_http(api_server, None) as http:
        for method, path in found:
            if path.startswith("/api/v1/cluster"):
                assert http.request(method, path.removeprefix("/api/v1"),
                                    headers=headers).status_code == 200
                continue
            response = http.request(method, path.removeprefix("/api/v1"), headers=headers,
                                    json={}, timeout=10)
            body = error_body(response, 401)
            assert response.headers["www-authenticate"] == "Bearer", (method, path)
            if kind == "revoked":
                assert "revoked" in body["detail"]
    assert job_count(api_server) == jobs_before


def test_a_client_with_a_bad_token_connects_but_is_refused(api_server: ServerThread) -> None:
    bad = http_client(api_server, "crunch/local-tok-000000000000000/x")  # /cluster: no token
    with pytest.raises(TokenError, match=r"^unknown API token"):
        bad.list_jobs(cwl_crunch.client.JobFilter())
    bad.close()


# A job's token ------------------------------------------------------------------------
class Family:
    """A person, a runner job (started by the person, given one collection) with its
    token, a collection the person kept to themselves, and another top-level job."""

    def __init__(self, server: ServerThread, person: HttpClient, tmp_path: Path) -> None:
        self.server, self.person = server, person
        self.given = person.put_paths([write(tmp_path / "given.txt", "for the runner\n")])
        self.secret = person.put_paths([write(tmp_path / "secret.txt", "person only\n")])
        claim = person.start_own_job(
            JobSpec(command=("runner",), mounts={"in": CollectionMount(self.given)}),
            this_worker())
        self.runner, self.token = claim.job.uuid, claim.token
        self.other = person.submit(JobSpec(command=("true",), name="other", reuse=False)).uuid
        self.client = http_client(server, self.token)
        self.http = raw_http(server, self.token)

    def close(self) -> None:
        self.client.close()
        self.http.close()


@pytest.fixture
def family(api_server: ServerThread, api_client: HttpClient, tmp_path: Path) -> Iterator[Family]:
    made = Family(api_server, api_client, tmp_path)
    yield made
    made.close()


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def first_block(server: ServerThread, pdh: str) -> str:
    return next(server.core.store.manifest(pdh).files()).locators[0]


def test_a_job_tokens_submissions_become_its_jobs_children(family: Family) -> None:
    assert family.client.caller_job() == family.runner
    child = family.client.submit(JobSpec(command=("true",), name="child", reuse=False))
    assert child.parent_uuid == family.runner
    assert family.person.get_job(child.uuid).parent_uuid == family.runner
    own = family.client.start_own_job(JobSpec(command=("sub-runner",)), this_worker())
    assert own.job.parent_uuid == family.runner and own.job.state == "Running"
    # The parent comes from the token only: a body naming one is refused, nothing made.
    before = job_count(family.server)
    body = error_body(family.http.post("/jobs", json={"command": ["true"],
                                                      "parent_uuid": family.other}), 422)
    assert body["error"] == "SubmitError" and "parent_uuid" in body["detail"]
    with raw_http(family.server, family.person.config.api_token) as person:
        error_body(person.post("/jobs", json={"command": ["true"],
                                              "parent_uuid": family.runner}), 422)
        error_body(person.post("/jobs/own", json={
            "spec": {"command": ["x"], "parent_uuid": family.runner},
            "worker": {"host": "h", "pid": 1, "pid_start": 1}}), 422)
    assert job_count(family.server) == before


def test_a_job_token_reads_its_own_job_and_descendants_only(family: Family) -> None:
    child = family.client.start_own_job(JobSpec(command=("sub-runner",)), this_worker())
    with http_client(family.server, child.token) as child_client:
        grandchild = child_client.submit(JobSpec(command=("true",), name="g", reuse=False))
        assert grandchild.parent_uuid == child.job.uuid
        # Up the tree, the child's token sees nothing: not even its parent.
        with raw_http(family.server, child.token) as child_http:
            error_body(child_http.get(f"/jobs/{family.runner}"), 403)
    assert family.client.get_job(family.runner).uuid == family.runner
    assert family.client.get_job(child.job.uuid).parent_uuid == family.runner
    assert family.client.get_job(grandchild.uuid).parent_uuid == child.job.uuid
    assert [r.uuid for r in family.client.get_jobs([grandchild.uuid, family.runner])] == \
        [grandchild.uuid, family.runner]
    listed = family.client.list_jobs(cwl_crunch.client.JobFilter(parent_uuid=family.runner))
    assert [r.uuid for r in listed] == [child.job.uuid]
    for refused in (family.http.get(f"/jobs/{family.other}"),
                    family.http.get("/jobs", params={"uuid": [family.runner, family.other]}),
                    family.http.post(f"/jobs/{family.other}/cancel"),
                    family.http.get("/jobs", params={"parent": family.other}),
                    family.http.get("/jobs", params={"top_level": True}),
                    family.http.get("/jobs", params={"top_level": True,
                                                     "parent": family.runner}),
                    family.http.get("/jobs")):
        error_body(refused, 403)
    assert family.person.get_job(family.other).state != "Cancelled"
    # Still a 404 for what does not exist, not a 403.
    error_body(family.http.get("/jobs/local-job-000000000000000"), 404)


def collection_answers(http: httpx.Client, pdh: str, locator: str) -> list[httpx.Response]:
    return [http.get(f"/collections/{pdh}"), http.get(f"/collections/{pdh}/entries"),
            http.get(f"/collections/{pdh}/manifest"),
            http.get(f"/collections/{pdh}/blocks/{locator}")]


def test_a_job_token_reads_what_it_was_given_made_or_uploaded_only(
        family: Family, tmp_path: Path) -> None:
    given_block = first_block(family.server, family.given)
    assert [r.status_code for r in collection_answers(family.http, family.given,
                                                      given_block)] == [200] * 4
    assert b"".join(family.client.read_file(family.given, "given.txt")) == b"for the runner\n"
    secret_block = first_block(family.server, family.secret)
    for response in collection_answers(family.http, family.secret, secret_block):
        body = error_body(response, 403)
        assert family.secret in body["detail"]
        assert "person only" not in response.text
    # Not through another collection's block route either.
    error_body(family.http.get(f"/collections/{family.given}/blocks/{secret_block}"), 404)
    # Its own upload.
    mine = family.client.put_paths([write(tmp_path / "mine.txt", "uploaded by the job\n")])
    assert [r.status_code for r in collection_answers(
        family.http, mine, first_block(family.server, mine))] == [200] * 4
    # The outputs and logs of its children (run by the server's dispatcher).
    child = family.client.submit(JobSpec(
        command=("sh", "-c", "echo made by the child > out/made.txt; echo logged"),
        reuse=False))
    [done] = family.client.wait([child.uuid], timeout=30)
    assert done.succeeded, done
    assert done.output_pdh is not None and done.log_pdh is not None
    assert b"".join(family.client.read_file(done.output_pdh, "made.txt")) == \
        b"made by the child\n"
    assert [e.path for e in family.client.list_collection(done.log_pdh)]
    # ...but not a top-level job's, though any person may read it.
    [other] = family.person.wait([family.other], timeout=30)
    assert other.log_pdh is not None
    error_body(family.http.get(f"/collections/{other.log_pdh}/entries"), 403)


def test_a_job_token_cannot_mount_in_a_child_what_it_cannot_read(family: Family) -> None:
    before = job_count(family.server)
    secret = {"kind": "collection", "pdh": family.secret}
    body = error_body(family.http.post("/jobs", json={"command": ["cat", "in"],
                                                      "mounts": {"in": secret}}), 403)
    assert family.secret in body["detail"]
    error_body(family.http.post("/jobs/own", json={
        "spec": {"command": ["x"], "mounts": {"in": secret}},
        "worker": {"host": "h", "pid": 1, "pid_start": 1}}), 403)
    assert job_count(family.server) == before
    # What it was given, it may hand on.
    child = family.client.submit(JobSpec(command=("cat", "in/given.txt"),
                                         mounts={"in": CollectionMount(family.given)},
                                         reuse=False))
    assert child.parent_uuid == family.runner


def test_only_a_person_creates_tokens_and_claims_and_only_its_job_reports_on_itself(
        family: Family, tmp_path: Path) -> None:
    child = family.client.start_own_job(JobSpec(command=("sub-runner",)), this_worker())
    worker = {"host": "h", "pid": 1, "pid_start": 1}
    outcome = {"state": "Complete", "exit_code": 0, "output_pdh": None, "log_pdh": None}
    process = {"pgid": 1, "pgid_start": 1}
    for refused in (family.http.post("/tokens"),
                    family.http.post(f"/jobs/{family.other}/claim", json=worker),
                    family.http.post(f"/jobs/{child.job.uuid}/claim", json=worker),
                    family.http.post(f"/jobs/{family.other}/finish", json=outcome),
                    family.http.post(f"/jobs/{child.job.uuid}/finish", json=outcome),
                    family.http.post(f"/jobs/{family.other}/process", json=process),
                    family.http.post(f"/jobs/{child.job.uuid}/process", json=process)):
        error_body(refused, 403)
    assert family.person.get_job(child.job.uuid).state == "Running"
    assert family.person.get_job(family.other).reused_job_uuid is None
    # Its results must be collections it may read: not the person's secret.
    error_body(family.http.post(f"/jobs/{family.runner}/finish",
                                json={**outcome, "output_pdh": family.secret}), 403)
    assert family.person.get_job(family.runner).state == "Running"
    assert family.client.set_job_process(family.runner, 1, 1) is False
    mine = family.client.put_paths([write(tmp_path / "result.txt", "result\n")])
    done = family.client.finish_job(family.runner, JobOutcome("Complete", 0, mine, None))
    assert (done.state, done.output_pdh) == ("Complete", mine)
    # Its job ended: the token is revoked, and the child's (still running) is not.
    body = error_body(family.http.get("/caller"), 401)
    assert "revoked" in body["detail"]
    with raw_http(family.server, child.token) as child_http:
        assert child_http.get("/caller").json()["job_uuid"] == child.job.uuid


def test_a_job_finds_the_api_and_its_own_token_in_its_environment(
        api_server: ServerThread, api_client: HttpClient, tmp_path: Path) -> None:
    creds, release = tmp_path / "creds", tmp_path / "release"
    script = (f'printf "%s %s" "$CWL_CRUNCH_API_URL" "$CWL_CRUNCH_API_TOKEN" > {creds}.tmp; '
              f"mv {creds}.tmp {creds}; "
              f"while [ ! -e {release} ]; do sleep 0.02; done")
    job = api_client.submit(JobSpec(command=("sh", "-c", script), reuse=False))
    wait_until(creds.exists, timeout=20, what="the job to write its credentials")
    url, token = creds.read_text().split(" ")
    assert url == api_server.url
    assert token.startswith("crunch/") and token != api_client.config.api_token
    inside = cwl_crunch.connect(home=tmp_path / "client-home", api_url=url, api_token=token)
    try:
        assert inside.client.caller_job() == job.uuid
        child = inside.submit(["true"], name="from inside", reuse=False)
        assert child.record().parent_uuid == job.uuid
        with pytest.raises(ApiError, match="403"):
            inside.client.list_jobs(cwl_crunch.client.JobFilter(top_level=True))
    finally:
        release.touch()
    [done] = api_client.wait([job.uuid], timeout=30)
    assert done.succeeded, done
    with pytest.raises(TokenError, match=r"^API token .* has been revoked"):
        inside.client.get_job(job.uuid)
    inside.close()


# How tokens are kept -----------------------------------------------------------------
def test_tokens_are_stored_as_hashes_only(api_server: ServerThread, api_client: HttpClient,
                                          family: Family) -> None:
    tokens = [api_client.config.api_token, family.token, api_server.create_token()]
    with api_server.core.database.reading() as connection:
        rows = [dict(row._mapping) for row in connection.execute(select(TOKENS))]
    assert len(rows) >= len(tokens)
    stored = {row["uuid"]: row for row in rows}
    for token in tokens:
        _, uuid, secret = token.split("/")
        assert stored[uuid]["secret_sha256"] == hashlib.sha256(secret.encode()).hexdigest()
        for row in rows:
            assert not any(secret in str(value) for value in row.values()), row
        # Not in any file of the cluster home either (the database, its WAL, the store).
        for path in api_server.core.config.home.rglob("*"):
            if path.is_file():
                assert secret.encode() not in path.read_bytes(), path


def test_unknown_token_uuid_and_wrong_secret_look_the_same_and_both_compare_digests(
        api_server: ServerThread, api_token: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _, uuid, secret = api_token.split("/")
    compared: list[tuple[Any, Any]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    answers = []
    for token in (f"crunch/{uuid}/{secret[:-1]}x", f"crunch/local-tok-000000000000000/{secret}"):
        with raw_http(api_server, token) as http:
            answers.append(error_body(http.get("/caller"), 401))
    assert answers[0] == answers[1] == {"error": "HTTPError", "detail": "unknown API token"}
    # Both were refused by a constant-time comparison of digests (none skipped for the
    # unknown uuid), not by an early return.
    assert len(compared) == 2
    assert all(len(a) == len(b) == 64 for a, b in compared)
