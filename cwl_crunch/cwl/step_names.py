"""Step jobs are named by their path in the workflow: ``main/align``, ``main/align/3``.

cwltool asks ``RuntimeContext.workflow_job_step_name_callback`` for a step job's name each
time it starts one; a scattered step is started once per item, in item order, so a count
per step gives the item's index (from 0).
"""

from __future__ import annotations

import threading
from collections import defaultdict
from typing import Any


class StepNames:
    def __init__(self, workflow_name: str) -> None:
        self._workflow_name = workflow_name
        self._items: defaultdict[str, int] = defaultdict(int)
        self._lock = threading.Lock()

    def __call__(self, step: Any, inputs: Any) -> str:
        fragment = str(step.id).rsplit("#", 1)[-1]
        if fragment.startswith("main/"):  # a packed workflow (a submitted run) is "main"
            fragment = self._workflow_name + fragment[len("main"):]
        path = fragment if "/" in fragment else f"{self._workflow_name}/{fragment}"
        if not step.tool.get("scatter"):
            return path
        with self._lock:
            index = self._items[path]
            self._items[path] += 1
        return f"{path}/{index}"
