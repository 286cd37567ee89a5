"""cwl-crunch-runner against cwltool, side by side in one run.

    python bench/runner.py [--scatter 100,500] [--chain-mb 1024] [--skip-chain]

Workloads (issue 3):
- a scatter of N trivial `echo` steps: cwl-crunch-runner (fresh home) against
  `cwltool --parallel --no-container`; then the same run again, everything reused, against
  cwltool's warm `--cachedir` re-run; the runner's peak memory (max RSS);
- a chain of 5 `cat` steps over one big file, against cwltool and against five plain cats.
Prints wall times and ratios; targets are in the issue, not asserted here.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SCATTER_WF = """\
cwlVersion: v1.2
class: Workflow
requirements: {ScatterFeatureRequirement: {}}
inputs: {words: 'string[]'}
steps:
  say:
    run:
      class: CommandLineTool
      baseCommand: echo
      inputs: {word: {type: string, inputBinding: {position: 1}}}
      stdout: said.txt
      outputs: {said: stdout}
    scatter: word
    in: {word: words}
    out: [said]
outputs: {said: {type: 'File[]', outputSource: say/said}}
"""

CAT_TOOL = """\
cwlVersion: v1.2
class: CommandLineTool
baseCommand: cat
inputs: {f: {type: File, inputBinding: {position: 1}}}
stdout: $(inputs.f.nameroot).c
outputs: {out: stdout}
"""

CHAIN_WF = """\
cwlVersion: v1.2
class: Workflow
inputs: {f: File}
steps:
""" + "".join(
    f"  c{i}:\n    run: cat.cwl\n    in: {{f: {'f' if i == 1 else f'c{i - 1}/out'}}}\n"
    f"    out: [out]\n" for i in range(1, 6)) + """\
outputs: {out: {type: File, outputSource: c5/out}}
"""


def timed(command: list[str], env: dict[str, str] | None = None) -> tuple[float, int]:
    """Wall seconds and the child's peak RSS in KiB (fresh RUSAGE_CHILDREN each call)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"{command[0]} failed ({result.returncode}):\n{result.stderr[-2000:]}")
    return elapsed, max(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, before)


def crunch(home: Path, outdir: Path, *args: str) -> list[str]:
    return ["cwl-crunch-runner", "--quiet", "--outdir", str(outdir), *args]


def env_for(home: Path) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if not k.startswith("CWL_CRUNCH_")},
            "CWL_CRUNCH_HOME": str(home)}


def scatter(work: Path, n: int) -> None:
    wf = work / "scatter.cwl"
    wf.write_text(SCATTER_WF)
    job = work / f"words-{n}.yml"
    job.write_text("words:\n" + "".join(f"  - w{i}\n" for i in range(n)))
    home = work / f"home-{n}"
    first, rss = timed(crunch(home, work / f"c{n}a", str(wf), str(job)), env_for(home))
    again, _ = timed(crunch(home, work / f"c{n}b", str(wf), str(job)), env_for(home))
    cwltool, _ = timed(["cwltool", "--quiet", "--parallel", "--no-container", "--outdir",
                        str(work / f"t{n}"), str(wf), str(job)])
    cache = work / f"cache-{n}"
    timed(["cwltool", "--quiet", "--no-container", "--cachedir", str(cache), "--outdir",
           str(work / f"w{n}a"), str(wf), str(job)])
    warm, _ = timed(["cwltool", "--quiet", "--no-container", "--cachedir", str(cache),
                     "--outdir", str(work / f"w{n}b"), str(wf), str(job)])
    print(f"scatter {n}: cwl-crunch {first:.2f} s, cwltool --parallel {cwltool:.2f} s "
          f"(ratio {first / cwltool:.2f}x; target <= 2x at 500)")
    print(f"scatter {n} re-run: cwl-crunch all reused {again:.2f} s, cwltool warm cachedir "
          f"{warm:.2f} s (ratio {again / warm:.2f}x; target <= 1x)")
    print(f"scatter {n}: cwl-crunch-runner peak RSS {rss / 1024:.0f} MB "
          "(target <= 500 MB at 5000)")


def chain(work: Path, size_mb: int) -> None:
    (work / "cat.cwl").write_text(CAT_TOOL)
    wf = work / "chain.cwl"
    wf.write_text(CHAIN_WF)
    data = work / "big.dat"
    with data.open("wb") as out:
        for _ in range(size_mb):
            out.write(os.urandom(1 << 20))
    job = work / "chain.yml"
    job.write_text(f"f: {{class: File, path: {data}}}\n")
    home = work / "home-chain"
    ours, _ = timed(crunch(home, work / "chain-c", str(wf), str(job)), env_for(home))
    cwltool, _ = timed(["cwltool", "--quiet", "--no-container", "--outdir",
                        str(work / "chain-t"), str(wf), str(job)])
    start = time.perf_counter()
    source = data
    for i in range(5):
        target = work / f"plain{i}.dat"
        subprocess.run(["cat", str(source)], stdout=target.open("wb"), check=True)
        source = target
    plain = time.perf_counter() - start
    print(f"chain of 5 cat over {size_mb} MB: cwl-crunch {ours:.2f} s, cwltool {cwltool:.2f} s "
          f"(ratio {ours / cwltool:.2f}x; target <= 1x), five plain cats {plain:.2f} s "
          f"(ratio {ours / plain:.2f}x; aim <= 2x)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scatter", default="100,500")
    parser.add_argument("--chain-mb", type=int, default=1024)
    parser.add_argument("--skip-chain", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-runner-") as tmp:
        work = Path(tmp)
        for n in (int(x) for x in args.scatter.split(",") if x):
            scatter(work, n)
        if not args.skip_chain:
            chain(work, args.chain_mb)
    return 0


if __name__ == "__main__":
    sys.exit(main())
