"""Peers and peer tokens between three real cluster servers: who a peer is, what its
token may do (a federated run: submit, follow, cancel, read what it was given or made)
and may not (everything else: 403, nothing written), and a person's token of one
cluster presented to another (401)."""

from __future__ import annotations

import concurrent.futures
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from federation_sites import Site
from polling import wait_until

from cwl_crunch.client.http import HttpClient
from cwl_crunch.config import load_config
from cwl_crunch.model import JobState

pytestmark = [pytest.mark.federation, pytest.mark.slow, pytest.mark.xdist_group("federation")]

CAT_TOOL = {
    "cwlVersion": "v1.2", "class": "CommandLineTool", "baseCommand": ["cat"],
    "inputs": {"text": {"type": "File", "inputBinding": {"position": 1}}},
    "outputs": {"said": {"type": "stdout"}}, "stdout": "said.txt",
}
SLEEP_TOOL = {
    "cwlVersion": "v1.2", "class": "CommandLineTool", "baseCommand": ["sleep", "60"],
    "inputs": {"text": "File"}, "outputs": {},
}


def client_of(site: Site, tmp_path: Path, token: str | None = None) -> HttpClient:
    return HttpClient(load_config({"CWL_CRUNCH_HOME": str(tmp_path / "client-home")},
                                  api_url=site.url, api_token=token or site.token))


def make_run(site: Site, tmp_path: Path, tool: dict[str, object], text: str) -> dict:
    """A run's body (its collections stored on ``site``): ``tool`` over a file."""
    client = client_of(site, tmp_path)
    (tmp_path / "hello.txt").write_text(text)
    data = client.put_paths([tmp_path / "hello.txt"])
    folder = tmp_path / "run"
    folder.mkdir(exist_ok=True)
    (folder / "workflow.cwl").write_text(json.dumps(tool))
    (folder / "inputs.json").write_text(json.dumps({
        "text": {"class": "File", "location": f"keep:{data}/hello.txt"},
        "$namespaces": {"keep": "keep:"}}))
    run = client.put_paths([folder / "workflow.cwl", folder / "inputs.json"])
    return {"run_pdh": run, "input_pdhs": [data], "name": "cat", "use_container": False}


def token_uuid(token: str) -> str:
    return token.split("/")[1]


def test_peers_command_says_who_answers(sites, tmp_path):
    env = {**os.environ, "CWL_CRUNCH_HOME": str(sites["sitea"].home)}
    env.pop("CWL_CRUNCH_API_URL", None)
    shown = subprocess.run([sys.executable, "-m", "cwl_crunch.cli.main", "peers"], env=env,
                           capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].split()[:4] == ["PEER", "URL", "ANSWERS", "VERSION"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert set(rows) == {"siteb", "sitec"}
    assert rows["siteb"][1] == sites["siteb"].url and rows["siteb"][2] == "yes"
    assert rows["siteb"][3] == "0.1.0" and rows["siteb"][5] == "ms"


def test_peers_command_names_a_peer_that_is_down_or_refuses(sites, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text(
        'cluster_id = "sitea"\n[peers.siteb]\nurl = "http://127.0.0.1:9"\ntoken = "x"\n'
        f'[peers.sitec]\nurl = "{sites["sitec"].url}"\n'
        'token = "crunch/sitec-tok-aaaaaaaaaaaaaaa/no"\n'
        f'[peers.sited]\nurl = "{sites["siteb"].url}"\n'
        f'token = "{sites["siteb"].peer_tokens["sitea"]}"\n')
    env = {**os.environ, "CWL_CRUNCH_HOME": str(home)}
    shown = subprocess.run([sys.executable, "-m", "cwl_crunch.cli.main", "peers"], env=env,
                           capture_output=True, text=True, timeout=60)
    assert shown.returncode == 1
    rows = {line.split()[0]: line for line in shown.stdout.splitlines()[1:]}
    assert "does not answer" in rows["siteb"]
    assert "HTTP 401" in rows["sitec"] and "unknown API token" in rows["sitec"]
    assert "it is cluster 'siteb', not 'sited'" in rows["sited"]


def test_a_persons_token_of_one_cluster_is_refused_by_another(sites):
    answer = sites["siteb"].api("GET", "/jobs", token=sites["sitea"].token)
    assert answer.status_code == 401, answer.text
    assert "unknown API token" in answer.json()["detail"]


@pytest.mark.parametrize("method, path, body", [
    ("POST", "/jobs", {"command": ["true"]}),
    ("POST", "/jobs/own", {"spec": {"command": ["true"]},
                           "worker": {"host": "h", "pid": 1, "pid_start": 1}}),
    ("GET", "/jobs?top_level=true", None),
    ("POST", "/tokens", None),
    ("GET", "/nodes/largest", None),
    ("GET", "/caller", None),
    ("POST", "/blocks/missing", {"locators": []}),
    ("POST", "/peers/sitec/runs", {"run_pdh": "0" * 64 + "+1"}),
])
def test_a_peer_token_outside_federation_is_refused_and_writes_nothing(
        sites, method, path, body):
    siteb = sites["siteb"]
    before = siteb.api("GET", "/jobs?top_level=true&limit=1000").json()
    answer = siteb.api(method, path, token=siteb.peer_tokens["sitea"], json=body)
    assert answer.status_code == 403, answer.text
    assert "peer" in answer.json()["detail"]
    assert siteb.api("GET", "/jobs?top_level=true&limit=1000").json() == before


def test_a_run_handed_to_a_peer_pulls_its_inputs_and_runs_there(sites, tmp_path):
    sitea, siteb = sites["sitea"], sites["siteb"]
    body = make_run(sitea, tmp_path, CAT_TOOL, "hello from sitea\n")
    b_client = client_of(siteb, tmp_path)
    assert not b_client.has_collection(body["input_pdhs"][0])
    answer = sitea.api("POST", "/peers/siteb/runs", json=body)
    assert answer.status_code == 201, answer.text
    run = answer.json()
    assert run["uuid"].startswith("siteb-job-")
    assert run["peer_id"] == "sitea" and run["remote_owner"] == token_uuid(sitea.token)
    assert run["parent_uuid"] is None
    # Queued, held while siteb pulls what the run mounts (three small files, a block each).
    assert run["state"] == JobState.QUEUED
    assert run["queue_reason"] == "fetching 3 blocks, 0.0 MB, from sitea", run
    [done] = b_client.wait([run["uuid"]], timeout=180)
    assert done.succeeded, done
    assert done.queue_reason is None
    assert b_client.has_collection(body["input_pdhs"][0])
    assert b_client.has_collection(body["run_pdh"])
    said = b"".join(b_client.read_file(done.output_pdh or "", "said.txt"))
    assert said == b"hello from sitea\n"
    # sitea's peer token on siteb follows the run and reads what it made.
    peer_token = siteb.peer_tokens["sitea"]
    seen = siteb.api("GET", f"/jobs/{run['uuid']}", token=peer_token)
    assert seen.status_code == 200 and seen.json()["state"] == JobState.COMPLETE
    steps = siteb.api("GET", f"/jobs?parent={run['uuid']}").json()
    assert [step["state"] for step in steps] == [JobState.COMPLETE]
    manifest = siteb.api("GET", f"/collections/{done.output_pdh}/manifest", token=peer_token)
    assert manifest.status_code == 200, manifest.text


def test_a_peer_token_reads_only_what_its_runs_were_given_or_made(sites, tmp_path):
    siteb = sites["siteb"]
    (tmp_path / "private.txt").write_text("siteb's own\n")
    private = client_of(siteb, tmp_path).put_paths([tmp_path / "private.txt"])
    own_job = siteb.api("POST", "/jobs", json={"command": ["true"], "cores": 0.1}).json()
    peer_token = siteb.peer_tokens["sitea"]
    for path in (f"/collections/{private}/manifest", f"/collections/{private}",
                 f"/jobs/{own_job['uuid']}", f"/jobs?uuid={own_job['uuid']}"):
        answer = siteb.api("GET", path, token=peer_token)
        assert answer.status_code == 403, (path, answer.text)
    cancel = siteb.api("POST", f"/jobs/{own_job['uuid']}/cancel", token=peer_token)
    assert cancel.status_code == 403, cancel.text
    # sitec's token on siteb cannot read sitea's runs either.
    body = make_run(sites["sitea"], tmp_path, CAT_TOOL, "for siteb only\n")
    run = sites["sitea"].api("POST", "/peers/siteb/runs", json=body).json()
    answer = siteb.api("GET", f"/jobs/{run['uuid']}", token=siteb.peer_tokens["sitec"])
    assert answer.status_code == 403, answer.text


def test_forged_parent_or_owner_of_another_cluster_is_refused(sites, tmp_path):
    sitea, siteb = sites["sitea"], sites["siteb"]
    body = make_run(sitea, tmp_path, CAT_TOOL, "forged\n")
    before = siteb.api("GET", "/jobs?top_level=true&limit=1000").json()
    peer_token = siteb.peer_tokens["sitea"]
    for forged in ({"parent_uuid": "sitec-job-aaaaaaaaaaaaaaa",
                    "owner": "sitea-tok-aaaaaaaaaaaaaaa"},
                   {"parent_uuid": None, "owner": "sitec-tok-aaaaaaaaaaaaaaa"},
                   {"parent_uuid": "siteb-job-aaaaaaaaaaaaaaa",
                    "owner": "sitea-tok-aaaaaaaaaaaaaaa"}):
        answer = siteb.api("POST", "/federation/runs", token=peer_token,
                           json={**body, **forged})
        assert answer.status_code == 403, answer.text
        assert "is not of cluster sitea" in answer.json()["detail"]
    # Nor may a peer name a command: only a run's references.
    answer = siteb.api("POST", "/federation/runs", token=peer_token,
                       json={**body, "parent_uuid": None, "owner": "sitea-tok-aaaaaaaaaaaaaaa",
                             "command": ["rm", "-rf", "/"]})
    assert answer.status_code == 422, answer.text
    assert siteb.api("GET", "/jobs?top_level=true&limit=1000").json() == before


def test_a_peer_cancels_its_run(sites, tmp_path):
    sitea, siteb = sites["sitea"], sites["siteb"]
    body = make_run(sitea, tmp_path, SLEEP_TOOL, "sleepy\n")
    run = sitea.api("POST", "/peers/siteb/runs", json=body).json()
    peer_token = siteb.peer_tokens["sitea"]
    wait_until(lambda: siteb.api("GET", f"/jobs?parent={run['uuid']}").json(),
               timeout=120, what="the run's step on siteb")
    cancelled = siteb.api("POST", f"/jobs/{run['uuid']}/cancel", token=peer_token)
    assert cancelled.status_code == 200, cancelled.text
    final = client_of(siteb, tmp_path).wait([run["uuid"]], timeout=120)[0]
    assert final.state == JobState.CANCELLED
    steps = siteb.api("GET", f"/jobs?parent={run['uuid']}").json()
    assert steps and all(step["state"] == JobState.CANCELLED for step in steps)


def test_a_run_for_an_unknown_peer_names_the_known_ones(sites, tmp_path):
    body = make_run(sites["sitea"], tmp_path, CAT_TOOL, "nowhere\n")
    answer = sites["sitea"].api("POST", "/peers/sitez/runs", json=body)
    assert answer.status_code == 404, answer.text
    assert "siteb, sitec" in answer.json()["detail"]


SHORT_SLEEP_TOOL = {
    "cwlVersion": "v1.2", "class": "CommandLineTool", "baseCommand": ["sleep", "4"],
    "inputs": {"text": "File"}, "outputs": {},
}
WAITERS = 60
"""More waits at once than the server has threads for blocking calls (40)."""


def test_waits_on_a_remote_run_follow_the_peers_events_and_hold_no_thread(sites, tmp_path):
    sitea = sites["sitea"]
    body = make_run(sitea, tmp_path, SHORT_SLEEP_TOOL, "wait for me\n")
    run = sitea.api("POST", "/peers/siteb/runs", json=body).json()
    path = f"/peers/siteb/jobs/{run['uuid']}/wait?timeout=30"
    ended_at: list[float] = []

    def wait() -> dict:
        answer = sitea.api("GET", path)
        ended_at.append(time.monotonic())
        assert answer.status_code == 200, answer.text
        return answer.json()

    with concurrent.futures.ThreadPoolExecutor(WAITERS) as pool:
        waits = [pool.submit(wait) for _ in range(WAITERS)]
        time.sleep(1.0)  # the waits are in
        assert sitea.api("GET", "/cluster").status_code == 200
        answered_at = time.monotonic()
        records = [future.result() for future in waits]
    # The server answered while all of them were waiting, and each wait ended with the
    # run (on the peer's event), not at its timeout.
    assert answered_at < min(ended_at)
    assert all(record["state"] == JobState.COMPLETE for record in records), records[0]
    assert max(ended_at) - answered_at < 30
    # A wait that times out answers with the record as it is.
    body = make_run(sitea, tmp_path, SLEEP_TOOL, "still going\n")
    run = sitea.api("POST", "/peers/siteb/runs", json=body).json()
    answer = sitea.api("GET", f"/peers/siteb/jobs/{run['uuid']}/wait?timeout=0.5")
    assert answer.status_code == 200 and answer.json()["state"] in (
        JobState.QUEUED, JobState.RUNNING), answer.text
    sitea.api("POST", f"/peers/siteb/jobs/{run['uuid']}/cancel")
    answer = sitea.api("GET", f"/peers/siteb/jobs/{run['uuid']}/wait?timeout=30")
    assert answer.json()["state"] == JobState.CANCELLED, answer.text


def test_a_peer_naming_a_collection_it_was_never_given_must_show_it_has_it(sites, tmp_path):
    """siteb holds a collection of its own. A run from sitea that names it (its PDH is
    no secret proof of anything) is refused unless sitea gives every block of it."""
    sitea, siteb = sites["sitea"], sites["siteb"]
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "hello.txt").write_text("siteb's secret\n")
    private = client_of(siteb, tmp_path).put_paths([secret / "hello.txt"])
    body = make_run(sitea, tmp_path, CAT_TOOL, "not this one\n")
    before = siteb.api("GET", "/jobs?top_level=true&limit=1000").json()
    forged = {**body, "input_pdhs": [private], "parent_uuid": None,
              "owner": f"sitea-tok-{'a' * 15}"}
    answer = siteb.api("POST", "/federation/runs", token=siteb.peer_tokens["sitea"],
                       json=forged)
    assert answer.status_code >= 400, answer.text
    assert private in answer.json()["detail"], answer.text
    assert siteb.api("GET", "/jobs?top_level=true&limit=1000").json() == before
    # sitea has the same file: it gives every block, and the run goes ahead.
    assert client_of(sitea, tmp_path).put_paths([secret / "hello.txt"]) == private
    folder = tmp_path / "run"
    (folder / "inputs.json").write_text(json.dumps({
        "text": {"class": "File", "location": f"keep:{private}/hello.txt"},
        "$namespaces": {"keep": "keep:"}}))
    run_pdh = client_of(sitea, tmp_path).put_paths([folder / "workflow.cwl",
                                                    folder / "inputs.json"])
    answer = sitea.api("POST", "/peers/siteb/runs",
                       json={**body, "run_pdh": run_pdh, "input_pdhs": [private]})
    assert answer.status_code == 201, answer.text
    assert answer.json()["queue_reason"].startswith("fetching "), answer.text  # proving
    [done] = client_of(siteb, tmp_path).wait([answer.json()["uuid"]], timeout=180)
    assert done.succeeded, done


def test_a_remote_step_names_only_what_its_own_run_made_on_the_peer(sites, tmp_path):
    """``made_by``: a run's remote step may name an output an earlier step of the same
    run made on the peer (it is there already; nothing is sent). Another run's step, or
    a job of the same run that is not a remote step, is refused, and nothing is written
    on the peer."""
    from cwl_crunch.federation.links import REMOTE_STEP
    from cwl_crunch.model import CollectionMount, JobSpec
    from cwl_crunch.worker.processes import this_worker

    sitea, siteb = sites["sitea"], sites["siteb"]
    body = make_run(sitea, tmp_path, CAT_TOOL, "made on siteb\n")
    mounts = {"in": CollectionMount(body["run_pdh"]),
              "inputs/0": CollectionMount(body["input_pdhs"][0])}
    person = client_of(sitea, tmp_path)

    def step_of(run_token: str, command: tuple[str, ...]) -> str:
        with client_of(sitea, tmp_path, run_token) as run_client:
            return run_client.start_own_job(JobSpec(command, mounts=mounts),
                                            this_worker()).token

    run_a = person.start_own_job(JobSpec(("a-runner",), mounts=mounts), this_worker())
    first = sitea.api("POST", "/peers/siteb/runs", json=body,
                      token=step_of(run_a.token, (*REMOTE_STEP, "siteb", "one")))
    assert first.status_code == 201, first.text
    [made] = client_of(siteb, tmp_path).wait([first.json()["uuid"]], timeout=180)
    assert made.succeeded and made.output_pdh, made
    naming = {**body, "input_pdhs": [*body["input_pdhs"], made.output_pdh],
              "made_by": {made.output_pdh: made.uuid}}
    before = siteb.api("GET", "/jobs?top_level=true&limit=1000").json()
    run_b = person.start_own_job(JobSpec(("b-runner",), mounts=mounts), this_worker())
    for token in (step_of(run_b.token, (*REMOTE_STEP, "siteb", "two")),
                  step_of(run_a.token, ("not", "a", "remote", "step"))):
        refused = sitea.api("POST", "/peers/siteb/runs", json=naming, token=token)
        assert refused.status_code == 403, refused.text
        assert made.uuid in refused.json()["detail"], refused.text
    assert siteb.api("GET", "/jobs?top_level=true&limit=1000").json() == before
    second = sitea.api("POST", "/peers/siteb/runs", json=naming,
                       token=step_of(run_a.token, (*REMOTE_STEP, "siteb", "two")))
    assert second.status_code == 201, second.text
    [done] = client_of(siteb, tmp_path).wait([second.json()["uuid"]], timeout=180)
    assert done.succeeded, done
