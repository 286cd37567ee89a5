"""A real ``cwl-crunch server`` process on 127.0.0.1, for tests that kill or restart it,
or that need its sockets as a client sees them."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path
from types import TracebackType

from polling import wait_until

from cwl_crunch.config import load_config
from cwl_crunch.core import ClusterCore

PATH = "/usr/local/bin:/usr/bin:/bin"
ROOT = Path(__file__).resolve().parents[1]
"""The source tree under test: what a job's ``cwl-crunch-runner`` must run too (a job's
environment has no PYTHONPATH, and the installed scripts may be another tree's)."""


def script_shims(folder: Path) -> Path:
    """``cwl-crunch`` and ``cwl-crunch-runner`` of this interpreter and ROOT, in folder."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, module in (("cwl-crunch", "cwl_crunch.cli.main"),
                         ("cwl-crunch-runner", "cwl_crunch.cli.runner")):
        shim = folder / name
        shim.write_text(f'#!/bin/sh\nPYTHONPATH="{ROOT}" exec "{sys.executable}" -m {module} '
                        '"$@"\n')
        shim.chmod(0o755)
    return folder


class ServerProcess:
    """``cwl-crunch server`` over ``home``; ``start`` again after ``kill`` restarts it on
    the same port (the URL its jobs' workers know)."""

    def __init__(self, home: Path, log: Path, *, poll_interval: float = 0.05) -> None:
        self.home, self.log = home, log
        shims = script_shims(log.parent / "bin")
        self.environment = {"CWL_CRUNCH_HOME": str(home), "PATH": f"{shims}:{PATH}",
                            "CWL_CRUNCH_POLL_INTERVAL": str(poll_interval),
                            "CWL_CRUNCH_CONTAINER_ENGINE": "none",
                            "PYTHONPATH": str(ROOT)}
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServerProcess:
        starts = self.log.read_text().count("cwl-crunch server for") if self.log.exists() else 0
        with self.log.open("a") as sink:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "cwl_crunch.cli.main", "server",
                 "--listen", f"127.0.0.1:{self.port}"],
                stdin=subprocess.DEVNULL, stdout=sink, stderr=sink, env=self.environment)
        banners = wait_until(
            lambda: len(found := re.findall(r"at http://127\.0\.0\.1:(\d+)",
                                            self.log.read_text())) > starts and found,
            timeout=30, what="the server's banner")
        self.port = int(banners[-1])
        return self

    def kill(self) -> None:
        """kill -9: no handler runs, the dispatcher child is orphaned."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def create_token(self) -> str:
        core = ClusterCore(load_config(home=self.home))
        try:
            return core.create_token()
        finally:
            core.close()

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if self.process is not None and self.process.poll() is None:
            stop(self.process)


def stop(server: subprocess.Popen[bytes]) -> None:
    """SIGTERM, as an operator would; SIGKILL if it has not ended within 30 s."""
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
