"""``cwl-crunch server`` as a process: it starts its dispatcher and stops it with itself."""

from __future__ import annotations

import re
import signal
import subprocess
import sys

import pytest
from polling import wait_until

from cwl_crunch.worker.processes import is_alive


@pytest.mark.timeout(60)
def test_sigterm_stops_the_server_and_its_dispatcher_cleanly(tmp_path):
    log = tmp_path / "server.log"
    with log.open("w") as sink:
        server = subprocess.Popen(
            [sys.executable, "-c", "from cwl_crunch.cli.main import main; main()",
             "server", "--listen", "127.0.0.1:0"], stderr=sink, stdin=subprocess.DEVNULL,
            env={"CWL_CRUNCH_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin"})
    try:
        banner = wait_until(lambda: re.search(r"at (http://\S+)", log.read_text()),
                            what="the server's banner")
        assert "dispatcher local" in log.read_text()
        # Started with the server, not at the first submission.
        children = wait_until(lambda: subprocess.run(
            ["pgrep", "-P", str(server.pid)], capture_output=True, text=True).stdout.split(),
            what="the dispatcher process")
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0, log.read_text()
        assert not any(is_alive(int(pid), None) for pid in children), banner[1]
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
