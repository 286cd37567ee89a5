"""The HTTP API of an embedded cluster, served to the jobs of the process running them.

A job's environment names no home, records database or store (worker.job_environment),
so ``cwl_crunch.connect()`` inside a job of an embedded cluster (a driver submitting its
children, a CWL runner started as a job) reaches the cluster as a server's job does:
through the API at CWL_CRUNCH_API_URL with the job's own token, which server.access
limits to the job's subtree and the collections it was given or made. The process that
runs the jobs serves that API (the same app as ``cwl-crunch server``) on a free port of
127.0.0.1; ``_sdk.connect``, the runner and ``cwl-crunch dispatch``/``worker`` hand this
class to their ClusterCore as its ``job_api`` factory (the client layer cannot import
the server's).

Cheap until a job uses it: the ClusterCore makes one when its first job starts, which
only binds the socket (well under a millisecond), so a job may connect at once (the
kernel queues the connection in the listen backlog). Importing FastAPI and uvicorn takes
about 1 s of CPU on the 2-core test machine, in a process that is busy running jobs: that
is paid only when a first connection arrives, in a thread of its own. Most jobs (the
tool steps of a CWL run) never connect.

Jobs in containers with no network (``--network none``) have a loopback of their own and
cannot reach this API.
"""

from __future__ import annotations

import logging
import select
import socket
import threading
from typing import TYPE_CHECKING

from cwl_crunch.server.sockets import bound_socket

if TYPE_CHECKING:
    import uvicorn

    from cwl_crunch.core import ClusterCore

logger = logging.getLogger(__name__)

SHUTDOWN_GRACE = 2
"""Seconds uvicorn waits for open connections at close (the jobs have ended by then)."""
CLOSE_TIMEOUT = 15.0
"""Seconds to wait for the serving thread at close (it may be importing FastAPI)."""


class JobApi:
    """The API over ``core`` on 127.0.0.1, served from a thread from the first
    connection on. ``url``: where the jobs reach it."""

    def __init__(self, core: ClusterCore) -> None:
        self._core = core
        self._sock = bound_socket("127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self._wake_read, self._wake_write = socket.socketpair()
        self._lock = threading.Lock()
        self._closing = False
        self._server: uvicorn.Server | None = None
        self._thread = threading.Thread(target=self._serve, name="job-api", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        readable, _, _ = select.select([self._sock, self._wake_read], [], [])
        if self._wake_read in readable:
            return  # closed before any job connected
        try:
            from cwl_crunch.server.serve import make_server

            server = make_server(self._core, grace=SHUTDOWN_GRACE)
            with self._lock:
                if self._closing:
                    return
                self._server = server
            server.run(sockets=[self._sock])
        except Exception:
            # Refuse what waits in the backlog rather than leave the job hanging.
            logger.exception("the job API at %s failed", self.url)
            self._sock.close()

    def close(self) -> None:
        with self._lock:
            self._closing = True
            server = self._server
        if server is not None:
            server.should_exit = True
        self._wake_write.send(b"!")
        self._thread.join(CLOSE_TIMEOUT)
        self._sock.close()
        self._wake_read.close()
        self._wake_write.close()
