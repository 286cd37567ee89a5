"""Where things are inside a CWL step's job, as the command sees them.

Every step runs with ``JobSpec.root = JOB_ROOT`` (the worker bind-mounts the job dir
there), so the absolute paths cwltool bakes into command lines are the same on every run:
that is what lets identical steps be reused. One constant for every cluster, since it is
part of every reuse key. And ``keep:`` locations: which collections an object's Files
and Directories are in, and moving them to other collections of the same paths.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any

from cwltool.utils import visit_class

from cwl_crunch.model.runs import RUN_ROOT

JOB_ROOT = RUN_ROOT
OUTDIR = f"{JOB_ROOT}/out"
TMPDIR = f"{JOB_ROOT}/tmp"
STAGEDIR = f"{JOB_ROOT}/in"

KEEP_PREFIX = "keep:"


def split_keep(location: str) -> tuple[str, str]:
    """``keep:<pdh>/<quoted path>`` -> (pdh, unquoted path; "" for the root)."""
    pdh, _, path = location[len(KEEP_PREFIX):].partition("/")
    return pdh, urllib.parse.unquote(path).strip("/")


def keep_paths(value: Any, chosen: Callable[[str], bool]) -> dict[str, set[str]]:
    """The collections that the ``keep:`` Files and Directories of ``value`` are in (of
    those ``chosen`` says), each with the paths named in it."""
    wanted: dict[str, set[str]] = {}

    def note(obj: dict[str, Any]) -> None:
        location = str(obj.get("location", ""))
        if location.startswith(KEEP_PREFIX):
            pdh, path = split_keep(location)
            if chosen(pdh):
                wanted.setdefault(pdh, set()).add(path)

    visit_class(value, ("File", "Directory"), note)
    return wanted


def move_to_collections(value: Any, replaced: Mapping[str, str]) -> None:
    """In place: each ``keep:`` location in a collection of ``replaced`` names the same
    path in that collection's replacement."""
    def rewrite(obj: dict[str, Any]) -> None:
        location = str(obj.get("location", ""))
        if location.startswith(KEEP_PREFIX):
            pdh, _ = split_keep(location)
            if pdh in replaced:
                obj["location"] = KEEP_PREFIX + replaced[pdh] + \
                    location[len(KEEP_PREFIX) + len(pdh):]

    visit_class(value, ("File", "Directory"), rewrite)


def referenced_pdhs(inputs: Any) -> set[str]:
    """The collections that an input object's Files and Directories are in."""
    pdhs: set[str] = set()

    def note(obj: dict[str, Any]) -> None:
        location = str(obj.get("location", ""))
        if location.startswith(KEEP_PREFIX):
            pdhs.add(location[len(KEEP_PREFIX):].split("/", 1)[0])

    visit_class(inputs, ("File", "Directory"), note)
    return pdhs
