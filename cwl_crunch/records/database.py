"""Opening the records database: engine settings, schema creation and migration.

Write transactions never run side by side, on either database: two processes checking
"is there a twin of this job?" or "is there room for this job?" must serialize instead
of both deciding yes, and event ids must become visible in increasing order (a follower
resumes after the last id it saw).

SQLite is opened in WAL mode so readers never wait for the writer, and every write
transaction starts with ``BEGIN IMMEDIATE``: it takes the write lock up front. Within one
process, SQLite is used through a single connection that threads take turns on: its page
cache stays warm (a pool of connections re-reads pages each time another one wrote) and
threads queue on a Python lock instead of in SQLite's sleeping busy handler.

PostgreSQL gets an ordinary connection pool. Its write transactions (READ COMMITTED) take
one transaction-level advisory lock as their first statement, SQLite's single writer
again: each statement after it sees every earlier write transaction committed, and
nothing can commit beside it. Read transactions are REPEATABLE READ (READ ONLY), one
snapshot as SQLite gives them, and never wait for the writer. Threads of one process
still queue for writing on a Python lock, so waiting writers hold no pooled connection.
Other databases are refused: nothing would serialize their writers.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Connection,
    Engine,
    Table,
    create_engine,
    event,
    insert,
    inspect,
    select,
    update,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.pool import StaticPool

from cwl_crunch.errors import RecordsError, SchemaVersionError
from cwl_crunch.model import EndReason, JobState
from cwl_crunch.records.file_lock import WriterLock
from cwl_crunch.records.models import (
    SCHEMA_VERSION,
    Base,
    BlockUpload,
    Event,
    Meta,
    ReleaseRule,
    Residency,
    SentCollection,
    SentImage,
    Upload,
)

Migration = Callable[[Connection], None]


def _add_job_root(connection: Connection) -> None:
    connection.exec_driver_sql("ALTER TABLE jobs ADD COLUMN root TEXT")


def _add_job_self_run(connection: Connection) -> None:
    # false, not 0: PostgreSQL has no integer-to-boolean default (SQLite reads it as 0).
    connection.exec_driver_sql(
        "ALTER TABLE jobs ADD COLUMN self_run BOOLEAN NOT NULL DEFAULT false")


def _add_job_container_fields(connection: Connection) -> None:
    connection.exec_driver_sql("ALTER TABLE jobs ADD COLUMN binds JSON NOT NULL DEFAULT '{}'")
    connection.exec_driver_sql(
        "ALTER TABLE jobs ADD COLUMN network BOOLEAN NOT NULL DEFAULT false")
    connection.exec_driver_sql("ALTER TABLE jobs ADD COLUMN image_digest VARCHAR(80)")


def _add_uploads_and_output_indexes(connection: Connection) -> None:
    Upload.__table__.create(connection)  # type: ignore[attr-defined]
    connection.exec_driver_sql("CREATE INDEX ix_jobs_output ON jobs (output_pdh)")
    connection.exec_driver_sql("CREATE INDEX ix_jobs_log ON jobs (log_pdh)")
    if connection.dialect.name == "postgresql":  # SQLite's INTEGER is 64-bit already
        connection.exec_driver_sql(
            "ALTER TABLE jobs ALTER COLUMN ram TYPE BIGINT, "
            "ALTER COLUMN worker_pid_start TYPE BIGINT, "
            "ALTER COLUMN command_pgid_start TYPE BIGINT")


def _add_block_uploads(connection: Connection) -> None:
    BlockUpload.__table__.create(connection)  # type: ignore[attr-defined]


def _add_job_reuse_ineligible(connection: Connection) -> None:
    connection.exec_driver_sql("ALTER TABLE jobs ADD COLUMN reuse_ineligible TEXT")


def _add_job_backend_and_end_reason(connection: Connection) -> None:
    """Backend columns instead of the "(slurm)" sentinel, and a structured end reason.

    A SLURM job's id moves from worker_pid to backend_job_id and its worker_host and
    worker_pid are cleared; a claimed local job keeps its host and pid (the reaper needs
    them with worker_pid_start) and gets backend "local". Of the ended jobs, only those
    that unambiguously ran to an exit get an end reason: a Complete job with an exit
    code (reused or run), and a Cancelled one (cancel is the only way there). A Failed
    job with an exit code may have failed after its command exited, so stays NULL.
    All in the caller's one transaction: a kill leaves version 7 or 8, nothing between.
    """
    for column, kind in (("backend", "VARCHAR(16)"), ("backend_job_id", "VARCHAR(64)"),
                         ("end_reason", "VARCHAR(32)")):
        connection.exec_driver_sql(f"ALTER TABLE jobs ADD COLUMN {column} {kind}")
    connection.exec_driver_sql(
        "UPDATE jobs SET backend = 'slurm', worker_host = NULL, worker_pid = NULL, "
        "worker_pid_start = NULL, backend_job_id = CASE WHEN worker_pid > 0 "
        "THEN CAST(worker_pid AS VARCHAR(64)) END WHERE worker_host = '(slurm)'")
    connection.exec_driver_sql(
        "UPDATE jobs SET backend = 'local' WHERE worker_host IS NOT NULL "
        "AND worker_pid IS NOT NULL")
    connection.exec_driver_sql(
        f"UPDATE jobs SET end_reason = CASE WHEN reused_job_uuid IS NOT NULL "
        f"THEN '{EndReason.REUSED}' ELSE '{EndReason.EXIT}' END "
        f"WHERE state = '{JobState.COMPLETE}' AND exit_code IS NOT NULL")
    connection.exec_driver_sql(
        f"UPDATE jobs SET end_reason = '{EndReason.CANCELLED}' "
        f"WHERE state = '{JobState.CANCELLED}'")


def _foreign_parents_and_impure(connection: Connection) -> None:
    """A job's parent may live on another cluster: its foreign key goes (PostgreSQL
    enforces it; SQLite's declaration stays in older tables, and is no longer enforced:
    see _sqlite_on_connect). And the ``impure`` column. One transaction: a kill leaves
    version 8 or 9."""
    if connection.dialect.name == "postgresql":
        for key in inspect(connection).get_foreign_keys("jobs"):
            if key["constrained_columns"] == ["parent_uuid"] and key["name"]:
                connection.exec_driver_sql(f'ALTER TABLE jobs DROP CONSTRAINT "{key["name"]}"')
    connection.exec_driver_sql("ALTER TABLE jobs ADD COLUMN impure TEXT")


def _add_peers(connection: Connection) -> None:
    """Federation: a token's peer, a job's submitting peer and remote owner, and the
    collections sent to peers. One transaction: a kill leaves version 9 or 10."""
    connection.exec_driver_sql("ALTER TABLE tokens ADD COLUMN peer_id VARCHAR(5)")
    connection.exec_driver_sql("ALTER TABLE jobs ADD COLUMN peer_id VARCHAR(5)")
    connection.exec_driver_sql("ALTER TABLE jobs ADD COLUMN remote_owner VARCHAR(40)")
    connection.exec_driver_sql("ALTER TABLE jobs ADD COLUMN queue_reason TEXT")
    connection.exec_driver_sql("CREATE INDEX ix_jobs_peer_id ON jobs (peer_id)")
    Base.metadata.create_all(connection, tables=[cast(Table, SentCollection.__table__)])


def _add_sent_images(connection: Connection) -> None:
    """Federation: the container images offered to peers. One transaction."""
    Base.metadata.create_all(connection, tables=[cast(Table, SentImage.__table__)])


def _add_residency(connection: Connection) -> None:
    """Data residency: resident and released collections, release rules, and what
    resident collection a job's token read. One transaction."""
    connection.exec_driver_sql("ALTER TABLE jobs ADD COLUMN read_resident VARCHAR(80)")
    Base.metadata.create_all(connection, tables=[cast(Table, Residency.__table__),
                                                 cast(Table, ReleaseRule.__table__)])


# MIGRATIONS[n] upgrades a database at schema version n to n + 1.
MIGRATIONS: dict[int, Migration] = {
    1: _add_job_root, 2: _add_job_self_run, 3: _add_job_container_fields,
    4: _add_uploads_and_output_indexes, 5: _add_block_uploads,
    6: _add_job_reuse_ineligible, 7: _add_job_backend_and_end_reason,
    8: _foreign_parents_and_impure, 9: _add_peers, 10: _add_sent_images,
    11: _add_residency}

_BEGIN_OPTION = "crunch_begin"
# The key of the advisory lock every PostgreSQL write transaction takes first (any
# constant: advisory locks are per database). Held until its transaction ends.
WRITE_LOCK_KEY = 0x63776C63  # "cwlc"
_TAKE_WRITE_LOCK = f"SELECT pg_advisory_xact_lock({WRITE_LOCK_KEY})"
_SUPPORTED = ("sqlite", "postgresql")


class Database:
    """An engine handing out read and write transactions (Core connections, no ORM:
    the dispatcher and workers run several statements per job and the ORM's unit of
    work cost more CPU than the jobs themselves)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = _make_engine(url)
        self._is_sqlite = self.engine.dialect.name == "sqlite"
        self._read_engine: Engine
        self._write_engine: Engine
        if self._is_sqlite:
            self._read_engine = self.engine
            self._write_engine = self.engine.execution_options(**{_BEGIN_OPTION: "IMMEDIATE"})
        else:
            # psycopg puts the level in its BEGIN: no extra round trip.
            self._read_engine = self.engine.execution_options(
                isolation_level="REPEATABLE READ", postgresql_readonly=True)
            self._write_engine = self.engine
        self._write_lock = threading.Lock()
        database_file = self.engine.url.database if self._is_sqlite else None
        self._writer_lock = (WriterLock(Path(f"{database_file}.lock"))
                             if database_file and database_file != ":memory:" else None)
        # The transaction this thread is in, so nested use joins it instead of deadlocking.
        self._local = threading.local()
        ensure_schema(self)

    @contextlib.contextmanager
    def reading(self) -> Iterator[Connection]:
        """A read transaction; inside another transaction of this thread, that one."""
        current: Connection | None = getattr(self._local, "connection", None)
        if current is not None:
            yield current
            return
        lock = self._write_lock if self._is_sqlite else contextlib.nullcontext()
        with lock, self._read_engine.begin() as connection, self._entered(connection, False):
            yield connection

    @contextlib.contextmanager
    def writing(self) -> Iterator[Connection]:
        """A transaction holding the write lock from its first statement."""
        current: Connection | None = getattr(self._local, "connection", None)
        if current is not None:
            if not self._local.writing:
                raise RecordsError("a write transaction cannot start inside a read transaction")
            yield current
            return
        other_processes = (self._writer_lock.held() if self._writer_lock is not None
                           else contextlib.nullcontext())
        with self._write_lock, other_processes, self._write_engine.begin() as connection, \
                self._entered(connection, True):
            if not self._is_sqlite:
                connection.exec_driver_sql(_TAKE_WRITE_LOCK)
            yield connection

    @contextlib.contextmanager
    def _entered(self, connection: Connection, writing: bool) -> Iterator[None]:
        self._local.connection, self._local.writing = connection, writing
        try:
            yield
        finally:
            self._local.connection = None

    def comparable_event_id(self, event_id: int) -> int:
        """``event_id`` as the events table can compare it: PostgreSQL refuses a number
        wider than the id column (a 500), and no id is larger than that column holds."""
        if self._is_sqlite or isinstance(Event.__table__.c.id.type, BigInteger):
            return event_id
        return min(event_id, (1 << 31) - 1)

    def close(self) -> None:
        self.engine.dispose()
        if self._writer_lock is not None:
            with self._write_lock:
                self._writer_lock.close()


def shown(url: str | URL) -> str:
    """The URL without its password, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:  # not a URL at all: SQLAlchemy says so where it is used
        return str(url)


def _make_engine(url: str) -> Engine:
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend not in _SUPPORTED:
        raise RecordsError(f"records database {shown(parsed)}: {backend} is not supported "
                           "(SQLite or PostgreSQL)")
    if backend != "sqlite":
        try:
            return create_engine(url, pool_pre_ping=True)
        except ImportError as error:
            raise RecordsError(
                f"records database {shown(parsed)}: its driver is missing ({error}); "
                "for postgresql+psycopg://: pip install 'psycopg[binary]'") from None
    if parsed.database:
        try:
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise RecordsError(f"cannot create the folder of {url}: {error}") from None
    engine = create_engine(
        url, connect_args={"check_same_thread": False, "timeout": 60}, poolclass=StaticPool
    )
    event.listen(engine, "connect", _sqlite_on_connect)
    event.listen(engine, "begin", _sqlite_on_begin)
    return engine


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite's own would be DEFERRED).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # NORMAL in WAL mode survives process crashes; only an OS crash can lose the last commits.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=60000")
    # No foreign keys are enforced (since schema version 9): the one there was, jobs'
    # parent, may name a job of another cluster. Databases made before keep its
    # declaration, unenforced.
    cursor.execute("PRAGMA foreign_keys=OFF")
    cursor.close()


def _sqlite_on_begin(connection: Connection) -> None:
    mode = connection.get_execution_options().get(_BEGIN_OPTION, "DEFERRED")
    connection.exec_driver_sql(f"BEGIN {mode}")


_META = cast(Table, Meta.__table__)


def schema_version(connection: Connection) -> int | None:
    row = connection.execute(select(_META.c.value).where(_META.c.key == "schema_version")).first()
    return None if row is None else int(row[0])


def ensure_schema(database: Database) -> None:
    """Create the tables of a new database, migrate an old one, refuse a newer one."""
    try:
        with database.writing() as connection:
            Base.metadata.create_all(connection, tables=[_META])
            version = schema_version(connection)
            if version is None:
                Base.metadata.create_all(connection)
                connection.execute(insert(_META).values(key="schema_version",
                                                        value=str(SCHEMA_VERSION)))
                return
            if version > SCHEMA_VERSION:
                raise SchemaVersionError(
                    f"{shown(database.url)}: schema version {version} is newer than this "
                    f"cwl-crunch understands ({SCHEMA_VERSION}); upgrade cwl-crunch"
                )
            _migrate(connection, version)
    except DBAPIError as error:
        database.close()
        raise RecordsError(
            f"cannot open records database {shown(database.url)}: {error.orig}") from None


def _migrate(connection: Connection, version: int) -> None:
    while version < SCHEMA_VERSION:
        step = MIGRATIONS.get(version)
        if step is None:
            raise SchemaVersionError(f"no migration from schema version {version}")
        step(connection)
        version += 1
    connection.execute(update(_META).where(_META.c.key == "schema_version")
                       .values(value=str(version)))
