"""cwl_crunch.dispatch.packing: choosing which queued jobs fit the free resources."""

from __future__ import annotations

import pytest

from cwl_crunch.dispatch.packing import Candidate, Capacity, choose_jobs, fits_machine

GIB = 1 << 30


def jobs(*specs):
    return [Candidate(f"job{i}", cores, ram) for i, (cores, ram) in enumerate(specs)]


def test_four_quarter_cores_fit_one_core():
    queue = jobs(*[(0.25, 1)] * 5)
    assert choose_jobs(queue, Capacity(1.0, 100)) == ["job0", "job1", "job2", "job3"]


def test_ten_tenths_fit_one_core_despite_rounding():
    assert sum([0.1] * 10) != 1.0  # the float trap this guards against
    queue = jobs(*[(0.1, 1)] * 11)
    assert choose_jobs(queue, Capacity(1.0, 100)) == [f"job{i}" for i in range(10)]


@pytest.mark.parametrize("sizes, free", [
    ((0.3, 0.3, 0.4), 1.0),  # 1.0 - 0.3 - 0.3 = 0.39999999999999997 < 0.4
    ((0.1, 0.1, 0.1), 0.3),  # 0.3 - 0.1 - 0.1 = 0.09999999999999998 < 0.1
])
def test_exact_fit_survives_float_subtraction(sizes, free):
    queue = jobs(*[(size, 1) for size in sizes], (0.01, 1))
    assert choose_jobs(queue, Capacity(free, 100)) == [f"job{i}" for i in range(len(sizes))]


def test_three_thirds_fit_one_core():
    queue = jobs(*[(1 / 3, 1)] * 4)
    assert choose_jobs(queue, Capacity(1.0, 100)) == ["job0", "job1", "job2"]


def test_cores_are_not_overcommitted_by_more_than_rounding():
    queue = jobs((0.75, 1), (0.3, 1))
    assert choose_jobs(queue, Capacity(1.0, 100)) == ["job0"]
    assert choose_jobs(jobs((1.0 + 1e-6, 1)), Capacity(1.0, 100)) == []


def test_ram_is_never_overcommitted():
    queue = jobs((0.1, GIB), (0.1, GIB), (0.1, 1))
    assert choose_jobs(queue, Capacity(8.0, 2 * GIB)) == ["job0", "job1"]
    assert choose_jobs(jobs((0.1, 2 * GIB + 1)), Capacity(8.0, 2 * GIB)) == []
    # Exactly full is fine.
    assert choose_jobs(jobs((0.1, GIB), (0.1, GIB)), Capacity(8.0, 2 * GIB)) == ["job0", "job1"]


@pytest.mark.parametrize("n", range(1, 12))
def test_chosen_jobs_never_exceed_capacity(n):
    queue = [Candidate(f"j{i}", 0.1 * ((i * 7) % 5 + 1), 100 * ((i * 3) % 4 + 1))
             for i in range(n * 3)]
    free = Capacity(0.1 * n, 150 * n)
    chosen = set(choose_jobs(queue, free))
    picked = [job for job in queue if job.uuid in chosen]
    assert sum(job.cores for job in picked) <= free.cores + 1e-6
    assert sum(job.ram for job in picked) <= free.ram


def test_queue_order_is_kept_and_small_jobs_backfill():
    # The big job at the head does not fit; smaller ones behind it start meanwhile.
    queue = [Candidate("big", 4.0, 10), Candidate("small", 1.0, 10),
             Candidate("medium", 2.0, 10), Candidate("tiny", 0.5, 10)]
    assert choose_jobs(queue, Capacity(3.0, 100)) == ["small", "medium"]
    assert choose_jobs(queue, Capacity(3.6, 100)) == ["small", "medium", "tiny"]


def test_head_of_queue_wins_when_it_fits():
    queue = [Candidate("big", 4.0, 10), Candidate("small", 1.0, 10)]
    assert choose_jobs(queue, Capacity(4.0, 100)) == ["big"]
    assert choose_jobs(list(reversed(queue)), Capacity(4.0, 100)) == ["small"]


def test_result_follows_candidate_order_not_size():
    queue = [Candidate("c", 0.5, 1), Candidate("a", 2.0, 1), Candidate("b", 1.0, 1)]
    assert choose_jobs(queue, Capacity(10.0, 10)) == ["c", "a", "b"]


def test_nothing_fits():
    assert choose_jobs(jobs((2.0, 1), (1.0, 10 * GIB)), Capacity(1.5, GIB)) == []
    assert choose_jobs([], Capacity(4.0, GIB)) == []
    assert choose_jobs(jobs((0.25, 1)), Capacity(0.0, GIB)) == []
    assert choose_jobs(jobs((0.25, 1)), Capacity(4.0, 0)) == []


def test_accepts_any_iterable():
    queue = iter(jobs((1.0, 1), (1.0, 1)))
    assert choose_jobs(queue, Capacity(1.0, 10)) == ["job0"]


def test_fits_machine():
    limit = Capacity(4.0, 8 * GIB)
    assert fits_machine(4.0, 8 * GIB, limit)
    assert 0.1 + 0.2 > 0.3
    assert fits_machine(0.1 + 0.2, 1, Capacity(0.3, 1))
    assert not fits_machine(4.01, 1, limit)
    assert not fits_machine(1.0, 8 * GIB + 1, limit)
