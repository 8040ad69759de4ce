"""Rewrite the golden files of the mapping tests (tests/mapping/golden/) from the current code.

    .venv/bin/python tests/mapping/regen_golden.py

Review the diff (git diff tests/mapping/golden) before committing: a golden file is the
exact text users see.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    env = dict(os.environ, NETMANAGER_REGEN="1")
    command = [sys.executable, "-m", "pytest", "-q", str(HERE), "-k", "golden or infeasible"]
    return subprocess.call(command, env=env, cwd=HERE.parents[1])


if __name__ == "__main__":
    sys.exit(main())
