"""One CWL workflow over three clusters: where each step ran (from the records of all
three) and what came out, for each way of placing steps. The sites are three real
``cwl-crunch server`` processes (tests/federation_sites.py); runs start at sitea."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from federation_sites import descendants, leaves, run_workflow, tags_by_cluster
from server_process import ROOT

pytestmark = [pytest.mark.federation, pytest.mark.slow, pytest.mark.xdist_group("federation")]


def text_file(tmp_path: Path, text: str = "hello\n", name: str = "in.txt") -> dict:
    (tmp_path / name).write_text(text)
    return {"class": "File", "path": str(tmp_path / name)}


def read_output(run, name: str) -> str:
    return Path(run.outputs[name]["path"]).read_text()


@pytest.mark.parametrize("where", [
    ("sitea", "sitea", "sitea"),  # every step hinted home: nothing leaves
    ("siteb", "sitea", "sitea"),  # runner home, first step remote, then home again
    ("sitea", "siteb", "sitea"),  # home to remote
    ("siteb", "siteb", "sitea"),  # two chained steps both remote
    ("siteb", "sitec", "sitea"),  # a three-step chain across the three clusters
])
def test_a_chain_runs_each_step_where_its_input_says(sites, tmp_path, where):
    run = run_workflow(sites["sitea"], "chain.cwl",
                       {"text": text_file(tmp_path), "where1": where[0], "where2": where[1],
                        "where3": where[2]}, tmp_path)
    assert run.returncode == 0, run.stderr
    assert read_output(run, "said") == "hello\none\ntwo\nthree\n"
    assert run.run_uuid is not None and run.run_uuid.startswith("sitea-job-")
    assert tags_by_cluster(sites, run.run_uuid) == dict(zip(("one", "two", "three"), where,
                                                            strict=True))


def test_the_hint_on_the_workflow_sends_it_and_a_step_can_come_back(sites, tmp_path):
    """The workflow goes to siteb (its runner is remote); its second step says sitea,
    so siteb's runner hands it back: runner remote, step home."""
    run = run_workflow(sites["sitea"], "on-siteb.cwl", {"text": text_file(tmp_path)},
                       tmp_path)
    assert run.returncode == 0, run.stderr
    assert read_output(run, "said") == "hello\none\ntwo\n"
    assert tags_by_cluster(sites, run.run_uuid) == {"one": "siteb", "two": "sitea"}


def test_the_hint_on_the_tool(sites, tmp_path):
    run = run_workflow(sites["sitea"], "tool-hint.cwl", {"text": text_file(tmp_path)},
                       tmp_path)
    assert run.returncode == 0, run.stderr
    assert read_output(run, "said") == "hello\none\ntwo\n"
    assert tags_by_cluster(sites, run.run_uuid) == {"one": "siteb", "two": "sitea"}


def test_a_home_steps_output_holds_a_remote_file(sites, tmp_path):
    run = run_workflow(sites["sitea"], "keep-remote.cwl", {"text": text_file(tmp_path)},
                       tmp_path)
    assert run.returncode == 0, run.stderr
    assert read_output(run, "kept") == "hello\nremote\n"
    assert tags_by_cluster(sites, run.run_uuid) == {"remote": "sitec"}


def test_arvados_federated_scatter_one_shard_per_cluster_gathered_home(sites, tmp_path):
    """Arvados' federated workflow as written for Arvados (arv:ClusterTarget with
    ``cluster_id: $(inputs.runOnCluster)``, an input the tool does not declare)."""
    texts = [text_file(tmp_path, f"part {n}\n", f"part{n}.txt") for n in range(3)]
    clusters = ["sitea", "siteb", "sitec"]
    run = run_workflow(sites["sitea"], "scatter.cwl", {"texts": texts, "clusters": clusters},
                       tmp_path)
    assert run.returncode == 0, run.stderr
    assert read_output(run, "all") == "part 0\nsitea\npart 1\nsiteb\npart 2\nsitec\n"
    assert tags_by_cluster(sites, run.run_uuid) == {name: name for name in clusters}


def test_a_federated_run_again_runs_nothing_anywhere(sites, tmp_path):
    inputs = {"text": text_file(tmp_path, "once\n"), "where1": "siteb", "where2": "sitec",
              "where3": "sitea"}
    first = run_workflow(sites["sitea"], "chain.cwl", inputs, tmp_path)
    assert first.returncode == 0, first.stderr
    again = run_workflow(sites["sitea"], "chain.cwl", inputs, tmp_path / "again")
    assert again.returncode == 0, again.stderr
    assert read_output(again, "said") == "once\none\ntwo\nthree\n"
    work = [job for job in descendants(sites, again.run_uuid)
            if job["spec"]["command"][:2] != ["cwl-crunch-runner", "--on-cluster"]]
    assert work and all(job["reused_job_uuid"] for job in work), work
    assert tags_by_cluster(sites, again.run_uuid) == {"one": "siteb", "two": "sitec",
                                                      "three": "sitea"}


def test_jobs_tree_shows_the_remote_subtree_inline(sites, tmp_path):
    sitea = sites["sitea"]
    run = run_workflow(sitea, "chain.cwl",
                       {"text": text_file(tmp_path, "tree\n"), "where1": "siteb",
                        "where2": "sitec", "where3": "sitea"}, tmp_path)
    assert run.returncode == 0, run.stderr
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("CWL_CRUNCH_")}
    env.update(CWL_CRUNCH_API_URL=sitea.url, CWL_CRUNCH_API_TOKEN=sitea.token,
               CWL_CRUNCH_HOME=str(tmp_path / "cli-home"), PYTHONPATH=str(ROOT))
    shown = subprocess.run([sys.executable, "-m", "cwl_crunch.cli.main", "jobs", "tree",
                            run.run_uuid], env=env, capture_output=True, text=True,
                           timeout=120)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].startswith(run.run_uuid)
    below = {job["uuid"]: job for job in descendants(sites, run.run_uuid)}
    for uuid in below:
        [line] = [line for line in lines if uuid in line]
        marked = f"[on {uuid[:5]}]" in line
        assert marked == (uuid[:5] != "sitea"), line
    # A remote step is drawn below the remote runner, which is below the home step.
    remote_steps = [uuid for uuid, job in below.items()
                    if uuid.startswith("siteb-") and job["spec"]["command"][:2] == ["sh", "-c"]]
    [step] = remote_steps
    depth = {uuid: next(len(line) - len(line.lstrip("│├└─ ")) for line in lines if uuid in line)
             for uuid in below}
    runner = below[step]["parent_uuid"]
    home_step = below[runner]["parent_uuid"]
    assert depth[home_step] < depth[runner] < depth[step]


def test_a_remote_step_reading_one_file_of_a_collection_pulls_only_that_file(sites, tmp_path):
    from cwl_crunch.client.http import HttpClient
    from cwl_crunch.config import load_config

    def client_of(site):
        return HttpClient(load_config({"CWL_CRUNCH_HOME": str(tmp_path / "client")},
                                      api_url=site.url, api_token=site.token))

    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "big.bin").write_bytes(os.urandom(3 << 20))
    (folder / "small.txt").write_text("the one file read\n")
    sitea, siteb = client_of(sites["sitea"]), client_of(sites["siteb"])
    pdh = sitea.put_paths([folder])
    big_blocks = [entry for entry in sitea.list_collection(pdh, "data")
                  if entry.path.endswith("big.bin")]
    assert big_blocks
    run = run_workflow(sites["sitea"], "chain.cwl",
                       {"text": {"class": "File", "location": f"keep:{pdh}/data/small.txt"},
                        "where1": "siteb", "where2": "sitea", "where3": "sitea"}, tmp_path,
                       "--submit")  # the run's job is given the collection: it may read it
    assert run.returncode == 0, run.stderr
    assert read_output(run, "said") == "the one file read\none\ntwo\nthree\n"
    assert not siteb.has_collection(pdh)  # a collection of the file read went instead
    from cwl_crunch.store import Manifest
    from cwl_crunch.store.locators import strip_signatures

    manifest = Manifest.from_text(strip_signatures(sitea.get_manifest(pdh)))
    big = manifest.file("data/big.bin")
    assert big is not None
    assert siteb.missing_blocks(list(big.locators)) == list(big.locators)


def test_the_runner_on_a_peer_and_its_steps_back_home(sites, tmp_path):
    """``--submit --runner-cluster siteb`` at sitea: the runner runs on siteb (handed
    there by sitea: the person has sitea's token only); its steps, hinted sitea, come
    back home. Runner remote, steps home."""
    run = run_workflow(sites["sitea"], "chain.cwl",
                       {"text": text_file(tmp_path, "from afar\n"), "where1": "sitea",
                        "where2": "sitea", "where3": "siteb"}, tmp_path,
                       "--submit", "--runner-cluster", "siteb")
    assert run.returncode == 0, run.stderr
    assert read_output(run, "said") == "from afar\none\ntwo\nthree\n"
    runners = [job for job in sites["siteb"].api("GET", "/jobs?limit=200").json()
               if job["peer_id"] == "sitea" and job["parent_uuid"] is None
               and job["remote_owner"] == sites["sitea"].token.split("/")[1]]
    assert runners, "no runner on siteb submitted for sitea's person"
    assert tags_by_cluster(sites, runners[0]["uuid"]) == {"one": "sitea", "two": "sitea",
                                                          "three": "siteb"}


@pytest.mark.parametrize("where", ["sitea", "siteb"])
def test_a_subworkflow_in_a_single_job_here_or_on_a_peer(sites, tmp_path, where):
    run = run_workflow(sites["sitea"], "single.cwl",
                       {"text": text_file(tmp_path, f"single {where}\n"), "where": where},
                       tmp_path)
    assert run.returncode == 0, run.stderr
    assert read_output(run, "said") == f"single {where}\nfirst\nsecond\nafter\n"
    jobs = leaves(sites, run.run_uuid)
    [single] = [job for job in jobs if "--in-one-job" in job["spec"]["command"]]
    assert single["cluster"] == where
    # One allocation: the largest of its steps' cores and RAM.
    assert (single["spec"]["cores"], single["spec"]["ram"]) == (1.0, 500 << 20)
    assert tags_by_cluster(sites, run.run_uuid) == {"after": "sitea"}  # no job per step


@pytest.mark.parametrize("where2", ["sitea", "siteb"])
def test_a_remote_steps_outputs_come_home_only_as_far_as_they_are_read(sites, tmp_path,
                                                                        where2):
    """A step on siteb makes a 3 MB file and a small one; the next step (home, or on
    siteb again) reads the small one. Home gets the small file's blocks (or nothing but
    the final output), never the large file's."""
    from cwl_crunch.client.http import HttpClient
    from cwl_crunch.config import load_config
    from cwl_crunch.store import Manifest
    from cwl_crunch.store.locators import strip_signatures

    run = run_workflow(sites["sitea"], "outputs-home.cwl",
                       {"where1": "siteb", "where2": where2}, tmp_path)
    assert run.returncode == 0, run.stderr
    assert read_output(run, "said") == "small\nread\n"
    [make] = [job for job in leaves(sites, run.run_uuid)
              if "big.bin" in " ".join(job["spec"]["command"])]
    assert make["cluster"] == "siteb"

    def client_of(site):
        return HttpClient(load_config({"CWL_CRUNCH_HOME": str(tmp_path / "client")},
                                      api_url=site.url, api_token=site.token))

    sitea, siteb = client_of(sites["sitea"]), client_of(sites["siteb"])
    made = Manifest.from_text(strip_signatures(siteb.get_manifest(make["output_pdh"])))
    big, small = made.file("big.bin"), made.file("small.txt")
    assert big is not None and small is not None
    assert siteb.missing_blocks(list(big.locators)) == []
    assert sitea.missing_blocks(list(big.locators)) == list(big.locators)
    assert not sitea.has_collection(make["output_pdh"])
    [read] = [job for job in leaves(sites, run.run_uuid) if job["spec"]["command"][:2] ==
              ["sh", "-c"] and job["spec"]["command"][-1] == "read"]
    assert read["cluster"] == where2
    if where2 == "sitea":  # it mounts a collection of the one file it reads
        [mount] = [m for m in read["spec"]["mounts"].values() if m.get("pdh")]
        part = Manifest.from_text(strip_signatures(sitea.get_manifest(mount["pdh"])))
        assert [entry.path for entry in part.files()] == ["small.txt"]
