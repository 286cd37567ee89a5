"""Time the collection store against ``cp`` on one big file.

    python bench/store.py [--size-mb 1024] [--dir /path/on/the/filesystem/to/test]

Steps: cp; first put; second put of the same file (put cache: reads nothing); put of a
byte-identical copy at another path (rehashes, stores nothing new); export back out; then
the same file put again by new processes: ``cwl-crunch put`` (``python -m
cwl_crunch.cli.main put``) against the same store, and a bare ``CollectionStore`` in a
``python -c``. A new process has no blocks in memory as known good: the put cache's
persisted block stats are what spare it hashing the stored blocks again.
Targets: first put at least half as fast as cp; the same file again (in this process or
through the CLI in a new one) at most a fifth of the first put. The CLI's own startup (a
put of a one-byte file) is timed too, to tell it apart from the store's share.
"""

from __future__ import annotations

import argparse
import dataclasses
import filecmp
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cwl_crunch.store import CollectionStore


@dataclasses.dataclass(frozen=True)
class Timing:
    step: str
    seconds: float
    target: str = ""
    met: bool | None = None


def _timed(action: Callable[[], object]) -> float:
    # Start every step with no dirty pages left by the previous one, whose writeback
    # would otherwise throttle this step's writes and blur the comparison.
    os.sync()
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def _make_random_file(path: Path, size_mb: int) -> None:
    chunk = os.urandom(1 << 20)
    with open(path, "wb") as out:
        for index in range(size_mb):
            # Vary every MiB so no two blocks are equal (dedup would flatter the put).
            out.write(index.to_bytes(8, "little") + chunk[8:])


def _blocks_bytes(store_root: Path) -> int:
    return sum(path.stat().st_size for path in (store_root / "blocks").rglob("*") if path.is_file())


def _child_env(work: Path) -> dict[str, str]:
    """The environment of a ``cwl-crunch`` child using the bench's store, nothing else."""
    env = {name: value for name, value in os.environ.items()
           if not name.startswith("CWL_CRUNCH_")}
    env["CWL_CRUNCH_HOME"] = str(work / "home")
    env["CWL_CRUNCH_STORE_DIR"] = str(work / "store")
    repo = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [repo, env.get("PYTHONPATH")]))
    return env


def _run_child(command: list[str], env: dict[str, str], expect: str) -> None:
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0 or result.stdout.strip() != expect:
        raise SystemExit(f"{command[:4]} failed ({result.returncode}), printed "
                         f"{result.stdout.strip()!r} instead of {expect!r}: {result.stderr}")


_STORE_PUT = (
    "import sys; from pathlib import Path; from cwl_crunch.store import CollectionStore; "
    "print(CollectionStore(Path(sys.argv[1])).put_paths([Path(sys.argv[2])]))"
)


def run_bench(work: Path, size_mb: int) -> list[Timing]:
    source = work / "big.bin"
    _make_random_file(source, size_mb)
    twin = work / "twin" / "big.bin"
    twin.parent.mkdir()
    shutil.copyfile(source, twin)
    store = CollectionStore(work / "store")
    cp_seconds = _timed(lambda: subprocess.run(["cp", source, work / "cp.bin"], check=True))
    (work / "cp.bin").unlink()
    # Let the files' ctime age past the put cache's racy-timestamp window.
    time.sleep(1.2)
    first = _timed(lambda: store.put_paths([source]))
    stored = _blocks_bytes(store.root)
    second = _timed(lambda: store.put_paths([source]))
    pdh = store.put_paths([source])
    twin_seconds = _timed(lambda: store.put_paths([twin]))
    grew = _blocks_bytes(store.root) - stored
    export_seconds = _timed(lambda: store.export(pdh, "big.bin", work / "exported.bin"))
    if not filecmp.cmp(source, work / "exported.bin", shallow=False):
        raise SystemExit("exported file differs from the original")
    env = _child_env(work)
    cli = [sys.executable, "-m", "cwl_crunch.cli.main", "put"]
    tiny = work / "tiny" / "one.txt"
    tiny.parent.mkdir()
    tiny.write_bytes(b"1")
    tiny_pdh = store.put_paths([tiny])
    # The first CLI run creates the cluster's records database: not timed.
    _run_child([*cli, str(tiny)], env, tiny_pdh)
    startup_seconds = _timed(lambda: _run_child([*cli, str(tiny)], env, tiny_pdh))
    new_process_seconds = _timed(lambda: _run_child([*cli, str(source)], env, pdh))
    bare_seconds = _timed(lambda: _run_child(
        [sys.executable, "-c", _STORE_PUT, str(store.root), str(source)], env, pdh))
    return [
        Timing("cp", cp_seconds),
        Timing("put (first)", first, "<= 2.0 x cp", first <= 2 * cp_seconds),
        Timing("put (same file again)", second, "<= 0.2 x first put", second <= 0.2 * first),
        Timing(
            f"put (identical copy, stored {grew} new bytes)",
            twin_seconds,
            "stores nothing new",
            grew == 0,
        ),
        Timing("export", export_seconds),
        Timing("cli startup (put of a 1-byte file)", startup_seconds),
        Timing(
            "put (same file again, new process)",
            new_process_seconds,
            "<= 0.2 x first put",
            new_process_seconds <= 0.2 * first,
        ),
        Timing("put (same file again, new python -c store)", bare_seconds),
    ]


def _print_table(timings: list[Timing], cp_seconds: float) -> None:
    print(f"{'step':<46} {'seconds':>8} {'x cp':>6}  target")
    for timing in timings:
        verdict = "" if timing.met is None else ("met" if timing.met else "MISSED")
        target = f"{timing.target} ({verdict})" if timing.target else ""
        ratio = timing.seconds / cp_seconds
        print(f"{timing.step:<46} {timing.seconds:>8.3f} {ratio:>6.2f}  {target}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--size-mb", type=int, default=1024, help="size of the test file")
    parser.add_argument("--dir", type=Path, default=None, help="where to make temp files")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cwl-crunch-bench-", dir=args.dir) as work:
        timings = run_bench(Path(work), args.size_mb)
        _print_table(timings, timings[0].seconds)
        # Blocks are read-only: make them deletable for the temp dir cleanup.
        for path in Path(work).rglob("*"):
            if path.is_file():
                path.chmod(0o644)
    return 0 if all(timing.met is not False for timing in timings) else 1


if __name__ == "__main__":
    sys.exit(main())
