"""The CWL_CRUNCH_* variables of a job's command: the one place they are chosen.

A job's programs reach their cluster only as the job, through the HTTP API: its URL and
the job's own token, whose reach the server limits to the job's own subtree and
collections (server/access.py). Nothing that would open the cluster embedded is passed
(home, records database, store, work directory): with those, a program inside a job
could read the token table, mint a person's token and write into the store (issue 12,
finding 3). An embedded cluster serves the API to its own jobs for this
(server/job_api.py); a server's jobs get the server's URL.

The workers and dispatchers themselves get more (the SLURM worker needs the shared store
directory, a server's dispatcher child the records): that is their environment, never
their jobs' (worker.process starts the command with this one, not its own).
"""

from __future__ import annotations

from cwl_crunch.config import env_name

API_URL = env_name("api_url")
API_TOKEN = env_name("api_token")


def job_environment(api_url: str | None, token: str) -> dict[str, str]:
    """What a job's command gets of the CWL_CRUNCH_* variables. ``api_url`` None: the
    cluster serves no API to this job (its programs cannot reach it); the token stays,
    as it is also how a dispatcher finds the processes of a job whose worker died."""
    environment = {API_TOKEN: token}
    if api_url:
        environment[API_URL] = api_url
    return environment
