"""Data residency on three real clusters (``home0`` with no data; ``sitea`` and
``siteb`` each with a synthetic cohort stored resident and the analysis image approved):
placement by residency, release rules, and the exfiltration suite: every way a workflow
author at home would try to get resident bytes home is refused with a message naming
the collection, and no block of a cohort, or of anything resident made from it, is in
another cluster's store afterwards."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from federation_sites import Site, descendants, leaves, run_workflow, start_sites
from meta_analysis_check import blocks_of, direct_meta, held_blocks
from polling import wait_until
from server_process import ROOT

from cwl_crunch.store import CollectionStore

pytestmark = [pytest.mark.federation, pytest.mark.podman, pytest.mark.slow,
              pytest.mark.xdist_group("residency")]

EXAMPLE = ROOT / "cwl-examples" / "meta-analysis"
HERE = Path(__file__).parent / "workflows" / "residency"
NAMES = ("home0", "sitea", "siteb")


def _example_module(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"meta_{name}", EXAMPLE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def crunch(*args: str, site: Site, on_host: bool = False) -> subprocess.CompletedProcess[str]:
    """``cwl-crunch ARGS`` as the site's person (through its API), or on its host."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("CWL_CRUNCH_")}
    env.update(PYTHONPATH=str(ROOT), CWL_CRUNCH_HOME=str(site.home))
    if not on_host:
        env.update(CWL_CRUNCH_API_URL=site.url, CWL_CRUNCH_API_TOKEN=site.token,
                   CWL_CRUNCH_HOME=str(site.home.parent / "client"))
    return subprocess.run([sys.executable, "-m", "cwl_crunch.cli.main", *args], env=env,
                          text=True, capture_output=True, timeout=120, check=False)


class Federation:
    def __init__(self, sites: dict[str, Site], cohorts: Path) -> None:
        self.sites = sites
        self.cohorts = cohorts
        self.pdhs: dict[str, str] = {}
        self.indexed = ""
        """sitea: a cohort with a secondary file (cohort.tsv.idx), resident."""
        self.rules: dict[str, str] = {}

    def put_resident(self, site: str, *paths: Path) -> str:
        done = crunch("put", "--resident", *map(str, paths), site=self.sites[site])
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    def cohort(self, site: str = "sitea", name: str = "cohort.tsv") -> dict[str, Any]:
        if name == "indexed":
            return {"class": "File", "location": f"keep:{self.indexed}/cohort.tsv",
                    "secondaryFiles": [{"class": "File",
                                        "location": f"keep:{self.indexed}/cohort.tsv.idx"}]}
        return {"class": "File", "location": f"keep:{self.pdhs[site]}/cohort.tsv"}

    def locators(self, site: str, pdh: str) -> list[str]:
        return blocks_of(self.sites[site].home / "store", pdh)

    def assert_stays(self, site: str, pdh: str) -> None:
        """No block of ``pdh`` (held on ``site``) is in any other cluster's store."""
        locators = self.locators(site, pdh)
        assert locators
        for name, other in self.sites.items():
            if name != site:
                held = held_blocks(other.home / "store", locators)
                assert not held, f"{len(held)} block(s) of {pdh} from {site} are on {name}"

    def residency(self, site: str, pdh: str) -> dict[str, Any] | None:
        answer = self.sites[site].api("GET", f"/collections/{pdh}/residency")
        assert answer.status_code == 200, answer.text
        found: dict[str, Any] | None = answer.json()["residency"]
        return found

    def site_steps(self, run_uuid: str, site: str) -> list[dict[str, Any]]:
        return [job for job in leaves(self.sites, run_uuid) if job["cluster"] == site]


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory, engine_url: str
               ) -> Iterator[Federation]:
    root = tmp_path_factory.mktemp("residency")
    cohorts = root / "cohorts"
    subprocess.run([sys.executable, str(EXAMPLE / "make_cohorts.py"), str(cohorts),
                    "--variants", "60", "--people", "300"], check=True,
                   stdout=subprocess.DEVNULL)
    os.environ.setdefault("CWL_CRUNCH_CONTAINER_ENGINE", engine_url)
    _example_module("run").build_image()
    sites = start_sites(root, NAMES, engines=dict.fromkeys(NAMES, engine_url))
    try:
        found = Federation(sites, cohorts)
        for site in ("sitea", "siteb"):
            found.pdhs[site] = found.put_resident(site, cohorts / site / "cohort.tsv")
            done = crunch("release", "add", "--image", "localhost/meta-analysis-regress:1",
                          "--command", "python3 /opt/regress.py", "--note",
                          "effect sizes only", site=sites[site], on_host=True)
            assert done.returncode == 0, done.stderr
            found.rules[site] = done.stdout.strip()
        indexed = root / "indexed"
        indexed.mkdir()
        (indexed / "cohort.tsv").write_text((cohorts / "sitea" / "cohort.tsv").read_text()
                                            + "p-indexed\t0\n")
        (indexed / "cohort.tsv.idx").write_text("index of the indexed cohort\n")
        found.indexed = found.put_resident("sitea", indexed / "cohort.tsv",
                                           indexed / "cohort.tsv.idx")
        yield found
    finally:
        for site in sites.values():
            site.server.__exit__(None, None, None)


def _run(federation: Federation, workflow: str | Path, inputs: dict[str, Any],
         tmp_path: Path, *extra: str) -> Any:
    return run_workflow(federation.sites["home0"], str(workflow), inputs, tmp_path, *extra,
                        containers=True, timeout=600)


def test_the_meta_analysis_runs_each_regression_where_its_cohort_stays(federation, tmp_path):
    inputs = {"cohorts": [federation.cohort("sitea"), federation.cohort("siteb")],
              "combine_script": {"class": "File", "path": str(EXAMPLE / "combine.py")}}
    run = _run(federation, EXAMPLE / "workflow.cwl", inputs, tmp_path)
    assert run.returncode == 0, run.stderr
    # Placement by residency: no hint, each regression ran on its cohort's site.
    for site in ("sitea", "siteb"):
        regressions = [job for job in federation.site_steps(run.run_uuid, site)
                       if job["spec"]["command"][:2] == ["python3", "/opt/regress.py"]]
        assert len(regressions) == 1, federation.site_steps(run.run_uuid, site)
        step = regressions[0]
        released = federation.residency(site, step["output_pdh"])
        assert released["state"] == "released"
        assert released["rule_uuid"] == federation.rules[site]
        assert released["source_pdh"] == federation.pdhs[site]
        log = federation.residency(site, step["log_pdh"])
        assert log["state"] == "resident" and log["job_uuid"] == step["uuid"]
        federation.assert_stays(site, federation.pdhs[site])
        federation.assert_stays(site, step["log_pdh"])
    direct = direct_meta([federation.cohorts / site / "cohort.tsv"
                           for site in ("sitea", "siteb")])
    table = (tmp_path / "out" / "meta.tsv").read_text().splitlines()
    assert len(table) == 1 + len(direct)
    for line in table[1:]:
        name, _, _, sites, _, beta, se, _, _ = line.split("\t")
        assert sites == "2"
        assert float(beta) == pytest.approx(direct[name][0], rel=1e-4, abs=1e-9)
        assert float(se) == pytest.approx(direct[name][1], rel=1e-4)
    assert (tmp_path / "out" / "manhattan.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _refused(federation: Federation, run: Any, pdh: str, *words: str) -> None:
    """The run failed, saying why (the collection, that it is resident), and nothing of
    the cohort, nor of what the site made of it, left the site."""
    assert run.returncode != 0, run.stderr
    assert "resident" in run.stderr, run.stderr
    for word in words:
        assert word in run.stderr, run.stderr
    federation.assert_stays("sitea", pdh)
    if run.run_uuid is not None:
        for job in federation.site_steps(run.run_uuid, "sitea"):
            for made in (job["output_pdh"], job["log_pdh"]):
                found = made and federation.residency("sitea", made)
                if found and found["state"] == "resident" \
                        and federation.locators("sitea", made):  # not empty
                    federation.assert_stays("sitea", made)


@pytest.mark.parametrize("tool", ["cat-out.cwl", "approved-other-command.cwl"])
def test_a_copy_in_an_unapproved_image_or_command_stays(federation, tmp_path, tool):
    run = _run(federation, HERE / tool, {"cohort": federation.cohort()}, tmp_path)
    _refused(federation, run, federation.pdhs["sitea"])
    copy_steps = federation.site_steps(run.run_uuid, "sitea")
    made = [job for job in copy_steps if job["spec"]["command"][0] in ("cat", "cp")]
    assert made and made[0]["state"] == "Complete"
    assert federation.residency("sitea", made[0]["output_pdh"])["state"] == "resident"


def test_a_resident_log_is_refused_to_the_home_web_page_and_jobs_logs(federation, tmp_path):
    run = _run(federation, HERE / "to-stderr.cwl", {"cohort": federation.cohort()}, tmp_path)
    assert run.run_uuid is not None  # (its output stays too: the run fails at the end)
    home = federation.sites["home0"]
    step = next(job for job in federation.site_steps(run.run_uuid, "sitea")
                if "cat" in " ".join(job["spec"]["command"]))
    # What the web page asks for: the home server's proxy of the remote tree.
    answer = home.api("GET", f"/peers/sitea/jobs/{step['uuid']}/logs/stderr.txt")
    assert answer.status_code == 403
    assert "resident on cluster sitea" in answer.json()["detail"]
    assert step["log_pdh"] in answer.json()["detail"]
    env = {**os.environ, "CWL_CRUNCH_API_URL": home.url, "CWL_CRUNCH_API_TOKEN": home.token,
           "CWL_CRUNCH_HOME": str(tmp_path / "cli"), "PYTHONPATH": str(ROOT)}
    shown = subprocess.run([sys.executable, "-m", "cwl_crunch.cli.main", "jobs", "logs",
                            step["uuid"]], env=env, text=True, capture_output=True,
                           timeout=60, check=False)
    assert shown.returncode != 0 and "resident on cluster sitea" in shown.stderr
    assert "p0" not in shown.stdout  # no person's row of the cohort
    federation.assert_stays("sitea", step["log_pdh"])
    federation.assert_stays("sitea", federation.pdhs["sitea"])


@pytest.mark.parametrize("which", [0, 1], ids=["the-input", "its-secondary-file"])
def test_an_output_object_pointing_at_resident_data_is_refused(federation, tmp_path, which):
    run = _run(federation, HERE / "passthrough.cwl",
               {"cohort": federation.cohort(name="indexed"), "which": which}, tmp_path)
    _refused(federation, run, federation.indexed, federation.indexed)


def test_load_contents_on_the_remote_runner_is_refused(federation, tmp_path):
    run = _run(federation, HERE / "load-contents.cwl", {"cohort": federation.cohort()},
               tmp_path)
    _refused(federation, run, federation.pdhs["sitea"], "not their contents",
             federation.pdhs["sitea"])
    assert "p000" not in run.stderr  # no person's row of the cohort
    assert not run.outputs.get("text")


def test_a_step_hinted_home_on_resident_inputs_fails_before_anything_runs(federation,
                                                                          tmp_path):
    run = _run(federation, HERE / "hinted-home.cwl", {"cohort": federation.cohort()},
               tmp_path)
    assert run.returncode != 0
    assert f"collection {federation.pdhs['sitea']} is resident on cluster sitea" in run.stderr
    assert "sends it to cluster home0" in run.stderr
    assert run.run_uuid is not None
    assert [job for job in descendants(federation.sites, run.run_uuid)
            if job["spec"]["command"][0] == "wc"] == []
    federation.assert_stays("sitea", federation.pdhs["sitea"])


def test_direct_requests_with_the_peer_token_are_refused(federation):
    sitea, pdh = federation.sites["sitea"], federation.pdhs["sitea"]
    token = sitea.peer_tokens["home0"]  # what home0 holds of sitea
    locators = federation.locators("sitea", pdh)
    for path in (f"/collections/{pdh}", f"/collections/{pdh}/manifest",
                 f"/collections/{pdh}/entries", f"/collections/{pdh}/files/cohort.tsv",
                 f"/collections/{pdh}/blocks/{locators[0]}"):
        answer = sitea.api("GET", path, token=token)
        assert answer.status_code == 403, (path, answer.text)
        assert f"collection {pdh} is resident on cluster sitea" in answer.json()["detail"]
    # A manifest built over the cohort's block locators grants nothing: a peer may
    # store nothing, and a block is read through a collection that holds it.
    size = sum(int(locator.split("+")[1]) for locator in locators)
    forged = f". {' '.join(locators)} 0:{size}:stolen.tsv\n"
    for caller in (token, sitea.peer_tokens["siteb"]):
        assert sitea.api("POST", "/blocks/missing", token=caller,
                         json={"locators": locators}).status_code == 403
        stored = sitea.api("POST", "/collections", token=caller, content=forged)
        assert stored.status_code == 403, stored.text
    sent = next(job["spec"]["mounts"]["in"]["pdh"] for job in sitea.api(
        "GET", "/jobs?limit=1000").json() if job["peer_id"] == "home0")
    assert sitea.api("GET", f"/collections/{sent}/manifest", token=token).status_code == 200
    answer = sitea.api("GET", f"/collections/{sent}/blocks/{locators[0]}", token=token)
    assert answer.status_code == 404 and "has no block" in answer.json()["detail"]
    # Nor does asking whether it is there say anything but that it is, and stays.
    place = sitea.api("GET", f"/federation/collections/{pdh}", token=token).json()
    assert place == {"cluster_id": "sitea", "held": True, "resident": True,
                     "reason": "stored resident"}


def test_a_rule_removed_while_a_job_runs_releases_nothing(federation, tmp_path):
    sitea = federation.sites["sitea"]
    rule = crunch("release", "add", "--image", "localhost/meta-analysis-regress:1",
                  "--command", "sh -c", "--note", "line counts", site=sitea, on_host=True)
    assert rule.returncode == 0, rule.stderr
    # In force for the whole job: released, and the count comes home.
    run = _run(federation, HERE / "slow-approved.cwl",
               {"cohort": federation.cohort(), "seconds": 0}, tmp_path / "kept")
    assert run.returncode == 0, run.stderr
    lines = len((federation.cohorts / "sitea" / "cohort.tsv").read_text().splitlines())
    assert (tmp_path / "kept" / "out" / "n.txt").read_text().split() == ["0", str(lines)]
    # Removed while the job runs: its output stays.
    from federation_sites import runner_process

    home = federation.sites["home0"]
    with runner_process(home, str(HERE / "slow-approved.cwl"),
                        {"cohort": federation.cohort(), "seconds": 6}, tmp_path / "removed",
                        containers=True) as runner:
        step = wait_until(lambda: next(
            (job for job in sitea.api("GET", "/jobs?state=Running&limit=1000").json()
             if job["spec"]["command"][:2] == ["sh", "-c"]
             and "sleep 6" in job["spec"]["command"][2]), None),
            timeout=120, what="the slow step running on sitea")
        removed = crunch("release", "remove", rule.stdout.strip(), site=sitea, on_host=True)
        assert removed.returncode == 0, removed.stderr
        in_force = crunch("release", "list", site=sitea, on_host=True).stdout
        every = crunch("release", "list", "--all", site=sitea, on_host=True).stdout
        assert rule.stdout.strip() not in in_force and federation.rules["sitea"] in in_force
        assert rule.stdout.strip() in every and "line counts" in every
        _, stderr = runner.communicate(timeout=300)
    assert runner.returncode != 0 and "resident" in stderr, stderr
    ended = sitea.api("GET", f"/jobs/{step['uuid']}").json()
    assert ended["state"] == "Complete"
    assert federation.residency("sitea", ended["output_pdh"])["state"] == "resident"
    federation.assert_stays("sitea", ended["output_pdh"])


def test_ls_at_the_site_shows_what_stays_and_why(federation):
    shown = crunch("ls", federation.pdhs["sitea"], site=federation.sites["sitea"])
    assert shown.returncode == 0, shown.stderr
    assert "cohort.tsv" in shown.stdout and "resident: stored resident" in shown.stdout


@pytest.mark.browser
def test_the_web_pages_show_what_stays_and_refuse_it_at_home(federation, tmp_path):
    from browser import at, chromium, shows

    run = _run(federation, HERE / "to-stderr.cwl", {"cohort": federation.cohort()},
               tmp_path, "--disable-reuse")
    step = next(job for job in federation.site_steps(run.run_uuid, "sitea")
                if "cat" in " ".join(job["spec"]["command"]))
    sitea, home = federation.sites["sitea"], federation.sites["home0"]
    def refused(message: str) -> bool:  # what this test provokes, and nothing else
        return ("status of 403" in message or "status of 404" in message) and (
            "/peers/" in message or "/logs/stdout.txt" in message)

    with chromium(tmp_path / "browser", expected=refused) as page:
        # The site's own page: the step's output and logs stay, and why.
        page.get(f"{sitea.url}/#/jobs/{step['uuid']}?token={sitea.token}")
        at(page, f"/jobs/{step['uuid']}")
        said = shows(page, '.details [data-field="residency"]',
                     lambda shown: "logs: resident" in shown)
        # (The output's bytes are an earlier run's too: its record names that job.)
        assert "output: resident (made by job sitea-job-" in said
        assert f"logs: resident (the log of job {step['uuid']}, which read resident " \
               f"collection {federation.pdhs['sitea']})" in said
        # Home's page of the same job (through its peer token): refused, saying why.
        page.get(f"{home.url}/#/jobs/{step['uuid']}?token={home.token}")
        at(page, f"/jobs/{step['uuid']}")
        shows(page, ".output", lambda shown: "resident on cluster sitea" in shown)
        page.get(f"{home.url}/#/jobs/{step['uuid']}/logs/stderr.txt")
        shows(page, "#error", lambda shown: "resident on cluster sitea" in shown)


def test_data_resident_at_home_is_never_sent_to_a_peer(federation, tmp_path):
    home, sitea = federation.sites["home0"], federation.sites["sitea"]
    (tmp_path / "private.tsv").write_text("home's own\tsecret\n")
    (tmp_path / "plain.txt").write_text("travels\n")
    private = federation.put_resident("home0", tmp_path / "private.tsv")
    plain = crunch("put", str(tmp_path / "plain.txt"), site=home).stdout.strip()
    inputs = {"cohort": {"class": "File", "location": f"keep:{private}/private.tsv"}}
    run = _run(federation, HERE / "cat-out.cwl", inputs, tmp_path / "run",
               "--steps-on-cluster", "sitea")
    assert run.returncode != 0
    assert f"collection {private} is resident on cluster home0" in run.stderr
    assert "sends it to cluster sitea" in run.stderr
    # Asked directly, the home server refuses to send it, naming it.
    answer = home.api("POST", "/peers/sitea/runs", json={"run_pdh": plain,
                                                         "input_pdhs": [private]})
    assert answer.status_code == 403
    assert f"collection {private} is resident on cluster home0" in answer.json()["detail"]
    federation.assert_stays("home0", private)
    # And the peer, asked for it by its peer token, is refused it too.
    refused = home.api("GET", f"/collections/{private}/manifest",
                       token=home.peer_tokens["sitea"])
    assert refused.status_code == 403 and "resident" in refused.json()["detail"]
    assert sitea.api("GET", "/jobs?limit=1000").status_code == 200


def test_a_cluster_that_keeps_everything_lets_only_released_results_go(federation, tmp_path):
    siteb = federation.sites["siteb"]
    siteb.server.kill()
    siteb.server.environment["CWL_CRUNCH_RESIDENCY"] = "resident"
    siteb.server.start()
    try:
        (tmp_path / "plain.txt").write_text("sent from home\n")
        inputs = {"cohort": {"class": "File", "path": str(tmp_path / "plain.txt")}}
        run = _run(federation, HERE / "cat-out.cwl", inputs, tmp_path / "run",
                   "--steps-on-cluster", "siteb")
        assert run.returncode != 0
        assert "on cluster siteb, where everything stays" in run.stderr, run.stderr
        [step] = [job for job in federation.site_steps(run.run_uuid, "siteb")
                  if job["spec"]["command"][0] == "cat"]
        made = federation.residency("siteb", step["output_pdh"])
        assert made["state"] == "resident" and made["job_uuid"] == step["uuid"]
        # (Its bytes are those home sent: what matters is that it never came home.)
        home_store = CollectionStore(federation.sites["home0"].home / "store")
        assert not home_store.has_collection(step["output_pdh"])
    finally:
        siteb.server.kill()
        del siteb.server.environment["CWL_CRUNCH_RESIDENCY"]
        siteb.server.start()


@pytest.mark.parametrize("tool, blocker", [
    ("approved-staged.cwl", "its output holds blocks of resident collection"),
    ("approved-environment.cwl", "its environment sets PYTHONPATH"),
], ids=["cohort-staged-into-the-output", "environment"])
def test_the_approved_command_releases_nothing_it_was_not_approved_for(
        federation, tmp_path, tool, blocker):
    # The indexed cohort: no regression of it was released before (a released table of
    # identical bytes would be released already: one PDH, one record).
    run = _run(federation, HERE / tool, {"cohort": federation.cohort(name="indexed")},
               tmp_path)
    _refused(federation, run, federation.indexed)
    [step] = [job for job in federation.site_steps(run.run_uuid, "sitea")
              if job["spec"]["command"][:2] == ["python3", "/opt/regress.py"]]
    kept = federation.residency("sitea", step["output_pdh"])
    assert kept["state"] == "resident" and blocker in kept["reason"]
    assert federation.rules["sitea"] in kept["reason"]


def test_a_step_on_the_host_may_not_mount_resident_data(federation, tmp_path):
    # --no-container: the peer's run would run its steps on the site's host, where a
    # command could reach the API (its own record, children) or the network.
    run = run_workflow(federation.sites["home0"], str(HERE / "host-cat.cwl"),
                       {"cohort": federation.cohort()}, tmp_path, containers=False,
                       timeout=600)
    assert run.returncode != 0
    assert "must run in a container (resident data never leaves its cluster)" in run.stderr
    assert [job for job in federation.site_steps(run.run_uuid, "sitea")
            if job["spec"]["command"][0] == "cat"] == []
