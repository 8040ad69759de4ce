"""The corpus of invalid inputs (tests/corpus/): every case fails with its declared error.

For each case the primary assertion is the hand-written ``expect`` of its case.toml: the
exact code, file and line (and column where given) of the error it is about.  Then the
whole output must equal the goldens, which tests/corpus/regen.py rewrites.  The goldens
catch changes of wording; the declared expectations catch a golden regenerated blindly.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from netmanager.cli.main import main
from tests.corpus.harness import BASE, CASES, Case, all_cases, load_case, run

ROOT = Path(__file__).resolve().parent.parent
CODE_SOURCES = [
    ROOT / "netmanager" / "inputs" / f for f in ("xmlsource.py", "loader.py", "validate.py")
]
ERRORS_DOC = ROOT / "docs" / "errors.md"
CASE_LIST = all_cases()
IDS = [c.name for c in CASE_LIST]


def _diagnostics(case: Case, scratch: Path) -> list[dict[str, Any]]:
    result = run(case, True, scratch)
    document = json.loads(result.stdout)
    assert document["valid"] is False
    diagnostics: list[dict[str, Any]] = document["diagnostics"]
    return diagnostics


def test_the_corpus_is_large_enough() -> None:
    assert len(CASE_LIST) >= 45


def test_the_shared_base_is_valid(capsys: pytest.CaptureFixture[str]) -> None:
    """Cases that break one file reuse the other from base/: it must be valid."""
    assert main(["validate", str(BASE / "real.xml"), str(BASE / "virtual.xml")]) == 0
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("case", CASE_LIST, ids=IDS)
def test_declared_errors(case: Case, tmp_path: Path) -> None:
    """The primary assertion: the hand-written code, file and line of the case's error."""
    diagnostics = _diagnostics(case, tmp_path)
    found = [f"{d['code']} {d['file']}:{d['line']}:{d['column']}" for d in diagnostics]
    for expectation in case.expect:
        assert any(expectation.matches(d) for d in diagnostics), (
            f"{case.name}: expected {expectation}, got {found}"
        )
    assert any(d["severity"] == "error" for d in diagnostics)


@pytest.mark.parametrize("case", CASE_LIST, ids=IDS)
def test_text_output_matches_golden(case: Case, tmp_path: Path) -> None:
    result = run(case, False, tmp_path)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.endswith("; nothing was changed\n")
    assert result.stderr == case.expected_text.read_text(encoding="utf-8"), (
        f"stale golden? run: .venv/bin/python tests/corpus/regen.py {case.name}"
    )


@pytest.mark.parametrize("case", CASE_LIST, ids=IDS)
def test_json_output_matches_golden(case: Case, tmp_path: Path) -> None:
    result = run(case, True, tmp_path)
    assert result.exit_code == 1
    assert result.stderr == ""
    assert result.stdout == case.expected_json.read_text(encoding="utf-8"), (
        f"stale golden? run: .venv/bin/python tests/corpus/regen.py {case.name}"
    )


def test_diagnostics_are_sorted_by_file_and_line(tmp_path: Path) -> None:
    """All errors of both files at once, in file and line order."""
    case = load_case(CASES / "160-many-errors-both-files")
    diagnostics = _diagnostics(case, tmp_path)
    places = [(d["file"], d["line"], d["column"]) for d in diagnostics]
    assert places == sorted(places)
    assert {d["file"] for d in diagnostics} == {"real.xml", "virtual.xml"}
    assert len(diagnostics) == len(case.expect)


@pytest.mark.parametrize(
    "name", ["004-binary-file", "010-billion-laughs", "160-many-errors-both-files"]
)
def test_the_command_prints_the_golden(name: str) -> None:
    """A few cases through a real process, to prove in-process runs say the same."""
    case = load_case(CASES / name)
    for json_output, golden, stream in (
        (False, case.expected_text, "stderr"),
        (True, case.expected_json, "stdout"),
    ):
        done = subprocess.run(
            [sys.executable, "-m", "netmanager", *case.argv(json_output)],
            cwd=case.path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 1
        assert getattr(done, stream) == golden.read_text(encoding="utf-8")
        assert "Traceback" not in done.stderr


def _codes_in_source() -> set[str]:
    codes: set[str] = set()
    for path in CODE_SOURCES:
        codes |= set(re.findall(r"""["']([EW]\d{3})["']""", path.read_text(encoding="utf-8")))
    return codes


def test_every_code_has_a_case() -> None:
    covered = {e.code for case in CASE_LIST for e in case.expect}
    missing = sorted(_codes_in_source() - covered)
    assert not missing, f"codes without a corpus case: {missing}"


def test_every_code_is_documented() -> None:
    documented = set(re.findall(r"^\| ([EW]\d{3}) \|", ERRORS_DOC.read_text(), re.MULTILINE))
    undocumented = sorted(_codes_in_source() - documented)
    assert not undocumented, f"codes missing from docs/errors.md: {undocumented}"


@pytest.mark.parametrize("case", CASE_LIST, ids=IDS)
def test_case_directory_is_tidy(case: Case) -> None:
    """Only the manifest, the goldens and the files under test; nothing big, nothing made."""
    allowed = {"case.toml", "expected.txt", "expected.json"}
    allowed |= {p for p in (case.real, case.virtual) if "/" not in p}
    allowed |= {p.name for p in case.path.glob("*.csv")}  # traces a schedule names
    present = {p.name for p in case.path.iterdir()}
    assert present <= allowed, f"unexpected files: {sorted(present - allowed)}"
    assert not present & set(case.generate), "generated files must not be committed"
    for path in case.path.iterdir():
        assert path.stat().st_size < 64 * 1024, path
    assert case.description
