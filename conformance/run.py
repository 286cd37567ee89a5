#!/usr/bin/env python3
"""Run the CWL v1.2 conformance suite (cwltest) against cwl-crunch-runner.

Prints ``N passed, M failed, K unsupported`` on a line of its own, writes
``<out>/junit.xml`` and ``<out>/failures.txt``; ``--check-floor`` fails when the pass
count is below ``floor.json``. See conformance/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
SUITE_ENV = "CWL_CONFORMANCE_SUITE"
SUITE_PLACES = (HERE / "cwl-v1.2", HERE.parents[1] / "cwl-v1.2",
                HERE.parents[1] / "shared" / "cwl-v1.2")
"""Where a checkout of the suite is looked for, when neither --suite nor $CWL_CONFORMANCE_SUITE
says: in conformance/, beside this repository, or in a ``shared`` folder beside it."""
SUITE_REPO = "https://github.com/common-workflow-language/cwl-v1.2"
TOOL = "cwl-crunch-runner"
# Only for checking this script against another runner, e.g. "cwltool --no-container".
TOOL_OVERRIDE_ENV = "CONFORMANCE_TOOL"

SUMMARY_RE = re.compile(
    r"^(?:(?P<p>\d+) tests passed(?:, (?P<f>\d+) failures)?"
    r"(?:, (?P<u>\d+) unsupported features)?|(?P<all>All tests passed))$"
)
# Tags whose tests floor.json counts apart on a full run.
TAG_FLOORS = ("required", "docker")
STARTED_RE = re.compile(r"^Test \[(\d+)/\d+\] ([^:\s]+)")
FAILED_RE = re.compile(r"^Test (\d+) (?:failed|timed out):")


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--suite", type=Path, help="checkout of the CWL v1.2 suite (with "
                    f"conformance_tests.yaml); default ${SUITE_ENV}, else conformance/cwl-v1.2")
    ap.add_argument("-j", type=int, default=2, help="tests run in parallel (default 2)")
    ap.add_argument("--tags", help="comma-separated tags to run, e.g. required")
    ap.add_argument("--exclude-tags", help="comma-separated tags to skip")
    ap.add_argument("-n", help="cwltest test numbers, e.g. 1,3-6 (no floor check)")
    ap.add_argument("-s", help="cwltest short names, comma-separated (no floor check)")
    ap.add_argument("--out", type=Path, default=HERE / "out", help="output dir")
    ap.add_argument("--home", type=Path, help="CWL_CRUNCH_HOME to use and keep (reuse)")
    ap.add_argument("--floor-file", type=Path, default=HERE / "floor.json")
    ap.add_argument("--check-floor", action="store_true", help="exit 1 if passed < floor")
    ap.add_argument("--timeout", type=int, default=300, help="seconds per test (default 300)")
    ap.add_argument("--tool-arg", action="append", default=[], help="extra runner arg (repeat)")
    ap.add_argument("--verbose", action="store_true", help="pass --verbose to cwltest")
    ap.add_argument("--slurm", action="store_true",
                    help="run the steps on SLURM: through a `cwl-crunch server --dispatcher "
                         "slurm` on a fresh home (scripts/slurm-setup.sh starts a cluster)")
    ap.add_argument("--federated", action="store_true",
                    help="run every CommandLineTool on a peer: two peered `cwl-crunch "
                         "server`s on fresh homes (clusters confa and confb); the runner "
                         "uses confa with --steps-on-cluster confb")
    ap.add_argument("--retries", type=int, default=1,
                    help="rerun failing tests this many times; a pass on a rerun counts, and "
                         "is reported as flaky (default 1)")
    return ap.parse_args(argv)


def floor_key(a: argparse.Namespace) -> str | None:
    """The floor.json key this selection is checked against, or None for no check."""
    if a.exclude_tags or a.n or a.s:
        return None
    if not a.tags:
        return "all"
    return "required" if a.tags.strip() == "required" else None


def run_cwltest(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[int, list[str]]:
    """Run cwltest, echoing its stderr live; return its exit code and stderr lines."""
    lines: list[str] = []
    with subprocess.Popen(
        cmd, cwd=cwd, env=env, stderr=subprocess.PIPE, text=True, errors="replace"
    ) as proc:
        assert proc.stderr is not None
        for line in proc.stderr:
            sys.stderr.write(line)
            lines.append(line.rstrip("\n"))
    return proc.returncode, lines


def parse_junit(path: Path) -> tuple[int, list[str], list[str]]:
    """Return (testcases, ids with <failure>, ids of failed `required` tests) from junit XML."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return 0, [], []
    cases = list(root.iter("testcase"))
    failed = [c for c in cases if c.find("failure") is not None]
    required = [c for c in failed if "required" in c.get("class", "").split(", ")]
    return len(cases), [c.get("file", "?") for c in failed], [c.get("file", "?") for c in required]


def find_suite(given: Path | None) -> Path | str:
    """The suite's directory, or what is wrong and how to get one."""
    named = given or (Path(os.environ[SUITE_ENV]) if os.environ.get(SUITE_ENV) else None)
    places = (named,) if named is not None else SUITE_PLACES
    for place in places:
        if (place / "conformance_tests.yaml").is_file():
            return place.resolve()
    looked = ", ".join(str(place) for place in places)
    return (f"no CWL v1.2 conformance suite (conformance_tests.yaml) in {looked}. Get one "
            f"with: git clone {SUITE_REPO} {HERE / 'cwl-v1.2'} (or pass --suite DIR)")


def main(argv: list[str]) -> int:
    a = parse_args(argv)
    found = find_suite(a.suite)
    if isinstance(found, str):
        print(f"conformance/run.py: {found}", file=sys.stderr)
        return 2
    a.suite = suite = found
    out = a.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / "tmp"  # cwltest never deletes its --outdir dirs: keep them here, not in /tmp
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    if a.home:
        home = a.home.resolve()
    else:
        home = out / "home"
        shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True, exist_ok=True)
    junit = out / "junit.xml"
    junit.unlink(missing_ok=True)

    tool_cmd = shlex.split(os.environ.get(TOOL_OVERRIDE_ENV, "")) or [TOOL]
    cmd = ["cwltest", "--test", str(suite / "conformance_tests.yaml"), "--tool", tool_cmd[0],
           "-j", str(a.j), "--junit-xml", str(junit), "--timeout", str(a.timeout)]
    for flag, value in (("--tags", a.tags), ("--exclude-tags", a.exclude_tags),
                        ("-n", a.n), ("-s", a.s)):
        if value:
            cmd += [flag, value]
    if a.verbose:
        cmd.append("--verbose")
    if tool_cmd[1:] or a.tool_arg:
        cmd += ["--", *tool_cmd[1:], *a.tool_arg]
    env = {**os.environ, "CWL_CRUNCH_HOME": str(home), "TMPDIR": str(tmp)}
    print(f"# CWL_CRUNCH_HOME={home}\n# {shlex.join(cmd)}  (cwd {suite})", file=sys.stderr)
    with contextlib.ExitStack() as stack:
        if a.slurm:
            env.update(stack.enter_context(slurm_server(home, out / "server.log")))
        if a.federated:
            env.update(stack.enter_context(federated_servers(home, out)))
            cmd += ([] if "--" in cmd else ["--"]) + ["--steps-on-cluster", "confb"]
        return report(a, cmd, suite, env, *run_cwltest(cmd, suite, env))


@contextlib.contextmanager
def slurm_server(home: Path, log: Path) -> Iterator[dict[str, str]]:
    """A server on ``home`` whose whole-core jobs go to SLURM; yields the variables that
    make cwl-crunch-runner use it."""
    env = {**os.environ, "CWL_CRUNCH_HOME": str(home)}
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with log.open("w") as sink:
        server = subprocess.Popen(["cwl-crunch", "server", "--dispatcher", "slurm",
                                   "--listen", f"127.0.0.1:{port}"], env=env, stderr=sink)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while "cwl-crunch server for cluster" not in log.read_text():
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the SLURM server did not start: {log.read_text()}")
            time.sleep(0.1)
        token = subprocess.run(["cwl-crunch", "token", "create"], env=env, check=True,
                               capture_output=True, text=True).stdout.split()[-1]
        print(f"# steps on SLURM through {url} (server log {log})", file=sys.stderr)
        yield {"CWL_CRUNCH_API_URL": url, "CWL_CRUNCH_API_TOKEN": token}
    finally:
        server.terminate()
        server.wait(timeout=120)


def _start_server(home: Path, log: Path, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "CWL_CRUNCH_HOME": str(home)}
    with log.open("w") as sink:
        server = subprocess.Popen(["cwl-crunch", "server", "--listen", f"127.0.0.1:{port}"],
                                  env=env, stderr=sink)
    deadline = time.monotonic() + 60
    while "cwl-crunch server for cluster" not in log.read_text():
        if server.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"a server did not start: {log.read_text()}")
        time.sleep(0.1)
    return server


def _token(home: Path, *args: str) -> str:
    return subprocess.run(["cwl-crunch", "token", "create", *args], check=True,
                          env={**os.environ, "CWL_CRUNCH_HOME": str(home)},
                          capture_output=True, text=True).stdout.split()[-1]


@contextlib.contextmanager
def federated_servers(home: Path, out: Path) -> Iterator[dict[str, str]]:
    """Clusters confa and confb, each its own server and home below ``home``, peered
    with each other; yields the variables that make cwl-crunch-runner use confa."""
    names = ("confa", "confb")
    homes = {name: home / name for name in names}
    ports = {}
    for name in names:
        homes[name].mkdir(parents=True, exist_ok=True)
        (homes[name] / "config.toml").write_text(f'cluster_id = "{name}"\n')
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            ports[name] = probe.getsockname()[1]
    issued = {(on, to): _token(homes[on], "--peer", to) for on in names for to in names
              if on != to}
    for name in names:
        other = next(peer for peer in names if peer != name)
        (homes[name] / "config.toml").write_text(
            f'cluster_id = "{name}"\n[peers.{other}]\n'
            f'url = "http://127.0.0.1:{ports[other]}"\n'
            f'token = "{issued[(other, name)]}"\n')
    servers = []
    try:
        for name in names:
            servers.append(_start_server(homes[name], out / f"server-{name}.log", ports[name]))
        print(f"# every CommandLineTool on confb (127.0.0.1:{ports['confb']}), runs at "
              f"confa (127.0.0.1:{ports['confa']})", file=sys.stderr)
        yield {"CWL_CRUNCH_API_URL": f"http://127.0.0.1:{ports['confa']}",
               "CWL_CRUNCH_API_TOKEN": _token(homes["confa"]),
               "CWL_CRUNCH_HOME": str(homes["confa"])}
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            server.wait(timeout=120)


def report(a: argparse.Namespace, cmd: list[str], suite: Path, env: dict[str, str],
           rc: int, lines: list[str]) -> int:
    """Rerun what failed, print the results and check them against the floor."""
    out = a.out.resolve()
    junit = out / "junit.xml"

    m = next((m for ln in reversed(lines) if (m := SUMMARY_RE.match(ln.strip()))), None)
    n_cases, junit_failed, junit_required = parse_junit(junit)
    if m is None:
        print(f"error: no cwltest summary line (cwltest exit {rc})", file=sys.stderr)
        return 2
    failed = int(m["f"] or 0)
    unsupported = int(m["u"] or 0)
    if m["all"]:
        started = sum(1 for ln in lines if STARTED_RE.match(ln))
        passed = n_cases or started
    else:
        passed = int(m["p"])

    names = {int(s[1]): s[2] for ln in lines if (s := STARTED_RE.match(ln))}
    numbers = sorted({int(f[1]) for ln in lines if (f := FAILED_RE.match(ln))})
    ids = [names.get(n, f"#{n}") for n in numbers]
    if not (a.n or a.s):  # with -n/-s cwltest labels junit cases wrongly; else merge them in
        ids += [i for i in junit_failed if i not in ids]
    for attempt in range(a.retries):
        if not ids:
            break
        still = rerun_failing(ids, cmd, suite, env, out / f"retry-{attempt + 1}.xml")
        flaky = [i for i in ids if i not in still]
        print(f"retry {attempt + 1}: {len(flaky)} of {len(ids)} failing tests passed on a "
              f"rerun (flaky: {', '.join(flaky) or 'none'})")
        passed, failed, ids = passed + len(flaky), failed - len(flaky), still
    (out / "failures.txt").write_text("".join(f"{i}\n" for i in ids))

    print(f"{passed} passed, {failed} failed, {unsupported} unsupported")
    print(f"junit: {n_cases} cases, {len(junit_failed)} <failure> "
          f"({len(junit_required)} tagged required); summary failures: {failed}")
    if ids:
        shown = ", ".join(ids[:20]) + (f", ... ({len(ids)} in all)" if len(ids) > 20 else "")
        print(f"failing: {shown}")
    print(f"junit: {junit}\nfailures: {out / 'failures.txt'}")

    return check_floor(a, passed, ids) if a.check_floor else 0


def check_floor(a: argparse.Namespace, passed: int, failing_ids: list[str]) -> int:
    """1 if fewer tests passed than floor.json asks of this selection (or of a tag)."""
    key = floor_key(a)
    floors = json.loads(a.floor_file.read_text())
    floor = floors.get(key) if key else None
    if floor is None:
        print(f"floor: no check for this selection (key {key!r})")
    elif passed < floor:
        print(f"FLOOR FAILED [{key}]: {passed} passed < {floor}, short by {floor - passed}")
        return 1
    else:
        print(f"floor ok [{key}]: {passed} passed >= floor {floor} (+{passed - floor})")
    if key == "all":
        # Every tag with a floor of its own is checked too (without a second run).
        tagged = [tag_ok(a.suite, tag, failing_ids, floors[tag]) for tag in TAG_FLOORS
                  if tag in floors]
        if not all(tagged):
            return 1
    return 0


def rerun_failing(ids: list[str], cmd: list[str], suite: Path, env: dict[str, str],
                  junit: Path) -> list[str]:
    """Run just these tests again (by short name); the ids that fail again."""
    selection = {"--tags", "--exclude-tags", "-n", "-s", "--junit-xml"}
    base: list[str] = []
    skip = False
    for index, arg in enumerate(cmd):
        if skip:
            skip = False
            continue
        if arg == "--":
            base += cmd[index:]
            break
        if arg in selection:
            skip = True
            continue
        base.append(arg)
    split = base.index("--") if "--" in base else len(base)
    retry = [*base[:split], "-s", ",".join(ids), "--junit-xml", str(junit), *base[split:]]
    _, lines = run_cwltest(retry, suite, env)
    names = {int(s[1]): s[2] for ln in lines if (s := STARTED_RE.match(ln))}
    numbers = sorted({int(f[1]) for ln in lines if (f := FAILED_RE.match(ln))})
    failed = [names.get(n, f"#{n}") for n in numbers]
    # A test that did not even start has not passed: cwltest 2.5 cannot select the
    # suite's first test by name ("not found") and then runs none of them.
    return failed + [i for i in ids if i not in names.values() and i not in failed]


def tag_ok(suite: Path, tag: str, failing_ids: list[str], floor: int) -> bool:
    """How many of the tests with ``tag`` passed, against that tag's floor."""
    listed = subprocess.run(
        ["cwltest", "--test", str(suite / "conformance_tests.yaml"), "-l", "--tags", tag],
        capture_output=True, text=True, check=False).stdout
    tagged = {m.group(1) for m in re.finditer(r"^\[\d+\] ([^:]+):", listed, re.M)}
    failing = sorted(set(failing_ids) & tagged)
    passed = len(tagged) - len(failing)
    if passed < floor:
        print(f"FLOOR FAILED [{tag}]: {passed} of {len(tagged)} {tag} passed < "
              f"{floor}; failing: {', '.join(failing)}")
        return False
    print(f"floor ok [{tag}]: {passed} of {len(tagged)} {tag} passed >= {floor}")
    return True


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
