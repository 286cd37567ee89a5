"""The one interface through which everything above the cluster talks to it.

The runner, the worker, the SDK and the CLI use :class:`ClusterClient` only. The embedded
implementation (core.embedded) calls the cluster core in-process; the HTTP
implementation (client.http) calls ``cwl-crunch server``, which serves the same core.
It lives in the model, below every implementation, so that the worker (which the core
runs) can talk to its cluster through it without a cycle between packages.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Self

from cwl_crunch.model.collections import CollectionEntry
from cwl_crunch.model.jobs import (
    EVERY_JOB as EVERY_JOB,
)
from cwl_crunch.model.jobs import (
    JOB_PAGE_LIMIT,
    Claim,
    JobEvent,
    JobFilter,
    JobOutcome,
    JobRecord,
    JobSpec,
    NodeSize,
    WorkerInfo,
)
from cwl_crunch.model.residency import CollectionResidency


class ClusterClient(abc.ABC):
    """Submit and track jobs, move collections. One instance per cluster connection."""

    cluster_id: str

    # Jobs -------------------------------------------------------------------------
    @abc.abstractmethod
    def submit(self, spec: JobSpec, *, parent_uuid: str | None = None) -> JobRecord:
        """Create a job (or reuse / join identical work). The parent comes from the
        token. ``parent_uuid``: a job of another cluster to record as the parent (a
        person's token only; a job's token submits its own children), SubmitError else."""

    @abc.abstractmethod
    def start_own_job(self, spec: JobSpec, worker: WorkerInfo) -> Claim:
        """Record work the calling process does itself as a job, Running at once.

        A workflow runner is such a job: its steps are submitted with the claim's token and
        so become its children. The caller ends it with ``finish_job``; if the caller dies,
        the job ends Failed like any job whose worker died. Never reused or joined, and
        it holds none of the dispatcher's capacity (the caller's process is not placed
        work: a runner waiting on its steps must not keep them from fitting).
        """

    @abc.abstractmethod
    def caller_job(self) -> str | None:
        """The job whose token this client uses (None for a person's token or none)."""

    @abc.abstractmethod
    def get_job(self, uuid: str) -> JobRecord:
        """The job's current record; raises JobNotFound."""

    @abc.abstractmethod
    def get_jobs(self, uuids: Sequence[str]) -> list[JobRecord]:
        """Several records in one call, in the order asked."""

    @abc.abstractmethod
    def list_jobs(self, job_filter: JobFilter) -> list[JobRecord]:
        """Jobs matching the filter, newest first (ties by UUID, descending)."""

    def iter_jobs(self, job_filter: JobFilter,
                  page_size: int = JOB_PAGE_LIMIT) -> Iterator[JobRecord]:
        """``list_jobs`` a page at a time (up to ``job_filter.limit`` in all). Each page
        continues after the last job of the one before: jobs created meanwhile are newer
        than any listed, so nothing repeats or is skipped."""
        wanted, after = job_filter.limit, job_filter.after
        while wanted > 0:
            asked = min(wanted, page_size)
            page = self.list_jobs(dataclasses.replace(job_filter, limit=asked, after=after))
            yield from page
            if len(page) < asked:
                return
            wanted, after = wanted - len(page), page[-1].uuid

    @abc.abstractmethod
    def largest_node(self) -> NodeSize:
        """The largest node of the machines that would run a job of one core or more
        (a CWL step's resources are judged against it, not against the caller's host)."""

    @abc.abstractmethod
    def cancel(self, uuid: str) -> JobRecord:
        """Cancel a job and its unfinished descendants; a finished job is left as it is."""

    @abc.abstractmethod
    def events(self, after_id: int, timeout: float) -> list[JobEvent]:
        """Events with id > after_id, waiting up to ``timeout`` seconds for the first one."""

    @abc.abstractmethod
    def last_event_id(self) -> int:
        """Id of the newest event (0 if none), to start following from now."""

    def wait(self, uuids: Sequence[str], timeout: float | None = None) -> list[JobRecord]:
        """Block until every job is finished (or timeout); returns their records."""
        from cwl_crunch.model.waiting import wait_for_jobs

        return wait_for_jobs(self, uuids, timeout)

    # Collections --------------------------------------------------------------------
    @abc.abstractmethod
    def put_paths(self, paths: Sequence[Path]) -> str:
        """Store files and directories (each at top level by its basename); returns the PDH."""

    @abc.abstractmethod
    def list_collection(self, pdh: str, path: str = "") -> list[CollectionEntry]:
        """Entries below ``path`` in the collection, recursively, sorted by path."""

    @abc.abstractmethod
    def read_file(self, pdh: str, path: str) -> Iterator[bytes]:
        """The file's content in chunks, each block verified against its hash."""

    @abc.abstractmethod
    def get_collection(self, pdh: str, path: str, dest: Path) -> None:
        """Copy a file or directory of the collection to ``dest``, verifying every block."""

    @abc.abstractmethod
    def has_collection(self, pdh: str) -> bool:
        """Whether this cluster holds the collection's manifest."""

    @abc.abstractmethod
    def residency(self, pdh: str) -> CollectionResidency | None:
        """Whether the collection must stay on this cluster (its record), or was
        released by a rule; None: it may travel."""

    @abc.abstractmethod
    def make_resident(self, pdh: str, reason: str = "") -> CollectionResidency:
        """Make a collection of this cluster resident (a person's decision)."""

    # Blocks: what moves a collection between clusters, a block at a time -------------
    @abc.abstractmethod
    def missing_blocks(self, locators: Sequence[str]) -> list[str]:
        """Those of ``locators`` (bare or signed) whose blocks must be put before a
        manifest naming them is taken: absent here, or (over HTTP) not proven to be this
        caller's to use. Bare locators, each once, in the order first named."""

    @abc.abstractmethod
    def put_block(self, data: bytes) -> str:
        """Store one block (1 byte to the cluster's block size); returns its locator
        as this client may name it in a manifest (signed for its token over HTTP)."""

    @abc.abstractmethod
    def get_block(self, pdh: str, locator: str) -> bytes:
        """A block of collection ``pdh``, verified against its hash (CorruptBlock)."""

    @abc.abstractmethod
    def get_manifest(self, pdh: str) -> bytes:
        """The collection's manifest text (its locators signed over HTTP)."""

    @abc.abstractmethod
    def put_manifest(self, text: bytes) -> str:
        """Store a manifest whose blocks are all on the cluster (MissingBlocks if not);
        returns its PDH, that of the text with any signatures stripped."""

    # Worker side ----------------------------------------------------------------------
    @abc.abstractmethod
    def claim_job(self, uuid: str, worker: WorkerInfo) -> Claim | None:
        """Mark a queued job Running for this worker; None if someone else has it."""

    @abc.abstractmethod
    def set_job_process(self, uuid: str, pgid: int, pgid_start: int) -> bool:
        """Record the command's process group, so a cancel can kill it from anywhere.

        Returns whether a cancel was requested before the group was recorded (the
        canceller could not kill it then, so the worker must).
        """

    @abc.abstractmethod
    def finish_job(self, uuid: str, outcome: JobOutcome) -> JobRecord:
        """Record the end of a job the worker ran (and of any jobs that joined it)."""

    def close(self) -> None:  # noqa: B027 - optional hook, most clients hold nothing
        """Release connections and background threads."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
