"""The local dispatcher's packing, seen from outside: which jobs run at the same time.

Each job writes the wall-clock times it started and ended into its output; overlaps
between those intervals say what the dispatcher ran together.
"""

from __future__ import annotations

import itertools
import time

import pytest

import cwl_crunch
from cwl_crunch import JobSpec
from cwl_crunch.errors import SubmitError

WAIT = 30
GiB = 1 << 30

# Start and end stamps around a sleep; $TAG keeps otherwise equal jobs from being joined.
TIMED = 'date +%s.%N > out/start; sleep "$NAP"; date +%s.%N > out/end; echo "$TAG" > out/tag'


@pytest.fixture
def small_machine(tmp_path):
    """Connects clusters with given ceilings; closes them at the end."""
    opened = []

    def connect(**limits):
        cluster = cwl_crunch.connect(home=tmp_path / f"home{len(opened)}", poll_interval=0.05,
                                     **limits)
        opened.append(cluster)
        return cluster.client

    yield connect
    for cluster in opened:
        for job in cluster.client.list_jobs(
                cwl_crunch.client.JobFilter(states=frozenset({"Queued", "Running"}))):
            cluster.client.cancel(job.uuid)
        cluster.close()


def timed(tag, nap, **fields):
    return JobSpec(command=("sh", "-c", TIMED), environment={"TAG": str(tag), "NAP": str(nap)},
                   **fields)


def intervals(client, records):
    finals = client.wait([r.uuid for r in records], timeout=WAIT)
    spans = []
    for final in finals:
        assert final.succeeded, (final.state, final.failure_reason)
        start = float(b"".join(client.read_file(final.output_pdh, "start")))
        end = float(b"".join(client.read_file(final.output_pdh, "end")))
        assert start < end
        spans.append((start, end))
    return spans


def all_overlap(spans):
    """Some instant is inside every interval."""
    return max(s for s, _ in spans) < min(e for _, e in spans)


def none_overlap(spans):
    ordered = sorted(spans)
    return all(a_end <= b_start for (_, a_end), (b_start, _) in itertools.pairwise(ordered))


def test_four_quarter_core_jobs_share_one_core(small_machine):
    client = small_machine(max_cores=1.0)
    records = [client.submit(timed(i, 0.6, cores=0.25)) for i in range(4)]
    assert all_overlap(intervals(client, records))


def test_fifth_quarter_core_job_waits(small_machine):
    client = small_machine(max_cores=1.0)
    records = [client.submit(timed(i, 0.6, cores=0.25)) for i in range(5)]
    spans = intervals(client, records)
    # At most four of the five at any instant: the fifth starts after one of them ended.
    first_four, fifth = spans[:4], spans[4]
    assert all_overlap(first_four)
    assert fifth[0] >= min(end for _, end in first_four)


def test_whole_core_jobs_on_one_core_never_overlap(small_machine):
    client = small_machine(max_cores=1.0)
    records = [client.submit(timed(i, 0.3, cores=1.0)) for i in range(3)]
    assert none_overlap(intervals(client, records))


def test_two_whole_core_jobs_on_two_cores_overlap(small_machine):
    client = small_machine(max_cores=2.0)
    records = [client.submit(timed(i, 0.6, cores=1.0)) for i in range(2)]
    assert all_overlap(intervals(client, records))


def test_mixed_sizes_fill_the_cores(small_machine):
    client = small_machine(max_cores=1.0)
    # 0.5 + 0.25 + 0.25 fit together; the 0.75 must wait for two of them.
    records = [client.submit(timed(i, 0.6, cores=c)) for i, c in
               enumerate([0.5, 0.25, 0.25, 0.75])]
    spans = intervals(client, records)
    assert all_overlap(spans[:3])
    assert spans[3][0] >= sorted(end for _, end in spans[:3])[1]


def test_ram_limits_what_runs_together(small_machine):
    client = small_machine(max_cores=4.0, max_ram=GiB)
    big = int(0.6 * GiB)
    records = [client.submit(timed(i, 0.4, cores=0.25, ram=big)) for i in range(2)]
    assert none_overlap(intervals(client, records))


def test_jobs_that_fit_in_ram_run_together(small_machine):
    client = small_machine(max_cores=4.0, max_ram=GiB)
    small = int(0.4 * GiB)
    records = [client.submit(timed(i, 0.6, cores=0.25, ram=small)) for i in range(2)]
    assert all_overlap(intervals(client, records))


def test_ceilings_refuse_jobs_that_can_never_fit(small_machine, tmp_path):
    client = small_machine(max_cores=1.0, max_ram=GiB)
    for fields in ({"cores": 1.5}, {"ram": GiB + 1}, {"cores": 2.0, "ram": 2 * GiB}):
        with pytest.raises(SubmitError):
            client.submit(JobSpec(command=("true",), **fields))
    fitting = client.submit(JobSpec(command=("true",), cores=1.0, ram=GiB))
    assert client.wait([fitting.uuid], timeout=WAIT)[0].succeeded


def test_higher_priority_starts_first(small_machine):
    client = small_machine(max_cores=1.0)
    blocker = client.submit(timed("blocker", 0.5, cores=1.0))
    deadline = time.monotonic() + 10
    while client.get_job(blocker.uuid).state != "Running":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    low = [client.submit(timed(f"low{i}", 0, cores=1.0)) for i in range(3)]
    high = client.submit(timed("high", 0, cores=1.0, priority=10))
    middle = client.submit(timed("middle", 0, cores=1.0, priority=5))
    assert [client.get_job(r.uuid).state for r in [*low, high, middle]] == ["Queued"] * 5
    order = [high, middle, *low]
    finals = client.wait([r.uuid for r in order], timeout=WAIT)
    blocker_end = client.get_job(blocker.uuid).finished_at
    assert all(f.succeeded for f in finals)
    starts = [f.started_at for f in finals]
    assert starts == sorted(starts), [f.spec.environment["TAG"] for f in
                                      sorted(finals, key=lambda f: f.started_at)]
    assert starts[0] >= blocker_end
    # Equal priorities run oldest first.
    spans = intervals(client, order)
    assert [s for s, _ in spans] == sorted(s for s, _ in spans)


def test_small_job_backfills_beside_a_waiting_big_one(small_machine):
    client = small_machine(max_cores=1.0)
    half = client.submit(timed("half", 0.8, cores=0.5))
    deadline = time.monotonic() + 10
    while client.get_job(half.uuid).state != "Running":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    big = client.submit(timed("big", 0, cores=1.0))
    small = client.submit(timed("small", 0, cores=0.25))
    spans = intervals(client, [half, big, small])
    half_span, big_span, small_span = spans
    assert small_span[0] < half_span[1]  # ran beside the half-core job
    assert big_span[0] >= half_span[1]


def test_clusters_sharing_a_home_share_the_ceiling(tmp_path):
    # Two connections (as two programs would have) on one home, one core between them.
    home = tmp_path / "shared"
    one = cwl_crunch.connect(home=home, poll_interval=0.05, max_cores=1.0)
    two = cwl_crunch.connect(home=home, poll_interval=0.05, max_cores=1.0)
    try:
        records = [one.client.submit(timed("a", 0.3, cores=1.0)),
                   two.client.submit(timed("b", 0.3, cores=1.0)),
                   one.client.submit(timed("c", 0.3, cores=1.0)),
                   two.client.submit(timed("d", 0.3, cores=1.0))]
        assert none_overlap(intervals(one.client, records))
    finally:
        one.close()
        two.close()


def test_resources_are_recorded(small_machine):
    client = small_machine(max_cores=1.0)
    record = client.submit(JobSpec(command=("true",), cores=0.25, ram=100 << 20))
    final = client.wait([record.uuid], timeout=WAIT)[0]
    assert (final.spec.cores, final.spec.ram) == (0.25, 100 << 20)
