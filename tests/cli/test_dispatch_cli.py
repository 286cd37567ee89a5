"""``cwl-crunch dispatch``: runs jobs left queued by a program that ended."""

from __future__ import annotations

import subprocess
import sys

import cwl_crunch
from cwl_crunch.cli.main import main
from cwl_crunch.config import load_config
from cwl_crunch.core import EmbeddedClient


def test_dispatch_until_idle_runs_what_was_left_queued(tmp_path, monkeypatch):
    home = tmp_path / "home"
    # Submit without ever running a dispatcher: a program that submits and exits.
    program = (
        "from cwl_crunch.core import EmbeddedClient\n"
        "from cwl_crunch.client import JobSpec\n"
        "from cwl_crunch.config import load_config\n"
        "client = EmbeddedClient(load_config())\n"
        "client.core.dispatcher.start = lambda: None\n"
        "for i in range(3):\n"
        "    print(client.submit(JobSpec(('sh', '-c', f'echo {i} > out/n'), cores=0.5)).uuid)\n"
        "client.close()\n"
    )
    submitted = subprocess.run([sys.executable, "-c", program], capture_output=True,
                               text=True, check=True, timeout=60,
                               env={"CWL_CRUNCH_HOME": str(home), "PATH": "/usr/bin:/bin"})
    uuids = submitted.stdout.split()
    client = EmbeddedClient(load_config(home=home))
    try:
        assert [job.state for job in client.get_jobs(uuids)] == ["Queued"] * 3
        monkeypatch.setenv("CWL_CRUNCH_HOME", str(home))
        assert main(["dispatch", "--until-idle"]) == 0
        records = client.get_jobs(uuids)
        assert [job.state for job in records] == ["Complete"] * 3
        with cwl_crunch.Cluster(client) as cluster:
            assert [cluster.read_text(job.output_pdh or "", "n") for job in records] == [
                "0\n", "1\n", "2\n"]
    finally:
        client.close()


def test_dispatch_until_idle_returns_at_once_when_nothing_is_queued(tmp_path, monkeypatch):
    monkeypatch.setenv("CWL_CRUNCH_HOME", str(tmp_path / "home"))
    assert main(["dispatch", "--until-idle"]) == 0
    client = EmbeddedClient(load_config())
    try:
        assert client.list_jobs(cwl_crunch.client.JobFilter()) == []  # it submits nothing
    finally:
        client.close()
