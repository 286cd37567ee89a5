"""The core's residency, through the SDK and the CLI, embedded and over HTTP: resident
collections, residency following the data at a job's end, the cluster's default."""

from __future__ import annotations

import sys
import textwrap

import pytest

import cwl_crunch
from cwl_crunch import CollectionMount
from cwl_crunch.cli.main import main as cli_main

WAIT = 60


def test_put_resident_and_what_a_job_makes_of_it(cluster, tmp_path, capsys):
    (tmp_path / "cohort.tsv").write_text("p1\t1\n")
    (tmp_path / "other.txt").write_text("travels\n")
    cohort = cluster.put(tmp_path / "cohort.tsv", resident=True)
    plain = cluster.put(tmp_path / "other.txt")
    assert cluster.residency(cohort).resident
    assert cluster.residency(plain) is None
    made = cluster.submit(["sh", "-c", "wc -l in/cohort.tsv > out/n; echo said >&2"],
                          mounts={"in": CollectionMount(cohort)}).result(timeout=WAIT)
    untouched = cluster.submit(["cp", "in/other.txt", "out/"],
                               mounts={"in": CollectionMount(plain)}).result(timeout=WAIT)
    for pdh in (made.output_pdh, made.log_pdh):
        found = cluster.residency(pdh)
        assert found.resident and found.job_uuid == made.uuid and found.source_pdh == cohort
    assert cluster.residency(untouched.output_pdh) is None
    assert cluster.residency(untouched.log_pdh) is None


def test_ls_and_jobs_show_say_what_stays(cluster, tmp_path, capsys, monkeypatch):
    (tmp_path / "cohort.tsv").write_text("p1\t1\n")
    cohort = cluster.put(tmp_path / "cohort.tsv", resident=True)
    job = cluster.submit(["sh", "-c", "wc -l < in/cohort.tsv > out/n"],
                         mounts={"in": CollectionMount(cohort)}).result(timeout=WAIT)
    _point_cli_at(cluster, monkeypatch)
    capsys.readouterr()
    assert cli_main(["ls", cohort]) == 0
    assert "resident: stored resident" in capsys.readouterr().out
    assert cli_main(["jobs", "show", job.uuid]) == 0
    shown = capsys.readouterr().out
    assert f"made by job {job.uuid} from resident collection {cohort}" in shown
    assert "log residency" in shown


def _point_cli_at(cluster, monkeypatch) -> None:
    """The CLI, in this process, at the same cluster as ``cluster``."""
    config = cluster.client.config
    monkeypatch.setenv("CWL_CRUNCH_HOME", str(config.home))
    if config.api_url:
        monkeypatch.setenv("CWL_CRUNCH_API_URL", config.api_url)
        monkeypatch.setenv("CWL_CRUNCH_API_TOKEN", config.api_token)


def test_a_job_that_reads_resident_contents_through_the_api_keeps_its_output(cluster,
                                                                             tmp_path):
    # The job mounts nothing: it stores a collection (its token may read what it
    # stored), waits until a person makes that resident, then reads it.
    program = textwrap.dedent("""
        import pathlib, time
        import cwl_crunch
        pathlib.Path("secret.txt").write_text("secret\\n")
        with cwl_crunch.connect() as cluster:
            pdh = cluster.put("secret.txt")
            while cluster.residency(pdh) is None:
                time.sleep(0.05)
            text = cluster.read_text(pdh, "secret.txt")
        pathlib.Path("out/copy.txt").write_text(text.upper())
    """)
    job = cluster.submit([sys.executable, "-c", program])
    (tmp_path / "secret.txt").write_text("secret\n")
    secret = cluster.put(tmp_path / "secret.txt")  # the same bytes: the same PDH
    cluster.client.make_resident(secret, "a person says so")
    record = job.result(timeout=WAIT)
    assert cluster.read_text(record.output_pdh, "copy.txt") == "SECRET\n"
    found = cluster.residency(record.output_pdh)
    assert found.resident and found.job_uuid == record.uuid and found.source_pdh == secret


def test_a_cluster_that_keeps_everything(tmp_path):
    with cwl_crunch.connect(home=tmp_path / "home", poll_interval=0.05,
                            residency="resident") as cluster:
        (tmp_path / "a.txt").write_text("a\n")
        pdh = cluster.put(tmp_path / "a.txt")
        assert "everything stays" in cluster.residency(pdh).reason
        job = cluster.submit(["sh", "-c", "echo b > out/b"]).result(timeout=WAIT)
        assert cluster.residency(job.output_pdh).resident


def test_residency_must_be_a_known_value(tmp_path):
    with pytest.raises(cwl_crunch.errors.ConfigError, match="residency 'sometimes'"):
        cwl_crunch.connect(home=tmp_path / "home", residency="sometimes")
