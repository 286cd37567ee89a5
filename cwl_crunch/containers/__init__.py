"""Running jobs in containers through the Docker Engine API (Docker or Podman)."""

from cwl_crunch.containers.cleanup import remove_job_containers
from cwl_crunch.containers.engine import Engine, find_engine
from cwl_crunch.containers.images import Images, is_digest
from cwl_crunch.containers.plan import CONTAINER_ROOT, ContainerRun, plan_container

__all__ = [
    "CONTAINER_ROOT",
    "ContainerRun",
    "Engine",
    "Images",
    "find_engine",
    "is_digest",
    "plan_container",
    "remove_job_containers",
]
