"""cwl-crunch's SLURM dispatcher against Toil on the same SLURM cluster, same run.

    python bench/slurm.py [--steps 100] [--repeat 1] [--toil PATH] [--skip-toil]

Needs a running SLURM cluster whose nodes see this machine's /tmp (scripts/slurm-setup.sh
starts the one-node cluster of this repo) and Toil for the Toil rows:
    python3 -m venv /opt/toil-venv && /opt/toil-venv/bin/pip install 'toil[cwl]'
(--toil names its toil-cwl-runner; Toil is skipped, with that hint, when it is missing).

Workload: the scatter of N trivial `echo` steps of bench/runner.py (SCATTER_WF, default
1 core and 256 MiB each, so one SLURM job per step), and the same workflow with one word
(a single step, end to end), each run by:
- cwl-crunch: `cwl-crunch server --dispatcher slurm` on a fresh CWL_CRUNCH_HOME per run (so
  nothing is reused), then `cwl-crunch-runner --quiet` against it; the runner runs here and
  every step is one sbatch job. Timed: the runner only (the server is the cluster's
  standing service; its start and stop are not counted);
- Toil: `toil-cwl-runner --batchSystem slurm --jobStore <fresh> --workDir <fresh>
  --no-container --logLevel WARNING`, Toil's defaults otherwise (caching included), with
  the venv's bin first on PATH (its SLURM jobs run `_toil_worker`). Timed: the whole
  command, which is Toil's leader for this workflow;
- `sbatch --wrap true` N times (no workflow, no runner), timed from the first sbatch until
  squeue lists none of them: SLURM's own floor for N one-CPU jobs on this cluster;
- cwltool `--parallel --no-container --quiet`: single-machine reference, no SLURM.
Before each SLURM run the bench waits (up to 2 minutes) for the SLURM queue to be empty;
other users' jobs during a run still skew it (repeat, and read the run lines).

Figures, the median of --repeat runs each (C = the default partition's CPUs; for cwltool
this machine's CPUs):
- wall N, wall 1: wall seconds of the N-step scatter and of the 1-step workflow;
- wall/N: raw wall seconds per step;
- marginal = (wall N - wall 1) / (N - 1): what each step adds beyond the fixed cost of a
  run (start-up, loading the workflow, the first step's latency); the steps themselves
  take ~0 s, so this is the per-step overhead of the runner plus the batch system;
- slot-s = wall N x C / N: CPU-slot seconds of the cluster per step: exact when the run
  keeps every slot busy, an upper bound when the runner, not the cluster, is the
  bottleneck;
- ratios: wall N and wall 1 of each runner over cwl-crunch's.
Prints figures and ratios; nothing is asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from runner import SCATTER_WF  # the same workflow as bench/runner.py

DEFAULT_TOIL = "/opt/toil-venv/bin/toil-cwl-runner"
TOIL_HINT = ("python3 -m venv /opt/toil-venv && /opt/toil-venv/bin/pip install 'toil[cwl]'"
             " (then --toil /opt/toil-venv/bin/toil-cwl-runner)")
RUN_TIMEOUT = 3600.0
"""Seconds any one timed run may take."""
QUEUE_WAIT = 120.0
SERVER_BANNER = "cwl-crunch server for cluster "

Runner = Callable[[Path, Path, int, str], float]
"""(workflow, inputs file, steps, tag unique to the run) -> wall seconds."""


def timed(command: list[str], env: dict[str, str], log: Path | None = None) -> float:
    """Wall seconds of `command`; exits with its stderr's tail (and `log`'s) on failure."""
    start = time.perf_counter()
    try:
        result = subprocess.run(command, capture_output=True, text=True, env=env,
                                check=False, timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        sys.exit(f"{command[0]} took more than {RUN_TIMEOUT:.0f} s")
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        extra = f"\n--- {log}:\n{log.read_text()[-2000:]}" if log and log.exists() else ""
        sys.exit(f"{' '.join(command)} failed ({result.returncode}):\n"
                 f"{result.stderr[-3000:]}{extra}")
    return elapsed


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CWL_CRUNCH_")}
    return {**env, **extra}


def slurm_cpus() -> int:
    """Total CPUs of the default partition (sinfo's %C is allocated/idle/other/total)."""
    lines = subprocess.run(["sinfo", "-h", "-o", "%P %C"], capture_output=True, text=True,
                           check=True).stdout.split()
    pairs = list(zip(lines[::2], lines[1::2], strict=True))
    _partition, cpus = next((p for p in pairs if p[0].endswith("*")), pairs[0])
    return int(cpus.split("/")[3])


def queue_length() -> int:
    result = subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True, text=True,
                            check=True)
    return len(result.stdout.split())


def wait_for_empty_queue() -> None:
    deadline = time.monotonic() + QUEUE_WAIT
    if count := queue_length():
        print(f"  waiting for {count} SLURM job(s) to leave the queue", flush=True)
    while (count := queue_length()) and time.monotonic() < deadline:
        time.sleep(0.5)
    if count:
        print(f"warning: {count} SLURM job(s) still queued; measuring anyway", file=sys.stderr)


@contextlib.contextmanager
def crunch_server(home: Path) -> Iterator[dict[str, str]]:
    """A `cwl-crunch server --dispatcher slurm` on `home` and a free port; yields the
    environment of a client of it (URL, token); SIGTERM and wait at the end."""
    env = clean_env(CWL_CRUNCH_HOME=str(home))
    home.mkdir(parents=True)
    log = home / "server.log"
    with log.open("w") as stderr:
        server = subprocess.Popen(
            ["cwl-crunch", "server", "--dispatcher", "slurm", "--listen", "127.0.0.1:0"],
            env=env, stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True)
    try:
        url = server_url(server, log)
        token = subprocess.run(["cwl-crunch", "token", "create"], env=env, check=True,
                               capture_output=True, text=True).stdout.split()[-1]
        yield {**env, "CWL_CRUNCH_API_URL": url, "CWL_CRUNCH_API_TOKEN": token}
    finally:
        stop(server)


def server_url(server: subprocess.Popen[bytes], log: Path) -> str:
    """The URL on the server's banner line, once it is printed (60 s at most)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and server.poll() is None:
        for line in log.read_text().splitlines():
            if line.startswith(SERVER_BANNER):
                return line.split(" at ", 1)[1].split()[0]
        time.sleep(0.1)
    sys.exit(f"cwl-crunch server did not start (exit {server.poll()}):\n"
             f"{log.read_text()[-2000:]}")


def stop(server: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server and wait; SIGKILL its own process group after 30 s."""
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        print("warning: cwl-crunch server ignored SIGTERM for 30 s; killing it",
              file=sys.stderr)
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()


def run_crunch(work: Path) -> Runner:
    def run(wf: Path, job: Path, steps: int, tag: str) -> float:
        wait_for_empty_queue()
        home = work / f"crunch-home-{tag}"
        with crunch_server(home) as env:
            return timed(["cwl-crunch-runner", "--quiet", "--outdir",
                          str(work / f"crunch-out-{tag}"), str(wf), str(job)], env,
                         home / "server.log")
    return run


def run_toil(work: Path, toil: Path) -> Runner:
    env = clean_env(PATH=f"{toil.parent}{os.pathsep}{os.environ.get('PATH', '')}")
    env.pop("VIRTUAL_ENV", None)

    def run(wf: Path, job: Path, steps: int, tag: str) -> float:
        wait_for_empty_queue()
        workdir = work / f"toil-work-{tag}"
        workdir.mkdir()
        return timed([str(toil), "--batchSystem", "slurm", "--jobStore",
                      str(work / f"toil-js-{tag}"), "--workDir", str(workdir),
                      "--no-container", "--logLevel", "WARNING", "--outdir",
                      str(work / f"toil-out-{tag}"), str(wf), str(job)], env)
    return run


def run_cwltool(work: Path) -> Runner:
    def run(wf: Path, job: Path, steps: int, tag: str) -> float:
        return timed(["cwltool", "--quiet", "--parallel", "--no-container", "--outdir",
                      str(work / f"cwltool-out-{tag}"), str(wf), str(job)], clean_env())
    return run


def run_bare(work: Path) -> Runner:
    """No workflow: `sbatch --wrap true` once per step, until none is left in squeue."""
    def run(wf: Path, job: Path, steps: int, tag: str) -> float:
        wait_for_empty_queue()
        name = f"bench-bare-{tag}-{os.getpid()}"
        start = time.perf_counter()
        for _ in range(steps):
            subprocess.run(["sbatch", "--quiet", "--job-name", name, "--output", os.devnull,
                            "--wrap", "true"], cwd=work, check=True)
        while subprocess.run(["squeue", "-h", "--name", name], capture_output=True,
                             check=True).stdout.strip():
            time.sleep(0.1)
        return time.perf_counter() - start
    return run


def inputs(work: Path, n: int) -> Path:
    job = work / f"words-{n}.yml"
    job.write_text("words:\n" + "".join(f"  - w{i}\n" for i in range(n)))
    return job


def measure(work: Path, runners: dict[str, Runner], n: int,
            repeat: int) -> dict[str, tuple[float, float]]:
    """Median (wall N, wall 1) per runner; runners interleaved within each repeat."""
    wf = work / "scatter.cwl"
    wf.write_text(SCATTER_WF)
    jobs = {n: inputs(work, n), 1: inputs(work, 1)}
    walls: dict[str, dict[int, list[float]]] = {name: {n: [], 1: []} for name in runners}
    for k in range(repeat):
        for steps in sorted({n, 1}, reverse=True):
            for name, run in runners.items():
                wall = run(wf, jobs[steps], steps, f"{steps}-{k}")
                walls[name][steps].append(wall)
                print(f"  run {k + 1}/{repeat}: {name}, {steps} step(s): {wall:.2f} s",
                      flush=True)
    return {name: (statistics.median(w[n]), statistics.median(w[1]))
            for name, w in walls.items()}


def report(results: dict[str, tuple[float, float]], n: int, cpus: dict[str, int]) -> None:
    base_n, base_1 = results["cwl-crunch"]
    print(f"\nscatter of {n} trivial steps (C = CPUs: "
          + ", ".join(f"{name} {c}" for name, c in cpus.items()) + ")")
    header = (f"{'runner':<22}{'wall N':>9}{'wall 1':>9}{'wall/N':>9}{'marginal':>10}"
              f"{'slot-s':>9}{'N ratio':>9}{'1 ratio':>9}")
    print(header)
    print("-" * len(header))
    for name, (wall_n, wall_1) in results.items():
        marginal = (wall_n - wall_1) / (n - 1) if n > 1 else float("nan")
        print(f"{name:<22}{wall_n:>9.2f}{wall_1:>9.2f}{wall_n / n:>9.3f}{marginal:>10.3f}"
              f"{wall_n * cpus[name] / n:>9.3f}{wall_n / base_n:>8.2f}x"
              f"{wall_1 / base_1:>8.2f}x")
    print("(seconds; marginal = (wall N - wall 1) / (N - 1); slot-s = wall N x C / N; "
          "ratios over cwl-crunch)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100, help="scatter width N")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each; medians")
    parser.add_argument("--toil", default=DEFAULT_TOIL, help="toil-cwl-runner to use")
    parser.add_argument("--skip-toil", action="store_true")
    args = parser.parse_args()
    if args.steps < 1 or args.repeat < 1:
        parser.error("--steps and --repeat must be at least 1")
    toil = shutil.which(args.toil)
    if not args.skip_toil and toil is None:
        print(f"toil-cwl-runner not found at {args.toil}; skipping Toil. Install it with: "
              f"{TOIL_HINT}", file=sys.stderr)
    slurm = slurm_cpus()
    with tempfile.TemporaryDirectory(prefix="bench-slurm-") as tmp:
        work = Path(tmp)
        runners = {"cwl-crunch": run_crunch(work)}
        cpus = {"cwl-crunch": slurm}
        if toil and not args.skip_toil:
            runners["toil"] = run_toil(work, Path(toil))
            cpus["toil"] = slurm
        runners["sbatch --wrap true"] = run_bare(work)
        cpus["sbatch --wrap true"] = slurm
        runners["cwltool --parallel"] = run_cwltool(work)
        cpus["cwltool --parallel"] = os.cpu_count() or 1
        started = time.perf_counter()
        results = measure(work, runners, args.steps, args.repeat)
        report(results, args.steps, cpus)
        print(f"(bench took {time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
