"""The process tree page of the home cluster shows a federated run whole: from the run,
through the step handed to siteb, to the runner there and its step, whose log is read
through the home server (its peer token). Headless Chromium (tests/browser.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from browser import at, attribute, chromium, click, log_shows, row, shows, text
from federation_sites import children, run_workflow

pytestmark = [pytest.mark.federation, pytest.mark.browser, pytest.mark.slow,
              pytest.mark.xdist_group("federation")]


def test_the_page_clicks_from_a_home_run_to_a_remote_steps_log(sites, tmp_path):
    sitea = sites["sitea"]
    (tmp_path / "in.txt").write_text("seen from home\n")
    run = run_workflow(sitea, "chain.cwl",
                       {"text": {"class": "File", "path": str(tmp_path / "in.txt")},
                        "where1": "siteb", "where2": "sitea", "where3": "sitea"}, tmp_path)
    assert run.returncode == 0, run.stderr
    [home_step] = [job for job in children(sites, run.run_uuid) if job["spec"]["name"]
                   .endswith("/one")]
    [remote_runner] = children(sites, home_step["uuid"])
    assert remote_runner["uuid"].startswith("siteb-job-")
    [remote_step] = children(sites, remote_runner["uuid"])
    assert remote_step["uuid"].startswith("siteb-job-")

    with chromium(tmp_path / "browser") as page:
        page.get(f"{sitea.url}/#/jobs/{run.run_uuid}?token={sitea.token}")
        shows(page, row(home_step["uuid"], "state"), "Complete")
        click(page, f'{row(home_step["uuid"], "name")} a')
        at(page, f"/jobs/{home_step['uuid']}")
        # The step's child is the runner on siteb, marked with its cluster.
        shows(page, row(remote_runner["uuid"], "state"), "Complete")
        assert "on siteb" in text(page, row(remote_runner["uuid"], "name"))
        click(page, f'{row(remote_runner["uuid"], "name")} a')
        at(page, f"/jobs/{remote_runner['uuid']}")
        shows(page, ".job-title", lambda shown: "on siteb" in shown)
        shows(page, ".breadcrumb", lambda shown: run.run_uuid not in shown
              and home_step["spec"]["name"] in shown)
        shows(page, row(remote_step["uuid"], "state"), "Complete")
        click(page, f'{row(remote_step["uuid"], "name")} a')
        at(page, f"/jobs/{remote_step['uuid']}")
        # The page fills the details in once the job's record is in: wait for them.
        shows(page, '.details [data-field="command"]', lambda shown: shown.startswith("sh -c"))
        click(page, '.tab[data-log="worker.txt"]')
        at(page, f"/jobs/{remote_step['uuid']}/logs/worker.txt")
        assert "exit code 0" in log_shows(page, "worker.txt", lambda t: "exit code" in t)
        assert attribute(page, "#log-text", "data-final") == "true"
        # Its output, listed through the home server.
        shows(page, ".output", lambda shown: "said.txt" in shown)
    assert Path(run.outputs["said"]["path"]).read_text() == "seen from home\none\ntwo\nthree\n"
