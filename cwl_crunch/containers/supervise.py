"""The process that stands for a job's container.

``python -m cwl_crunch.containers.supervise RUN.json``, RUN.json being a ContainerRun.

The worker starts this in place of the command, so everything it does with a command
(its own process group, redirected stdout/stderr, the time limit, SIGTERM on cancel)
works unchanged: this process creates the container, streams its output to its own
stdout/stderr and stdin from its own stdin, exits with the container's exit code, and
always removes the container, also when it is signalled. What it cannot survive
(SIGKILL) the worker cleans up after it by the container's label.

Exit codes: the container's; ``SETUP_FAILED`` when it could not run at all, with the
reason in ``ContainerRun.failure_file``; 128 + signal number when stopped.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any, BinaryIO

from cwl_crunch.containers.plan import ContainerRun, create_arguments, host_config_arguments

SETUP_FAILED = 125


class Stopped(BaseException):
    """A signal asked this process to stop; unwinds to the container's removal."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _raise_stopped(signum: int, frame: FrameType | None) -> None:
    raise Stopped(signum)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    run = ContainerRun.from_json(Path(args[0]).read_text())
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, _raise_stopped)
    try:
        return supervise(run, sys.stdin.buffer, sys.stdout.buffer, sys.stderr.buffer)
    except Stopped as stopped:
        return 128 + stopped.signum


def supervise(run: ContainerRun, stdin: BinaryIO, stdout: BinaryIO, stderr: BinaryIO) -> int:
    import docker

    container = None
    try:
        # No read timeout: the output stream is silent for as long as the command is.
        client = docker.DockerClient(base_url=run.engine_url,
                                     timeout=None)  # type: ignore[arg-type]
        _remove_quietly(client, run.name)  # a leftover of a worker that died
        host_config = client.api.create_host_config(**host_config_arguments(run))
        created = client.api.create_container(**create_arguments(run),
                                              host_config=host_config)
        container_id: str = created["Id"]
        container = client.containers.get(container_id)
        output = container.attach(stdout=True, stderr=True, stream=True, logs=True,
                                  demux=True)
        feeder = _feed_stdin(client, container_id, stdin) if run.attach_stdin else None
        container.start()
        for out, err in output:
            if out:
                stdout.write(out)
            if err:
                stderr.write(err)
        stdout.flush()
        stderr.flush()
        if feeder is not None:
            feeder.join(timeout=5)
        status: int = container.wait()["StatusCode"]
        return status
    except Exception as error:  # noqa: BLE001 - the engine's HTTP errors come in many kinds
        _explain(run, error)
        return SETUP_FAILED
    finally:
        # No signal may interrupt this: it is the one chance to remove the container.
        with _signals_ignored():
            if container is not None:
                _remove_quietly(container.client, container_id)


def _feed_stdin(client: Any, container_id: str, stdin: BinaryIO) -> threading.Thread:
    # Output explicitly off: Podman would send it here too, and unread it blocks the command.
    sock = client.api.attach_socket(
        container_id, params={"stdin": 1, "stream": 1, "stdout": 0, "stderr": 0})
    raw = getattr(sock, "_sock", sock)

    def feed() -> None:
        try:
            while chunk := stdin.read(1 << 16):
                raw.sendall(chunk)
        except OSError:
            pass  # the command closed its stdin early, as `head` does
        finally:
            with contextlib.suppress(OSError):
                raw.shutdown(1)  # SHUT_WR: the command sees end of file
            sock.close()

    thread = threading.Thread(target=feed, name="stdin", daemon=True)
    thread.start()
    return thread


def _explain(run: ContainerRun, error: BaseException) -> None:
    reason = _reason(error)
    message = f"container for image {run.image_name} ({run.image}) could not run: {reason}"
    with contextlib.suppress(OSError):
        Path(run.failure_file).write_text(message + "\n")
    print(f"cwl-crunch: {message}", file=sys.stderr, flush=True)


def _reason(error: BaseException) -> str:
    explanation = getattr(error, "explanation", None)
    text = str(explanation or error).strip()
    return text.splitlines()[-1] if text else type(error).__name__


def _remove_quietly(client: Any, name_or_id: str) -> None:
    import docker.errors

    with contextlib.suppress(docker.errors.NotFound):
        try:
            client.api.remove_container(name_or_id, force=True, v=True)
        except docker.errors.APIError as error:
            if error.status_code != 404:
                print(f"cwl-crunch: could not remove container {name_or_id}: {_reason(error)}",
                      file=sys.stderr, flush=True)


@contextlib.contextmanager
def _signals_ignored() -> Any:
    previous = {signum: signal.signal(signum, signal.SIG_IGN)
                for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


if __name__ == "__main__":
    sys.exit(main())
