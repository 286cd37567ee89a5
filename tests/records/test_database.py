"""cwl_crunch.records.database: schema creation, versioning and migration, and write
serialization, on SQLite (WAL, BEGIN IMMEDIATE) and PostgreSQL (an advisory lock).

Tests taking ``database_url`` or ``db`` run on both (tests/records/conftest.py); those
taking ``sqlite_db`` or ``tmp_path`` alone check what only SQLite has (its file, WAL).
"""

from __future__ import annotations

import contextlib
import importlib.util
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, insert, inspect, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from cwl_crunch.errors import RecordsError, SchemaVersionError, SubmitError
from cwl_crunch.model import EndReason, JobSpec
from cwl_crunch.records import access, jobs, residency
from cwl_crunch.records import database as database_module
from cwl_crunch.records.database import WRITE_LOCK_KEY, Database, schema_version, shown
from cwl_crunch.records.models import SCHEMA_VERSION, Base, Meta
from cwl_crunch.records.reuse_key import reuse_key
from cwl_crunch.records.tokens import create_token, resolve_token

META = Meta.__table__


def url(tmp_path, name="r.sqlite"):
    return f"sqlite:///{tmp_path}/{name}"


@pytest.fixture
def sqlite_db(tmp_path):
    database = Database(url(tmp_path))
    yield database
    database.close()


def meta_value(connection, key):
    return connection.execute(select(META.c.value).where(META.c.key == key)).scalar()


def raw(tmp_path, name="r.sqlite", timeout=5.0):
    return sqlite3.connect(tmp_path / name, timeout=timeout, isolation_level=None)


@contextlib.contextmanager
def plain(database_url):
    """A connection of its own, not through Database (so taking none of its locks),
    each statement committed at once."""
    engine = create_engine(database_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            yield connection
    finally:
        engine.dispose()


def another_writer_can_start(database_url):
    """Whether a write transaction of another process could begin now."""
    if database_url.startswith("sqlite"):
        other = sqlite3.connect(make_url(database_url).database, timeout=0.05,
                                isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as error:
            assert "locked" in str(error)
            return False
        finally:
            other.close()  # rolls back
        return True
    with plain(database_url) as connection:
        return bool(connection.execute(
            text(f"SELECT pg_try_advisory_xact_lock({WRITE_LOCK_KEY})")).scalar())


def test_new_file_gets_schema_version(tmp_path):
    path = tmp_path / "sub" / "dir" / "r.sqlite"
    database = Database(f"sqlite:///{path}")
    try:
        assert path.exists()  # parent directories are made
        with database.reading() as connection:
            assert schema_version(connection) == SCHEMA_VERSION
    finally:
        database.close()
    connection = sqlite3.connect(path)
    try:
        rows = connection.execute(
            "SELECT value FROM meta WHERE key = 'schema_version'").fetchall()
        tables = {name for (name,) in connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        connection.close()
    assert rows == [(str(SCHEMA_VERSION),)]
    assert {"meta", "jobs", "tokens", "events"} <= tables
    # The named-collection table nothing used is no longer made (older databases keep
    # theirs, unused).
    assert "collections" not in tables


def test_new_database_gets_every_table_and_the_schema_version(db, database_url):
    with plain(database_url) as connection:
        tables = set(inspect(connection).get_table_names())
        versions = connection.execute(
            text("SELECT value FROM meta WHERE key = 'schema_version'")).scalars().all()
    assert set(Base.metadata.tables) <= tables
    assert versions == [str(SCHEMA_VERSION)]


def test_reopening_keeps_data(database_url):
    first = Database(database_url)
    with first.writing() as connection:
        connection.execute(insert(META).values(key="marker", value="kept"))
    first.close()
    second = Database(database_url)
    try:
        with second.reading() as connection:
            assert meta_value(connection, "marker") == "kept"
            assert schema_version(connection) == SCHEMA_VERSION
            versions = connection.execute(
                select(META).where(META.c.key == "schema_version")).all()
            assert len(versions) == 1  # not added twice
    finally:
        second.close()


def test_writing_commits_and_rolls_back_on_error(db):
    with db.writing() as connection:
        connection.execute(insert(META).values(key="kept", value="1"))
    with pytest.raises(RuntimeError), db.writing() as connection:
        connection.execute(insert(META).values(key="gone", value="1"))
        raise RuntimeError("boom")
    with db.reading() as connection:
        assert meta_value(connection, "kept") == "1"
        assert meta_value(connection, "gone") is None


def set_version(database_url, version):
    with plain(database_url) as connection:
        connection.execute(text("UPDATE meta SET value = :v WHERE key = 'schema_version'"),
                           {"v": str(version)})


def stored_version(database_url):
    with plain(database_url) as connection:
        return connection.execute(
            text("SELECT value FROM meta WHERE key = 'schema_version'")).scalar_one()


def test_newer_schema_is_refused(database_url):
    Database(database_url).close()
    set_version(database_url, SCHEMA_VERSION + 1)
    with pytest.raises(SchemaVersionError) as info:
        Database(database_url)
    message = str(info.value)
    assert str(SCHEMA_VERSION + 1) in message
    assert shown(database_url) in message  # names the database, not its password
    assert make_url(database_url).database in message


def test_refusal_leaves_the_version_alone(database_url):
    Database(database_url).close()
    set_version(database_url, SCHEMA_VERSION + 5)
    with pytest.raises(SchemaVersionError):
        Database(database_url)
    assert stored_version(database_url) == str(SCHEMA_VERSION + 5)


def test_older_schema_without_migration_is_refused(database_url, monkeypatch):
    Database(database_url).close()
    monkeypatch.setattr(database_module, "MIGRATIONS", {})
    set_version(database_url, SCHEMA_VERSION - 1)
    with pytest.raises(SchemaVersionError, match=f"schema version {SCHEMA_VERSION - 1}"):
        Database(database_url)
    assert stored_version(database_url) == str(SCHEMA_VERSION - 1)


def test_older_schema_is_migrated_step_by_step(database_url, monkeypatch):
    Database(database_url).close()
    ran = []

    def step(n):
        def migrate(connection):
            ran.append(n)
            connection.exec_driver_sql(f"CREATE TABLE migrated_{n} (x INTEGER)")
        return migrate

    target = SCHEMA_VERSION + 2
    monkeypatch.setattr(database_module, "SCHEMA_VERSION", target)
    monkeypatch.setattr(database_module, "MIGRATIONS",
                        {SCHEMA_VERSION: step(SCHEMA_VERSION),
                         SCHEMA_VERSION + 1: step(SCHEMA_VERSION + 1)})
    database = Database(database_url)
    try:
        with database.reading() as connection:
            assert schema_version(connection) == target
            connection.execute(text(f"SELECT * FROM migrated_{SCHEMA_VERSION + 1}")).all()
    finally:
        database.close()
    assert ran == [SCHEMA_VERSION, SCHEMA_VERSION + 1]


def test_a_failed_migration_changes_nothing(database_url, monkeypatch):
    Database(database_url).close()

    def half_done(connection):
        connection.exec_driver_sql("CREATE TABLE half_done (x INTEGER)")
        connection.exec_driver_sql("SELECT no_such_column FROM meta")

    monkeypatch.setattr(database_module, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    monkeypatch.setattr(database_module, "MIGRATIONS", {SCHEMA_VERSION: half_done})
    with pytest.raises(RecordsError):
        Database(database_url)
    assert stored_version(database_url) == str(SCHEMA_VERSION)
    with plain(database_url) as connection:
        assert "half_done" not in inspect(connection).get_table_names()


def test_wal_mode_is_on(sqlite_db, tmp_path):
    with sqlite_db.reading() as connection:
        mode = connection.execute(text("PRAGMA journal_mode")).scalar()
    assert mode.lower() == "wal"
    # Persistent: a plain connection sees it too.
    other = raw(tmp_path)
    try:
        assert other.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal"
    finally:
        other.close()


def test_an_unknown_local_parent_is_refused(db):
    """Since schema 9 no foreign key does it: insert_job checks a parent of this
    cluster itself (one of another cluster is that cluster's to know)."""
    with pytest.raises(SubmitError, match="no job local-job-doesnotexist0000"), \
            db.writing() as connection:
        jobs.insert_job(connection, "local", JobSpec(command=("true",)),
                        parent_uuid="local-job-doesnotexist0000", key="k",
                        output_problem=lambda pdh: None)


def test_a_parent_of_another_cluster_is_stored_without_a_local_row(db):
    with db.writing() as connection:
        row = jobs.insert_job(connection, "local", JobSpec(command=("true",)),
                              parent_uuid="sitea-job-aaaaaaaaaaaaaaa", key="k",
                              output_problem=lambda pdh: None)
    with db.reading() as connection:
        assert jobs.to_record(jobs.get_job(connection, row["uuid"])).parent_uuid == \
            "sitea-job-aaaaaaaaaaaaaaa"


def test_write_transaction_takes_the_lock_at_its_first_statement(db, database_url):
    with db.writing() as connection:
        connection.execute(select(META.c.value)).all()  # only a read: lock held anyway
        assert not another_writer_can_start(database_url)
        # Readers are not blocked.
        with plain(database_url) as other:
            assert other.execute(text("SELECT count(*) FROM meta")).scalar() >= 1
    assert another_writer_can_start(database_url)  # free again once the transaction ended
    with pytest.raises(RuntimeError), db.writing():
        raise RuntimeError("boom")
    assert another_writer_can_start(database_url)  # and once one rolled back


def test_reading_does_not_take_the_write_lock(db, database_url):
    with db.reading() as connection:
        connection.execute(select(META.c.value)).all()
        assert another_writer_can_start(database_url)
        with plain(database_url) as other:
            other.execute(text("INSERT INTO meta (key, value) VALUES ('w', '1')"))


def test_a_read_transaction_sees_one_snapshot(db, database_url):
    writer = Database(database_url)
    try:
        with db.reading() as connection:
            assert meta_value(connection, "late") is None
            with writer.writing() as other:  # another process's write commits meanwhile
                other.execute(insert(META).values(key="late", value="1"))
            assert meta_value(connection, "late") is None
        with db.reading() as connection:
            assert meta_value(connection, "late") == "1"
    finally:
        writer.close()


def test_write_transactions_of_two_databases_serialize(database_url):
    first = Database(database_url)
    second = Database(database_url)
    bystander = Database(database_url)
    acquired = threading.Event()
    seen: dict[str, object] = {}

    def contender():
        with second.writing() as connection:
            connection.execute(select(META.c.value)).all()
            seen["acquired_at"] = time.monotonic()
            acquired.set()
            # It sees the first transaction's committed write.
            seen["value"] = meta_value(connection, "counter")
            connection.execute(update(META).where(META.c.key == "counter").values(value="2"))

    try:
        with first.writing() as connection:
            connection.execute(insert(META).values(key="counter", value="1"))
            thread = threading.Thread(target=contender)
            thread.start()
            assert not acquired.wait(0.3), "second writer got in while the first held the lock"
            # Reads (from a database object no writer waits on) proceed meanwhile,
            # and do not see the uncommitted row.
            started = time.monotonic()
            with bystander.reading() as reader:
                assert meta_value(reader, "counter") is None
            assert time.monotonic() - started < 0.25
            released_at = time.monotonic()
        thread.join(5)
        assert not thread.is_alive()
        assert seen["acquired_at"] >= released_at
        assert seen["value"] == "1"
        with first.reading() as connection:
            assert meta_value(connection, "counter") == "2"
    finally:
        first.close()
        second.close()
        bystander.close()


def test_threads_sharing_one_database_take_turns_to_write(db):
    acquired = threading.Event()

    def contender():
        with db.writing() as connection:
            connection.execute(select(META.c.value)).all()
            acquired.set()

    with db.writing() as connection:
        connection.execute(insert(META).values(key="x", value="1"))
        thread = threading.Thread(target=contender)
        thread.start()
        assert not acquired.wait(0.2), "second writer got in while the first held the lock"
        with db.reading() as reader:  # the writing thread's own read joins its transaction
            assert meta_value(reader, "x") == "1"
    assert acquired.wait(5)
    thread.join(5)


def test_non_sqlite_url_is_not_given_sqlite_options(monkeypatch):
    made = {}

    def fake_create_engine(url, **kwargs):
        made["url"], made["kwargs"] = url, kwargs
        raise RuntimeError("stop here")

    monkeypatch.setattr(database_module, "create_engine", fake_create_engine)
    with pytest.raises(RuntimeError, match="stop here"):
        Database("postgresql://user@host/db")
    assert made["url"] == "postgresql://user@host/db"
    assert "connect_args" not in made["kwargs"]


def test_a_database_nothing_serializes_is_refused():
    with pytest.raises(RecordsError, match=r"mysql is not supported") as info:
        Database("mysql://user:hunter2@host/db")
    assert "hunter2" not in str(info.value)


def test_shown_hides_the_password():
    assert shown("postgresql+psycopg://u:hunter2@h:5/d") == "postgresql+psycopg://u:***@h:5/d"
    assert shown("sqlite:////tmp/r.sqlite") == "sqlite:////tmp/r.sqlite"


@pytest.mark.skipif(importlib.util.find_spec("pg8000") is not None,
                    reason="needs a PostgreSQL driver that is not installed")
def test_a_missing_driver_is_a_records_error():
    with pytest.raises(RecordsError, match=r"driver is missing.*psycopg"):
        Database("postgresql+pg8000://u@127.0.0.1/d")


def test_no_server_answering_is_a_records_error_without_the_password():
    pytest.importorskip("psycopg")
    # Port 1 on loopback: refused at once.
    with pytest.raises(RecordsError, match=r"cannot open records database") as info:
        Database("postgresql+psycopg://crunch:hunter2@127.0.0.1:1/d")
    assert "127.0.0.1:1" in str(info.value)
    assert "hunter2" not in str(info.value)


def test_file_that_is_not_a_database_raises_records_error(tmp_path):
    (tmp_path / "r.sqlite").write_bytes(b"this is not a sqlite file\0" * 200)
    with pytest.raises(RecordsError, match=r"r\.sqlite"):
        Database(url(tmp_path))


def test_a_version_1_database_is_migrated_and_keeps_its_jobs(database_url):
    # Make a database as schema version 1 left it: no jobs.root column.
    database = Database(database_url)
    spec = JobSpec(("echo", "old"))
    with database.writing() as connection:
        uuid = jobs.insert_job(connection, "local", spec, parent_uuid=None,
                               key=reuse_key(spec), output_problem=lambda pdh: None)["uuid"]
    database.close()
    # DROP COLUMN: SQLite 3.35 and later, and PostgreSQL alike.
    with plain(database_url) as connection:
        connection.execute(text("ALTER TABLE jobs DROP COLUMN impure"))
        connection.execute(text("ALTER TABLE jobs DROP COLUMN root"))
        connection.execute(text("ALTER TABLE jobs DROP COLUMN self_run"))
        connection.execute(text("DROP INDEX ix_jobs_output"))
        connection.execute(text("DROP INDEX ix_jobs_log"))
        connection.execute(text("DROP TABLE uploads"))
        connection.execute(text("DROP TABLE block_uploads"))
        for column in ("binds", "network", "image_digest", "reuse_ineligible", "backend",
                       "backend_job_id", "end_reason"):
            connection.execute(text(f"ALTER TABLE jobs DROP COLUMN {column}"))
        undo_schema_10(connection)
        connection.execute(text("UPDATE meta SET value = '1' WHERE key = 'schema_version'"))

    migrated = Database(database_url)
    try:
        with migrated.reading() as connection:
            assert schema_version(connection) == SCHEMA_VERSION
            row = jobs.get_job(connection, uuid)
        record = jobs.to_record(row)
        assert record.spec.command == ("echo", "old")
        assert record.spec.root is None
        assert row.self_run is False
        assert record.spec.binds == {} and record.spec.network is False
        assert record.image_digest is None
        assert record.reuse_ineligible is None
        rooted = JobSpec(("true",), root="/tmp/job")
        with migrated.writing() as connection:
            new = jobs.insert_job(connection, "local", rooted, parent_uuid=None,
                                  key=reuse_key(rooted), output_problem=lambda pdh: None)
        assert new["root"] == "/tmp/job"
    finally:
        migrated.close()
    # The migrated schema is the one a new database gets.
    with plain(database_url) as connection:
        inspector = inspect(connection)
        for name, table in Base.metadata.tables.items():
            columns = {column["name"] for column in inspector.get_columns(name)}
            assert columns == set(table.columns.keys()), name
            indexes = {index["name"] for index in inspector.get_indexes(name)}
            assert {index.name for index in table.indexes} <= indexes, name


def test_a_version_5_database_gains_reuse_ineligible_and_keeps_its_jobs(database_url):
    database = Database(database_url)
    spec = JobSpec(("echo", "five"))
    with database.writing() as connection:
        uuid = jobs.insert_job(connection, "local", spec, parent_uuid=None,
                               key=reuse_key(spec), output_problem=lambda pdh: None)["uuid"]
    database.close()
    with plain(database_url) as connection:
        for column in ("reuse_ineligible", "backend", "backend_job_id", "end_reason",
                       "impure"):
            connection.execute(text(f"ALTER TABLE jobs DROP COLUMN {column}"))
        undo_schema_10(connection)
        connection.execute(text("UPDATE meta SET value = '6' WHERE key = 'schema_version'"))
    migrated = Database(database_url)
    try:
        with migrated.writing() as connection:
            assert schema_version(connection) == SCHEMA_VERSION
            assert jobs.to_record(jobs.get_job(connection, uuid)).reuse_ineligible is None
            connection.execute(text("UPDATE jobs SET output_pdh = 'p+1' WHERE uuid = :u"),
                               {"u": uuid})
            assert jobs.mark_output_damaged(connection, "p+1", "manifest damaged") == [uuid]
        with migrated.reading() as connection:
            reason = jobs.to_record(jobs.get_job(connection, uuid)).reuse_ineligible
            assert reason is not None and reason.startswith("manifest damaged")
    finally:
        migrated.close()


def _schema_7_database(database_url):
    """A database as schema version 7 left it, with a SLURM job (the "(slurm)" sentinel,
    SLURM's id in worker_pid), a local job that exited, and one still queued."""
    database = Database(database_url)
    made = {}
    with database.writing() as connection:
        for name in ("slurm", "local", "queued"):
            spec = JobSpec(("echo", name))
            made[name] = jobs.insert_job(connection, "local", spec, parent_uuid=None,
                                         key=reuse_key(spec),
                                         output_problem=lambda pdh: None)["uuid"]
    database.close()
    with plain(database_url) as connection:
        for column in ("backend", "backend_job_id", "end_reason", "impure"):
            connection.execute(text(f"ALTER TABLE jobs DROP COLUMN {column}"))
        connection.execute(text(
            "UPDATE jobs SET state = 'Running', worker_host = '(slurm)', worker_pid = 4711, "
            "worker_pid_start = 0 WHERE uuid = :u"), {"u": made["slurm"]})
        connection.execute(text(
            "UPDATE jobs SET state = 'Complete', worker_host = 'hosta', worker_pid = 99, "
            "worker_pid_start = 5, exit_code = 0 WHERE uuid = :u"), {"u": made["local"]})
        undo_schema_10(connection)
        connection.execute(text("UPDATE meta SET value = '7' WHERE key = 'schema_version'"))
    return made


def test_a_version_7_database_moves_the_slurm_sentinel_into_backend_columns(database_url):
    made = _schema_7_database(database_url)
    migrated = Database(database_url)
    try:
        with migrated.reading() as connection:
            assert schema_version(connection) == SCHEMA_VERSION
            slurm, local, queued = (jobs.get_job(connection, made[name])
                                    for name in ("slurm", "local", "queued"))
        assert (slurm.backend, slurm.backend_job_id) == ("slurm", "4711")
        assert (slurm.worker_host, slurm.worker_pid, slurm.worker_pid_start) == (
            None, None, None)
        assert slurm.end_reason is None  # still running
        # A local job keeps its host and pid: the reaper needs them (with pid_start).
        assert (local.backend, local.backend_job_id) == ("local", None)
        assert (local.worker_host, local.worker_pid, local.worker_pid_start) == (
            "hosta", 99, 5)
        assert jobs.to_record(local).end_reason == EndReason.EXIT
        assert (queued.backend, queued.end_reason) == (None, None)
        with migrated.reading() as connection:
            tracked = jobs.running_on_backend(connection, "slurm")
        assert [row.uuid for row in tracked] == [made["slurm"]]
    finally:
        migrated.close()


MIGRATE_UNTIL_KILLED = """
import os, sys, time
from cwl_crunch.records import database
real = database.MIGRATIONS[7]
def slow(connection):
    real(connection)  # every statement of the step has run, uncommitted
    with open(sys.argv[2], "w") as ready:
        ready.write("migrated")
    time.sleep(60)
database.MIGRATIONS[7] = slow
database.Database(sys.argv[1])
"""


def kill_while_migrating(database_url: str, step: int, ready: Path) -> None:
    """Open the database in another process, and SIGKILL it once migration ``step`` has
    run every statement (uncommitted): no rollback of its own, no cleanup."""
    script = MIGRATE_UNTIL_KILLED.replace("MIGRATIONS[7]", f"MIGRATIONS[{step}]")
    process = subprocess.Popen([sys.executable, "-c", script, database_url, str(ready)])
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert process.poll() is None, "the migrating process ended early"
            assert time.monotonic() < deadline, "the migration never got under way"
            time.sleep(0.05)
    finally:
        process.kill()
        process.wait(timeout=30)


def test_a_migration_killed_midway_leaves_version_7_and_then_completes(database_url,
                                                                        tmp_path):
    made = _schema_7_database(database_url)
    kill_while_migrating(database_url, 7, tmp_path / "ready")
    assert stored_version(database_url) == "7"
    with plain(database_url) as connection:
        columns = {column["name"] for column in inspect(connection).get_columns("jobs")}
        assert not {"backend", "backend_job_id", "end_reason"} & columns
        sentinel = connection.execute(text("SELECT worker_host, worker_pid FROM jobs "
                                           "WHERE uuid = :u"), {"u": made["slurm"]}).one()
        assert tuple(sentinel) == ("(slurm)", 4711)
    migrated = Database(database_url)
    try:
        with migrated.reading() as connection:
            assert schema_version(connection) == SCHEMA_VERSION
            slurm = jobs.get_job(connection, made["slurm"])
        assert (slurm.backend, slurm.backend_job_id, slurm.worker_host) == (
            "slurm", "4711", None)
    finally:
        migrated.close()


def _schema_8_database(database_url):
    """A database as schema version 8 left it: no ``impure`` column and, on PostgreSQL,
    the foreign key from a job's parent to a local job."""
    database = Database(database_url)
    spec = JobSpec(("echo", "eight"))
    with database.writing() as connection:
        uuid = jobs.insert_job(connection, "local", spec, parent_uuid=None,
                               key=reuse_key(spec), output_problem=lambda pdh: None)["uuid"]
    database.close()
    with plain(database_url) as connection:
        connection.execute(text("ALTER TABLE jobs DROP COLUMN impure"))
        if connection.dialect.name == "postgresql":
            connection.execute(text(
                "ALTER TABLE jobs ADD CONSTRAINT jobs_parent_uuid_fkey "
                "FOREIGN KEY (parent_uuid) REFERENCES jobs (uuid)"))
        undo_schema_10(connection)
        connection.execute(text("UPDATE meta SET value = '8' WHERE key = 'schema_version'"))
    return uuid


def test_a_version_8_database_takes_foreign_parents_and_impure_marks(database_url):
    uuid = _schema_8_database(database_url)
    migrated = Database(database_url)
    try:
        with migrated.writing() as connection:
            assert schema_version(connection) == SCHEMA_VERSION
            assert not inspect(connection).get_foreign_keys("jobs") or \
                connection.dialect.name == "sqlite"  # SQLite keeps it, unenforced
            child = jobs.insert_job(connection, "local", JobSpec(("true",)),
                                    parent_uuid="sitea-job-aaaaaaaaaaaaaaa", key="k",
                                    output_problem=lambda pdh: None)["uuid"]
            assert jobs.mark_impure(connection, uuid, "GET /api/v1/jobs (list jobs)")
            assert not jobs.mark_impure(connection, uuid, "a later call")
        with migrated.reading() as connection:
            assert jobs.to_record(jobs.get_job(connection, uuid)).impure == \
                "GET /api/v1/jobs (list jobs)"
            assert jobs.get_job(connection, child).parent_uuid == "sitea-job-aaaaaaaaaaaaaaa"
    finally:
        migrated.close()


def test_a_migration_8_to_9_killed_midway_leaves_version_8(database_url, tmp_path):
    _schema_8_database(database_url)
    kill_while_migrating(database_url, 8, tmp_path / "ready")
    assert stored_version(database_url) == "8"
    with plain(database_url) as connection:
        columns = {column["name"] for column in inspect(connection).get_columns("jobs")}
        assert "impure" not in columns
    migrated = Database(database_url)
    try:
        with migrated.reading() as connection:
            assert schema_version(connection) == SCHEMA_VERSION
    finally:
        migrated.close()


def undo_schema_12(connection):
    """Take away what schema version 12 added (residency): for databases of older
    versions (11's sent_images table is made again by its migration if it is there)."""
    connection.execute(text("ALTER TABLE jobs DROP COLUMN read_resident"))
    connection.execute(text("DROP TABLE residency"))
    connection.execute(text("DROP TABLE release_rules"))


def undo_schema_10(connection):
    """Take away what schema versions 10 (peers) and 12 added: for older databases."""
    undo_schema_12(connection)
    connection.execute(text("DROP INDEX ix_jobs_peer_id"))
    connection.execute(text("ALTER TABLE jobs DROP COLUMN peer_id"))
    connection.execute(text("ALTER TABLE jobs DROP COLUMN remote_owner"))
    connection.execute(text("ALTER TABLE jobs DROP COLUMN queue_reason"))
    connection.execute(text("ALTER TABLE tokens DROP COLUMN peer_id"))
    connection.execute(text("DROP TABLE sent_collections"))


def _schema_9_database(database_url):
    database = Database(database_url)
    spec = JobSpec(("echo", "nine"))
    with database.writing() as connection:
        uuid = jobs.insert_job(connection, "local", spec, parent_uuid=None,
                               key=reuse_key(spec), output_problem=lambda pdh: None)["uuid"]
        token = create_token(connection, "local")
    database.close()
    with plain(database_url) as connection:
        undo_schema_10(connection)
        connection.execute(text("UPDATE meta SET value = '9' WHERE key = 'schema_version'"))
    return uuid, token


def test_a_version_9_database_takes_peer_tokens_peer_jobs_and_sent_images(database_url):
    uuid, token = _schema_9_database(database_url)
    migrated = Database(database_url)
    image = "sha256:" + "ab" * 32
    try:
        with migrated.writing() as connection:
            assert schema_version(connection) == SCHEMA_VERSION == 12
            assert resolve_token(connection, token).peer_id is None
            peer_token = create_token(connection, "local", peer_id="sitea")
            assert resolve_token(connection, peer_token).peer_id == "sitea"
            run = jobs.insert_job(connection, "local", JobSpec(("true",)),
                                  parent_uuid="sitea-job-aaaaaaaaaaaaaaa", key="k",
                                  output_problem=lambda pdh: None, peer_id="sitea",
                                  remote_owner="sitea-tok-aaaaaaaaaaaaaaa")["uuid"]
            access.note_sent(connection, "sitea", "p+1")
            access.note_sent_image(connection, "sitea", image, "debian:12")
            access.note_sent_image(connection, "sitea", image, "debian:12")  # once
        with migrated.reading() as connection:
            old = jobs.to_record(jobs.get_job(connection, uuid))
            assert (old.peer_id, old.remote_owner) == (None, None)
            new = jobs.to_record(jobs.get_job(connection, run))
            assert (new.peer_id, new.remote_owner) == ("sitea", "sitea-tok-aaaaaaaaaaaaaaa")
            assert access.peer_root(connection, run) == "sitea"
            assert access.peer_may_read(connection, "sitea", "p+1")
            assert not access.peer_may_read(connection, "siteb", "p+1")
            assert access.image_sent(connection, "sitea", image)
            assert not access.image_sent(connection, "siteb", image)
    finally:
        migrated.close()


def test_a_migration_9_to_10_killed_midway_leaves_version_9(database_url, tmp_path):
    _schema_9_database(database_url)
    kill_while_migrating(database_url, 9, tmp_path / "ready")
    assert stored_version(database_url) == "9"
    with plain(database_url) as connection:
        assert "sent_collections" not in inspect(connection).get_table_names()
        columns = {column["name"] for column in inspect(connection).get_columns("tokens")}
        assert "peer_id" not in columns
    migrated = Database(database_url)
    try:
        with migrated.reading() as connection:
            assert schema_version(connection) == SCHEMA_VERSION
    finally:
        migrated.close()


def test_a_version_11_database_takes_residency_and_keeps_its_jobs(database_url):
    database = Database(database_url)
    spec = JobSpec(("echo", "eleven"))
    with database.writing() as connection:
        uuid = jobs.insert_job(connection, "local", spec, parent_uuid=None,
                               key=reuse_key(spec), output_problem=lambda pdh: None)["uuid"]
    database.close()
    with plain(database_url) as connection:
        undo_schema_12(connection)
        connection.execute(text("UPDATE meta SET value = '11' WHERE key = 'schema_version'"))
    migrated = Database(database_url)
    try:
        with migrated.writing() as connection:
            assert schema_version(connection) == SCHEMA_VERSION
            assert jobs.get_job(connection, uuid).read_resident is None
            residency.make_resident(connection, "a" * 64 + "+1", "stored resident")
            assert residency.residency_of(connection, "a" * 64 + "+1").resident
            assert residency.add_rule(connection, "local", "sha256:" + "b" * 64, None,
                                      "ok").removed_at is None
    finally:
        migrated.close()
