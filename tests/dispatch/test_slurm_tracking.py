"""What the SLURM dispatcher decides from the records and SLURM's view (pure: no SLURM
here; tests/dispatch/test_slurm.py checks the same cases against the real one)."""

from __future__ import annotations

import pytest

from cwl_crunch.dispatch.slurm_commands import SlurmJob, slurm_job_name
from cwl_crunch.dispatch.slurm_tracking import Adopt, Cancel, End, Submit, Tracked, decide

UUID = "local-job-aaaaaaaaaaaaaaa"


def slurm_job(slurm_id: str, state: str, reason: str = "", uuid: str = UUID,
              **fields) -> SlurmJob:
    return SlurmJob(slurm_id, slurm_job_name(uuid), state, reason, **fields)


@pytest.mark.parametrize("state", ["PENDING", "RUNNING", "COMPLETING", "SUSPENDED"])
def test_an_active_job_is_left_alone(state):
    assert decide([Tracked(UUID, "7")], {"7": slurm_job("7", state)}) == []


def test_an_active_job_whose_cancel_was_asked_is_scancelled():
    actions = decide([Tracked(UUID, "7", cancel_requested=True)],
                     {"7": slurm_job("7", "RUNNING")})
    assert actions == [Cancel(UUID, "7")]


@pytest.mark.parametrize(("state", "reason", "words"), [
    ("CANCELLED", "", "SLURM ended the job: CANCELLED"),
    ("TIMEOUT", "TimeLimit", "SLURM ended the job: TIMEOUT (TimeLimit"),
    ("FAILED", "NonZeroExitCode", "SLURM ended the job: FAILED (NonZeroExitCode"),
    ("OUT_OF_MEMORY", "OutOfMemory", "SLURM ended the job: OUT_OF_MEMORY (OutOfMemory"),
])
def test_a_job_slurm_ended_unreported_fails_with_slurms_words(state, reason, words):
    [action] = decide([Tracked(UUID, "7")], {"7": slurm_job("7", state, reason)})
    assert isinstance(action, End)
    assert (action.uuid, action.slurm_id, action.state, action.retry) == (
        UUID, "7", "Failed", False)
    assert action.reason.startswith(words) and "SLURM job 7" in action.reason


def test_a_cancelled_job_ends_cancelled_whatever_slurm_calls_it():
    [action] = decide([Tracked(UUID, "7", cancel_requested=True)],
                      {"7": slurm_job("7", "CANCELLED")})
    assert isinstance(action, End) and action.state == "Cancelled"


@pytest.mark.parametrize("state", ["NODE_FAIL", "PREEMPTED", "BOOT_FAIL"])
def test_a_job_lost_through_no_fault_of_its_own_may_be_retried(state):
    [action] = decide([Tracked(UUID, "7")], {"7": slurm_job("7", state)})
    assert isinstance(action, End) and action.retry and action.state == "Failed"


def test_a_cancelled_job_is_never_retried():
    [action] = decide([Tracked(UUID, "7", cancel_requested=True)],
                      {"7": slurm_job("7", "NODE_FAIL")})
    assert isinstance(action, End) and not action.retry and action.state == "Cancelled"


def test_a_worker_that_exited_0_without_reporting_fails_its_job():
    [action] = decide([Tracked(UUID, "7")], {"7": slurm_job("7", "COMPLETED")})
    assert isinstance(action, End) and action.state == "Failed"
    assert "without its worker reporting" in action.reason


def test_a_job_slurm_does_not_know_fails_saying_so():
    [action] = decide([Tracked(UUID, "7")], {"7": None})
    assert isinstance(action, End) and action.state == "Failed" and not action.retry
    assert "SLURM job 7 is gone" in action.reason


def test_a_job_slurm_was_not_asked_about_waits():
    assert decide([Tracked(UUID, "7")], {}) == []


def test_a_claimed_job_with_no_slurm_job_is_submitted():
    other = slurm_job("3", "RUNNING", uuid="local-job-bbbbbbbbbbbbbbb")
    assert decide([Tracked(UUID, None)], {"3": other}) == [Submit(UUID)]


def test_a_claimed_job_whose_slurm_job_exists_is_adopted_newest_first():
    seen = {"9": slurm_job("9", "NODE_FAIL"), "12": slurm_job("12", "PENDING"),
            "10": slurm_job("10", "NODE_FAIL")}
    assert decide([Tracked(UUID, None)], seen) == [Adopt(UUID, "12")]


def test_jobs_that_are_not_ours_are_ignored():
    foreign = SlurmJob("5", "somebody-elses", "FAILED")
    assert decide([], {"5": foreign}) == []
    assert decide([Tracked(UUID, None)], {"5": foreign}) == [Submit(UUID)]
