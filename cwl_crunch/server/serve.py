"""Running the app with uvicorn: in the foreground (``cwl-crunch server``) or in a
background thread (tests, benchmarks)."""

from __future__ import annotations

import threading
import time
from types import TracebackType

import uvicorn

from cwl_crunch.config import Config
from cwl_crunch.core import ClusterCore
from cwl_crunch.errors import ConfigError
from cwl_crunch.server.app import create_app
from cwl_crunch.server.http_limits import MAX_HEAD, LimitedH11Protocol
from cwl_crunch.server.sockets import bound_socket


def parse_listen(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ConfigError(f"--listen {listen!r}: expected HOST:PORT, e.g. 127.0.0.1:8642")
    return host, int(port)


def open_core(config: Config, url: str, *, dispatch_in_child: bool = True) -> ClusterCore:
    """The cluster behind the API, its jobs run by a child process (see dispatch.child)
    and, with a dispatcher other than local, by that one; their programs reach it
    through the API too."""
    core = ClusterCore(config, job_api=url, dispatch_in_child=dispatch_in_child,
                       serve_url=url)
    # At once, not at the first submission: jobs queued (or handed to SLURM) before a
    # restart must go on.
    core.start_dispatching()
    return core


def make_server(core: ClusterCore, *, grace: int) -> uvicorn.Server:
    """The app over ``core``, ready to run on sockets bound by ``bound_socket``; requests
    over the limits of ``server.http_limits`` are answered there."""
    return uvicorn.Server(uvicorn.Config(create_app(core), log_level="warning",
                                         lifespan="off", timeout_graceful_shutdown=grace,
                                         http=LimitedH11Protocol,
                                         h11_max_incomplete_event_size=MAX_HEAD))


class ServerThread:
    """The API on a port of 127.0.0.1, served from a background thread. Its jobs
    run in this process unless ``dispatch_in_child`` (as ``cwl-crunch server`` runs
    them), so that tests can change how this process runs them."""

    def __init__(self, config: Config, *, dispatch_in_child: bool = False,
                 port: int = 0) -> None:
        """``port``: 0 for a free one; a server restarted on the port of the one it
        replaces keeps the URL its jobs' workers report to."""
        self._sock = bound_socket("127.0.0.1", port)
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self.core = open_core(config, self.url, dispatch_in_child=dispatch_in_child)
        self._server = make_server(self.core, grace=2)
        self._thread = threading.Thread(target=self._server.run,
                                        kwargs={"sockets": [self._sock]},
                                        name="api-server", daemon=True)

    def __enter__(self) -> ServerThread:
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the API server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()
        self.core.close()

    def create_token(self) -> str:
        return self.core.create_token()
