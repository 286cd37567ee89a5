"""Every ClusterClient method, run against both clients (the ``client`` fixture is the
embedded client and the HTTP client of a live server): what one does, the other does.
``test_every_method_has_a_contract_test`` fails when a method is added to the interface
without a test here (block transfer: tests/client/test_block_transfer.py)."""

from __future__ import annotations

import inspect
import os
import sys

import test_block_transfer as blocks

from cwl_crunch.errors import JobNotFound
from cwl_crunch.model import ClusterClient, JobFilter, JobOutcome, JobSpec, JobState
from cwl_crunch.worker.processes import this_worker

QUICK = {"cores": 0.1, "ram": 1 << 20, "reuse": False}


def test_jobs_are_submitted_read_listed_and_followed(client):
    first = client.last_event_id()
    job = client.submit(JobSpec(("sh", "-c", "echo hi > out/hi.txt"), **QUICK))
    assert client.get_job(job.uuid).uuid == job.uuid
    [done] = client.wait([job.uuid], timeout=60)
    assert done.succeeded
    assert [r.uuid for r in client.get_jobs([job.uuid, job.uuid])] == [job.uuid] * 2
    assert job.uuid in {r.uuid for r in client.list_jobs(JobFilter(top_level=True))}
    seen = client.events(first, timeout=5)
    assert any(e.job_uuid == job.uuid and e.state == JobState.COMPLETE for e in seen)
    assert client.last_event_id() >= max(e.id for e in seen) > first
    assert client.caller_job() is None  # a person's token
    try:
        client.get_job("local-job-000000000000000")
    except JobNotFound:
        pass
    else:
        raise AssertionError("no JobNotFound")


def test_a_cancelled_job_ends_cancelled(client):
    job = client.submit(JobSpec(("sleep", "60"), **QUICK))
    assert client.cancel(job.uuid).uuid == job.uuid
    [done] = client.wait([job.uuid], timeout=60)
    assert done.state == JobState.CANCELLED


def test_the_largest_node_has_cores_and_ram(client):
    node = client.largest_node()
    assert node.cores >= 1 and node.ram > 0


def test_a_collection_made_resident_says_so(client, tmp_path):
    (tmp_path / "cohort.tsv").write_text("stays\n")
    pdh = client.put_paths([tmp_path / "cohort.tsv"])
    assert client.residency(pdh) is None
    made = client.make_resident(pdh, "the site says so")
    assert (made.pdh, made.state, made.reason) == (pdh, "resident", "the site says so")
    assert client.residency(pdh) == made


def test_collections_are_put_listed_read_and_copied(client, tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f.txt").write_text("content")
    pdh = client.put_paths([tmp_path / "d"])
    assert client.has_collection(pdh)
    assert [e.path for e in client.list_collection(pdh)] == ["d", "d/f.txt"]
    assert b"".join(client.read_file(pdh, "d/f.txt")) == b"content"
    client.get_collection(pdh, "d", tmp_path / "copy")
    assert (tmp_path / "copy" / "f.txt").read_text() == "content"


def test_the_worker_side_claims_records_the_process_and_finishes(client):
    claim = client.start_own_job(JobSpec(("runner",), **QUICK), this_worker())
    assert claim.job.state == JobState.RUNNING and claim.token
    assert client.set_job_process(claim.job.uuid, os.getpid(), 1) is False
    done = client.finish_job(claim.job.uuid, JobOutcome(JobState.COMPLETE, 0, None, None))
    assert done.state == JobState.COMPLETE
    # A finished job is nobody's to claim.
    assert client.claim_job(claim.job.uuid, this_worker()) is None


CONTRACT = {
    "submit": test_jobs_are_submitted_read_listed_and_followed,
    "get_job": test_jobs_are_submitted_read_listed_and_followed,
    "get_jobs": test_jobs_are_submitted_read_listed_and_followed,
    "list_jobs": test_jobs_are_submitted_read_listed_and_followed,
    "events": test_jobs_are_submitted_read_listed_and_followed,
    "last_event_id": test_jobs_are_submitted_read_listed_and_followed,
    "caller_job": test_jobs_are_submitted_read_listed_and_followed,
    "cancel": test_a_cancelled_job_ends_cancelled,
    "largest_node": test_the_largest_node_has_cores_and_ram,
    "put_paths": test_collections_are_put_listed_read_and_copied,
    "has_collection": test_collections_are_put_listed_read_and_copied,
    "residency": test_a_collection_made_resident_says_so,
    "make_resident": test_a_collection_made_resident_says_so,
    "list_collection": test_collections_are_put_listed_read_and_copied,
    "read_file": test_collections_are_put_listed_read_and_copied,
    "get_collection": test_collections_are_put_listed_read_and_copied,
    "start_own_job": test_the_worker_side_claims_records_the_process_and_finishes,
    "set_job_process": test_the_worker_side_claims_records_the_process_and_finishes,
    "finish_job": test_the_worker_side_claims_records_the_process_and_finishes,
    "claim_job": test_the_worker_side_claims_records_the_process_and_finishes,
    "missing_blocks": blocks.test_blocks_put_one_at_a_time_make_a_collection,
    "put_block": blocks.test_blocks_put_one_at_a_time_make_a_collection,
    "get_block": blocks.test_a_collection_is_copied_block_by_block,
    "get_manifest": blocks.test_a_collection_is_copied_block_by_block,
    "put_manifest": blocks.test_a_collection_is_copied_block_by_block,
}
"""Interface method -> a test that calls it through the ``client`` fixture."""


def test_every_method_has_a_contract_test() -> None:
    assert set(CONTRACT) == set(ClusterClient.__abstractmethods__)
    for method, test in CONTRACT.items():
        assert "client" in inspect.signature(test).parameters, test.__name__
        assert f"client.{method}(" in inspect.getsource(test), (method, test.__name__)
    assert sys.modules[blocks.__name__] is blocks
