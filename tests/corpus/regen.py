#!/usr/bin/env python3
"""Regenerate the goldens (expected.txt, expected.json) of the corpus cases.

Usage, from the repository root::

    .venv/bin/python tests/corpus/regen.py            # every case
    .venv/bin/python tests/corpus/regen.py 012 bad-mac  # cases whose name contains a word
    .venv/bin/python tests/corpus/regen.py --check    # only say which goldens are stale

The goldens are what netmanager prints; the ``expect`` line of each case.toml is written by
hand and never regenerated.  This script says (and exits 1) when a case does not exit 1 or
misses one of its declared expectations, so a regenerated golden cannot hide a regression.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.corpus.harness import Case, Result, all_cases, run


def _run(case: Case, json_output: bool) -> Result:
    if not case.generate:
        return run(case, json_output)
    with tempfile.TemporaryDirectory(prefix="netmanager-corpus-") as scratch:
        return run(case, json_output, Path(scratch))


def problems(case: Case, text: Result, js: Result) -> list[str]:
    """What is wrong with a case's output, apart from its goldens."""
    found = []
    for result, mode in ((text, "text"), (js, "json")):
        if result.exit_code != 1:
            found.append(f"{mode}: exit code {result.exit_code}, expected 1")
    try:
        diagnostics = json.loads(js.stdout)["diagnostics"]
    except (ValueError, KeyError):
        return [*found, "--json did not print a JSON document with diagnostics"]
    for expectation in case.expect:
        if not any(expectation.matches(d) for d in diagnostics):
            found.append(f"declared expectation not met: {expectation}")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="parts of case names (default: every case)")
    parser.add_argument("--check", action="store_true", help="write nothing; list stale goldens")
    args = parser.parse_args(argv)
    cases = [c for c in all_cases() if not args.names or any(n in c.name for n in args.names)]
    if not cases:
        print("no case matches", file=sys.stderr)
        return 2
    failed = stale = 0
    for case in cases:
        text, js = _run(case, False), _run(case, True)
        for problem in problems(case, text, js):
            print(f"{case.name}: {problem}", file=sys.stderr)
            failed += 1
        for path, content in ((case.expected_text, text.stderr), (case.expected_json, js.stdout)):
            if path.is_file() and path.read_text(encoding="utf-8") == content:
                continue
            stale += 1
            if args.check:
                print(f"{case.name}: {path.name} is stale")
            else:
                path.write_text(content, encoding="utf-8")
                print(f"{case.name}: wrote {path.name}")
    print(
        f"{len(cases)} cases, {stale} goldens {'stale' if args.check else 'written'}, "
        f"{failed} problems"
    )
    return 1 if failed or (args.check and stale) else 0


if __name__ == "__main__":
    sys.exit(main())
