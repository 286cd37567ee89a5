"""Several OS processes use one cluster home at once.

Each process runs its own local dispatcher; they share only the records database. Work
must still run exactly once (reuse and join across processes), the machine's cores must
not be handed out twice, and with reuse off every submission must run once, no more.
"""

from __future__ import annotations

import collections
import itertools
import json

import cwl_crunch

# Waits for a start signal so that the processes really submit at the same time, then
# submits the commands, waits for all of them and writes what the records say.
SUBMITTER = """
import json, os, sys, time, cwl_crunch
spec = json.loads(sys.argv[1])
cluster = cwl_crunch.connect(**spec["connect"])
while not os.path.exists(spec["go"]):
    time.sleep(0.005)
futures = [cluster.submit(command, cores=spec["cores"], reuse=spec["reuse"])
           for command in spec["commands"]]
records = cwl_crunch.wait_all(futures, timeout=40)
result = [dict(uuid=r.uuid, state=r.state, exit_code=r.exit_code, output=r.output_pdh,
               reused=r.reused_job_uuid) for r in records]
with open(spec["result"], "w") as f:
    json.dump(result, f)
cluster.close()
"""


def run_submitters(tmp_path, processes, command_lists, *, cores, reuse, connect=None):
    """One process per command list, all started together; returns their record lists."""
    go = tmp_path / "go"
    children, results = [], []
    for index, commands in enumerate(command_lists):
        result = tmp_path / f"result-{index}.json"
        spec = {"connect": connect or {}, "go": str(go), "commands": commands,
                "cores": cores, "reuse": reuse, "result": str(result)}
        children.append(processes.python(SUBMITTER, json.dumps(spec), name=f"sub{index}"))
        results.append(result)
    go.write_text("go")
    processes.wait_all(children, timeout=40)
    return [json.loads(result.read_text()) for result in results]


def test_same_jobs_from_three_processes_run_once(tmp_path, home, processes):
    runs = tmp_path / "runs"
    runs.mkdir()
    commands = [["sh", "-c", f"echo $$ >> {runs}/ran-{i}; sleep 0.2; echo {i} > out/i"]
                for i in range(10)]
    per_process = run_submitters(tmp_path, processes, [commands] * 3, cores=0.25,
                                 reuse=True)

    for i in range(10):
        lines = (runs / f"ran-{i}").read_text().splitlines()
        assert len(lines) == 1, f"command {i} ran {len(lines)} times"
    all_records = [record for records in per_process for record in records]
    assert len({record["uuid"] for record in all_records}) == 30
    for record in all_records:
        assert record["state"] == "Complete" and record["exit_code"] == 0, record
    for i in range(10):
        twins = [records[i] for records in per_process]
        leaders = [twin for twin in twins if twin["reused"] is None]
        assert len(leaders) == 1, twins
        leader = leaders[0]
        for twin in twins:
            if twin is not leader:
                assert twin["reused"] == leader["uuid"], twins
            assert twin["output"] == leader["output"], twins
    with cwl_crunch.connect(home=home) as cluster:
        outputs = {records[i]["output"] for records in per_process for i in range(10)}
        assert len(outputs) == 10
        for i in range(10):
            assert cluster.read_text(per_process[0][i]["output"], "i") == f"{i}\n"


def test_one_core_is_not_handed_out_twice_across_processes(tmp_path, processes):
    times = tmp_path / "times"
    times.mkdir()
    script = ('echo "start $(date +%s.%N)" > "$1"; sleep 0.15; '
              'echo "end $(date +%s.%N)" >> "$1"')
    command_lists = [[["sh", "-c", script, "job", f"{times}/{tag}-{i}"] for i in range(4)]
                     for tag in ("a", "b")]
    per_process = run_submitters(tmp_path, processes, command_lists, cores=1, reuse=True,
                                 connect={"max_cores": 1})

    assert all(r["state"] == "Complete" for records in per_process for r in records)
    intervals = []
    for path in sorted(times.iterdir()):
        (start_word, start), (end_word, end) = (
            line.split() for line in path.read_text().splitlines())
        assert (start_word, end_word) == ("start", "end")
        intervals.append((float(start), float(end), path.name))
    assert len(intervals) == 8
    intervals.sort()
    for (_, end, first), (start, _, second) in itertools.pairwise(intervals):
        assert start >= end, f"{first} and {second} ran at the same time on max_cores=1"


def test_without_reuse_every_submission_runs_exactly_once(tmp_path, processes):
    ledger = tmp_path / "ledger"
    # A random id per run ($$ is the same in every job: each has a PID namespace).
    commands = [["sh", "-c", 'echo "$1 $(cat /proc/sys/kernel/random/uuid)" >> "$2"', "job",
                 f"arg-{i}", str(ledger)]
                for i in range(10)]
    per_process = run_submitters(tmp_path, processes, [commands, commands], cores=0.25,
                                 reuse=False)

    all_records = [record for records in per_process for record in records]
    assert len({record["uuid"] for record in all_records}) == 20
    for record in all_records:
        assert record["state"] == "Complete" and record["exit_code"] == 0, record
        assert record["reused"] is None, record
    lines = ledger.read_text().splitlines()
    assert len(lines) == 20, lines
    assert len(set(lines)) == 20, "one run was recorded twice"
    counts = collections.Counter(line.split()[0] for line in lines)
    assert counts == {f"arg-{i}": 2 for i in range(10)}
