"""Cleaning up after a test: closing a cluster waits for its running jobs, and a failed
test must not hang on its ``sleep 60``."""

from __future__ import annotations

from cwl_crunch.model import ClusterClient, JobFilter


def cancel_unfinished(client: ClusterClient, settle: float = 0.0) -> None:
    """Cancel every job still queued or running; wait up to ``settle`` seconds for them
    to end (a batch system's jobs outlive the server that started them)."""
    live = client.list_jobs(JobFilter(states=frozenset({"Queued", "Running"}), limit=10_000))
    for job in live:
        client.cancel(job.uuid)
    if live and settle:
        client.wait([job.uuid for job in live], timeout=settle)
