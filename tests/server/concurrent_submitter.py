"""One submitter of tests/server/test_concurrent_submitters.py, as a thread of the test
or as a process of its own: submits its own jobs and the work every submitter shares,
in an order of its own, through the HTTP API.

As a process: ``python concurrent_submitter.py URL TOKEN WHO``; prints ``ready``, waits
for a line on stdin, submits, and prints ``[[uuid, kind, number, reused_job_uuid], ...]``
as one JSON line.
"""

from __future__ import annotations

import json
import random
import sys
from typing import Any

from cwl_crunch.client.http import HttpClient
from cwl_crunch.config import load_config
from cwl_crunch.model import JobSpec

DISTINCT = 25  # jobs each submitter submits that nobody else does
SHARED = 5  # pieces of work every submitter submits
RESOURCES = {"cores": 0.05, "ram": 1 << 20}


def spec(kind: str, who: int, number: int) -> JobSpec:
    if kind == "shared":
        return JobSpec(command=("true", f"shared {number}"), **RESOURCES)
    return JobSpec(command=("true", f"submitter {who} job {number}"), **RESOURCES)


def submit_all(client: HttpClient, who: int) -> list[list[Any]]:
    work = [("shared", n) for n in range(SHARED)] + [("own", n) for n in range(DISTINCT)]
    random.Random(who).shuffle(work)
    done = []
    for kind, number in work:
        record = client.submit(spec(kind, who, number))
        done.append([record.uuid, kind, number, record.reused_job_uuid])
    return done


def main() -> None:
    url, token, who = sys.argv[1], sys.argv[2], int(sys.argv[3])
    client = HttpClient(load_config(environ={}, api_url=url, api_token=token))
    print("ready", flush=True)
    sys.stdin.readline()
    print(json.dumps(submit_all(client, who)), flush=True)
    client.close()


if __name__ == "__main__":
    main()
