"""Container steps: cwl-crunch-runner against cwltool's Docker mode, on the same engine.

    python bench/containers.py [--scatter 20,100] [--engine unix:///run/podman/podman.sock]

A scatter of N trivial `echo` steps in docker.io/debian:stable-slim. cwltool drives the
`docker` CLI; pointed at Podman's Docker API socket (DOCKER_HOST) it uses the same engine
as cwl-crunch, so the ratio compares the runners, not the engines. Also: the same scatter
with `--no-container` (cwl-crunch), for the cost of containers themselves. Prints wall
times and ratios; nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cwl_crunch.containers import find_engine

sys.path.insert(0, str(Path(__file__).parent))
from runner import SCATTER_WF as RUNNER_SCATTER_WF  # a sibling script

# bench/runner.py's scatter, with the tool hinting at an image.
SCATTER_WF = RUNNER_SCATTER_WF.replace(
    "      class: CommandLineTool\n",
    "      class: CommandLineTool\n"
    "      hints: {DockerRequirement: {dockerPull: docker.io/debian:stable-slim}}\n", 1)
assert SCATTER_WF != RUNNER_SCATTER_WF


def timed(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"{shlex.join(command)} failed ({result.returncode}):\n"
                 f"{result.stderr[-2000:]}")
    return elapsed


def scatter(work: Path, n: int, engine: str) -> None:
    wf = work / "scatter.cwl"
    wf.write_text(SCATTER_WF)
    job = work / f"words-{n}.yml"
    job.write_text("words:\n" + "".join(f"  - w{i}\n" for i in range(n)))
    base = {k: v for k, v in os.environ.items() if not k.startswith("CWL_CRUNCH_")}
    crunch_env = {**base, "CWL_CRUNCH_HOME": str(work / f"home-{n}"),
                  "CWL_CRUNCH_CONTAINER_ENGINE": engine}
    ours = timed(["cwl-crunch-runner", "--quiet", "--disable-reuse", "--outdir",
                  str(work / f"c{n}"), str(wf), str(job)], crunch_env)
    host = timed(["cwl-crunch-runner", "--quiet", "--disable-reuse", "--no-container",
                  "--outdir", str(work / f"h{n}"), str(wf), str(job)], crunch_env)
    theirs = timed(["cwltool", "--quiet", "--parallel", "--outdir", str(work / f"t{n}"),
                    str(wf), str(job)], {**base, "DOCKER_HOST": engine})
    print(f"scatter {n} in containers: cwl-crunch {ours:.2f} s ({ours / n * 1000:.0f} ms/step),"
          f" cwltool --parallel (docker CLI) {theirs:.2f} s ({theirs / n * 1000:.0f} ms/step);"
          f" ratio {ours / theirs:.2f}x")
    print(f"scatter {n}: cwl-crunch in containers / on the host: {ours:.2f} s / {host:.2f} s"
          f" ({(ours - host) / n * 1000:.0f} ms per container)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scatter", default="20,100")
    parser.add_argument("--engine", default=find_engine(""))
    args = parser.parse_args()
    if not args.engine:
        sys.exit("no container engine found: see the README's section on containers")
    if shutil.which("docker") is None:
        sys.exit("cwltool's Docker mode needs the `docker` CLI on PATH")
    with tempfile.TemporaryDirectory(prefix="bench-containers-") as tmp:
        for n in (int(x) for x in args.scatter.split(",") if x):
            scatter(Path(tmp), n, args.engine)
    return 0


if __name__ == "__main__":
    sys.exit(main())
