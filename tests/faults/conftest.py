"""Fixtures for fault tests: child OS processes on the test's cluster home, and probes.

Helpers are handed out as fixtures rather than imported, so the tests do not depend on
pytest's import mode. Every process started through ``processes`` is killed (by its own
pid) when the test ends, whatever happened.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from procs import processes_with as live_processes_with

from cwl_crunch import ClusterClient
from cwl_crunch.client import JobFilter

DEADLINE = 20.0
"""Seconds any single wait in these tests may take before it counts as a failure."""


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """The cluster home the ``cluster`` fixture of tests/conftest.py uses."""
    return tmp_path / "home"


@pytest.fixture
def child_env(home: Path) -> dict[str, str]:
    """Environment for a child process that must open the same cluster as the test."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CWL_CRUNCH_")}
    env["CWL_CRUNCH_HOME"] = str(home)
    env["CWL_CRUNCH_POLL_INTERVAL"] = "0.05"
    env["PYTHONUNBUFFERED"] = "1"
    return env


class Processes:
    """Starts child processes and guarantees they are gone after the test."""

    def __init__(self, env: dict[str, str], tmp_path: Path) -> None:
        self.env = env
        self.tmp_path = tmp_path
        self.started: list[subprocess.Popen[bytes]] = []

    def python(self, source: str, *args: str, extra_env: dict[str, str] | None = None,
               name: str = "script") -> subprocess.Popen[bytes]:
        """Run ``source`` (written to a file in tmp_path) in a fresh interpreter."""
        script = self.tmp_path / f"{name}.py"
        script.write_text(source)
        return self.start([sys.executable, str(script), *args], extra_env=extra_env,
                          name=name)

    def start(self, argv: list[str], *, extra_env: dict[str, str] | None = None,
              name: str = "proc") -> subprocess.Popen[bytes]:
        env = dict(self.env, **(extra_env or {}))
        log = open(self.tmp_path / f"{name}.{len(self.started)}.log", "wb")  # noqa: SIM115
        try:
            process = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT,
                                       cwd=self.tmp_path)
        finally:
            log.close()
        process.log_path = log.name  # type: ignore[attr-defined]
        self.started.append(process)
        return process

    @staticmethod
    def output(process: subprocess.Popen[bytes]) -> str:
        return Path(process.log_path).read_text(errors="replace")  # type: ignore[attr-defined]

    def wait_all(self, processes: list[subprocess.Popen[bytes]],
                 timeout: float = DEADLINE) -> None:
        deadline = time.monotonic() + timeout
        for process in processes:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pytest.fail(f"child {process.args} still running after {timeout} s:\n"
                            f"{self.output(process)}")
            assert process.returncode == 0, (process.args, self.output(process))

    def kill_all(self) -> None:
        for process in self.started:
            if process.poll() is None:
                os.kill(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture
def processes(child_env: dict[str, str], tmp_path: Path) -> Iterator[Processes]:
    procs = Processes(child_env, tmp_path)
    try:
        yield procs
    finally:
        procs.kill_all()




@pytest.fixture
def processes_with() -> Callable[[str], list[int]]:
    return live_processes_with


@pytest.fixture
def new_marker() -> Iterator[Callable[[], str]]:
    """Unique markers that are also valid (tiny) `sleep` durations: 0.000DDDDDDDDD.

    Job commands carrying a marker are this test's: any still alive at the end (a
    failed test, a reaper that did not reap) are killed by pid.
    """
    made: list[str] = []

    def make() -> str:
        marker = f"0.000{random.randrange(10**8, 10**9)}"
        made.append(marker)
        return marker

    yield make
    for marker in made:
        for pid in live_processes_with(marker):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def wait_until() -> Callable[..., object]:
    def wait(predicate: Callable[[], object], what: str, timeout: float = DEADLINE,
             interval: float = 0.05) -> object:
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {timeout} s waiting for {what}")
            time.sleep(interval)

    return wait


def _check_collections_readable(client: ClusterClient, store_dir: Path) -> list[str]:
    """Every collection any job record names, and every manifest in the store, lists
    and reads completely (no manifest names a missing or damaged block).

    Returns the PDHs the records name. ``store_dir/tmp`` may hold leftovers: not checked.
    """
    named = []
    for job in client.list_jobs(JobFilter(limit=100_000)):
        named.extend(pdh for pdh in (job.output_pdh, job.log_pdh) if pdh is not None)
    # The store layout (DESIGN.md): manifests/<2 hex>/<hash>; a PDH is <hash>+<length>.
    stored = [f"{path.name}+{path.stat().st_size}"
              for path in (store_dir / "manifests").glob("*/*") if path.is_file()]
    assert set(named) <= set(stored), "a record names a collection that is not stored"
    for pdh in stored:
        for entry in client.list_collection(pdh):
            if entry.kind == "file":
                data = b"".join(client.read_file(pdh, entry.path))
                assert len(data) == entry.size, (pdh, entry.path)
    return named


@pytest.fixture
def check_collections_readable(home: Path) -> Callable[[ClusterClient], list[str]]:
    def check(client: ClusterClient) -> list[str]:
        return _check_collections_readable(client, home / "store")

    return check
