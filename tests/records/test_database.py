"""cwl_crunch.records.database: schema creation, versioning, WAL, write serialization."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest
from sqlalchemy import insert, select, text, update

from cwl_crunch.client.base import JobSpec
from cwl_crunch.errors import RecordsError, SchemaVersionError
from cwl_crunch.records import database as database_module
from cwl_crunch.records import jobs
from cwl_crunch.records.database import Database, schema_version
from cwl_crunch.records.models import SCHEMA_VERSION, Meta
from cwl_crunch.records.reuse_key import reuse_key

META = Meta.__table__


def url(tmp_path, name="r.sqlite"):
    return f"sqlite:///{tmp_path}/{name}"


@pytest.fixture
def db(tmp_path):
    database = Database(url(tmp_path))
    yield database
    database.close()


def meta_value(connection, key):
    return connection.execute(select(META.c.value).where(META.c.key == key)).scalar()


def raw(tmp_path, name="r.sqlite", timeout=5.0):
    return sqlite3.connect(tmp_path / name, timeout=timeout, isolation_level=None)


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
    assert {"meta", "jobs", "collections", "tokens", "events"} <= tables


def test_reopening_keeps_data(tmp_path):
    first = Database(url(tmp_path))
    with first.writing() as connection:
        connection.execute(insert(META).values(key="marker", value="kept"))
    first.close()
    second = Database(url(tmp_path))
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


def set_version(tmp_path, version):
    connection = sqlite3.connect(tmp_path / "r.sqlite")
    with connection:
        connection.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'",
                           (str(version),))
    connection.close()


def stored_version(tmp_path):
    connection = sqlite3.connect(tmp_path / "r.sqlite")
    try:
        (value,) = connection.execute(
            "SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    finally:
        connection.close()
    return value


def test_newer_schema_is_refused(tmp_path):
    Database(url(tmp_path)).close()
    set_version(tmp_path, SCHEMA_VERSION + 1)
    with pytest.raises(SchemaVersionError) as info:
        Database(url(tmp_path))
    message = str(info.value)
    assert str(SCHEMA_VERSION + 1) in message
    assert "r.sqlite" in message


def test_refusal_leaves_the_version_alone(tmp_path):
    Database(url(tmp_path)).close()
    set_version(tmp_path, SCHEMA_VERSION + 5)
    with pytest.raises(SchemaVersionError):
        Database(url(tmp_path))
    assert stored_version(tmp_path) == str(SCHEMA_VERSION + 5)


def test_older_schema_without_migration_is_refused(tmp_path, monkeypatch):
    Database(url(tmp_path)).close()
    monkeypatch.setattr(database_module, "MIGRATIONS", {})
    set_version(tmp_path, SCHEMA_VERSION - 1)
    with pytest.raises(SchemaVersionError, match=f"schema version {SCHEMA_VERSION - 1}"):
        Database(url(tmp_path))
    assert stored_version(tmp_path) == str(SCHEMA_VERSION - 1)


def test_older_schema_is_migrated_step_by_step(tmp_path, monkeypatch):
    Database(url(tmp_path)).close()
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
    database = Database(url(tmp_path))
    try:
        with database.reading() as connection:
            assert schema_version(connection) == target
            connection.execute(text(f"SELECT * FROM migrated_{SCHEMA_VERSION + 1}")).all()
    finally:
        database.close()
    assert ran == [SCHEMA_VERSION, SCHEMA_VERSION + 1]


def test_wal_mode_is_on(db, tmp_path):
    with db.reading() as connection:
        mode = connection.execute(text("PRAGMA journal_mode")).scalar()
    assert mode.lower() == "wal"
    # Persistent: a plain connection sees it too.
    other = raw(tmp_path)
    try:
        assert other.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal"
    finally:
        other.close()


def test_foreign_keys_are_enforced(db):
    from sqlalchemy.exc import IntegrityError

    from cwl_crunch.client.base import JobSpec
    from cwl_crunch.records import jobs

    with pytest.raises(IntegrityError), db.writing() as connection:
        jobs.insert_job(connection, "local", JobSpec(command=("true",)),
                        parent_uuid="local-job-doesnotexist0000", key="k",
                        output_present=lambda pdh: True)


def test_write_transaction_takes_the_lock_at_its_first_statement(db, tmp_path):
    other = raw(tmp_path, timeout=0.05)
    try:
        with db.writing() as connection:
            connection.execute(select(META.c.value)).all()  # only a read: lock held anyway
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
            # Readers are not blocked.
            assert other.execute("SELECT count(*) FROM meta").fetchone()[0] >= 1
        other.execute("BEGIN IMMEDIATE")  # free again once the transaction ended
        other.execute("ROLLBACK")
    finally:
        other.close()


def test_reading_does_not_take_the_write_lock(db, tmp_path):
    other = raw(tmp_path, timeout=0.05)
    try:
        with db.reading() as connection:
            connection.execute(select(META.c.value)).all()
            other.execute("BEGIN IMMEDIATE")
            other.execute("INSERT INTO meta (key, value) VALUES ('w', '1')")
            other.execute("COMMIT")
    finally:
        other.close()


def test_write_transactions_of_two_databases_serialize(tmp_path):
    first = Database(url(tmp_path))
    second = Database(url(tmp_path))
    bystander = Database(url(tmp_path))
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


def test_file_that_is_not_a_database_raises_records_error(tmp_path):
    (tmp_path / "r.sqlite").write_bytes(b"this is not a sqlite file\0" * 200)
    with pytest.raises(RecordsError, match=r"r\.sqlite"):
        Database(url(tmp_path))


def test_a_version_1_database_is_migrated_and_keeps_its_jobs(tmp_path):
    # Make a database as schema version 1 left it: no jobs.root column.
    database = Database(url(tmp_path))
    spec = JobSpec(("echo", "old"))
    with database.writing() as connection:
        uuid = jobs.insert_job(connection, "local", spec, parent_uuid=None,
                               key=reuse_key(spec), output_present=lambda pdh: True)["uuid"]
    database.close()
    connection = raw(tmp_path)
    connection.execute("ALTER TABLE jobs DROP COLUMN root")
    connection.execute("ALTER TABLE jobs DROP COLUMN self_run")
    for column in ("binds", "network", "image_digest"):
        connection.execute(f"ALTER TABLE jobs DROP COLUMN {column}")
    connection.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    connection.close()

    migrated = Database(url(tmp_path))
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
        rooted = JobSpec(("true",), root="/tmp/job")
        with migrated.writing() as connection:
            new = jobs.insert_job(connection, "local", rooted, parent_uuid=None,
                                  key=reuse_key(rooted), output_present=lambda pdh: True)
        assert new["root"] == "/tmp/job"
    finally:
        migrated.close()
