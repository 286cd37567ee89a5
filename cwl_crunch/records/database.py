"""Opening the records database: engine settings, schema creation and migration.

SQLite is opened in WAL mode so readers never wait for the writer, and every write
transaction starts with ``BEGIN IMMEDIATE``: it takes the write lock up front, so two
processes checking "is there a twin of this job?" or "is there room for this job?"
serialize instead of both deciding yes.

Within one process, SQLite is used through a single connection that threads take turns
on: its page cache stays warm (a pool of connections re-reads pages each time another
one wrote) and threads queue on a Python lock instead of in SQLite's sleeping busy
handler. Other databases (PostgreSQL) get an ordinary connection pool.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

from sqlalchemy import (
    Connection,
    Engine,
    Table,
    create_engine,
    event,
    insert,
    select,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import StaticPool

from cwl_crunch.errors import RecordsError, SchemaVersionError
from cwl_crunch.records.models import SCHEMA_VERSION, Base, Meta

Migration = Callable[[Connection], None]


def _add_job_root(connection: Connection) -> None:
    connection.exec_driver_sql("ALTER TABLE jobs ADD COLUMN root TEXT")


def _add_job_self_run(connection: Connection) -> None:
    connection.exec_driver_sql(
        "ALTER TABLE jobs ADD COLUMN self_run BOOLEAN NOT NULL DEFAULT 0")


def _add_job_container_fields(connection: Connection) -> None:
    connection.exec_driver_sql("ALTER TABLE jobs ADD COLUMN binds JSON NOT NULL DEFAULT '{}'")
    connection.exec_driver_sql(
        "ALTER TABLE jobs ADD COLUMN network BOOLEAN NOT NULL DEFAULT false")
    connection.exec_driver_sql("ALTER TABLE jobs ADD COLUMN image_digest VARCHAR(80)")


# MIGRATIONS[n] upgrades a database at schema version n to n + 1.
MIGRATIONS: dict[int, Migration] = {
    1: _add_job_root, 2: _add_job_self_run, 3: _add_job_container_fields}

_BEGIN_OPTION = "crunch_begin"


class Database:
    """An engine handing out read and write transactions (Core connections, no ORM:
    the dispatcher and workers run several statements per job and the ORM's unit of
    work cost more CPU than the jobs themselves)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = _make_engine(url)
        self._write_engine = self.engine.execution_options(**{_BEGIN_OPTION: "IMMEDIATE"})
        self._is_sqlite = self.engine.dialect.name == "sqlite"
        self._write_lock = threading.Lock()
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
        with lock, self.engine.begin() as connection, self._entered(connection, False):
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
        with self._write_lock, self._write_engine.begin() as connection, \
                self._entered(connection, True):
            yield connection

    @contextlib.contextmanager
    def _entered(self, connection: Connection, writing: bool) -> Iterator[None]:
        self._local.connection, self._local.writing = connection, writing
        try:
            yield
        finally:
            self._local.connection = None

    def close(self) -> None:
        self.engine.dispose()


def _make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
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
    cursor.execute("PRAGMA foreign_keys=ON")
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
                    f"{database.url}: schema version {version} is newer than this "
                    f"cwl-crunch understands ({SCHEMA_VERSION}); upgrade cwl-crunch"
                )
            _migrate(connection, version)
    except DBAPIError as error:
        database.close()
        raise RecordsError(f"cannot open records database {database.url}: {error.orig}") from None


def _migrate(connection: Connection, version: int) -> None:
    while version < SCHEMA_VERSION:
        step = MIGRATIONS.get(version)
        if step is None:
            raise SchemaVersionError(f"no migration from schema version {version}")
        step(connection)
        version += 1
    connection.execute(update(_META).where(_META.c.key == "schema_version")
                       .values(value=str(version)))
