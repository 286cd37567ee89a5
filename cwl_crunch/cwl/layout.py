"""Where things are inside a CWL step's job, as the command sees them.

Every step runs with ``JobSpec.root = JOB_ROOT`` (the worker bind-mounts the job dir
there), so the absolute paths cwltool bakes into command lines are the same on every run:
that is what lets identical steps be reused. One constant for every cluster, since it is
part of every reuse key.
"""

from __future__ import annotations

from cwl_crunch.model.runs import RUN_ROOT

JOB_ROOT = RUN_ROOT
OUTDIR = f"{JOB_ROOT}/out"
TMPDIR = f"{JOB_ROOT}/tmp"
STAGEDIR = f"{JOB_ROOT}/in"

KEEP_PREFIX = "keep:"
