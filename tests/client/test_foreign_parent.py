"""A job's parent may live on another cluster: its UUID's prefix says which. Embedded and
over HTTP (the ``client`` fixture runs both)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import cwl_crunch
from cwl_crunch.errors import CrunchError
from cwl_crunch.model import CollectionMount, JobFilter, JobSpec

FOREIGN = "sitea-job-0123456789abcde"
QUICK = {"cores": 0.1, "ram": 1 << 20, "reuse": False}


def test_a_job_with_a_parent_on_another_cluster_is_submitted_stored_and_listed(client):
    job = client.submit(JobSpec(("true",), **QUICK), parent_uuid=FOREIGN)
    assert job.parent_uuid == FOREIGN
    [done] = client.wait([job.uuid], timeout=60)
    assert done.succeeded and done.parent_uuid == FOREIGN
    assert client.get_job(job.uuid).parent_uuid == FOREIGN
    assert [j.uuid for j in client.list_jobs(JobFilter(parent_uuid=FOREIGN))] == [job.uuid]
    # Not one of this cluster's top-level jobs either: it has a parent.
    assert job.uuid not in {j.uuid for j in client.list_jobs(JobFilter(top_level=True))}


@pytest.mark.parametrize(("parent", "words"), [
    ("local-job-0123456789abcde", "is a job of this cluster"),
    ("not a uuid", "not a job UUID"),
])
def test_a_person_names_only_a_parent_of_another_cluster(client, parent, words):
    with pytest.raises(CrunchError, match=words):
        client.submit(JobSpec(("true",), **QUICK), parent_uuid=parent)


CHILD_NAMING_A_PARENT = """
import cwl_crunch
from cwl_crunch.model import JobSpec
try:
    cwl_crunch.connect().client.submit(JobSpec(("true",), cores=0.1),
                                       parent_uuid="sitea-job-0123456789abcde")
except cwl_crunch.CrunchError as error:
    print("refused:", error)
"""


def test_a_job_token_cannot_name_a_parent(cluster, tmp_path):
    """A job's token makes only its own children: naming another parent is refused."""
    (tmp_path / "program.py").write_text(CHILD_NAMING_A_PARENT)
    program = CollectionMount(cluster.put(tmp_path / "program.py"))
    source = str(Path(cwl_crunch.__file__).parent.parent)
    future = cluster.submit([sys.executable, "in/program.py"], stdout="out/said.txt",
                            mounts={"in": program}, cores=0.25, reuse=False,
                            env={"PYTHONPATH": source})
    record = cluster.client.wait([future.uuid], timeout=120)[0]
    assert record.succeeded, record
    said = cluster.read_text(record.output_pdh or "", "said.txt")
    assert "refused:" in said and "cannot name a parent" in said, said
