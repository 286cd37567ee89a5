"""Paging through list_jobs (``JobFilter.after``, ``iter_jobs``), the same embedded and
over HTTP: a total order (newest first, ties by UUID), nothing repeated or skipped."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from cwl_crunch.errors import CrunchError
from cwl_crunch.model import JobFilter
from cwl_crunch.records.database import Database
from cwl_crunch.records.jobs import JOBS


def test_pages_continue_after_the_last_job_across_equal_times(cluster, tmp_path):
    made = [cluster.submit(["true", str(n)], cores=0.25, name=f"j{n}") for n in range(8)]
    cluster.client.wait([job.uuid for job in made], timeout=60)
    database = Database(f"sqlite:///{tmp_path / 'home' / 'records.sqlite'}")
    try:  # three creation times for eight jobs: pages of 3 end inside a group
        with database.writing() as connection:
            for n, job in enumerate(made):
                connection.execute(update(JOBS).where(JOBS.c.uuid == job.uuid)
                                   .values(created_at=1000.0 + n // 3))
    finally:
        database.close()
    expected = [uuid for _, uuid in sorted(((n // 3, job.uuid) for n, job in enumerate(made)),
                                           reverse=True)]
    whole = [job.uuid for job in cluster.client.list_jobs(JobFilter(limit=100))]
    assert whole == expected
    paged = [job.uuid for job in cluster.client.iter_jobs(JobFilter(limit=100), page_size=3)]
    assert paged == expected
    assert [job.uuid for job in cluster.client.iter_jobs(JobFilter(limit=5), page_size=3)] \
        == expected[:5]
    after = cluster.client.list_jobs(JobFilter(limit=2, after=expected[3]))
    assert [job.uuid for job in after] == expected[4:6]
    # Jobs created while paging are newer than any listed: the rest is unchanged.
    cluster.submit(["true", "late"], cores=0.25, name="late").result(timeout=30)
    assert [job.uuid for job in cluster.client.list_jobs(
        JobFilter(limit=100, after=expected[3]))] == expected[4:]


def test_after_an_unknown_job_is_an_error(cluster):
    with pytest.raises(CrunchError, match="no job local-job-nosuchjob"):
        cluster.client.list_jobs(JobFilter(after="local-job-nosuchjob"))
