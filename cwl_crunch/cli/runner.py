"""``cwl-crunch-runner``: the CWL runner's command (its executor lands with the CWL issue)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

# cwltool's exit code for "this runner does not support that".
UNSUPPORTED = 33


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cwl-crunch-runner",
                                     description="Run a CWL workflow on a cwl-crunch cluster.")
    parser.add_argument("workflow")
    parser.add_argument("inputs", nargs="?")
    parser.parse_args(argv)
    print("cwl-crunch-runner: running CWL documents is not available in this version yet; "
          "use the Python SDK (cwl_crunch.connect) to run jobs", file=sys.stderr)
    return UNSUPPORTED


if __name__ == "__main__":
    sys.exit(main())
