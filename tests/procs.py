"""Finding the processes a test started, by what is on their command line."""

from __future__ import annotations

from pathlib import Path


def live_processes() -> list[tuple[int, list[str]]]:
    """(pid, argv) of every live (not zombie) process."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")[:-1]
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if argv and stat[stat.rindex(")") + 2] != "Z":
            found.append((int(entry.name), argv))
    return found


def processes_with(marker: str) -> list[int]:
    """Pids of live processes with ``marker`` in one of their arguments."""
    return [pid for pid, argv in live_processes() if any(marker in arg for arg in argv)]


def sleeping(seconds: str) -> list[int]:
    """Pids of live ``sleep <seconds>`` processes (not the shells that started them)."""
    return [pid for pid, argv in live_processes()
            if Path(argv[0]).name == "sleep" and argv[1:] == [seconds]]
