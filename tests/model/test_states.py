"""cwl_crunch.model.states: the job state machine."""

from __future__ import annotations

import itertools

import pytest

from cwl_crunch.errors import IllegalTransition, RecordsError
from cwl_crunch.model import ALL_STATES, FINAL_STATES, JobState, can_transition, check_transition

ALL = ["Queued", "Running", "Complete", "Failed", "Cancelled"]
# Written out independently of the module's own table.
ALLOWED = {
    ("Queued", "Running"),
    ("Queued", "Complete"),
    ("Queued", "Failed"),
    ("Queued", "Cancelled"),
    ("Running", "Queued"),
    ("Running", "Complete"),
    ("Running", "Failed"),
    ("Running", "Cancelled"),
}
PAIRS = list(itertools.product(ALL, ALL))


def test_state_names():
    assert {JobState.QUEUED, JobState.RUNNING, JobState.COMPLETE, JobState.FAILED,
            JobState.CANCELLED} == set(ALL)
    assert set(ALL_STATES) == set(ALL)
    assert set(FINAL_STATES) == {"Complete", "Failed", "Cancelled"}


@pytest.mark.parametrize("current, new", sorted(ALLOWED))
def test_allowed_transition(current, new):
    assert can_transition(current, new)
    check_transition("local-job-aaaaaaaaaaaaaaa", current, new)  # does not raise


@pytest.mark.parametrize("current, new", [p for p in PAIRS if p not in ALLOWED])
def test_forbidden_transition(current, new):
    uuid = "local-job-bbbbbbbbbbbbbbb"
    assert not can_transition(current, new)
    with pytest.raises(IllegalTransition) as info:
        check_transition(uuid, current, new)
    assert uuid in str(info.value)
    assert current in str(info.value) and new in str(info.value)


@pytest.mark.parametrize("final", ["Complete", "Failed", "Cancelled"])
def test_final_states_are_final(final):
    assert final in FINAL_STATES
    assert not any(can_transition(final, new) for new in ALL)


def test_self_transitions_are_forbidden():
    for state in ALL:
        assert not can_transition(state, state)


@pytest.mark.parametrize("current, new", [("Queued", "Paused"), ("Bogus", "Running"),
                                          ("queued", "running")])
def test_unknown_states(current, new):
    assert not can_transition(current, new)
    with pytest.raises(IllegalTransition, match="local-job-ccccccccccccccc"):
        check_transition("local-job-ccccccccccccccc", current, new)


def test_illegal_transition_is_a_records_error():
    with pytest.raises(RecordsError):
        check_transition("x", "Complete", "Running")
