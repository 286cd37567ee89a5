"""What a SLURM dispatcher types and reads: argument lists for sbatch, squeue, scontrol
and scancel, and parsers for what they print. Pure: nothing here runs a process, so all
of it is tested without a cluster (the parsers on output captured from SLURM 22.05).

Each cwl-crunch job is one SLURM batch job named ``crunch-<job uuid>``: the name is the
only link between the two, so a restarted dispatcher re-adopts its jobs from ``squeue``
without keeping state of its own. SLURM keeps names whole (a 307-character name came
back intact from ``squeue -o %j`` and ``scontrol show job -o``); only an explicit width
such as squeue's default ``%.8j`` cuts them, and ``%100j`` pads them with spaces.

Things SLURM 22.05 did here that a dispatcher must allow for:

* ``squeue`` lists ended jobs only with ``--states=all``, and only for MinJobAge seconds
  after they end; after that a job is simply gone, whatever became of it.
* A refused ``sbatch`` can still leave a record behind: ``--mem 30000M`` on a 23081 MiB
  node printed "Requested node configuration is not available" and exited 1, yet
  ``squeue`` then listed that job, under its name, as FAILED with reason BadConstraints.
* A time limit is enforced late: a ``--time 1`` job ended TIMEOUT after 83 s.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import re
import shlex
from collections.abc import Iterable, Sequence
from pathlib import Path

from cwl_crunch.errors import DispatchError, SubmitError
from cwl_crunch.model import JobSpec, NodeSize

JOB_NAME_PREFIX = "crunch-"
MIB = 1 << 20
# Cores are floats: ten 0.1-core shares add up to 0.9999999999999999, not 1.
_EPSILON = 1e-9
SQUEUE_FORMAT = "%i|%T|%r|%j"
"""Job id, state and reason are SLURM's own words and never hold a ``|``; the name is
free text (a job named ``a|b c`` exists), so it comes last and keeps any ``|`` it has."""
# A word of `scontrol -o` output that starts a new field: Key=, with keys such as
# "AllocNode:Sid", "CPUs/Task" and "ReqB:S:C:T". Other words continue the last value.
_SCONTROL_KEY = re.compile(r"([A-Za-z][A-Za-z0-9_:/]*)=(.*)")
# What SLURM prints for "no value".
_NO_VALUE = frozenset({"", "None", "(null)"})


def slurm_job_name(job_uuid: str) -> str:
    return JOB_NAME_PREFIX + job_uuid


def job_uuid_of(slurm_name: str) -> str | None:
    """The cwl-crunch job a SLURM job runs, or None for a job that is not one of ours."""
    if slurm_name.startswith(JOB_NAME_PREFIX) and len(slurm_name) > len(JOB_NAME_PREFIX):
        return slurm_name[len(JOB_NAME_PREFIX):]
    return None


def slurm_cpus(cores: float) -> int:
    """Whole CPUs: SLURM allocates no less, so a 0.25-core job takes one CPU. The
    dispatcher should run sub-core jobs (the workflow runners) locally rather than
    spend a whole CPU of the cluster on each."""
    return max(1, math.ceil(cores - _EPSILON))


def slurm_memory(ram: int) -> str:
    """Whole MiB, rounded up; never ``0M``, which SLURM reads as "all of the node's
    memory" (it gave such a job mem=23081M here)."""
    return f"{max(1, math.ceil(ram / MIB))}M"


def slurm_time(seconds: float) -> str:
    """``D-HH:MM:SS`` rounded up to whole minutes, SLURM's unit (``--time 0-00:00:30``
    is taken as one minute anyway), and at least one: ``--time 0`` means no limit."""
    minutes = max(1, math.ceil(seconds / 60 - _EPSILON))
    days, minutes = divmod(minutes, 24 * 60)
    return f"{days}-{minutes // 60:02d}:{minutes % 60:02d}:00"


def slurm_output_path(work: Path, job_uuid: str) -> Path:
    """Where SLURM writes what the worker prints (not in the job's own dir: SLURM keeps
    it open while the worker moves the job's logs into the store)."""
    return work / "slurm" / f"{job_uuid}.out"


def sbatch_arguments(
    spec: JobSpec, *, job_uuid: str, command: Sequence[str], output_path: Path,
    partition: str | None = None, extra: Sequence[str] = (),
) -> list[str]:
    """The sbatch command that runs ``command`` (the job's worker) for ``job_uuid``.

    ``--parsable`` makes sbatch print just the job id. ``--no-requeue``: when SLURM
    loses a node it would otherwise rerun the worker on its own; the dispatcher decides
    that instead (``Outcome.requeue``), once. ``--open-mode=append`` keeps the output of
    every run of the job in ``output_path``, which also gets stderr. ``extra`` goes last,
    so a site's options (``--account``, ``--qos``...) can override any of these.

    Raises SubmitError for resources SLURM would read as "unlimited" or "everything".
    """
    if not spec.cores > 0 or spec.ram <= 0 or spec.gpus < 0 or (
            spec.time_limit is not None and not spec.time_limit > 0):
        raise SubmitError(f"job {job_uuid} asks for cores={spec.cores!r} ram={spec.ram!r} "
                          f"gpus={spec.gpus!r} time_limit={spec.time_limit!r}; SLURM "
                          "needs positive cores, RAM and time limit")
    arguments = [
        "sbatch", "--parsable", "--job-name", slurm_job_name(job_uuid),
        "--cpus-per-task", str(slurm_cpus(spec.cores)), "--mem", slurm_memory(spec.ram),
    ]
    if spec.time_limit is not None:
        arguments += ["--time", slurm_time(spec.time_limit)]
    if spec.gpus:
        arguments += ["--gres", f"gpu:{spec.gpus}"]
    if partition:
        arguments += ["--partition", partition]
    arguments += ["--no-requeue", "--output", str(output_path), "--open-mode=append",
                  *extra, "--wrap", shlex.join(command)]
    return arguments


def squeue_arguments() -> list[str]:
    """Every job of this user SLURM still knows of, ended ones included, one per line
    (``--me``: on a shared cluster, the others' jobs are most of the queue)."""
    return ["squeue", "--me", "--noheader", "--states=all", "--format", SQUEUE_FORMAT]


def sinfo_arguments() -> list[str]:
    """Each node's CPUs and memory (MiB), one line per node and partition."""
    return ["sinfo", "--noheader", "--Node", "--format", "%N|%c|%m"]


def parse_sinfo_nodes(text: str) -> NodeSize:
    """The largest node in ``sinfo_arguments()`` output: the most CPUs of any node and
    the most memory of any node (maybe two nodes: a job that no one node could hold,
    sbatch refuses at once with its own words)."""
    cores, mib = 0, 0
    for line in text.splitlines():
        fields = line.strip().split("|")
        if len(fields) != 3 or not fields[1].isdigit():
            continue
        memory = re.match(r"\d+", fields[2])
        cores = max(cores, int(fields[1]))
        mib = max(mib, int(memory.group()) if memory else 0)
    if cores == 0:
        raise DispatchError(f"sinfo listed no node: {text.strip()[:200]!r}")
    return NodeSize(cores=float(cores), ram=mib * MIB)


def scontrol_arguments(slurm_id: str) -> list[str]:
    return ["scontrol", "show", "job", "--oneliner", slurm_id]


def scancel_arguments(slurm_ids: Iterable[str]) -> list[str]:
    """scancel says nothing and exits 0 even for jobs that ended or never existed, so
    only a later squeue tells whether a job was cancelled."""
    ids = list(slurm_ids)
    if not ids:
        raise ValueError("scancel needs at least one job id (without, it only errs)")
    return ["scancel", *ids]


@dataclasses.dataclass(frozen=True)
class SlurmJob:
    """A job as squeue or scontrol showed it."""

    slurm_id: str
    name: str
    state: str
    """SLURM's word for it: PENDING, RUNNING, COMPLETED, TIMEOUT..."""
    reason: str = ""
    """Why it waits or ended (Resources, TimeLimit, NonZeroExitCode...); "" for none."""
    exit_code: int | None = None
    """From scontrol only; meaningful once the job ended."""
    signal: int | None = None
    """The signal that ended the batch script (scancel and TIMEOUT: 15), else None."""

    @property
    def job_uuid(self) -> str | None:
        return job_uuid_of(self.name)


def parse_sbatch_output(text: str) -> str:
    """The job id ``sbatch --parsable`` printed: ``<id>`` or ``<id>;<cluster>``."""
    lines = text.split()
    job_id = lines[-1].split(";")[0] if lines else ""
    if not job_id.isdigit():
        raise DispatchError(f"sbatch printed no job id: {text.strip()!r}")
    return job_id


def parse_squeue(text: str) -> dict[str, SlurmJob]:
    """``squeue_arguments()`` output, by SLURM job id."""
    jobs = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        fields = line.split("|", 3)
        if len(fields) != 4 or not fields[0].strip():
            raise DispatchError(f"unexpected squeue line (format {SQUEUE_FORMAT}): {line!r}")
        slurm_id, state, reason, name = fields
        jobs[slurm_id.strip()] = SlurmJob(slurm_id.strip(), name, state.strip(),
                                          _value(reason.strip()))
    return jobs


def parse_scontrol_job(text: str) -> SlurmJob:
    """The job in ``scontrol show job --oneliner <id>`` output (one line of Key=Value)."""
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) != 1:
        raise DispatchError(f"expected one job from scontrol, got {len(lines)} lines")
    fields = _scontrol_fields(lines[0])
    try:
        slurm_id, name, state = fields["JobId"], fields["JobName"], fields["JobState"]
    except KeyError as missing:
        raise DispatchError(f"scontrol printed no {missing.args[0]}: {lines[0]!r}") from None
    exit_code = signal = None
    if match := re.fullmatch(r"(\d+):(\d+)", fields.get("ExitCode", "")):
        exit_code, signal = int(match[1]), int(match[2]) or None
    return SlurmJob(slurm_id, name, state.split()[0] if state.split() else state,
                    _value(fields.get("Reason", "")), exit_code, signal)


def _scontrol_fields(line: str) -> dict[str, str]:
    """Split at the words that look like ``Key=``; a value may hold spaces (a job
    named ``a|b c`` shows as ``JobName=a|b c``), so the words between stay with it."""
    fields: dict[str, str] = {}
    key = None
    for word in line.split(" "):
        if match := _SCONTROL_KEY.fullmatch(word):
            key = match[1]
            fields[key] = match[2]
        elif key is not None:
            fields[key] += " " + word
    return {name: value.strip() for name, value in fields.items()}


def _value(text: str) -> str:
    return "" if text in _NO_VALUE else text


class Disposition(enum.Enum):
    ACTIVE = "active"
    """SLURM still has the job queued, running or held: keep waiting."""
    COMPLETED = "completed"
    """The worker exited 0; it has reported the job's own result itself."""
    ENDED_BY_SLURM = "ended by SLURM"
    """The worker was stopped, or failed, before it could report: the dispatcher ends
    the job (or requeues it) with ``Outcome.reason``."""


@dataclasses.dataclass(frozen=True)
class Outcome:
    disposition: Disposition
    reason: str = ""
    """For ENDED_BY_SLURM: one line for the job's failure reason."""
    requeue: bool = False
    """For ENDED_BY_SLURM: the job did not fail of itself (its node died, it was
    preempted), so running it again may well succeed."""


# SLURM's job states (squeue %T) by what a dispatcher does about them. A state not
# named here counts as active: when it ends, the job leaves squeue, which the dispatcher
# must handle anyway, whereas ending it here might run its work twice.
_ACTIVE_STATES = frozenset({
    "PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "REQUEUED",
    "REQUEUE_FED", "REQUEUE_HOLD", "RESIZING", "SIGNALING", "STAGE_OUT", "STOPPED",
    "RESV_DEL_HOLD",
})
_REQUEUE_STATES = frozenset({"NODE_FAIL", "PREEMPTED", "BOOT_FAIL"})
_FAILED_STATES = _REQUEUE_STATES | {
    "FAILED", "TIMEOUT", "CANCELLED", "OUT_OF_MEMORY", "DEADLINE", "SPECIAL_EXIT",
    "REVOKED",
}


def classify(job: SlurmJob) -> Outcome:
    """What the dispatcher should do about a job in this state."""
    if job.state == "COMPLETED":
        return Outcome(Disposition.COMPLETED)
    if job.state not in _FAILED_STATES:
        return Outcome(Disposition.ACTIVE)
    details = [job.reason] if job.reason else []
    if job.exit_code:
        details.append(f"exit code {job.exit_code}")
    if job.signal:
        details.append(f"signal {job.signal}")
    reason = f"SLURM ended the job: {job.state}"
    if details:
        reason += f" ({', '.join(details)})"
    return Outcome(Disposition.ENDED_BY_SLURM, reason, job.state in _REQUEUE_STATES)


def sbatch_refusal(stderr: str) -> str:
    """One line saying why sbatch refused a job, from what it wrote on stderr.

    SLURM's verdict ("Batch job submission failed: ...") comes first; sbatch's other
    errors, which often name the culprit ("invalid partition specified: nope"), follow
    in parentheses.
    """
    verdict, details = "", []
    for line in stderr.splitlines():
        message = re.sub(r"^sbatch: (error|fatal): ", "", line.strip())
        if message.startswith("Batch job submission failed: "):
            verdict = message.removeprefix("Batch job submission failed: ")
        elif message and not message.startswith("sbatch: warning: "):
            details.append(message)
    if not verdict:
        said = "; ".join(details) or " ".join(stderr.split()) or "no reason given"
        return f"SLURM refused the job: {said}"
    return f"SLURM refused the job: {verdict}" + (f" ({'; '.join(details)})" if details else "")
