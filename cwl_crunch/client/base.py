"""The one interface through which everything above the cluster talks to it.

The runner, the worker, the SDK and the CLI use :class:`ClusterClient` only. The embedded
implementation calls the records database, the store and the local dispatcher in-process;
an HTTP implementation (server issue) calls ``cwl-crunch server``. Records cross this line
as the frozen dataclasses below, never as ORM objects.

Paths inside a job (mount targets, output path, working directory, stdin/stdout/stderr)
are relative to the job's own directory, which the worker creates fresh for each run.
They never embed a host path, so the same work has the same reuse key wherever it runs.
"""

from __future__ import annotations

import abc
import dataclasses
import enum
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Literal, Self

from cwl_crunch.store import CollectionEntry as CollectionEntry

JobState = Literal["Queued", "Running", "Complete", "Failed", "Cancelled"]
FINAL_STATES: frozenset[str] = frozenset({"Complete", "Failed", "Cancelled"})


class EndReason(enum.StrEnum):
    """Why a job ended, for programs (``failure_reason`` says it in words, for people).

    Every end of a job records one (older records may have none: they ended before
    schema version 8, and only those with an exit code were given ``EXIT``).
    """

    EXIT = "exit"
    """The command ran and exited; ``exit_code`` and the state say how it went."""
    TIME_LIMIT = "time limit"
    """Stopped at its time limit (its own, or the backend's)."""
    CANCELLED = "cancelled"
    """Cancelled by a person or a parent, or by the backend's operator (scancel)."""
    OUT_OF_MEMORY = "out of memory"
    """The backend killed it for using more memory than it asked for."""
    LOST = "lost"
    """The backend lost it: its node failed, it was preempted, or the backend forgot it."""
    REFUSED = "refused"
    """The backend would not take it (sbatch refused it, or could not be run)."""
    WORKER_DIED = "worker died"
    """The process running the job died before it could report the job's end."""
    ERROR = "error"
    """The cluster could not run the command or keep its results (staging, isolation,
    container engine, a worker error): ``failure_reason`` says what."""
    REUSED = "reused"
    """It did no work of its own: it took the result of an identical job."""


BACKENDS = ("local", "slurm")
"""Who runs a claimed job: ``local``, a worker process on a host of this cluster (its
``worker_host`` and ``worker_pid``); ``slurm``, a SLURM batch job (``backend_job_id``)."""


@dataclasses.dataclass(frozen=True)
class CollectionMount:
    """A file or directory of a stored collection, placed at a path in the job dir."""

    pdh: str
    path: str = ""
    """File or directory inside the collection; empty means the whole collection."""
    writable: bool = False
    """Give the job its own copy instead of read-only links."""


@dataclasses.dataclass(frozen=True)
class LiteralMount:
    """A file with the given content, made for the job."""

    content: str
    writable: bool = False
    executable: bool = False


Mount = CollectionMount | LiteralMount


@dataclasses.dataclass(frozen=True)
class JobSpec:
    """What to run. Everything except the resources goes into the reuse key."""

    command: tuple[str, ...]
    name: str = ""
    environment: Mapping[str, str] = dataclasses.field(default_factory=dict)
    mounts: Mapping[str, Mount] = dataclasses.field(default_factory=dict)
    output_path: str = "out"
    cwd: str = "."
    root: str | None = None
    """An absolute path where the command sees its job directory (the worker bind-mounts
    the directory there in a private mount namespace), so that absolute paths baked into
    the command, such as a CWL tool's ``runtime.outdir``, are the same on every run.
    None: the command sees the job directory at whatever host path the worker chose."""
    stdin: str | None = None
    stdout: str | None = None
    """Job-dir path to write stdout to; None keeps it only in the log collection."""
    stderr: str | None = None
    image: str | None = None
    """Run the command in this container image (a name like ``debian:12`` or an image
    id); the cluster records the image's content digest, which the reuse key uses."""
    binds: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """Containers only: absolute paths in the container that show a job-dir path
    (``{"/output": "out"}``), for tools that write to fixed places."""
    network: bool = False
    """Containers only: give the container a network (without, it has loopback only)."""
    cores: float = 1.0
    ram: int = 256 << 20
    gpus: int = 0
    time_limit: float | None = None
    """Seconds of wall time before the job is killed and ends Failed."""
    priority: int = 0
    """Higher runs first; equal priorities run oldest first."""
    reuse: bool = True
    properties: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """Free-form labels; not part of the reuse key."""


@dataclasses.dataclass(frozen=True)
class JobRecord:
    """A job as the records database holds it."""

    uuid: str
    spec: JobSpec
    state: JobState
    parent_uuid: str | None
    reuse_key: str
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    exit_code: int | None = None
    output_pdh: str | None = None
    log_pdh: str | None = None
    failure_reason: str | None = None
    reused_job_uuid: str | None = None
    """The job whose work this one took over (reused when finished, joined while running)."""
    cancel_requested: bool = False
    image_digest: str | None = None
    """Content digest of ``spec.image`` as resolved when the job was submitted."""
    reuse_ineligible: str | None = None
    """Why this job's result is no longer reused (its output was found damaged)."""
    backend: str | None = None
    """Who ran it (one of BACKENDS); None for a job never claimed, or one that only
    followed a twin."""
    backend_job_id: str | None = None
    """The backend's own id of the job (SLURM's job id), where it has one."""
    end_reason: EndReason | None = None
    """Why it ended (None while it runs, and for some jobs that ended before schema 8)."""

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def finished(self) -> bool:
        return self.state in FINAL_STATES

    @property
    def succeeded(self) -> bool:
        return self.state == "Complete" and self.exit_code == 0

    @property
    def duration(self) -> float | None:
        if self.started_at is None:
            return None
        end = self.finished_at or datetime.now(self.started_at.tzinfo)
        return (end - self.started_at).total_seconds()


@dataclasses.dataclass(frozen=True)
class JobEvent:
    """A job entered a state. Event ids increase; a client resumes after the last it saw."""

    id: int
    job_uuid: str
    state: JobState
    at: datetime


@dataclasses.dataclass(frozen=True)
class JobFilter:
    """Which jobs ``list_jobs`` returns; None means any."""

    parent_uuid: str | None = None
    top_level: bool = False
    """Only jobs with no parent (a person's submissions)."""
    states: frozenset[str] | None = None
    limit: int = 100
    """At most this many; ``list_jobs`` pages through the API for more than
    JOB_PAGE_LIMIT, so any limit gives the same answer embedded and over HTTP."""
    after: str | None = None
    """Continue after this job (the last UUID of the page before), in list order."""


JOB_PAGE_LIMIT = 10_000
"""Most jobs one ``GET /api/v1/jobs`` answers (10,000 records are ~10 MB of JSON)."""
EVERY_JOB = 2**62
"""A ``JobFilter.limit`` that means no limit (what fits in a 64-bit SQL LIMIT)."""


@dataclasses.dataclass(frozen=True)
class WorkerInfo:
    """Where a job's worker runs, so a dead worker can be told from a slow one."""

    host: str
    pid: int
    pid_start: int
    """Kernel start time of the worker process (guards against pid reuse)."""


@dataclasses.dataclass(frozen=True)
class Claim:
    """A job handed to a worker, with the job's own API token (its only plaintext copy)."""

    job: JobRecord
    token: str


@dataclasses.dataclass(frozen=True)
class JobOutcome:
    """What a worker reports when a job ends."""

    state: JobState
    exit_code: int | None
    output_pdh: str | None
    log_pdh: str | None
    failure_reason: str | None = None
    end_reason: EndReason | None = None
    """None: ``finish_job`` derives it (EXIT with an exit code, else ERROR)."""


@dataclasses.dataclass(frozen=True)
class NodeSize:
    """The cores and RAM (bytes) of a cluster's largest node: more than this, no job
    it runs can have."""

    cores: float
    ram: int


class ClusterClient(abc.ABC):
    """Submit and track jobs, move collections. One instance per cluster connection."""

    cluster_id: str

    # Jobs -------------------------------------------------------------------------
    @abc.abstractmethod
    def submit(self, spec: JobSpec) -> JobRecord:
        """Create a job (or reuse / join identical work). The parent comes from the token."""

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
        from cwl_crunch.client.waiting import wait_for_jobs

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
