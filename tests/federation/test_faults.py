"""Federation when things go wrong: an unknown cluster, a peer that is down when a step
is handed to it or goes down while a step runs there, a cancel at home, a damaged
block at the source."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from federation_sites import leaves, run_workflow, runner_process, tags_by_cluster
from polling import wait_until

pytestmark = [pytest.mark.federation, pytest.mark.slow, pytest.mark.xdist_group("federation")]


def text_file(tmp_path: Path, text: str = "hello\n") -> dict:
    (tmp_path / "in.txt").write_text(text)
    return {"class": "File", "path": str(tmp_path / "in.txt")}


def top_level(site) -> list[str]:
    return [job["uuid"] for job in site.api("GET", "/jobs?top_level=true&limit=1000").json()]


def test_an_unknown_cluster_fails_before_anything_runs(sites, tmp_path):
    before = top_level(sites["sitea"])
    run = run_workflow(sites["sitea"], "nowhere.cwl", {"text": text_file(tmp_path)}, tmp_path)
    assert run.returncode != 0
    assert "cluster 'sitez' is neither this cluster (sitea) nor one of its peers " \
           "(siteb, sitec)" in run.stderr
    assert top_level(sites["sitea"]) == before  # no run was recorded


def test_an_unknown_cluster_from_an_input_fails_its_step(sites, tmp_path):
    run = run_workflow(sites["sitea"], "chain.cwl",
                       {"text": text_file(tmp_path), "where1": "sitea", "where2": "sitez",
                        "where3": "sitea"}, tmp_path)
    assert run.returncode != 0
    assert "cluster 'sitez' is neither this cluster (sitea) nor one of its peers " \
           "(siteb, sitec)" in run.stderr
    assert tags_by_cluster(sites, run.run_uuid) == {"one": "sitea"}


def test_a_peer_that_is_down_fails_the_step_naming_it(sites, tmp_path):
    sitec = sites["sitec"]
    sitec.server.kill()
    try:
        run = run_workflow(sites["sitea"], "chain.cwl",
                           {"text": text_file(tmp_path, "down\n"), "where1": "sitec",
                            "where2": "sitea", "where3": "sitea"}, tmp_path)
    finally:
        sitec.server.start()
    assert run.returncode != 0
    assert "peer sitec" in run.stderr and sitec.url in run.stderr, run.stderr
    [step] = [job for job in sites["sitea"].api(
        "GET", f"/jobs?parent={run.run_uuid}").json()]
    assert step["state"] == "Failed" and "not handed to the peer" in step["failure_reason"]


def test_a_peer_that_goes_down_mid_run_is_followed_again_when_back(sites, tmp_path):
    """siteb is killed while the step runs there and started again; the job goes on
    there, and the home runner, told by its server that siteb does not answer (502),
    waits and then finishes the run."""
    runner = runner_process(sites["sitea"], "slow.cwl",
                          {"text": text_file(tmp_path, "patient\n"), "where": "siteb",
                           "seconds": 8}, tmp_path)
    siteb = sites["siteb"]
    wait_until(lambda: [job for job in siteb.api("GET", "/jobs?limit=50").json()
                        if job["spec"]["command"][:2] == ["sh", "-c"]
                        and job["state"] == "Running"], timeout=120,
               what="the slow step running on siteb")
    siteb.server.kill()
    time.sleep(3)
    siteb.server.start()
    _, err = runner.communicate(timeout=240)
    assert runner.returncode == 0, err
    assert "does not answer" in err
    assert (tmp_path / "out" / "said.txt").read_text() == "patient\nafter\n"


def test_cancel_at_home_cancels_the_remote_subtree(sites, tmp_path):
    sitea, siteb = sites["sitea"], sites["siteb"]
    before = set(top_level(sitea))
    runner = runner_process(sitea, "slow.cwl",
                          {"text": text_file(tmp_path, "cancel me\n"), "where": "siteb",
                           "seconds": 120}, tmp_path)
    run_uuid = wait_until(lambda: [uuid for uuid in top_level(sitea) if uuid not in before],
                          timeout=60, what="the run's job")[0]
    wait_until(lambda: [leaf for leaf in leaves(sites, run_uuid)
                        if leaf["cluster"] == "siteb" and leaf["state"] == "Running"],
               timeout=120, what="the slow step running on siteb")
    cancelled = sitea.api("POST", f"/jobs/{run_uuid}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    runner.communicate(timeout=120)
    assert runner.returncode != 0
    steps_here = sitea.api("GET", f"/jobs?parent={run_uuid}").json()
    remote_runners = [job for step in steps_here
                      for job in siteb.api("GET", f"/jobs?parent={step['uuid']}").json()]
    assert remote_runners, "no runner on siteb below the run's step"

    def all_cancelled() -> bool:
        ended = [siteb.api("GET", f"/jobs/{job['uuid']}").json() for job in remote_runners]
        below = [leaf for leaf in leaves(sites, run_uuid) if leaf["cluster"] == "siteb"]
        return bool(below) and all(job["state"] == "Cancelled" for job in ended + below)

    wait_until(all_cancelled, timeout=60, what="the remote runner and its step cancelled")


def test_kill_9_of_the_home_runner_then_again_joins_the_remote_step(sites, tmp_path):
    inputs = {"text": text_file(tmp_path, "resumed\n"), "where": "siteb", "seconds": 6}
    first = runner_process(sites["sitea"], "slow.cwl", inputs, tmp_path)
    siteb = sites["siteb"]
    running = wait_until(lambda: [job for job in siteb.api("GET", "/jobs?limit=50").json()
                                  if job["state"] == "Running"
                                  and job["spec"]["command"][:2] == ["sh", "-c"]
                                  and job["spec"]["command"][-1] == "6"],
                         timeout=120, what="the slow step running on siteb")
    first.kill()
    first.communicate(timeout=30)
    again = run_workflow(sites["sitea"], "slow.cwl", inputs, tmp_path / "again")
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "again" / "out" / "said.txt").read_text() == "resumed\nafter\n"
    slow_steps = [leaf for leaf in leaves(sites, again.run_uuid) if leaf["cluster"] == "siteb"]
    assert [leaf["uuid"] for leaf in slow_steps] == [running[0]["uuid"]]  # ran once
