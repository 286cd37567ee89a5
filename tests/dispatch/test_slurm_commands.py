"""cwl_crunch.dispatch.slurm_commands: SLURM argument lists and output parsers.

The outputs below are literal captures from SLURM 22.05.8 (one node, partitions debug
and other; scripts/slurm-setup.sh), of real jobs: ``sbatch --wrap true``, ``--wrap 'exit
3'``, ``--time=1 --wrap 'sleep 120'``, a ``sleep 300`` ended by scancel, a job pending on
resources (``-c 2`` while the node was busy), one held (``--hold``) and a refused one.
Only the slurm-marked test at the end needs a cluster.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from cwl_crunch.dispatch.slurm_commands import (
    JOB_NAME_PREFIX,
    Disposition,
    Outcome,
    SlurmJob,
    classify,
    job_uuid_of,
    parse_sbatch_output,
    parse_scontrol_job,
    parse_sinfo_nodes,
    parse_squeue,
    sbatch_arguments,
    sbatch_refusal,
    scancel_arguments,
    scontrol_arguments,
    sinfo_arguments,
    slurm_job_name,
    squeue_arguments,
)
from cwl_crunch.errors import DispatchError, SubmitError
from cwl_crunch.model import JobSpec, NodeSize

MIB = 1 << 20
UUID = "local-job-abcdefghijklmno"

# `squeue --noheader --states=all --format '%i|%T|%r|%j'`; job 57 was named "a|b c",
# job 66 was refused by sbatch (--mem 30000M) yet left this record.
SQUEUE_OUTPUT = """\
52|CANCELLED|None|crunch-cancel
57|CANCELLED|JobHeldUser|a|b c
50|COMPLETED|None|crunch-local-job-abcdefghijklmno
51|FAILED|NonZeroExitCode|crunch-fail
66|FAILED|BadConstraints|crunch-toobig
53|PENDING|Resources|crunch-pending
54|PENDING|JobHeldUser|crunch-held
49|TIMEOUT|TimeLimit|crunch-timeout-test
"""

# `scontrol show job -o <id>`, one line each (Power= ends with a space, as printed).
_SCONTROL_TAIL = (
    " Partition=debug AllocNode:Sid=localhost:14999 ReqNodeList=(null) ExcNodeList=(null)"
    " NodeList=localhost BatchHost=localhost NumNodes=1 NumCPUs=1 NumTasks=1 CPUs/Task=1"
    " ReqB:S:C:T=0:0:*:* TRES=cpu=1,mem=11540M,node=1,billing=1 Socks/Node=*"
    " NtasksPerN:B:S:C=0:0:*:* CoreSpec=* MinCPUsNode=1 MinMemoryCPU=11540M"
    " MinTmpDiskNode=0 Features=(null) DelayBoot=00:00:00 OverSubscribe=OK Contiguous=0"
    " Licenses=(null) Network=(null) Command=(null) WorkDir=/tmp StdErr=/tmp/s-{id}.out"
    " StdIn=/dev/null StdOut=/tmp/s-{id}.out Power= \n"
)


def _scontrol(id_, name, state, reason, exit_code, times):
    return (
        f"JobId={id_} JobName={name} UserId=root(0) GroupId=root(0) MCS_label=N/A"
        f" Priority=4294901710 Nice=0 Account=(null) QOS=(null) JobState={state}"
        f" Reason={reason} Dependency=(null) Requeue=1 Restarts=0 BatchFlag=1 Reboot=0"
        f" ExitCode={exit_code} {times} TimeMin=N/A SubmitTime=2026-11-21T12:28:47"
        " EligibleTime=2026-11-21T12:28:47 AccrueTime=2026-11-21T12:28:47"
        " StartTime=2026-11-21T12:28:49 EndTime=2026-11-21T12:28:59 Deadline=N/A"
        " SuspendTime=None SecsPreSuspend=0 LastSchedEval=2026-11-21T12:28:49"
        " Scheduler=Main" + _SCONTROL_TAIL.format(id=id_)
    )


SCONTROL_COMPLETED = _scontrol(50, "crunch-local-job-abcdefghijklmno", "COMPLETED", "None",
                               "0:0", "RunTime=00:00:00 TimeLimit=UNLIMITED")
SCONTROL_FAILED = _scontrol(51, "crunch-fail", "FAILED", "NonZeroExitCode", "3:0",
                            "RunTime=00:00:00 TimeLimit=UNLIMITED")
SCONTROL_TIMEOUT = _scontrol(49, "crunch-timeout-test", "TIMEOUT", "TimeLimit", "0:15",
                             "RunTime=00:01:23 TimeLimit=00:01:00")
SCONTROL_CANCELLED = _scontrol(52, "crunch-cancel", "CANCELLED", "None", "0:15",
                               "RunTime=00:00:10 TimeLimit=UNLIMITED")
SCONTROL_PENDING = _scontrol(53, "crunch-pending", "PENDING", "Resources", "0:0",
                             "RunTime=00:00:00 TimeLimit=UNLIMITED")
SCONTROL_RUNNING = _scontrol(49, "crunch-timeout-test", "RUNNING", "None", "0:0",
                             "RunTime=00:00:09 TimeLimit=00:01:00")
SCONTROL_SPACED_NAME = _scontrol(57, "a|b c", "PENDING", "JobHeldUser", "0:0",
                                 "RunTime=00:00:00 TimeLimit=UNLIMITED")

# sbatch's stderr (exit status 1) for refused jobs.
REFUSED_PARTITION = """\
sbatch: error: invalid partition specified: nope
sbatch: error: Batch job submission failed: Invalid partition name specified
"""
REFUSED_CPUS = ("sbatch: error: Batch job submission failed: More processors requested "
                "than permitted\n")
REFUSED_MEMORY = """\
sbatch: error: Memory specification can not be satisfied
sbatch: error: Batch job submission failed: Requested node configuration is not available
"""
REFUSED_GPUS = "sbatch: error: Invalid generic resource (gres) specification\n"
REFUSED_TIME = "sbatch: error: Invalid --time specification\n"


# Job names -----------------------------------------------------------------------------

def test_job_name_round_trips():
    assert slurm_job_name(UUID) == "crunch-local-job-abcdefghijklmno"
    assert job_uuid_of(slurm_job_name(UUID)) == UUID
    assert JOB_NAME_PREFIX == "crunch-"


@pytest.mark.parametrize("name", ["wrap", "crunch-", "crunchy", "my-crunch-job", ""])
def test_foreign_job_names_have_no_uuid(name):
    assert job_uuid_of(name) is None


# sbatch arguments ----------------------------------------------------------------------

def _arguments(partition=None, extra=(), **resources):
    spec = JobSpec(command=("ignored",), **resources)
    return sbatch_arguments(spec, job_uuid=UUID, command=["cwl-crunch-worker", "a b"],
                            output_path=Path("/logs/x.out"), partition=partition,
                            extra=extra)


def _option(arguments, name):
    return arguments[arguments.index(name) + 1] if name in arguments else None


def test_sbatch_arguments_defaults():
    assert _arguments(cores=2, ram=1 << 30) == [
        "sbatch", "--parsable", "--job-name", "crunch-local-job-abcdefghijklmno",
        "--cpus-per-task", "2", "--mem", "1024M", "--no-requeue",
        "--output", "/logs/x.out", "--open-mode=append",
        "--wrap", "cwl-crunch-worker 'a b'",
    ]


@pytest.mark.parametrize("cores, cpus", [
    (0.25, "1"), (1.0, "1"), (1.5, "2"), (sum([0.1] * 10), "1"), (2.0000001, "3"),
])
def test_cores_round_up_to_whole_cpus(cores, cpus):
    assert _option(_arguments(cores=cores), "--cpus-per-task") == cpus


@pytest.mark.parametrize("ram, mem", [(1, "1M"), (MIB, "1M"), (MIB + 1, "2M"),
                                      (256 * MIB, "256M")])
def test_memory_rounds_up_to_whole_mib(ram, mem):
    assert _option(_arguments(ram=ram), "--mem") == mem


@pytest.mark.parametrize("seconds, limit", [
    (None, None), (0.5, "0-00:01:00"), (59, "0-00:01:00"), (60, "0-00:01:00"),
    (61, "0-00:02:00"), (3600, "0-01:00:00"), (86400 + 61, "1-00:02:00"),
    (3 * 86400, "3-00:00:00"),
])
def test_time_limit_rounds_up_to_whole_minutes(seconds, limit):
    assert _option(_arguments(time_limit=seconds), "--time") == limit


def test_gpus_become_gres():
    assert _option(_arguments(gpus=2), "--gres") == "gpu:2"
    assert "--gres" not in _arguments(gpus=0)


def test_partition_only_when_given():
    assert _option(_arguments(partition="other"), "--partition") == "other"
    assert "--partition" not in _arguments(partition=None)
    assert "--partition" not in _arguments(partition="")


def test_extra_options_come_after_ours_and_before_the_command():
    arguments = _arguments(extra=["--account", "lab"])
    assert arguments[-4:] == ["--account", "lab", "--wrap", "cwl-crunch-worker 'a b'"]


@pytest.mark.parametrize("resources", [
    {"cores": 0}, {"cores": float("nan")}, {"ram": 0}, {"time_limit": 0}, {"gpus": -1},
])
def test_resources_slurm_would_read_as_unlimited_are_refused(resources):
    with pytest.raises(SubmitError, match=UUID):
        _arguments(**resources)


def test_other_commands():
    assert squeue_arguments() == ["squeue", "--me", "--noheader", "--states=all",
                                  "--format", "%i|%T|%r|%j"]
    assert scontrol_arguments("50") == ["scontrol", "show", "job", "--oneliner", "50"]
    assert scancel_arguments(["50", "51"]) == ["scancel", "50", "51"]
    with pytest.raises(ValueError):
        scancel_arguments([])


# Parsing -------------------------------------------------------------------------------

@pytest.mark.parametrize("text, job_id", [("67\n", "67"), ("67;cluster\n", "67"),
                                           ("67", "67")])
def test_parse_sbatch_output(text, job_id):
    assert parse_sbatch_output(text) == job_id


@pytest.mark.parametrize("text", ["", "\n", "Submitted batch job 67\nx\n"])
def test_parse_sbatch_output_without_an_id(text):
    with pytest.raises(DispatchError):
        parse_sbatch_output(text)


def test_parse_squeue():
    jobs = parse_squeue(SQUEUE_OUTPUT)
    assert list(jobs) == ["52", "57", "50", "51", "66", "53", "54", "49"]
    assert jobs["50"] == SlurmJob("50", "crunch-local-job-abcdefghijklmno", "COMPLETED", "")
    assert jobs["50"].job_uuid == UUID
    assert jobs["57"] == SlurmJob("57", "a|b c", "CANCELLED", "JobHeldUser")
    assert jobs["57"].job_uuid is None
    assert jobs["53"].reason == "Resources"
    assert jobs["49"] == SlurmJob("49", "crunch-timeout-test", "TIMEOUT", "TimeLimit")


def test_parse_squeue_empty_and_malformed():
    assert parse_squeue("") == {}
    with pytest.raises(DispatchError, match="squeue"):
        parse_squeue("slurm_load_jobs error: Unable to contact slurm controller\n")


@pytest.mark.parametrize("text, expected", [
    (SCONTROL_COMPLETED, SlurmJob("50", "crunch-local-job-abcdefghijklmno", "COMPLETED",
                                  "", 0, None)),
    (SCONTROL_FAILED, SlurmJob("51", "crunch-fail", "FAILED", "NonZeroExitCode", 3, None)),
    (SCONTROL_TIMEOUT, SlurmJob("49", "crunch-timeout-test", "TIMEOUT", "TimeLimit", 0, 15)),
    (SCONTROL_CANCELLED, SlurmJob("52", "crunch-cancel", "CANCELLED", "", 0, 15)),
    (SCONTROL_PENDING, SlurmJob("53", "crunch-pending", "PENDING", "Resources", 0, None)),
    (SCONTROL_SPACED_NAME, SlurmJob("57", "a|b c", "PENDING", "JobHeldUser", 0, None)),
])
def test_parse_scontrol_job(text, expected):
    assert parse_scontrol_job(text) == expected


def test_parse_scontrol_job_without_a_job():
    with pytest.raises(DispatchError):
        parse_scontrol_job("")  # stdout for an unknown id; stderr says "Invalid job id"
    with pytest.raises(DispatchError, match="JobState"):
        parse_scontrol_job("JobId=1 JobName=x\n")
    with pytest.raises(DispatchError, match="2 lines"):
        parse_scontrol_job(SCONTROL_PENDING + SCONTROL_FAILED)


# Classifying ---------------------------------------------------------------------------

@pytest.mark.parametrize("state", [
    "PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "REQUEUED",
    "SOMETHING_NEWER",
])
def test_active_states(state):
    assert classify(SlurmJob("1", "crunch-x", state)) == Outcome(Disposition.ACTIVE)


def test_completed_leaves_the_result_to_the_worker():
    assert classify(parse_scontrol_job(SCONTROL_COMPLETED)) == Outcome(Disposition.COMPLETED)


@pytest.mark.parametrize("text, reason", [
    (SCONTROL_TIMEOUT, "SLURM ended the job: TIMEOUT (TimeLimit, signal 15)"),
    (SCONTROL_CANCELLED, "SLURM ended the job: CANCELLED (signal 15)"),
    (SCONTROL_FAILED, "SLURM ended the job: FAILED (NonZeroExitCode, exit code 3)"),
])
def test_ended_by_slurm(text, reason):
    assert classify(parse_scontrol_job(text)) == Outcome(Disposition.ENDED_BY_SLURM, reason)


@pytest.mark.parametrize("state, requeue", [
    ("NODE_FAIL", True), ("PREEMPTED", True), ("BOOT_FAIL", True), ("TIMEOUT", False),
    ("CANCELLED", False), ("OUT_OF_MEMORY", False), ("FAILED", False), ("DEADLINE", False),
])
def test_requeue_only_when_the_job_was_not_at_fault(state, requeue):
    outcome = classify(SlurmJob("1", "crunch-x", state))
    assert outcome.disposition == Disposition.ENDED_BY_SLURM
    assert outcome.reason == f"SLURM ended the job: {state}"
    assert outcome.requeue == requeue


def test_squeue_and_scontrol_agree_on_the_disposition():
    squeued = parse_squeue(SQUEUE_OUTPUT)
    for text in (SCONTROL_COMPLETED, SCONTROL_FAILED, SCONTROL_TIMEOUT, SCONTROL_CANCELLED,
                 SCONTROL_PENDING):
        job = parse_scontrol_job(text)
        assert classify(squeued[job.slurm_id]).disposition == classify(job).disposition
    assert classify(parse_scontrol_job(SCONTROL_RUNNING)).disposition == Disposition.ACTIVE


# sbatch refusals -----------------------------------------------------------------------

@pytest.mark.parametrize("stderr, reason", [
    ("sbatch: error: Batch job submission failed: Invalid partition name specified\n",
     "Invalid partition name specified"),
    (REFUSED_PARTITION, "Invalid partition name specified (invalid partition specified: nope)"),
    (REFUSED_CPUS, "More processors requested than permitted"),
    (REFUSED_MEMORY, "Requested node configuration is not available (Memory specification "
                     "can not be satisfied)"),
    (REFUSED_GPUS, "Invalid generic resource (gres) specification"),
    (REFUSED_TIME, "Invalid --time specification"),
    ("sbatch: warning: something odd\n" + REFUSED_CPUS,
     "More processors requested than permitted"),
    ("", "no reason given"),
    ("  weird\n  output ", "weird; output"),
    ("sbatch: warning: only this\n", "sbatch: warning: only this"),
])
def test_sbatch_refusal(stderr, reason):
    assert sbatch_refusal(stderr) == f"SLURM refused the job: {reason}"


# Against the real SLURM ----------------------------------------------------------------

@pytest.fixture
def sbatch() -> str:
    """sbatch on PATH, else skip (fail when TESTS_REQUIRE_SERVICES=1)."""
    path = shutil.which("sbatch")
    if path is None:
        message = "no SLURM: sbatch not on PATH (scripts/slurm-setup.sh starts one)"
        if os.environ.get("TESTS_REQUIRE_SERVICES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return path


def _run(arguments: list[str]) -> str:
    done = subprocess.run(arguments, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.slurm
@pytest.mark.xdist_group("slurm")
def test_slurm_gets_what_sbatch_arguments_ask_for(sbatch, tmp_path):
    job_uuid = f"test-job-{uuid.uuid4().hex[:15]}"
    spec = JobSpec(command=("true",), cores=0.25, ram=100 * MIB + 1, time_limit=61)
    output = tmp_path / "out"
    slurm_id = parse_sbatch_output(_run(sbatch_arguments(
        spec, job_uuid=job_uuid, command=["echo", "ran"], output_path=output,
        partition="other")))
    try:
        line = _run(scontrol_arguments(slurm_id))
        job = parse_scontrol_job(line)
        assert (job.slurm_id, job.job_uuid) == (slurm_id, job_uuid)
        for field in ("Partition=other", "NumCPUs=1", "MinMemoryNode=101M",
                      "TimeLimit=00:02:00", "Requeue=0", f"StdOut={output}"):
            assert f" {field} " in line
        deadline = time.monotonic() + 120
        while classify(job).disposition == Disposition.ACTIVE:
            assert time.monotonic() < deadline, f"job {slurm_id} still {job.state}"
            time.sleep(0.5)
            job = parse_squeue(_run(squeue_arguments()))[slurm_id]
        assert classify(job) == Outcome(Disposition.COMPLETED)
        assert output.read_text() == "ran\n"
    finally:
        _run(scancel_arguments([slurm_id]))


# sinfo: the largest node ------------------------------------------------------------------

def test_the_largest_node_has_the_most_cpus_and_the_most_memory_listed():
    # Captured from SLURM 22.05 (one node in two partitions), plus two made-up nodes.
    text = "localhost|2|23081\nlocalhost|2|23081\nbig|64|128000\nfat|8|512000+\n"
    assert parse_sinfo_nodes(text) == NodeSize(cores=64.0, ram=512000 << 20)
    assert sinfo_arguments() == ["sinfo", "--noheader", "--Node", "--format", "%N|%c|%m"]


@pytest.mark.parametrize("text", ["", "\n", "garbage\n", "n|x|100\n"])
def test_sinfo_listing_no_node_is_an_error(text):
    with pytest.raises(DispatchError, match="sinfo listed no node"):
        parse_sinfo_nodes(text)
