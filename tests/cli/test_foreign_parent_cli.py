"""`jobs show` and `jobs tree` of a job whose parent is on another cluster."""

from __future__ import annotations

from cwl_crunch.model import JobSpec

FOREIGN = "sitea-job-0123456789abcde"


def test_jobs_show_and_tree_say_the_parent_is_on_another_cluster(cli):
    client = cli.cluster.client
    job = client.submit(JobSpec(("true",), cores=0.1, reuse=False), parent_uuid=FOREIGN)
    client.wait([job.uuid], timeout=60)
    shown = cli.run("jobs", "show", job.uuid)
    assert shown.returncode == 0, shown.stderr
    assert f"{FOREIGN} (on cluster sitea, not readable here)" in shown.stdout
    tree = cli.run("jobs", "tree", job.uuid)
    assert tree.returncode == 0, tree.stderr
    lines = tree.stdout.splitlines()
    assert lines[0] == f"parent {FOREIGN} (on cluster sitea, not readable here)"
    assert lines[1].startswith(job.uuid)
