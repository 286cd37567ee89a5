"""cwl_crunch.records.tokens: API tokens stored as hashes, resolved, revoked."""

from __future__ import annotations

import pytest
from sqlalchemy import column, inspect, select, table

from cwl_crunch.errors import RecordsError, TokenError
from cwl_crunch.records.models import Token
from cwl_crunch.records.tokens import create_token, resolve_token, revoke_job_tokens

JOB = "local-job-aaaaaaaaaaaaaaa"
OTHER_JOB = "local-job-bbbbbbbbbbbbbbb"


# db: a Database on SQLite and on PostgreSQL (tests/records/conftest.py).


def make(db, job_uuid=None, cluster_id="local"):
    with db.writing() as connection:
        return create_token(connection, cluster_id, job_uuid)


def resolve(db, token):
    with db.reading() as connection:
        return resolve_token(connection, token)


def test_token_shape(db):
    token = make(db, cluster_id="siteb")
    prefix, uuid, secret = token.split("/")
    assert prefix == "crunch"
    assert uuid.startswith("siteb-tok-")
    assert len(secret) >= 32


def test_create_then_resolve(db):
    token = make(db, JOB)
    record = resolve(db, token)
    assert record.uuid == token.split("/")[1]
    assert record.job_uuid == JOB
    assert record.revoked is False


def test_person_token_has_no_job(db):
    record = resolve(db, make(db))
    assert record.job_uuid is None


def test_tokens_are_distinct(db):
    first, second = make(db, JOB), make(db, JOB)
    assert first != second
    assert first.split("/")[2] != second.split("/")[2]
    assert resolve(db, first).uuid != resolve(db, second).uuid


def test_wrong_secret(db):
    prefix, uuid, secret = make(db, JOB).split("/")
    wrong = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    with pytest.raises(TokenError):
        resolve(db, f"{prefix}/{uuid}/{wrong}")
    with pytest.raises(TokenError):
        resolve(db, f"{prefix}/{uuid}/")


def test_secret_of_another_token_does_not_work(db):
    first = make(db, JOB).split("/")
    second = make(db, OTHER_JOB).split("/")
    with pytest.raises(TokenError):
        resolve(db, f"crunch/{first[1]}/{second[2]}")


def test_unknown_uuid(db):
    secret = make(db, JOB).split("/")[2]
    with pytest.raises(TokenError):
        resolve(db, f"crunch/local-tok-zzzzzzzzzzzzzzz/{secret}")
    with pytest.raises(TokenError):
        resolve(db, "crunch/local-tok-zzzzzzzzzzzzzzz/")  # empty secret, unknown uuid


@pytest.mark.parametrize("bad", ["", "crunch", "crunch/x", "nope/a/b", "crunch/a/b/c",
                                 "Bearer crunch/a/b"])
def test_malformed_token(db, bad):
    with pytest.raises(TokenError, match="malformed"):
        resolve(db, bad)


def test_malformed_with_valid_parts_and_wrong_prefix(db):
    _, uuid, secret = make(db, JOB).split("/")
    with pytest.raises(TokenError):
        resolve(db, f"arvados/{uuid}/{secret}")


def test_revoke_job_tokens(db):
    mine = [make(db, JOB), make(db, JOB)]
    others = make(db, OTHER_JOB)
    person = make(db)
    with db.writing() as connection:
        revoke_job_tokens(connection, JOB)
    for token in mine:
        with pytest.raises(TokenError, match="revoked"):
            resolve(db, token)
    assert resolve(db, others).job_uuid == OTHER_JOB
    assert resolve(db, person).job_uuid is None


def test_token_error_is_a_records_error(db):
    with pytest.raises(RecordsError):
        resolve(db, "garbage")


def test_no_plaintext_secret_is_stored(db, tmp_path):
    token = make(db, JOB)
    secret = token.split("/")[2]
    with db.reading() as connection:
        rows = connection.execute(select(Token.__table__)).all()
    assert len(rows) == 1
    values = [str(value) for value in rows[0]]
    assert len(values) == len(Token.__table__.columns)
    assert all(secret not in value for value in values)
    assert all(token not in value for value in values)
    # Every column of every table, as the database holds them.
    with db.reading() as connection:
        for name in inspect(connection).get_table_names():
            columns = [info["name"] for info in inspect(connection).get_columns(name)]
            for raw in connection.execute(select(table(name, *map(column, columns)))):
                assert all(secret not in str(cell) for cell in raw)
    db.close()
    if db.engine.dialect.name == "sqlite":
        # And the file's bytes.
        for path in tmp_path.iterdir():
            if path.name.startswith("r.sqlite"):
                assert secret.encode() not in path.read_bytes()
