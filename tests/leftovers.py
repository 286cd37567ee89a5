"""Cleaning up after a test: closing a cluster waits for its running jobs, and a failed
test must not hang on its ``sleep 60``."""

from __future__ import annotations

from cwl_crunch.client.base import ClusterClient, JobFilter


def cancel_unfinished(client: ClusterClient) -> None:
    """Cancel every job still queued or running."""
    live = client.list_jobs(JobFilter(states=frozenset({"Queued", "Running"}), limit=10_000))
    for job in live:
        client.cancel(job.uuid)
