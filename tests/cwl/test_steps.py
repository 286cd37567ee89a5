"""The runner's progress line: drawn on a terminal only."""

from __future__ import annotations

import io

from cwl_crunch.cwl.steps import Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_line_is_redrawn_on_a_terminal():
    terminal = Terminal()
    progress = Progress(terminal)
    progress.change(queued=2)
    progress.change(queued=-1, done=1)
    progress.change(reused=1)
    progress.close()
    lines = terminal.getvalue().split("\r")
    assert lines[-1].startswith("steps: 1 queued or running, 1 done, 1 reused, 0 failed")
    assert terminal.getvalue().endswith("\n")


def test_no_progress_line_when_not_a_terminal():
    pipe = io.StringIO()
    progress = Progress(pipe)
    progress.change(queued=1)
    progress.close()
    assert pipe.getvalue() == ""
