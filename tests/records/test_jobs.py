"""cwl_crunch.records.jobs: inserting (reuse / join), claiming, finishing, queries."""

from __future__ import annotations

import dataclasses
from datetime import UTC

import pytest
from sqlalchemy import update

from cwl_crunch.errors import IllegalTransition, JobNotFound, TokenError
from cwl_crunch.model import (
    CollectionMount,
    JobOutcome,
    JobSpec,
    LiteralMount,
    WorkerInfo,
)
from cwl_crunch.records import jobs
from cwl_crunch.records.models import Job
from cwl_crunch.records.reuse_key import reuse_key
from cwl_crunch.records.tokens import create_token, resolve_token

PDH_IN = "0123456789abcdef0123456789abcdef+12"
PDH_OUT = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa+34"
PDH_LOG = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb+56"
JOBS = Job.__table__
WORKER = WorkerInfo(host="hosta", pid=4242, pid_start=777)

SPEC = JobSpec(
    command=("sort", "in/data.txt"),
    name="sort",
    environment={"LANG": "C"},
    mounts={"in": CollectionMount(PDH_IN), "conf": LiteralMount("x=1\n", executable=True)},
    stdout="out/sorted.txt",
    cores=0.5,
    ram=1000,
)


def spec(**changes):
    return dataclasses.replace(SPEC, **changes)


# db: a Database on SQLite and on PostgreSQL (tests/records/conftest.py).


def insert(db, job_spec=SPEC, parent=None, present=lambda pdh: True):
    """``present(pdh)``: whether that output is stored intact (else: damaged)."""
    def problem(pdh):
        return None if present(pdh) else f"collection {pdh} is damaged"

    with db.writing() as connection:
        return jobs.insert_job(connection, "local", job_spec, parent_uuid=parent,
                               key=reuse_key(job_spec), output_problem=problem)["uuid"]


def row(db, uuid):
    with db.reading() as connection:
        return jobs.get_job(connection, uuid)


def record(db, uuid):
    return jobs.to_record(row(db, uuid))


def claim(db, uuid, worker=WORKER):
    with db.writing() as connection:
        jobs.claim(connection, uuid, jobs.get_job(connection, uuid).state, worker)


def finish(db, uuid, state="Complete", exit_code=0, output=PDH_OUT, log=PDH_LOG, reason=None):
    with db.writing() as connection:
        jobs.finish(connection, jobs.get_job(connection, uuid),
                    JobOutcome(state, exit_code, output, log, reason))


def cancel(db, uuid):
    with db.writing() as connection:
        return jobs.request_cancel(connection, jobs.get_job(connection, uuid))


def events_of(db, uuid):
    with db.reading() as connection:
        return [event.state for event in jobs.events_after(connection, 0)
                if event.job_uuid == uuid]


def queued(db, limit=100):
    with db.reading() as connection:
        return [uuid for uuid, _cores, _ram in jobs.queued_candidates(connection, limit)]


def run_to_completion(db, job_spec=SPEC, **outcome):
    uuid = insert(db, job_spec)
    claim(db, uuid)
    finish(db, uuid, **outcome)
    return uuid


# Inserting ---------------------------------------------------------------------------

def test_new_job_is_queued_and_round_trips(db):
    uuid = insert(db)
    job = record(db, uuid)
    assert uuid.startswith("local-job-")
    assert job.state == "Queued"
    assert job.spec == SPEC
    assert job.reuse_key == reuse_key(SPEC)
    assert job.parent_uuid is None
    assert job.reused_job_uuid is None
    assert job.started_at is None and job.finished_at is None
    assert job.created_at.tzinfo is not None
    assert events_of(db, uuid) == ["Queued"]
    assert queued(db) == [uuid]


def test_parent_is_recorded(db):
    parent = insert(db, spec(command=("runner",)))
    child = insert(db, parent=parent)
    assert record(db, child).parent_uuid == parent


def test_get_unknown_job(db):
    with db.reading() as connection, pytest.raises(JobNotFound, match="local-job-nope"):
        jobs.get_job(connection, "local-job-nope")


def test_finished_twin_is_reused(db):
    twin = run_to_completion(db)
    asked = []

    def present(pdh):
        asked.append(pdh)
        return True

    uuid = insert(db, spec(cores=2.0, ram=5000, name="again", priority=9), present=present)
    job = record(db, uuid)
    assert asked == [PDH_OUT]
    assert job.state == "Complete"
    assert job.reused_job_uuid == twin
    assert (job.exit_code, job.output_pdh, job.log_pdh) == (0, PDH_OUT, PDH_LOG)
    assert job.started_at is not None and job.finished_at is not None
    assert job.spec.cores == 2.0  # its own spec is kept
    assert events_of(db, uuid) == ["Complete"]  # born finished: it was never queued
    assert uuid not in queued(db)


def test_reuse_of_a_reused_job_points_at_the_original(db):
    original = run_to_completion(db)
    second = insert(db)
    third = insert(db)
    assert record(db, second).reused_job_uuid == original
    assert record(db, third).reused_job_uuid == original


def test_different_work_is_not_reused(db):
    run_to_completion(db)
    uuid = insert(db, spec(command=("sort", "-r", "in/data.txt")))
    job = record(db, uuid)
    assert job.state == "Queued"
    assert job.reused_job_uuid is None


def test_missing_output_prevents_reuse(db):
    run_to_completion(db)
    uuid = insert(db, present=lambda pdh: False)
    job = record(db, uuid)
    assert job.state == "Queued"
    assert job.reused_job_uuid is None
    assert job.output_pdh is None
    assert uuid in queued(db)


def test_a_twin_whose_output_is_present_is_preferred(db):
    gone_pdh = "cccccccccccccccccccccccccccccccc+1"
    first = run_to_completion(db, output=gone_pdh)
    second = insert(db, present=lambda pdh: False)  # not reused: runs itself
    claim(db, second)
    finish(db, second, output=PDH_OUT)
    assert record(db, second).reused_job_uuid is None
    only_second = insert(db, present=lambda pdh: pdh == PDH_OUT)
    assert record(db, only_second).reused_job_uuid == second
    assert record(db, only_second).output_pdh == PDH_OUT
    # The first was found damaged once: it stays ineligible, even if its output is back.
    assert record(db, first).reuse_ineligible is not None
    again = insert(db, present=lambda pdh: True)
    assert record(db, again).reused_job_uuid == second


def test_a_damaged_output_makes_its_jobs_ineligible_with_the_reason(db):
    original = run_to_completion(db)
    reused = insert(db)
    assert record(db, reused).reused_job_uuid == original
    asked = []

    def damaged(pdh):
        asked.append(pdh)
        return False

    fresh = insert(db, present=damaged)
    assert asked == [PDH_OUT]  # asked once for the output both twins carry
    assert record(db, fresh).state == "Queued"
    assert record(db, fresh).reused_job_uuid is None
    for uuid in (original, reused):
        reason = record(db, uuid).reuse_ineligible
        assert reason is not None and f"collection {PDH_OUT} is damaged" in reason, reason
    assert record(db, fresh).reuse_ineligible is None
    # Never asked again: the next submission joins the job that runs anew.
    asked.clear()
    follower = insert(db, present=damaged)
    assert asked == [] and record(db, follower).reused_job_uuid == fresh
    claim(db, fresh)
    finish(db, fresh, output=PDH_OUT)
    later = insert(db)
    assert record(db, later).reused_job_uuid == fresh


def test_mark_output_damaged_marks_each_job_once(db):
    first = run_to_completion(db)
    other = run_to_completion(db, job_spec=spec(command=("cat", "in/data.txt")))
    with db.writing() as connection:
        assert jobs.mark_output_damaged(connection, PDH_OUT, "bad block") == [first, other]
        assert jobs.mark_output_damaged(connection, PDH_OUT, "again") == [first, other]
        assert jobs.jobs_using(connection, [PDH_OUT, PDH_LOG, "x+1"]) == {
            PDH_OUT: [first, other], PDH_LOG: [first, other]}
        assert jobs.jobs_with_digests(connection, [PDH_OUT.split("+")[0]]) == {
            PDH_OUT.split("+")[0]: [(first, PDH_OUT), (other, PDH_OUT)]}
    # The first reason is kept.
    assert record(db, first).reuse_ineligible.startswith("bad block (found ")


@pytest.mark.parametrize("state, exit_code", [("Complete", 1), ("Complete", 137),
                                              ("Failed", None), ("Cancelled", None)])
def test_unsuccessful_twin_is_not_reused(db, state, exit_code):
    run_to_completion(db, state=state, exit_code=exit_code)
    uuid = insert(db)
    job = record(db, uuid)
    assert job.state == "Queued"
    assert job.reused_job_uuid is None
    assert uuid in queued(db)


def test_reuse_false_never_reuses_or_joins(db):
    run_to_completion(db)
    fresh = insert(db, spec(reuse=False))
    assert record(db, fresh).state == "Queued"
    assert record(db, fresh).reused_job_uuid is None
    live = insert(db, spec(command=("other",)))
    not_joined = insert(db, spec(command=("other",), reuse=False))
    assert record(db, not_joined).reused_job_uuid is None
    assert sorted(queued(db)) == sorted([fresh, live, not_joined])


def test_job_run_with_reuse_false_is_not_offered_for_reuse(db):
    run_to_completion(db, spec(reuse=False))
    uuid = insert(db)
    assert record(db, uuid).reused_job_uuid is None
    live = insert(db, spec(command=("other",), reuse=False))
    joiner = insert(db, spec(command=("other",)))
    assert record(db, joiner).reused_job_uuid is None
    assert live != joiner


# Joining a live twin -------------------------------------------------------------------

def test_queued_twin_is_joined(db):
    leader = insert(db)
    follower = insert(db, spec(cores=4.0))
    job = record(db, follower)
    assert job.state == "Queued"
    assert job.reused_job_uuid == leader
    assert queued(db) == [leader]  # the follower does not run itself


def test_running_twin_is_joined_as_running(db):
    leader = insert(db)
    claim(db, leader)
    follower = insert(db)
    job = record(db, follower)
    assert job.state == "Running"
    assert job.reused_job_uuid == leader
    assert events_of(db, follower) == ["Queued", "Running"]


def test_followers_join_the_leader_not_each_other(db):
    leader = insert(db)
    first = insert(db)
    second = insert(db)
    assert record(db, first).reused_job_uuid == leader
    assert record(db, second).reused_job_uuid == leader


def test_claiming_the_leader_starts_its_followers(db):
    leader = insert(db)
    follower = insert(db)
    claim(db, leader)
    job = record(db, follower)
    assert job.state == "Running"
    assert job.started_at is not None
    assert events_of(db, follower) == ["Queued", "Running"]


@pytest.mark.parametrize("claimed", [True, False])
def test_follower_completes_with_the_leader(db, claimed):
    leader = insert(db)
    follower = insert(db)
    if claimed:
        claim(db, leader)
    finish(db, leader, exit_code=0)
    job = record(db, follower)
    assert job.state == "Complete"
    assert (job.exit_code, job.output_pdh, job.log_pdh) == (0, PDH_OUT, PDH_LOG)
    assert job.reused_job_uuid == leader
    assert job.finished_at is not None
    assert events_of(db, follower)[-1] == "Complete"


@pytest.mark.parametrize("end", ["Failed", "Cancelled"])
def test_running_follower_requeues_when_the_leader_does_not_complete(db, end):
    leader = insert(db)
    follower = insert(db)
    claim(db, leader)
    finish(db, leader, state=end, exit_code=None, output=None, reason="boom")
    job = record(db, follower)
    assert job.state == "Queued"
    assert job.reused_job_uuid is None
    assert job.started_at is None
    assert job.exit_code is None and job.output_pdh is None
    assert events_of(db, follower) == ["Queued", "Running", "Queued"]
    assert queued(db) == [follower]


@pytest.mark.parametrize("end", ["Failed", "Cancelled"])
def test_queued_follower_is_released_when_the_leader_ends_without_running(db, end):
    leader = insert(db)
    follower = insert(db)
    finish(db, leader, state=end, exit_code=None, output=None)
    job = record(db, follower)
    assert job.state == "Queued"
    assert job.reused_job_uuid is None
    assert queued(db) == [follower]


def test_requeued_follower_becomes_a_leader_for_new_twins(db):
    leader = insert(db)
    follower = insert(db)
    claim(db, leader)
    finish(db, leader, state="Failed", exit_code=None, output=None)
    newcomer = insert(db)
    assert record(db, newcomer).reused_job_uuid == follower


def test_finished_follower_is_not_disturbed_by_a_later_finish(db):
    leader = insert(db)
    follower = insert(db)
    cancel(db, follower)
    claim(db, leader)
    finish(db, leader)
    assert record(db, follower).state == "Cancelled"


# Claiming and resource usage ---------------------------------------------------------

def test_claim_sets_worker_fields_and_emits_running(db):
    uuid = insert(db)
    claim(db, uuid)
    job = row(db, uuid)
    assert (job.worker_host, job.worker_pid, job.worker_pid_start) == ("hosta", 4242, 777)
    assert job.state == "Running"
    assert job.started_at is not None
    assert events_of(db, uuid) == ["Queued", "Running"]


def test_claiming_a_finished_job_is_illegal(db):
    uuid = run_to_completion(db)
    with pytest.raises(IllegalTransition, match=uuid), db.writing() as connection:
        jobs.claim(connection, uuid, jobs.get_job(connection, uuid).state, WORKER)
    assert record(db, uuid).state == "Complete"


def test_finishing_twice_is_illegal(db):
    uuid = run_to_completion(db)
    with pytest.raises(IllegalTransition):
        finish(db, uuid, state="Failed")


def test_usage_on_host_sums_only_running_jobs_there(db):
    other_host = WorkerInfo("hostb", 1, 1)
    a = insert(db, spec(command=("a",), cores=0.25, ram=100))
    b = insert(db, spec(command=("b",), cores=1.5, ram=2000))
    c = insert(db, spec(command=("c",), cores=8.0, ram=30000))
    done = insert(db, spec(command=("d",), cores=16.0, ram=400000))
    insert(db, spec(command=("e",), cores=32.0, ram=5000000))  # queued
    follower = insert(db, spec(command=("a",), cores=64.0, ram=6000000))
    claim(db, a)
    claim(db, b)
    claim(db, c, other_host)
    claim(db, done)
    finish(db, done)
    assert record(db, follower).state == "Running"  # joined a, holds nothing itself
    with db.reading() as connection:
        assert jobs.usage_on_host(connection, "hosta") == pytest.approx((1.75, 2100))
        assert jobs.usage_on_host(connection, "hostb") == pytest.approx((8.0, 30000))
        cores, ram = jobs.usage_on_host(connection, "nowhere")
        assert (cores, ram) == (0.0, 0)
        assert isinstance(cores, float) and isinstance(ram, int)
        assert {job.uuid for job in jobs.running_on_host(connection, "hosta")} == {a, b}


# The queue ------------------------------------------------------------------------------

def set_created(db, uuid, when):
    with db.writing() as connection:
        connection.execute(update(JOBS).where(JOBS.c.uuid == uuid).values(created_at=when))


def test_queued_candidates_order_priority_then_age(db):
    made = {}
    for name, priority, created in [("old-low", 0, 100.0), ("new-high", 5, 300.0),
                                    ("old-high", 5, 200.0), ("new-low", 0, 400.0),
                                    ("negative", -1, 50.0)]:
        made[name] = insert(db, spec(command=(name,), priority=priority))
        set_created(db, made[name], created)
    expected = ["old-high", "new-high", "old-low", "new-low", "negative"]
    assert queued(db) == [made[name] for name in expected]
    assert queued(db, limit=2) == [made["old-high"], made["new-high"]]


def test_queued_candidates_carry_the_resources(db):
    uuid = insert(db, spec(cores=0.75, ram=12345))
    with db.reading() as connection:
        rows = jobs.queued_candidates(connection, 10)
    assert [tuple(row) for row in rows] == [(uuid, 0.75, 12345)]
    assert isinstance(rows[0][1], float) and isinstance(rows[0][2], int)


def test_queued_candidates_exclude_running_finished_and_followers(db):
    running = insert(db, spec(command=("r",)))
    claim(db, running)
    run_to_completion(db, spec(command=("f",)))
    leader = insert(db, spec(command=("l",)))
    insert(db, spec(command=("l",)))  # follower
    assert queued(db) == [leader]


# Process tree and cancelling -------------------------------------------------------------

def test_descendants_are_unfinished_jobs_at_any_depth(db):
    root = insert(db, spec(command=("root",)))
    a = insert(db, spec(command=("a",)), parent=root)
    b = insert(db, spec(command=("b",)), parent=root)
    c = insert(db, spec(command=("c",)), parent=a)
    d = insert(db, spec(command=("d",)), parent=c)
    claim(db, c)
    finish(db, c)  # finished: left out, but its child still counts
    other = insert(db, spec(command=("x",)))
    insert(db, spec(command=("y",)), parent=other)
    with db.reading() as connection:
        assert {job.uuid for job in jobs.descendants(connection, root)} == {a, b, d}
        assert {job.uuid for job in jobs.descendants(connection, a)} == {d}
        assert jobs.descendants(connection, b) == []


def test_cancel_queued_job(db):
    uuid = insert(db)
    assert cancel(db, uuid) is False
    job = record(db, uuid)
    assert job.state == "Cancelled"
    assert job.failure_reason == "cancelled"
    assert job.finished_at is not None
    assert events_of(db, uuid) == ["Queued", "Cancelled"]


def test_cancel_running_job_marks_it_for_its_worker(db):
    uuid = insert(db)
    claim(db, uuid)
    assert cancel(db, uuid) is True
    job = record(db, uuid)
    assert job.state == "Running"
    assert job.cancel_requested is True
    assert events_of(db, uuid) == ["Queued", "Running"]


def test_cancel_running_follower_cancels_it_at_once(db):
    leader = insert(db)
    claim(db, leader)
    follower = insert(db)
    assert cancel(db, follower) is False
    assert record(db, follower).state == "Cancelled"
    assert record(db, leader).state == "Running"


def test_cancel_finished_job_changes_nothing(db):
    uuid = run_to_completion(db)
    before = events_of(db, uuid)
    assert cancel(db, uuid) is False
    job = record(db, uuid)
    assert job.state == "Complete"
    assert job.cancel_requested is False
    assert events_of(db, uuid) == before


def test_cancelling_a_queued_leader_releases_its_followers(db):
    leader = insert(db)
    follower = insert(db)
    cancel(db, leader)
    job = record(db, follower)
    assert job.state == "Queued"
    assert job.reused_job_uuid is None
    assert queued(db) == [follower]


# Events ---------------------------------------------------------------------------------

def test_events_are_ordered_and_resumable(db):
    with db.reading() as connection:
        assert jobs.last_event_id(connection) == 0
        assert jobs.events_after(connection, 0) == []
    first = insert(db, spec(command=("one",)))
    second = insert(db, spec(command=("two",)))
    claim(db, first)
    finish(db, first, state="Failed", exit_code=None, output=None)
    with db.reading() as connection:
        events = jobs.events_after(connection, 0)
        last = jobs.last_event_id(connection)
        assert [(e.job_uuid, e.state) for e in events] == [
            (first, "Queued"), (second, "Queued"), (first, "Running"), (first, "Failed")]
        ids = [e.id for e in events]
        assert ids == sorted(ids) and len(set(ids)) == len(ids)
        assert last == ids[-1]
        assert all(e.at.tzinfo == UTC for e in events)
        assert [e.at for e in events] == sorted(e.at for e in events)
        assert jobs.events_after(connection, ids[1]) == events[2:]
        assert jobs.events_after(connection, last) == []
        assert jobs.events_after(connection, 0, limit=2) == events[:2]


# Tokens -------------------------------------------------------------------------------

def test_finish_revokes_the_jobs_tokens(db):
    uuid = insert(db)
    other = insert(db, spec(command=("other",)))
    claim(db, uuid)
    with db.writing() as connection:
        mine = create_token(connection, "local", uuid)
        theirs = create_token(connection, "local", other)
    with db.reading() as connection:
        assert resolve_token(connection, mine).job_uuid == uuid
    finish(db, uuid)
    with db.reading() as connection:
        with pytest.raises(TokenError, match="revoked"):
            resolve_token(connection, mine)
        assert resolve_token(connection, theirs).job_uuid == other


def test_cancelled_job_ends_with_its_token_revoked(db):
    # Only a claimed job has a token (the dispatcher makes it when it claims the job).
    uuid = insert(db)
    claim(db, uuid)
    with db.writing() as connection:
        token = create_token(connection, "local", uuid)
    assert cancel(db, uuid) is True
    with db.reading() as connection:
        resolve_token(connection, token)  # still valid while the job is being stopped
    finish(db, uuid, state="Complete", exit_code=143)
    with db.reading() as connection, pytest.raises(TokenError):
        resolve_token(connection, token)


def test_cancel_requested_job_that_completes_ends_cancelled(db):
    uuid = insert(db)
    follower = insert(db)
    claim(db, uuid)
    assert cancel(db, uuid) is True
    finish(db, uuid, state="Complete", exit_code=143)
    job = record(db, uuid)
    assert job.state == "Cancelled"
    assert job.failure_reason == "cancelled"
    # Its work was not done: the follower must run it itself.
    assert record(db, follower).state == "Queued"
    assert record(db, follower).reused_job_uuid is None
    # And a cancelled job is never offered for reuse.
    assert record(db, insert(db)).reused_job_uuid == follower


def test_cancel_requested_job_that_fails_stays_failed(db):
    uuid = insert(db)
    claim(db, uuid)
    cancel(db, uuid)
    finish(db, uuid, state="Failed", exit_code=None, output=None, reason="oom")
    job = record(db, uuid)
    assert (job.state, job.failure_reason) == ("Failed", "oom")


# Other queries ---------------------------------------------------------------------------

def test_get_jobs_keeps_the_order_asked(db):
    a = insert(db, spec(command=("a",)))
    b = insert(db, spec(command=("b",)))
    c = insert(db, spec(command=("c",)))
    with db.reading() as connection:
        assert [r.uuid for r in jobs.get_jobs(connection, [c, a, b])] == [c, a, b]
        assert [r.uuid for r in jobs.get_jobs(connection, [b, b])] == [b, b]
        assert jobs.get_jobs(connection, []) == []
        with pytest.raises(JobNotFound, match="local-job-missing1"):
            jobs.get_jobs(connection, [a, "local-job-missing1", "local-job-missing2"])


def test_set_process_records_the_group_and_reports_a_pending_cancel(db):
    uuid = insert(db)
    claim(db, uuid)
    with db.writing() as connection:
        assert jobs.set_process(connection, uuid, 5555, 66) is False
    job = row(db, uuid)
    assert (job.command_pgid, job.command_pgid_start) == (5555, 66)
    cancel(db, uuid)
    with db.writing() as connection:
        assert jobs.set_process(connection, uuid, 5556, 67) is True


def test_large_ram_and_clock_ticks_round_trip(db, request):
    """RAM in bytes passes 2**31 at 2 GiB; start times in clock ticks since boot pass it
    after 248 days of uptime (100 Hz): the columns must hold 64-bit integers."""
    big_ram = 64 << 30
    ticks = 3_000_000_000
    uuid = insert(db, spec(ram=big_ram))
    claim(db, uuid, WorkerInfo("hosta", 4242, ticks))
    with db.writing() as connection:
        jobs.set_process(connection, uuid, 5555, ticks + 1)
    job = row(db, uuid)
    assert (job.ram, job.worker_pid_start, job.command_pgid_start) == \
        (big_ram, ticks, ticks + 1)
    with db.reading() as connection:
        assert jobs.usage_on_host(connection, "hosta") == (0.5, big_ram)


def test_list_jobs_filters_and_orders_newest_first(db):
    root = insert(db, spec(command=("root",)))
    kids = [insert(db, spec(command=(f"k{i}",)), parent=root) for i in range(3)]
    lone = insert(db, spec(command=("lone",)))
    for when, uuid in enumerate([root, *kids, lone]):
        set_created(db, uuid, 1000.0 + when)
    claim(db, kids[1])

    def listed(**options):
        defaults = {"parent_uuid": None, "top_level": False, "only_states": None,
                    "limit": 100}
        with db.reading() as connection:
            return [r.uuid for r in jobs.list_jobs(connection, **{**defaults, **options})]

    assert listed() == [lone, kids[2], kids[1], kids[0], root]
    assert listed(limit=2) == [lone, kids[2]]
    assert listed(parent_uuid=root) == [kids[2], kids[1], kids[0]]
    assert listed(top_level=True) == [lone, root]
    assert listed(only_states=frozenset({"Running"})) == [kids[1]]
    assert listed(parent_uuid=root, only_states=frozenset({"Queued"})) == [kids[2], kids[0]]


# Jobs another dispatcher (a batch system) runs --------------------------------------------

def test_queued_candidates_by_size(db):
    small = insert(db, spec(command=("small",), cores=0.25))
    almost = insert(db, spec(command=("almost",), cores=1 - 1e-12))  # 1.0 after rounding
    whole = insert(db, spec(command=("whole",), cores=1.0))
    big = insert(db, spec(command=("big",), cores=4.0))
    with db.reading() as connection:
        def sizes(whole_cores):
            return [uuid for uuid, _c, _r in jobs.queued_candidates(
                connection, 100, whole_cores=whole_cores)]
        assert sizes(False) == [small]
        assert sizes(True) == [almost, whole, big]
        assert sizes(None) == [small, almost, whole, big]


def test_set_backend_job_id_only_for_a_running_job_of_that_backend(db):
    uuid = insert(db)
    with db.writing() as connection:
        assert not jobs.set_backend_job_id(connection, uuid, "slurm", "17")  # still queued
        jobs.claim(connection, uuid, "Queued", None, backend="slurm")
    assert row(db, uuid).backend == "slurm" and row(db, uuid).worker_host is None
    with db.writing() as connection:
        assert not jobs.set_backend_job_id(connection, uuid, "local", "17")
        assert jobs.set_backend_job_id(connection, uuid, "slurm", "17")
    assert row(db, uuid).backend_job_id == "17"
    finish(db, uuid)
    with db.writing() as connection:
        assert not jobs.set_backend_job_id(connection, uuid, "slurm", "18")


def test_a_requeued_job_runs_afresh_and_its_old_token_stops_working(db):
    uuid = insert(db)
    claim(db, uuid)
    with db.writing() as connection:
        token = create_token(connection, "local", uuid)
        jobs.set_process(connection, uuid, 99, 100)
        assert jobs.times_started(connection, uuid) == 1
        jobs.requeue(connection, jobs.get_job(connection, uuid))
    requeued = row(db, uuid)
    assert requeued.state == "Queued" and queued(db) == [uuid]
    assert (requeued.worker_host, requeued.worker_pid, requeued.command_pgid,
            requeued.started_at) == (None, None, None, None)
    with db.reading() as connection, pytest.raises(TokenError):
        resolve_token(connection, token)
    claim(db, uuid)
    with db.reading() as connection:
        assert jobs.times_started(connection, uuid) == 2
    assert events_of(db, uuid) == ["Queued", "Running", "Queued", "Running"]
