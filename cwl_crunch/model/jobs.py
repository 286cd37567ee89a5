"""What a job is: its spec, its mounts, its record, its events, and what a worker reports.

Records cross the ClusterClient line as these frozen dataclasses, never as ORM objects.

Paths inside a job (mount targets, output path, working directory, stdin/stdout/stderr)
are relative to the job's own directory, which the worker creates fresh for each run.
They never embed a host path, so the same work has the same reuse key wherever it runs.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from datetime import datetime

from cwl_crunch.model.states import FINAL_STATES, EndReason, JobState

JOB_UUID = re.compile(r"^[a-z0-9]{5}-job-[a-z0-9]{15}$")
"""A job's UUID: ``<cluster id>-job-<15 base-36 characters>`` (records/ids.py)."""


def cluster_of(uuid: str) -> str:
    """The id of the cluster that owns the record ``uuid`` (its prefix)."""
    return uuid.split("-", 1)[0]


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
    """What to run. Everything except the resources and labels goes into the reuse key
    (``records.reuse_key.NOT_IN_REUSE_KEY``).

    A new field needs a column in the jobs table (and a migration), a field in the API
    schema (``server.schemas.JobSpecBody``) and a check in ``check_spec``;
    tests/model/test_jobspec_fields.py fails until each has it."""

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
    impure: str | None = None
    """The call through which its token did something other than pure work (such as
    listing jobs, whose answer changes with time): its result depends on more than its
    spec, so it is never reused or joined."""
    backend: str | None = None
    """Who ran it (one of BACKENDS); None for a job never claimed, or one that only
    followed a twin."""
    backend_job_id: str | None = None
    """The backend's own id of the job (SLURM's job id), where it has one."""
    end_reason: EndReason | None = None
    """Why it ended (None while it runs, and for some jobs that ended before schema 8)."""
    peer_id: str | None = None
    """The peer cluster whose token submitted it (for one of that cluster's persons,
    below one of its jobs), or None."""
    remote_owner: str | None = None
    """The person of the peer cluster it was submitted for (a token UUID of that
    cluster, as the peer said), or None."""
    queue_reason: str | None = None
    """Why a Queued job waits before any dispatcher takes it ("fetching 12 blocks,
    340 MB, from sitea"), or None."""

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def finished(self) -> bool:
        return self.state in FINAL_STATES

    @property
    def complete(self) -> bool:
        """Ended Complete (its command ran and exited, with any exit code, or reused)."""
        return self.state == JobState.COMPLETE

    @property
    def succeeded(self) -> bool:
        return self.state == JobState.COMPLETE and self.exit_code == 0

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


