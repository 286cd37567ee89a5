"""JobSpec's fields against every place that names them: the jobs table, the API schema,
the codec, the reuse key and validation.

Each test takes the field list from ``dataclasses.fields(JobSpec)``, so a field added to
JobSpec (or one place gaining or losing a field) fails here until every place agrees:
FULL must set it, the table needs a column (a migration), the API schema a field,
``NOT_IN_REUSE_KEY`` or the key must account for it, and check_spec must refuse a bad
value of it (BAD_VALUES) or NEEDS_NO_VALIDATION must say why it needs none.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cwl_crunch.errors import SubmitError
from cwl_crunch.model import CollectionMount, JobRecord, JobSpec, LiteralMount
from cwl_crunch.model.codec import spec_from_dict, spec_to_dict
from cwl_crunch.model.validation import check_spec
from cwl_crunch.records import jobs
from cwl_crunch.records.database import Database
from cwl_crunch.records.models import Job
from cwl_crunch.records.reuse_key import NOT_IN_REUSE_KEY, reuse_key
from cwl_crunch.server.schemas import JobSpecBody

FIELDS = {field.name: field for field in dataclasses.fields(JobSpec)}
NAMES = list(FIELDS)
PDH = "0123456789abcdef0123456789abcdef+12"

FULL = JobSpec(
    command=("tool", "--flag", "in/x"),
    name="step one",
    environment={"B": "two", "A": "1"},
    mounts={"in": CollectionMount(PDH, "sub/dir", writable=True),
            "conf/run.sh": LiteralMount("#!/bin/sh\necho hi\n", executable=True)},
    output_path="results",
    cwd="work",
    root="/var/lib/job",
    stdin="in/x",
    stdout="results/out.txt",
    stderr="results/err.txt",
    image="debian:12",
    binds={"/output": "results"},
    network=True,
    cores=0.25,
    ram=123456789,
    gpus=1,
    time_limit=3600.0,
    priority=-3,
    reuse=False,
    properties={"k": "v"},
)
"""Every field set, and none to its default: a valid spec, so each check below sees a
change of any one field."""


def default_of(name: str) -> Any:
    """The field's default; ``command`` has none, so another command stands for it."""
    field = FIELDS[name]
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    if field.default is not dataclasses.MISSING:
        return field.default
    return ("other",)


BARE = JobSpec(**{name: default_of(name) for name in NAMES})
"""Every field at its default."""


def test_full_sets_every_field_to_something_else_than_its_default():
    unset = [name for name in NAMES if getattr(FULL, name) == getattr(BARE, name)]
    assert not unset, f"give FULL a non-default value of {unset}"
    check_spec(FULL)


# The jobs table ---------------------------------------------------------------------
RECORD_COLUMNS = {field.name for field in dataclasses.fields(JobRecord)} - {"spec"}
BOOKKEEPING_COLUMNS = {"self_run", "worker_host", "worker_pid", "worker_pid_start",
                       "command_pgid", "command_pgid_start", "read_resident"}
"""Columns neither the spec nor the record holds: who runs the job, for the dispatchers,
and what resident data its token read (for the residency decision at its end)."""


def test_jobs_table_has_a_column_per_field_and_no_unknown_column():
    columns = set(Job.__table__.columns.keys())
    assert set(NAMES) - columns == set(), "JobSpec fields without a column (migration!)"
    unknown = columns - set(NAMES) - RECORD_COLUMNS - BOOKKEEPING_COLUMNS
    assert unknown == set(), "columns that are neither a JobSpec field nor accounted for"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    url = f"sqlite:///{tmp_path}/r.sqlite" if request.param == "sqlite" \
        else request.getfixturevalue("postgres_fresh_url")
    database = Database(url)
    yield database
    database.close()


def test_every_field_is_stored_in_its_column_and_read_back(db):
    with db.writing() as connection:
        row = jobs.insert_job(connection, "local", FULL, parent_uuid=None,
                              key=reuse_key(FULL), output_problem=lambda pdh: None)
    with db.reading() as connection:
        stored = jobs.get_job(connection, row["uuid"])._mapping
    assert {name: stored[name] for name in NAMES} == json.loads(json.dumps(spec_to_dict(FULL)))
    again = jobs.to_record(stored).spec
    assert {name: getattr(again, name) for name in NAMES} == \
        {name: getattr(FULL, name) for name in NAMES}
    assert again == FULL


# The API schema ---------------------------------------------------------------------
def test_api_schema_has_the_fields_in_order():
    assert list(JobSpecBody.model_fields) == NAMES
    assert list(JobSpecBody.model_json_schema()["properties"]) == NAMES  # the OpenAPI one


@pytest.mark.parametrize("name", NAMES)
def test_api_schema_default_is_the_models(name):
    body_field = JobSpecBody.model_fields[name]
    model_field = FIELDS[name]
    required = model_field.default is dataclasses.MISSING \
        and model_field.default_factory is dataclasses.MISSING
    assert body_field.is_required() == required
    if not required:
        default = spec_to_dict(BARE)[name]
        assert body_field.get_default(call_default_factory=True) == default


def test_api_schema_accepts_and_keeps_every_field():
    body = JobSpecBody.model_validate(json.loads(json.dumps(spec_to_dict(FULL))))
    assert spec_from_dict(body.model_dump()) == FULL  # what POST /jobs does


# The codec --------------------------------------------------------------------------
def test_codec_writes_every_field_by_name_in_order():
    assert list(spec_to_dict(FULL)) == NAMES


def test_codec_round_trip_through_json_keeps_every_field():
    again = spec_from_dict(json.loads(json.dumps(spec_to_dict(FULL))))
    for name in NAMES:
        assert getattr(again, name) == getattr(FULL, name), name
        assert type(getattr(again, name)) is type(getattr(FULL, name)) \
            or isinstance(getattr(FULL, name), dict), name
    assert again == FULL


@pytest.mark.parametrize("name", [name for name in NAMES if name != "command"])
def test_codec_reads_each_field_alone(name):
    data = json.loads(json.dumps(spec_to_dict(FULL)))
    spec = spec_from_dict({"command": list(BARE.command), name: data[name]})
    assert spec == dataclasses.replace(BARE, **{name: getattr(FULL, name)})


def test_codec_refuses_a_field_the_model_lacks():
    with pytest.raises(SubmitError, match="unknown job field"):
        spec_from_dict({**spec_to_dict(FULL), "not_a_field": 1})


# The reuse key ----------------------------------------------------------------------
def test_fields_left_out_of_the_key_are_fields():
    assert set(NAMES) >= NOT_IN_REUSE_KEY
    assert {"cores", "ram", "gpus", "time_limit", "priority", "name",
                                "properties", "reuse"} == NOT_IN_REUSE_KEY


@pytest.mark.parametrize("name", NAMES)
def test_each_field_changes_the_key_unless_left_out(name):
    pairs = [  # a change from FULL's value, and one from the default
        (FULL, dataclasses.replace(FULL, **{name: getattr(BARE, name)})),
        (BARE, dataclasses.replace(BARE, **{name: getattr(FULL, name)})),
    ]
    for one, other in pairs:
        if name in NOT_IN_REUSE_KEY:
            assert reuse_key(one) == reuse_key(other)
        else:
            assert reuse_key(one) != reuse_key(other)


# Validation -------------------------------------------------------------------------
BAD_VALUES: dict[str, Any] = {
    "command": (),
    "name": 5,
    "environment": {"A=B": "x"},
    "mounts": {"/etc/x": LiteralMount("x")},
    "output_path": "../out",
    "cwd": "/work",
    "root": "var/lib/job",
    "stdin": "/etc/passwd",
    "stdout": "../out.txt",
    "stderr": "",
    "image": " debian:12",
    "binds": {"output": "results"},
    "network": "yes",
    "cores": 0,
    "ram": 1.5,
    "gpus": -1,
    "time_limit": 0,
    "priority": 1.5,
    "reuse": "no",
    "properties": {"k": 1},
}
"""A value of each field that check_spec refuses."""
NEEDS_NO_VALIDATION: dict[str, str] = {}
"""Field -> why check_spec need not look at it (every field is checked today)."""


def test_every_field_is_validated_or_says_why_not():
    assert set(BAD_VALUES) & set(NEEDS_NO_VALIDATION) == set()
    assert set(BAD_VALUES) | set(NEEDS_NO_VALIDATION) == set(NAMES)


@pytest.mark.parametrize("name", sorted(BAD_VALUES))
def test_check_spec_refuses_a_bad_value_naming_the_field(name):
    # The message names the field ("mount", "bind": the one it refuses).
    with pytest.raises(SubmitError, match=name.removesuffix("s")):
        check_spec(dataclasses.replace(FULL, **{name: BAD_VALUES[name]}))
