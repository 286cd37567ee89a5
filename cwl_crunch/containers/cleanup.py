"""Removing what is left of a job's container after its supervisor was killed."""

from __future__ import annotations

from cwl_crunch.containers.engine import Engine
from cwl_crunch.containers.plan import LABEL
from cwl_crunch.errors import ContainerError


def remove_job_containers(engine: Engine, job_uuid: str) -> list[str]:
    """Force-remove every container labelled with the job; returns their ids."""
    import docker.errors

    client = engine.client()
    try:
        found = client.api.containers(all=True, filters={"label": f"{LABEL}={job_uuid}"})
    except docker.errors.APIError as error:
        raise ContainerError(f"cannot list the containers of job {job_uuid} on "
                             f"{engine.url}: {error.explanation or error}") from None
    removed = []
    for container in found:
        try:
            client.api.remove_container(container["Id"], force=True, v=True)
        except docker.errors.NotFound:
            continue
        except docker.errors.APIError as error:
            if error.status_code != 404:
                raise ContainerError(f"cannot remove container {container['Id'][:12]} of "
                                     f"job {job_uuid}: {error.explanation or error}") from None
        removed.append(container["Id"])
    return removed
