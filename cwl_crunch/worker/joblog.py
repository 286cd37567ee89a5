"""The worker's own log, kept in the job's log collection beside stdout and stderr."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TextIO


class JobLog:
    def __init__(self, path: Path) -> None:
        self.path = path
        # Line buffered: if the worker is killed, what it wrote so far is still there for
        # the dispatcher that salvages its logs.
        self._file: TextIO = path.open("w", encoding="utf-8", buffering=1)

    def write(self, message: str) -> None:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
        self._file.write(f"{stamp}Z {message}\n")

    def close(self) -> None:
        self._file.close()
