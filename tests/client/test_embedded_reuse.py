"""Reuse and join: identical work runs once.

Every command here appends a line to a counter file outside the job dir (named by the
environment, which is part of the reuse key, so it is kept identical between twins);
the number of lines says how many times the work really ran.
"""

from __future__ import annotations

import time

import pytest

import cwl_crunch
from cwl_crunch import CollectionMount, JobSpec, LiteralMount

WAIT = 30

COUNTED = 'echo run >> "$COUNTER"; echo "result $WORD" > out/r.txt'


@pytest.fixture
def counter(tmp_path):
    path = tmp_path / "invocations.txt"

    class Counter:
        env = {"COUNTER": str(path)}

        @staticmethod
        def runs():
            return len(path.read_text().splitlines()) if path.exists() else 0

    return Counter()


def counted(counter, script=COUNTED, extra_env=None, **fields):
    env = {**counter.env, "WORD": "w", **(extra_env or {})}
    return JobSpec(command=("sh", "-c", script), environment=env, **fields)


def done(client, record, timeout=WAIT):
    final = client.wait([record.uuid], timeout=timeout)[0]
    assert final.finished, f"{final.uuid} still {final.state}"
    return final


def text(client, pdh, path):
    return b"".join(client.read_file(pdh, path)).decode()


def test_same_spec_is_reused(client, counter):
    first = done(client, client.submit(counted(counter)))
    assert first.succeeded and counter.runs() == 1
    second = client.submit(counted(counter))
    # Complete on return from submit: nothing was queued or run.
    assert second.state == "Complete"
    assert second.uuid != first.uuid
    assert second.reused_job_uuid == first.uuid
    assert second.output_pdh == first.output_pdh
    assert second.exit_code == 0
    assert second.succeeded
    assert done(client, second) == client.get_job(second.uuid)
    assert counter.runs() == 1
    assert text(client, second.output_pdh, "r.txt") == "result w\n"
    assert first.reused_job_uuid is None


def test_reuse_chain_names_the_job_that_ran(client, counter):
    first = done(client, client.submit(counted(counter)))
    client.submit(counted(counter))
    third = client.submit(counted(counter))
    assert third.reused_job_uuid == first.uuid
    assert counter.runs() == 1


def test_different_resources_still_reuse(client, counter):
    first = done(client, client.submit(counted(counter, cores=1.0, ram=256 << 20)))
    second = client.submit(counted(counter, cores=0.25, ram=64 << 20, time_limit=100,
                                   priority=7, name="other name", properties={"p": "q"}))
    assert second.state == "Complete"
    assert second.reused_job_uuid == first.uuid
    assert second.output_pdh == first.output_pdh
    assert second.spec.cores == 0.25
    assert second.name == "other name"
    assert counter.runs() == 1


@pytest.mark.parametrize("change", [
    {"extra_env": {"WORD": "changed"}},
    {"extra_env": {"UNUSED": "but part of the key"}},
    {"script": COUNTED + " "},
    {"stdout": "out/stdout.txt"},
    {"stderr": "err.txt"},
    {"output_path": "out"},  # same as the default: reused (control case)
    {"cwd": "."},  # same as the default: reused (control case)
])
def test_changes_to_the_work_are_not_reused(client, counter, change):
    first = done(client, client.submit(counted(counter)))
    second = done(client, client.submit(counted(counter, **change)))
    assert second.succeeded
    control = change in ({"output_path": "out"}, {"cwd": "."})
    if control:
        assert second.reused_job_uuid == first.uuid
        assert counter.runs() == 1
    else:
        assert second.reused_job_uuid is None
        assert counter.runs() == 2


def test_changed_mount_content_is_not_reused(client, counter, tmp_path):
    (tmp_path / "v1").mkdir()
    (tmp_path / "v2").mkdir()
    (tmp_path / "v1" / "in.txt").write_text("version 1\n")
    (tmp_path / "v2" / "in.txt").write_text("version 2\n")
    v1 = client.put_paths([tmp_path / "v1" / "in.txt"])
    v2 = client.put_paths([tmp_path / "v2" / "in.txt"])
    assert v1 != v2
    script = 'echo run >> "$COUNTER"; cat in/in.txt > out/r.txt'
    first = done(client, client.submit(counted(counter, script,
                                               mounts={"in": CollectionMount(v1)})))
    second = done(client, client.submit(counted(counter, script,
                                                mounts={"in": CollectionMount(v2)})))
    assert second.reused_job_uuid is None
    assert counter.runs() == 2
    assert text(client, first.output_pdh, "r.txt") == "version 1\n"
    assert text(client, second.output_pdh, "r.txt") == "version 2\n"
    # The same content stored again has the same PDH: reused.
    (tmp_path / "v3").mkdir()
    (tmp_path / "v3" / "in.txt").write_text("version 1\n")
    again = client.put_paths([tmp_path / "v3" / "in.txt"])
    assert again == v1
    third = client.submit(counted(counter, script, mounts={"in": CollectionMount(again)}))
    assert third.reused_job_uuid == first.uuid
    assert counter.runs() == 2


def test_changed_mount_path_or_target_is_not_reused(client, counter, tmp_path):
    (tmp_path / "a.txt").write_text("a\n")
    (tmp_path / "b.txt").write_text("b\n")
    pdh = client.put_paths([tmp_path / "a.txt", tmp_path / "b.txt"])
    script = 'echo run >> "$COUNTER"; cat m > out/r.txt'
    done(client, client.submit(counted(counter, script, mounts={"m": CollectionMount(pdh,
                                                                                     "a.txt")})))
    other = done(client, client.submit(counted(counter, script,
                                               mounts={"m": CollectionMount(pdh, "b.txt")})))
    assert other.reused_job_uuid is None
    assert text(client, other.output_pdh, "r.txt") == "b\n"
    assert counter.runs() == 2


def test_writable_flag_is_part_of_the_work(client, counter, tmp_path):
    (tmp_path / "a.txt").write_text("a\n")
    pdh = client.put_paths([tmp_path / "a.txt"])
    script = 'echo run >> "$COUNTER"; (echo x >> in/a.txt) 2>/dev/null; cat in/a.txt > out/r'
    first = done(client, client.submit(counted(counter, script,
                                               mounts={"in": CollectionMount(pdh,
                                                                             writable=True)})))
    assert text(client, first.output_pdh, "r") == "a\nx\n"
    done(client, client.submit(counted(counter, script, mounts={"in": CollectionMount(pdh)})))
    assert counter.runs() == 2


def test_changed_literal_mount_is_not_reused(client, counter):
    script = 'echo run >> "$COUNTER"; cat conf > out/r.txt'
    done(client, client.submit(counted(counter, script, mounts={"conf": LiteralMount("a")})))
    second = done(client, client.submit(counted(counter, script,
                                                mounts={"conf": LiteralMount("b")})))
    assert second.reused_job_uuid is None
    assert text(client, second.output_pdh, "r.txt") == "b"
    third = client.submit(counted(counter, script, mounts={"conf": LiteralMount("a")}))
    assert third.state == "Complete" and third.reused_job_uuid is not None
    assert counter.runs() == 2


def test_reuse_false_runs_again(client, counter):
    first = done(client, client.submit(counted(counter)))
    second = done(client, client.submit(counted(counter, reuse=False)))
    assert second.succeeded
    assert second.reused_job_uuid is None
    assert counter.runs() == 2
    # Same content, so the same output collection.
    assert second.output_pdh == first.output_pdh


def test_a_reuse_false_job_is_not_reused_later(client, counter):
    first = done(client, client.submit(counted(counter, reuse=False)))
    assert first.succeeded
    second = done(client, client.submit(counted(counter)))
    assert second.reused_job_uuid is None
    assert counter.runs() == 2


def test_failed_job_is_not_reused(client, counter):
    failing = 'echo run >> "$COUNTER"; exit 1'
    first = done(client, client.submit(counted(counter, failing)))
    assert first.state == "Complete" and first.exit_code == 1
    second = done(client, client.submit(counted(counter, failing)))
    assert second.reused_job_uuid is None
    assert counter.runs() == 2


def test_job_failed_to_start_is_not_reused(client):
    first = done(client, client.submit(JobSpec(command=("no-such-program-xyz",))))
    assert first.state == "Failed"
    second = done(client, client.submit(JobSpec(command=("no-such-program-xyz",))))
    assert second.state == "Failed"
    assert second.reused_job_uuid is None


def test_cancelled_job_is_not_reused(client, counter):
    slow = 'echo run >> "$COUNTER"; sleep 30; echo done > out/r.txt'
    first = client.submit(counted(counter, slow))
    deadline = time.monotonic() + 10
    while counter.runs() == 0:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    client.cancel(first.uuid)
    assert done(client, first).state == "Cancelled"
    second = client.submit(counted(counter, slow))
    assert second.reused_job_uuid is None
    client.cancel(second.uuid)
    done(client, second)


def test_identical_job_joins_a_running_one(client, counter):
    slow = 'echo run >> "$COUNTER"; sleep 1; echo "joined $WORD" > out/r.txt'
    first = client.submit(counted(counter, slow))
    deadline = time.monotonic() + 10
    while counter.runs() == 0:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    second = client.submit(counted(counter, slow))
    assert second.reused_job_uuid == first.uuid
    assert second.state in ("Queued", "Running")
    finals = client.wait([first.uuid, second.uuid], timeout=WAIT)
    assert [f.state for f in finals] == ["Complete", "Complete"]
    assert finals[1].output_pdh == finals[0].output_pdh
    assert finals[1].exit_code == 0
    assert finals[1].reused_job_uuid == first.uuid
    assert text(client, finals[1].output_pdh, "r.txt") == "joined w\n"
    assert counter.runs() == 1


def test_identical_job_joins_a_queued_one(client, counter):
    # Both submitted back to back: the second joins whatever state the first is in.
    slow = 'echo run >> "$COUNTER"; sleep 0.3; echo r > out/r.txt'
    records = [client.submit(counted(counter, slow)) for _ in range(3)]
    assert [r.reused_job_uuid for r in records[1:]] == [records[0].uuid] * 2
    finals = client.wait([r.uuid for r in records], timeout=WAIT)
    assert {f.state for f in finals} == {"Complete"}
    assert len({f.output_pdh for f in finals}) == 1
    assert counter.runs() == 1


def test_joined_job_runs_itself_when_the_leader_is_cancelled(client, counter):
    slow = 'echo run >> "$COUNTER"; sleep 1; echo r > out/r.txt'
    leader = client.submit(counted(counter, slow))
    deadline = time.monotonic() + 10
    while counter.runs() == 0:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    follower = client.submit(counted(counter, slow))
    assert follower.reused_job_uuid == leader.uuid
    client.cancel(leader.uuid)
    finals = client.wait([leader.uuid, follower.uuid], timeout=WAIT)
    assert [f.state for f in finals] == ["Cancelled", "Complete"]
    assert finals[1].succeeded
    assert finals[1].reused_job_uuid is None
    assert counter.runs() == 2


def test_joined_job_runs_itself_when_the_leader_hits_its_time_limit(client, counter):
    # The time limit is a resource, not part of the key: the follower has none.
    slow = 'echo run >> "$COUNTER"; sleep 1.5; echo r > out/r.txt'
    leader = client.submit(counted(counter, slow, time_limit=0.5))
    follower = client.submit(counted(counter, slow))
    assert follower.reused_job_uuid == leader.uuid
    finals = client.wait([leader.uuid, follower.uuid], timeout=WAIT)
    assert finals[0].state == "Failed"
    assert "time limit" in finals[0].failure_reason
    assert finals[1].succeeded
    assert finals[1].reused_job_uuid is None
    assert counter.runs() == 2


def test_joined_job_does_not_take_over_a_nonzero_exit(client, counter):
    flaky = 'echo run >> "$COUNTER"; sleep 0.5; test -e "$COUNTER.ok" || exit 1'
    leader = client.submit(counted(counter, flaky))
    follower = client.submit(counted(counter, flaky))
    assert follower.reused_job_uuid == leader.uuid
    assert done(client, leader).exit_code == 1
    final = done(client, follower)
    # Like a resubmission after the failure: the follower runs the work itself.
    assert final.reused_job_uuid is None
    assert counter.runs() == 2


def test_cancelling_a_joined_job_leaves_the_leader_running(client, counter):
    slow = 'echo run >> "$COUNTER"; sleep 1; echo r > out/r.txt'
    leader = client.submit(counted(counter, slow))
    follower = client.submit(counted(counter, slow))
    assert follower.reused_job_uuid == leader.uuid
    assert client.cancel(follower.uuid).state == "Cancelled"
    finals = client.wait([leader.uuid, follower.uuid], timeout=WAIT)
    assert [f.state for f in finals] == ["Complete", "Cancelled"]
    assert finals[0].succeeded
    assert counter.runs() == 1


def test_reuse_survives_reconnecting(client, counter, tmp_path):
    first = done(client, client.submit(counted(counter)))
    with cwl_crunch.connect(home=tmp_path / "home", poll_interval=0.05) as other:
        second = other.client.submit(counted(counter))
    assert second.reused_job_uuid == first.uuid
    assert counter.runs() == 1
