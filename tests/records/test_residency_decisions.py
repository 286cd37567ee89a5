"""records.residency: the decision at a job's end, release rules, and what a person's
decision overrides (on SQLite and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cwl_crunch.errors import RuleNotFound
from cwl_crunch.model import CollectionMount, JobSpec
from cwl_crunch.records import residency

DIGEST = "sha256:" + "a" * 64
OTHER = "sha256:" + "b" * 64
COHORT, OUT, LOG, PLAIN = ("1" * 64 + "+10", "2" * 64 + "+10", "3" * 64 + "+10",
                           "4" * 64 + "+10")


def job(**values: Any) -> dict[str, Any]:
    return {"uuid": "zzzzz-job-000000000000001", "mounts": {"in": {"pdh": COHORT}},
            "read_resident": None, "command": ["python3", "/opt/regress.py", "x"],
            "image_digest": DIGEST, "output_pdh": OUT, "log_pdh": LOG, **values}


def settle(db, row: dict[str, Any], *, default: bool = False) -> None:
    with db.writing() as connection:
        residency.settle_end(connection, row, default_resident=default, cluster_id="zzzzz")


def state(db, pdh: str) -> Any:
    with db.reading() as connection:
        return residency.residency_of(connection, pdh)


def add_rule(db, digest: str = DIGEST, prefix: list[str] | None = None) -> Any:
    with db.writing() as connection:
        return residency.add_rule(connection, "zzzzz", digest, prefix, "approved")


@pytest.fixture
def resident_cohort(db):
    with db.writing() as connection:
        residency.make_resident(connection, COHORT, "stored resident")


def test_outputs_of_a_job_that_mounted_resident_data_stay(db, resident_cohort):
    settle(db, job())
    for pdh in (OUT, LOG):
        found = state(db, pdh)
        assert found.resident and found.job_uuid == "zzzzz-job-000000000000001"
        assert found.source_pdh == COHORT and COHORT in found.reason


def test_a_matching_rule_releases_the_output_not_the_log(db, resident_cohort):
    rule = add_rule(db, prefix=["python3", "/opt/regress.py"])
    settle(db, job())
    released = state(db, OUT)
    assert released.state == "released" and released.rule_uuid == rule.uuid
    assert rule.uuid in released.reason
    assert state(db, LOG).resident


@pytest.mark.parametrize("row", [
    job(image_digest=OTHER),                                # another image
    job(command=["python3", "-c", "print(open('x').read())"]),  # another command
    job(image_digest=None),                                 # run on the host
], ids=["other-image", "other-command", "host"])
def test_no_rule_releases_other_work(db, resident_cohort, row):
    add_rule(db, prefix=["python3", "/opt/regress.py"])
    settle(db, row)
    assert state(db, OUT).resident


def test_a_rule_without_a_command_names_the_image_only(db, resident_cohort):
    add_rule(db)
    settle(db, job(command=["sh", "-c", "anything"]))
    assert state(db, OUT).state == "released"
    with db.reading() as connection:
        assert residency.matching_rule(connection, None, ["sh"]) is None


def test_a_removed_rule_releases_nothing_and_stays_listed(db, resident_cohort):
    rule = add_rule(db)
    with db.writing() as connection:
        residency.remove_rule(connection, rule.uuid)
    settle(db, job())
    assert state(db, OUT).resident
    with db.reading() as connection:
        assert residency.list_rules(connection) == []
        assert [r.uuid for r in residency.list_rules(connection, removed=True)] == [rule.uuid]
    with db.writing() as connection, pytest.raises(RuleNotFound, match=rule.uuid):
        residency.remove_rule(connection, rule.uuid)


def test_reading_resident_contents_through_the_api_counts_like_a_mount(db, resident_cohort):
    settle(db, job(mounts={"in": {"pdh": PLAIN}}, read_resident=COHORT))
    assert state(db, OUT).resident


def test_work_on_travelling_data_has_no_record_unless_the_cluster_keeps_everything(db):
    settle(db, job(mounts={"in": {"pdh": PLAIN}}))
    assert state(db, OUT) is None and state(db, LOG) is None
    settle(db, job(uuid="zzzzz-job-000000000000002", output_pdh=PLAIN, log_pdh=None),
           default=True)
    assert state(db, PLAIN).resident and "everything stays" in state(db, PLAIN).reason


def test_a_runner_follows_what_it_read_never_the_default(db):
    runner = job(command=["cwl-crunch-runner", "--quiet", "in/workflow.cwl"],
                 mounts={"in": {"pdh": PLAIN}}, image_digest=None, peer_id="homes",
                 parent_uuid="homes-job-000000000000001")
    settle(db, runner, default=True)
    assert state(db, OUT) is None
    # A step naming the runner as its command is no runner: the default holds.
    step = {**runner, "peer_id": None, "uuid": "zzzzz-job-000000000000002"}
    settle(db, step, default=True)
    assert state(db, OUT).resident and "everything stays" in state(db, OUT).reason


def test_the_first_record_of_a_pdh_stands_but_a_person_may_make_it_resident(db,
                                                                            resident_cohort):
    add_rule(db)
    settle(db, job())
    settle(db, job(uuid="zzzzz-job-000000000000002", image_digest=OTHER))
    assert state(db, OUT).state == "released"  # identical bytes: released already
    with db.writing() as connection:
        residency.make_resident(connection, OUT, "a person says so")
    assert state(db, OUT).resident and state(db, OUT).reason == "a person says so"


def test_an_upload_by_a_job_that_read_resident_data_stays(db, resident_cohort):
    from cwl_crunch.model import CollectionMount, JobSpec
    from cwl_crunch.records import jobs  # a real job row: settle_upload reads it

    with db.writing() as connection:
        row = jobs.insert_job(connection, "zzzzz", JobSpec(
            ("true",), mounts={"in": CollectionMount(COHORT)}), parent_uuid=None,
            key="k" * 64, output_problem=lambda pdh: None, image_digest=None)
        residency.settle_upload(connection, row["uuid"], PLAIN, default_resident=False,
                                cluster_id="zzzzz")
    assert state(db, PLAIN).resident and row["uuid"] in state(db, PLAIN).reason


def test_a_peer_runs_job_that_read_resident_data_keeps_its_failure_reason(db,
                                                                          resident_cohort):
    from cwl_crunch.config import load_config
    from cwl_crunch.model import EndReason, JobOutcome, JobState
    from cwl_crunch.records import jobs

    with db.writing() as connection:
        runner = jobs.insert_job(connection, "zzzzz", JobSpec(("cwl-crunch-runner",)),
                                 parent_uuid="homes-job-000000000000001", key="r" * 64,
                                 output_problem=lambda pdh: None, peer_id="homes")
        step = jobs.insert_job(connection, "zzzzz", JobSpec(
            ("sh",), mounts={"in": CollectionMount(COHORT)}), parent_uuid=runner["uuid"],
            key="s" * 64, output_problem=lambda pdh: None)
        jobs.claim(connection, step["uuid"], "Queued", None)
        row = jobs.get_job(connection, step["uuid"])
        ended = residency.end_job(connection, row, JobOutcome(
            JobState.FAILED, 1, None, LOG, "output dir is a symlink to /p0001 42 ...",
            EndReason.ERROR), load_config(cluster_id="zzzzz", home=Path("/nonexistent")))
    assert "p0001" not in ended["failure_reason"]
    assert f"resident collection {COHORT}" in ended["failure_reason"]
    assert state(db, LOG).resident
