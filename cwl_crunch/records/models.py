"""Database tables (SQLAlchemy 2 declarative). Times are UTC epoch seconds (floats).

Bump ``SCHEMA_VERSION`` and add a step to ``database.MIGRATIONS`` with every change here.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Float, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

SCHEMA_VERSION = 12


class Base(DeclarativeBase):
    pass


class Meta(Base):
    """Key/value facts about the database itself (the schema version)."""

    __tablename__ = "meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Job(Base):
    __tablename__ = "jobs"
    uuid: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(Text, default="")
    state: Mapped[str] = mapped_column(String(16))  # indexed by ix_jobs_queue
    # Not a foreign key (since schema version 9): a parent may be a job of another
    # cluster, which its UUID's prefix names (records/ids.py).
    parent_uuid: Mapped[str | None] = mapped_column(String(40), index=True)
    # The spec: one column per JobSpec field, of the same name (records.jobs reads and
    # writes them by name; tests/model/test_jobspec_fields.py checks). All but those in
    # reuse_key.NOT_IN_REUSE_KEY (resources, labels) go into reuse_key.
    command: Mapped[list[str]] = mapped_column(JSON)
    environment: Mapped[dict[str, str]] = mapped_column(JSON)
    mounts: Mapped[dict[str, Any]] = mapped_column(JSON)
    output_path: Mapped[str] = mapped_column(Text)
    cwd: Mapped[str] = mapped_column(Text)
    root: Mapped[str | None] = mapped_column(Text)  # since schema version 2
    stdin: Mapped[str | None] = mapped_column(Text)
    stdout: Mapped[str | None] = mapped_column(Text)
    stderr: Mapped[str | None] = mapped_column(Text)
    image: Mapped[str | None] = mapped_column(Text)
    properties: Mapped[dict[str, str]] = mapped_column(JSON)
    # How fast: resources.
    cores: Mapped[float] = mapped_column(Float)
    ram: Mapped[int] = mapped_column(BigInteger)  # 64-bit on PostgreSQL too (since 5)
    gpus: Mapped[int] = mapped_column(Integer, default=0)
    time_limit: Mapped[float | None] = mapped_column(Float)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    reuse: Mapped[bool] = mapped_column(Boolean, default=True)
    reuse_key: Mapped[str] = mapped_column(String(64))  # indexed by ix_jobs_reuse
    # Lifecycle and results.
    created_at: Mapped[float] = mapped_column(Float)
    started_at: Mapped[float | None] = mapped_column(Float)
    finished_at: Mapped[float | None] = mapped_column(Float)
    exit_code: Mapped[int | None] = mapped_column(Integer)
    output_pdh: Mapped[str | None] = mapped_column(String(80))
    log_pdh: Mapped[str | None] = mapped_column(String(80))
    failure_reason: Mapped[str | None] = mapped_column(Text)
    reused_job_uuid: Mapped[str | None] = mapped_column(String(40), index=True)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    # Since schema version 3: the job is the process that recorded it (a workflow runner
    # started from a terminal), not work a dispatcher placed, so it holds no capacity.
    self_run: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    # Since schema version 4: containers.
    binds: Mapped[dict[str, str]] = mapped_column(JSON, default=dict, server_default="{}")
    network: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    image_digest: Mapped[str | None] = mapped_column(String(80))
    # Since schema version 7: why this job's result may not be reused (its output was
    # found damaged or missing in the store), or None. Reuse skips such a job, so the
    # step runs again and its new output repairs the store.
    reuse_ineligible: Mapped[str | None] = mapped_column(Text)
    # Since schema version 8: which backend runs it ("local", "slurm"; None for a job
    # never claimed or one following a twin), the backend's own id for it (SLURM's job
    # id), and why it ended (model.EndReason). Before, a SLURM job was stored as
    # worker_host "(slurm)" with its SLURM id in worker_pid.
    backend: Mapped[str | None] = mapped_column(String(16))
    backend_job_id: Mapped[str | None] = mapped_column(String(64))
    end_reason: Mapped[str | None] = mapped_column(String(32))
    # Since schema version 9: the call through which its token did something other
    # than pure work (listing jobs, ...), or None. Such a job is never reused or joined.
    impure: Mapped[str | None] = mapped_column(Text)
    # Since schema version 10: the peer cluster whose token submitted this job (its
    # parent is then a job of that cluster), and the person of that cluster it was
    # submitted for, as the peer said ("<token uuid>", with the peer's prefix).
    peer_id: Mapped[str | None] = mapped_column(String(5), index=True)
    remote_owner: Mapped[str | None] = mapped_column(String(40))
    # Since schema version 10: why a Queued job waits before any dispatcher may take it
    # (its collections are being pulled from a peer), or None.
    queue_reason: Mapped[str | None] = mapped_column(Text)
    # Since schema version 12: a resident collection whose contents this job's token
    # read through the API (records.residency): its outputs stay with that collection.
    read_resident: Mapped[str | None] = mapped_column(String(80))
    # Who runs it, for local jobs (backend "local"): lets any process tell a dead
    # worker from a slow one.
    worker_host: Mapped[str | None] = mapped_column(String(255))
    worker_pid: Mapped[int | None] = mapped_column(Integer)
    worker_pid_start: Mapped[int | None] = mapped_column(BigInteger)
    command_pgid: Mapped[int | None] = mapped_column(Integer)
    command_pgid_start: Mapped[int | None] = mapped_column(BigInteger)

    __table_args__ = (
        Index("ix_jobs_queue", "state", priority.desc(), "created_at"),
        Index("ix_jobs_reuse", "reuse_key", "state"),
        # Since schema version 5: which job made a collection (a job token's reads).
        Index("ix_jobs_output", "output_pdh"),
        Index("ix_jobs_log", "log_pdh"),
    )


class Upload(Base):
    """A collection a job's token stored (since schema version 5): that job may read it."""

    __tablename__ = "uploads"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_uuid: Mapped[str] = mapped_column(String(40))
    pdh: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[float] = mapped_column(Float)

    __table_args__ = (Index("ix_uploads_job_pdh", "job_uuid", "pdh"),)


class BlockUpload(Base):
    """A block whose bytes a token sent (since schema version 6): that token has proven
    it holds the block, and may name it in its manifests without a signature."""

    __tablename__ = "block_uploads"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    token_uuid: Mapped[str] = mapped_column(String(40))
    locator: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[float] = mapped_column(Float)

    __table_args__ = (Index("ix_block_uploads_token_locator", "token_uuid", "locator",
                            unique=True),)


class Token(Base):
    """An API token; only a hash of its secret is kept."""

    __tablename__ = "tokens"
    uuid: Mapped[str] = mapped_column(String(40), primary_key=True)
    secret_sha256: Mapped[str] = mapped_column(String(64))
    job_uuid: Mapped[str | None] = mapped_column(String(40), index=True)
    created_at: Mapped[float] = mapped_column(Float)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    # Since schema version 10: the cluster this token was issued to (a peer token:
    # ``cwl-crunch token create --peer ID``), which may do only what federation needs.
    peer_id: Mapped[str | None] = mapped_column(String(5))


class Event(Base):
    """A job entered a state. Ids increase, so followers resume after the last one seen."""

    __tablename__ = "events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # Not indexed: events are read in id order; every index costs each state change.
    job_uuid: Mapped[str] = mapped_column(String(40))
    state: Mapped[str] = mapped_column(String(16))
    at: Mapped[float] = mapped_column(Float)


class SentCollection(Base):
    """A collection this cluster handed a peer as a reference (since schema version 10):
    that peer's token may read its manifest and blocks, to pull what it lacks."""

    __tablename__ = "sent_collections"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    peer_id: Mapped[str] = mapped_column(String(5))
    pdh: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[float] = mapped_column(Float)

    __table_args__ = (Index("ix_sent_collections_peer_pdh", "peer_id", "pdh", unique=True),)


class SentImage(Base):
    """A container image this cluster offered a peer with a run (since schema version
    11): that peer's token may export it from this cluster's engine, by its digest."""

    __tablename__ = "sent_images"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    peer_id: Mapped[str] = mapped_column(String(5))
    digest: Mapped[str] = mapped_column(String(80))
    name: Mapped[str] = mapped_column(Text)
    """The name it was sent under (the first, if several)."""
    created_at: Mapped[float] = mapped_column(Float)

    __table_args__ = (Index("ix_sent_images_peer_digest", "peer_id", "digest", unique=True),)


class Residency(Base):
    """A collection that must stay on this cluster, or one derived from resident data
    that a release rule let go (since schema version 12). No row: it may travel."""

    __tablename__ = "residency"
    pdh: Mapped[str] = mapped_column(String(80), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    """"resident" or "released"."""
    reason: Mapped[str] = mapped_column(Text)
    job_uuid: Mapped[str | None] = mapped_column(String(40))
    """The job whose end made it so (None: a person stored it so)."""
    source_pdh: Mapped[str | None] = mapped_column(String(80))
    """The resident collection it derives from."""
    rule_uuid: Mapped[str | None] = mapped_column(String(40))
    """The release rule that let it go."""
    created_at: Mapped[float] = mapped_column(Float)


class ReleaseRule(Base):
    """What a site's administrator approved to produce releasable results from resident
    data (since schema version 12): an image, by content digest, and optionally the
    beginning of the command. Removed rules are kept (``removed_at``) for the record."""

    __tablename__ = "release_rules"
    uuid: Mapped[str] = mapped_column(String(40), primary_key=True)
    image_digest: Mapped[str] = mapped_column(String(80))
    command_prefix: Mapped[list[str] | None] = mapped_column(JSON)
    note: Mapped[str] = mapped_column(Text)
    created_at: Mapped[float] = mapped_column(Float)
    removed_at: Mapped[float | None] = mapped_column(Float)
