"""The process tree page at ``/``, driven in headless Chromium (Debian's, through
selenium: ``scripts/browser-setup.sh``) against a live server running real work: the
gc-content CWL workflow submitted with ``cwl-crunch-runner --cluster URL --submit`` (the
runner job, its steps its children), and a driver job whose program submits its steps
through the SDK (one of which waits for a gate, to watch it run and end).

Without Chromium the browser tests skip, or fail when TESTS_REQUIRE_SERVICES=1.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from browser import at, attribute, chromium, click, find, log_shows, row, shows, text
from polling import wait_until

from cwl_crunch.client import JobFilter, JobRecord, JobSpec
from cwl_crunch.core import EmbeddedClient
from cwl_crunch.server.serve import ServerThread

GC_CONTENT = Path(__file__).resolve().parents[2] / "cwl-examples" / "gc-content"
STEP_OUTPUTS = ["out/gc_summary.tsv", "out/sample_a.tsv", "out/sample_b.tsv",
                "out/sample_c.tsv"]
"""Where the workflow's four steps (three scattered, one summary) write their stdout."""
SEP = "\u203a"
"""Between the links of the breadcrumb."""

# The driver job: a quick step, then a step that waits for a gate file; then the driver
# itself waits for a second gate before it ends.
DRIVER = """
import sys, time
from pathlib import Path
import cwl_crunch

with cwl_crunch.connect() as cluster:
    quick = cluster.submit(["echo", "quick"], name="quick", cores=0.25, reuse=False)
    gated = cluster.submit(
        ["sh", "-c", f"echo waiting for the gate; while [ ! -e '{sys.argv[1]}' ]; do "
                     "sleep 0.05; done; echo through the gate"],
        name="gated", cores=0.25, reuse=False)
    records = cwl_crunch.wait_all([quick, gated], timeout=120)
    assert all(record.succeeded for record in records), records
while not Path(sys.argv[2]).exists():
    time.sleep(0.05)
"""


@pytest.fixture
def page(api_server: ServerThread, tmp_path: Path) -> Iterator[Any]:
    """Closed before the server (its event stream must not hold the server's shutdown)."""
    with chromium(tmp_path) as driver:
        yield driver


def run_gc_content(server: ServerThread, token: str, outdir: Path) -> str:
    """Submits the gc-content workflow as a runner job and waits for it (its outputs are
    copied to ``outdir``); returns the run's UUID."""
    environment = {name: value for name, value in os.environ.items()
                   if not name.startswith("CWL_CRUNCH_")}
    environment.update(CWL_CRUNCH_API_TOKEN=token,
                       CWL_CRUNCH_HOME=str(outdir.parent / "client-home"))
    done = subprocess.run(
        ["cwl-crunch-runner", "--cluster", server.url, "--submit", "--no-container",
         "--quiet", "--outdir", str(outdir), str(GC_CONTENT / "workflow.cwl"),
         str(GC_CONTENT / "inputs.yml")],
        env=environment, capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stderr
    runs = server.core.list_jobs(JobFilter(top_level=True, limit=1))
    return runs[0].uuid


def start_driver(server: ServerThread, tmp_path: Path) -> tuple[str, Path, Path]:
    """The driver job's UUID, the gate of its "gated" step and the gate of its end."""
    step_gate, end_gate = tmp_path / "step-gate", tmp_path / "end-gate"
    run = server.core.submit(JobSpec(
        (sys.executable, "-c", DRIVER, str(step_gate), str(end_gate)), name="driver",
        cores=0.25, reuse=False))
    return run.uuid, step_gate, end_gate


def children(server: ServerThread, uuid: str) -> dict[str, JobRecord]:
    return {job.name: job for job in server.core.list_jobs(JobFilter(parent_uuid=uuid))}


# Tests ---------------------------------------------------------------------------------

DURATION = re.compile(r"^\d+(\.\d)? s$|^\d+ min( \d+ s)?$")


@pytest.mark.browser
def test_clicking_from_the_run_to_a_step_shows_its_state_parent_and_logs(
        api_server, api_token, page, tmp_path):
    run = run_gc_content(api_server, api_token, tmp_path / "out")
    name = api_server.core.get_job(run).name  # the workflow's file name
    steps = children(api_server, run)
    assert sorted(job.spec.stdout or "" for job in steps.values()) == STEP_OUTPUTS
    # The same run again is the same work: the whole run is reused.
    again = run_gc_content(api_server, api_token, tmp_path / "out-again")
    assert api_server.core.get_job(again).reused_job_uuid == run

    page.get(f"{api_server.url}/#token={api_token}")
    shows(page, row(run, "state"), "Complete")
    assert "token" not in page.current_url  # taken out of the URL at once
    rows = page.find_elements("css selector", "table.jobs tbody tr")
    assert [r.get_attribute("data-uuid") for r in rows] == [again, run]  # newest first
    assert text(page, row(run, "name")) == f"{name}\n{run}"
    assert DURATION.match(text(page, row(run, "duration"))), text(page, row(run, "duration"))
    assert text(page, row(run, "reuse")) == ""
    assert text(page, row(again, "reuse")) == "\u21bb reused"
    assert attribute(page, f'{row(again, "reuse")} a', "href").endswith(f"#/jobs/{run}")

    click(page, f'{row(run, "name")} a')
    at(page, f"/jobs/{run}")
    for step_name, job in steps.items():
        shows(page, row(job.uuid, "state"), "Complete")
        assert text(page, row(job.uuid, "name")) == f"{step_name}\n{job.uuid}"
    shows(page, ".breadcrumb", f"Runs {SEP} {name}")

    step = next(job for job in steps.values() if job.spec.stdout == "out/sample_a.tsv")
    click(page, f'{row(step.uuid, "name")} a')
    at(page, f"/jobs/{step.uuid}")
    shows(page, ".job-title", f"{step.name} Complete")
    shows(page, ".breadcrumb", f"Runs {SEP} {name} {SEP} {step.name}")
    assert attribute(page, ".breadcrumb a.job-link", "href").endswith(f"#/jobs/{run}")
    assert text(page, '.details [data-field="exit_code"]') == "0"
    assert text(page, '.details [data-field="command"]').startswith("awk -v name=sample_a")
    # The step's stdout (its sample's row of the table), as the runner also fetched it.
    expected = (tmp_path / "out" / "sample_a.tsv").read_text()
    assert expected.startswith("sample_a\t")
    assert log_shows(page, "stdout.txt", bool) == expected
    click(page, '.tab[data-log="worker.txt"]')
    at(page, f"/jobs/{step.uuid}/logs/worker.txt")
    assert "exit code 0" in log_shows(page, "worker.txt", lambda t: "exit code" in t)
    assert attribute(page, "#log-text", "data-final") == "true"
    click(page, '.tab[data-log="stderr.txt"]')
    wait_until(lambda: attribute(page, "#log-text", "data-final") == "true",
               what="the stderr log read")
    assert text(page, ".log-status") == "empty"

    page.back()  # the back button goes back through the logs, then to the run
    at(page, f"/jobs/{step.uuid}/logs/worker.txt")
    assert "exit code 0" in log_shows(page, "worker.txt", lambda t: "exit code" in t)
    page.back()
    page.back()
    at(page, f"/jobs/{run}")
    shows(page, row(step.uuid, "state"), "Complete")
    click(page, ".breadcrumb a[href='#/']")
    shows(page, row(again, "state"), "Complete")
    click(page, f'{row(again, "name")} a')
    shows(page, ".job-title", f"{name} Complete")
    assert text(page, '.details [data-field="reuse"] a.reused-link') == run
    shows(page, ".children .empty", "No child jobs.")


@pytest.mark.browser
def test_a_download_link_serves_the_output_file(api_server, api_token, page, tmp_path):
    run = run_gc_content(api_server, api_token, tmp_path / "out")
    record = api_server.core.get_job(run)
    page.get(f"{api_server.url}/#/jobs/{run}?token={api_token}")
    shows(page, ".job-title", f"{record.name} Complete")
    link = '.output a.download[download="gc_summary.tsv"]'
    shows(page, link, "gc_summary.tsv")
    href = attribute(page, link, "href")
    assert href == f"{api_server.url}/api/v1/collections/{record.output_pdh}/files/gc_summary.tsv"
    click(page, link)
    saved = tmp_path / "downloads" / "gc_summary.tsv"
    wait_until(saved.exists, what="the downloaded file")
    expected = (tmp_path / "out" / "gc_summary.tsv").read_text()
    assert expected.startswith("sample\tbases\tgc\nsample_a\t")
    assert saved.read_text() == expected
    # The link itself needs the token, as every API call does.
    assert httpx.get(href).status_code == 401
    served = httpx.get(href, headers={"Authorization": f"Bearer {api_token}"})
    assert served.text == expected
    assert 'filename="gc_summary.tsv"' in served.headers["content-disposition"]


@pytest.mark.browser
def test_running_jobs_turn_complete_on_the_page_without_a_reload(
        api_server, api_token, page, tmp_path):
    run, step_gate, end_gate = start_driver(api_server, tmp_path)
    try:
        gated = wait_until(lambda: (job := children(api_server, run).get("gated")) and
                           job.state == "Running" and job, timeout=60, what="gated runs")
        page.get(f"{api_server.url}/#token={api_token}")
        shows(page, row(run, "state"), "Running")
        page.execute_script("window.notReloaded = true;")
        click(page, f'{row(run, "name")} a')
        shows(page, row(gated.uuid, "state"), "Running")
        click(page, f'{row(gated.uuid, "name")} a')
        shows(page, ".job-title", "gated Running")
        shows(page, ".breadcrumb", f"Runs {SEP} driver {SEP} gated")
        shows(page, ".log-status", "following the running job\u2026")
        assert log_shows(page, "stdout.txt", bool) == "waiting for the gate\n"
        shows(page, "#live", "live")

        step_gate.touch()  # the step ends: the page follows without being loaded again
        shows(page, ".job-title", "gated Complete")
        log_shows(page, "stdout.txt", lambda t: t == "waiting for the gate\nthrough the gate\n")
        wait_until(lambda: attribute(page, "#log-text", "data-final") == "true",
                   what="the log complete")
        assert text(page, '.details [data-field="exit_code"]') == "0"

        click(page, '.breadcrumb a[href="#/"]')
        shows(page, row(run, "state"), "Running")
        end_gate.touch()  # and the run ends: its row on the top-level list follows
        shows(page, row(run, "state"), "Complete")
        assert DURATION.match(text(page, row(run, "duration")))
        assert page.execute_script("return window.notReloaded;") is True
    finally:
        step_gate.touch()
        end_gate.touch()
        wait_until(lambda: api_server.core.get_job(run).finished, timeout=60,
                   what="the run ends")


@pytest.mark.browser
def test_the_page_asks_for_a_token_keeps_it_for_the_tab_and_forgets_it(
        api_server, api_token, page):
    page.get(f"{api_server.url}/")
    wait_until(lambda: find(page, "#login").is_displayed(), what="the token form")
    find(page, "#token").send_keys("crunch/not-a-token")
    click(page, "#login button")
    shows(page, "#login-error", lambda t: t.startswith("The server refused the token"))
    assert find(page, "#login").is_displayed()
    find(page, "#token").send_keys(api_token)
    click(page, "#login button")
    shows(page, ".top-level h1", "Runs")
    shows(page, ".top-level .empty", lambda t: t.startswith("No jobs yet"))
    assert text(page, "#error") == ""
    stored = "return sessionStorage.getItem('cwl-crunch-token')"
    assert page.execute_script(stored) == api_token
    page.refresh()  # kept for this tab: no form again
    shows(page, "#live", "live")
    assert not find(page, "#login").is_displayed()
    click(page, "#logout")
    wait_until(lambda: find(page, "#login").is_displayed(), what="the token form again")
    assert page.execute_script(stored) is None
    assert text(page, "#view") == ""
    # The refused token's requests are the only errors (the fixture checks for others).
    refused = [entry for entry in page.get_log("browser") if entry["level"] == "SEVERE"]
    assert refused and all("status of 401" in entry["message"] for entry in refused), refused


@pytest.mark.browser
def test_the_page_follows_jobs_with_long_polls_where_the_stream_fails(
        api_server, api_token, page, tmp_path):
    page.execute_cdp_cmd("Network.enable", {})
    page.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["*/api/v1/events/stream*"]})
    page.get(f"{api_server.url}/#token={api_token}")
    shows(page, ".top-level h1", "Runs")
    shows(page, "#live", "live")  # after the stream failed twice: long polls
    gate = tmp_path / "gate"
    try:
        job = api_server.core.submit(JobSpec(
            ("sh", "-c", f"while [ ! -e '{gate}' ]; do sleep 0.02; done"), name="polled",
            cores=0.25, reuse=False))
        shows(page, row(job.uuid, "state"), "Running")
        gate.touch()
        shows(page, row(job.uuid, "state"), "Complete")
    finally:
        gate.touch()
    requested = page.execute_script(
        "return performance.getEntriesByType('resource').map((entry) => entry.name);")
    assert any("/api/v1/events?after=" in name for name in requested), requested
    # Leave the page, then end the server's open long poll with an event of its own.
    page.get("about:blank")
    api_server.core.submit(JobSpec(("true",), cores=0.25, reuse=False))
    wait_until(lambda: not api_server.core.list_jobs(JobFilter(
        states=frozenset({"Queued", "Running"}))), what="no job left running")


# The page's files, without a browser -----------------------------------------------------

def test_the_page_and_its_files_are_served_with_a_strict_policy(api_server):
    page_response = httpx.get(f"{api_server.url}/")
    assert page_response.status_code == 200
    assert page_response.headers["content-type"] == "text/html; charset=utf-8"
    assert '<script type="module" src="/static/app.js">' in page_response.text
    policy = page_response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "default-src 'none'" in policy
    for name, kind in (("app.js", "text/javascript"), ("api.js", "text/javascript"),
                       ("app.css", "text/css")):
        served = httpx.get(f"{api_server.url}/static/{name}")
        assert served.status_code == 200 and served.headers["content-type"].startswith(kind)
    for missing in ("nothing.js", "..%2Fweb.py", "%2E%2E%2Fapp.py", "..%2F__init__.py"):
        assert httpx.get(f"{api_server.url}/static/{missing}").status_code == 404
    # Every module the page imports is served (no build step, nothing from elsewhere).
    scripts = {"app.js"}
    pending = ["app.js"]
    while pending:
        source = httpx.get(f"{api_server.url}/static/{pending.pop()}").text
        assert "http://" not in source and "https://" not in source
        for imported in re.findall(r'from "\./([\w.]+)"', source):
            if imported not in scripts:
                scripts.add(imported)
                pending.append(imported)
                assert httpx.get(f"{api_server.url}/static/{imported}").status_code == 200
    assert scripts >= {"app.js", "api.js", "views.js", "table.js", "logs.js", "format.js"}


def test_a_parent_on_another_cluster_shows_as_a_leaf_without_a_link(api_server, api_token,
                                                                    page):
    """Its record is that cluster's: the page names it and asks nothing for it."""
    foreign = "sitea-job-0123456789abcde"
    job = EmbeddedClient.over(api_server.core).submit(
        JobSpec(("true",), name="remote child", cores=0.1, reuse=False),
        parent_uuid=foreign)
    page.get(f"{api_server.url}/#token={api_token}")
    page.get(f"{api_server.url}/#/jobs/{job.uuid}")
    shows(page, ".breadcrumb",
          f"Runs {SEP} {foreign} (on cluster sitea) {SEP} remote child")
    assert page.find_elements("css selector", ".breadcrumb a.job-link") == []
