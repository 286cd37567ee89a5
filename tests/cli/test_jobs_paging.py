"""``cwl-crunch jobs list | tree`` over more jobs than one request answers (issue 12:
over HTTP the CLI asked for up to a million in one request and got a 422).

The jobs beyond the real run are written straight into the records database (running
10,000 jobs would take minutes): finished, so no dispatcher picks them up, and in
groups of equal creation times, so that pages end inside a group and the UUID
tiebreak is what keeps anything from repeating or going missing.
"""

from __future__ import annotations

import re
import time

from sqlalchemy import insert

from cwl_crunch.model import JOB_PAGE_LIMIT, JobSpec
from cwl_crunch.records import jobs
from cwl_crunch.records.database import Database
from cwl_crunch.records.ids import new_uuid

MORE_THAN_A_PAGE = JOB_PAGE_LIMIT + 50
UUID = re.compile(r"local-job-[0-9a-z]+")
SAME_TIME = 7
"""Jobs that share a creation time: 10,000 is not a multiple, so a page ends in a group."""


def add_finished_children(database_url: str, parent: str, count: int,
                          reused_from: str | None = None, ran: int = 0) -> list[str]:
    """``count`` Complete children of ``parent``, all newer than it, newest first as
    jobs list shows them; all but the ``ran`` oldest reused ``reused_from``'s work."""
    database = Database(database_url)
    try:
        with database.writing() as connection:
            row = jobs.insert_job(connection, "local", JobSpec(command=("true",), name="bulk",
                                                               reuse=False),
                                  parent_uuid=parent, key="bulk", output_problem=lambda pdh: None)
            now, oldest = time.time(), jobs.get_job(connection, parent).created_at + 1
            rows = [{**row, "uuid": new_uuid("local", "job"), "state": "Complete",
                     "created_at": oldest + index // SAME_TIME, "started_at": now,
                     "finished_at": now, "exit_code": 0,
                     "reused_job_uuid": reused_from if index >= ran else None}
                    for index in range(count)]
            connection.execute(jobs.JOBS.delete().where(jobs.JOBS.c.uuid == row["uuid"]))
            connection.execute(insert(jobs.JOBS), rows)
    finally:
        database.close()
    return [r["uuid"] for r in sorted(rows, key=lambda r: (r["created_at"], r["uuid"]),
                                      reverse=True)]


def finished_job(cli, name):
    job = cli.cluster.submit(["true", name], cores=0.25, name=name)
    job.result(timeout=20)
    return job.uuid


def test_jobs_list_pages_through_the_cluster(cli):
    parent = finished_job(cli, "parent")
    children = add_finished_children(cli.database_url, parent, MORE_THAN_A_PAGE)
    listed = cli.run("jobs", "list", "--all", "--limit", "20000")
    assert (listed.returncode, listed.stderr) == (0, "")
    rows = [line.split()[0] for line in listed.stdout.splitlines()[1:]]
    assert rows == [*children, parent]  # all there are, each once, in order

    cut = cli.run("jobs", "list", "--all", "--limit", str(JOB_PAGE_LIMIT + 3))
    assert (cut.returncode, cut.stderr) == (0, "")
    assert [line.split()[0] for line in cut.stdout.splitlines()[1:]] == \
        children[:JOB_PAGE_LIMIT + 3]


def test_jobs_tree_pages_through_the_cluster(cli):
    # As a rerun of a big workflow: most steps reused earlier work, a few ran, and one
    # of those has a child of its own.
    original, parent = finished_job(cli, "original"), finished_job(cli, "parent")
    children = add_finished_children(cli.database_url, parent, MORE_THAN_A_PAGE,
                                     reused_from=original, ran=3)
    ran = [job.uuid for job in cli.cluster.client.get_jobs(children[::-1])
           if job.reused_job_uuid is None]
    [grandchild] = add_finished_children(cli.database_url, ran[1], 1)
    tree = cli.run("jobs", "tree", parent)
    assert (tree.returncode, tree.stderr) == (0, "")
    root, *branches = tree.stdout.splitlines()
    assert root.startswith(f"{parent}  parent  Complete")
    # Oldest first in a tree: the reverse of the list, each child once.
    expected = children[::-1]
    below = expected.index(ran[1]) + 1
    expected.insert(below, grandchild)
    assert [UUID.search(line)[0] for line in branches] == expected
    assert branches[below].startswith("│   └── ")
    assert f"reused {original}" in branches[-1]
    assert branches[-1].startswith("└── ")
