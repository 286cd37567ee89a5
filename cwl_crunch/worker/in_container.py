"""The worker's side of containers: what to start instead of the command, and cleanup."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from cwl_crunch.containers import Engine, plan_container, remove_job_containers
from cwl_crunch.containers.engine import HOW_TO_GET_ONE
from cwl_crunch.errors import ContainerError, EngineUnavailable
from cwl_crunch.model import JobRecord
from cwl_crunch.worker.joblog import JobLog

SUPERVISOR_MODULE = "cwl_crunch.containers.supervise"


def supervisor_command(job: JobRecord, engine: Engine | None, host_dir: Path,
                       environment: dict[str, str]) -> list[str]:
    """Write the job's container plan next to its job dir; the command that runs it."""
    if engine is None:
        raise EngineUnavailable(f"the job runs in image {job.spec.image} but this worker has no "
                       f"container engine: {HOW_TO_GET_ONE}")
    assert job.image_digest is not None
    run = plan_container(
        job.spec, job_uuid=job.uuid, image_digest=job.image_digest,
        job_dir=host_dir / "job", log_dir=host_dir / "logs", environment=environment,
        engine_url=engine.url, user=f"{os.getuid()}:{os.getgid()}",
        keep_id=os.getuid() != 0 and engine.rootless(),
    )
    plan_file = host_dir / "container.json"
    plan_file.write_text(run.to_json())
    return [sys.executable, "-m", SUPERVISOR_MODULE, str(plan_file)]


def container_failure(log_dir: Path) -> str | None:
    """Why the container could not run, as its supervisor wrote it down."""
    try:
        return (log_dir / "container-failure.txt").read_text().strip() or None
    except FileNotFoundError:
        return None


def remove_leftovers(engine: Engine | None, job_uuid: str, log: JobLog | None) -> None:
    """Remove the job's containers its supervisor did not (it was killed)."""
    if engine is None:
        return
    try:
        removed = remove_job_containers(engine, job_uuid)
    except ContainerError as error:
        if log is not None:
            log.write(f"cleanup: {error}")
        return
    if removed and log is not None:
        log.write(f"removed leftover container(s) {', '.join(c[:12] for c in removed)}")
