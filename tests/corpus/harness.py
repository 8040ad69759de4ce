"""The invalid-input corpus: reading a case, running ``netmanager validate`` on it, its goldens.

A case is a directory ``cases/NNN-short-name/`` holding ``case.toml`` and the broken file(s)::

    description = "what is broken, in one line"
    real = "../../base/real.xml"       # paths as passed on the command line, from the case dir
    virtual = "virtual.xml"
    expect = "E403 virtual.xml:12:5"   # CODE FILE:LINE[:COL], or a list of them; written by hand
    [generate]                         # optional: files made at test time, never committed
    "virtual.xml" = "oversize"         # a generator of GENERATORS

``expected.txt`` is what ``netmanager validate REAL VIRTUAL`` prints on stderr and
``expected.json`` what ``--json`` prints on stdout, both run from inside the case directory
so that the paths in them do not depend on where the repository is.  A case with generated
files runs in a copy of the corpus under a temporary directory, at the same relative place.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from netmanager.cli.main import main
from netmanager.inputs.xmlsource import MAX_BYTES

CORPUS = Path(__file__).resolve().parent
CASES = CORPUS / "cases"
BASE = CORPUS / "base"

_EXPECT = re.compile(r"(?P<code>[EW]\d{3}) (?P<file>[^\s:]+)(?::(?P<line>\d+)(?::(?P<col>\d+))?)?")


@dataclass(frozen=True)
class Expectation:
    """One diagnostic a case must produce: its code, file and line (and column if given)."""

    code: str
    file: str
    line: int
    col: int | None = None

    @classmethod
    def parse(cls, text: str) -> Expectation:
        m = _EXPECT.fullmatch(text.strip())
        if not m:
            raise ValueError(f"expectation {text!r} is not 'CODE FILE:LINE[:COL]'")
        col = m["col"]
        return cls(m["code"], m["file"], int(m["line"] or 0), int(col) if col else None)

    def matches(self, diagnostic: dict[str, object]) -> bool:
        return (
            diagnostic["code"] == self.code
            and diagnostic["file"] == self.file
            and diagnostic["line"] == self.line
            and (self.col is None or diagnostic["column"] == self.col)
        )

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{self.code} {where}" + (f":{self.col}" if self.col is not None else "")


@dataclass(frozen=True)
class Case:
    name: str
    path: Path
    description: str
    real: str
    virtual: str
    expect: tuple[Expectation, ...]
    generate: dict[str, str] = field(default_factory=dict)

    @property
    def expected_text(self) -> Path:
        return self.path / "expected.txt"

    @property
    def expected_json(self) -> Path:
        return self.path / "expected.json"

    def argv(self, json_output: bool) -> list[str]:
        return ["validate", *(["--json"] if json_output else []), self.real, self.virtual]


def load_case(path: Path) -> Case:
    with (path / "case.toml").open("rb") as f:
        manifest = tomllib.load(f)
    unknown = set(manifest) - {"description", "real", "virtual", "expect", "generate"}
    if unknown:
        raise ValueError(f"{path / 'case.toml'}: unknown keys {sorted(unknown)}")
    expect = manifest["expect"]
    expect_list = [expect] if isinstance(expect, str) else list(expect)
    generate = dict(manifest.get("generate", {}))
    for name, generator in generate.items():
        if generator not in GENERATORS:
            raise ValueError(f"{path / 'case.toml'}: unknown generator {generator!r} for {name}")
    return Case(
        name=path.name,
        path=path,
        description=manifest["description"],
        real=manifest["real"],
        virtual=manifest["virtual"],
        expect=tuple(Expectation.parse(e) for e in expect_list),
        generate=generate,
    )


def all_cases() -> list[Case]:
    return [load_case(p) for p in sorted(CASES.iterdir()) if (p / "case.toml").is_file()]


# ---------------------------------------------------------------- generated files


def _oversize(path: Path) -> None:
    """A well-formed-looking virtual.xml one byte above the size limit (a long comment)."""
    head = (
        b'<?xml version="1.0" encoding="UTF-8"?>\n'
        b'<virtual xmlns="urn:netmanager:virtual:1" version="1.0" topology="big">\n<!-- '
    )
    tail = b" -->\n</virtual>\n"
    padding = MAX_BYTES + 1 - len(head) - len(tail)
    path.write_bytes(head + b"x" * padding + tail)


def _directory(path: Path) -> None:
    path.mkdir()


GENERATORS: dict[str, Callable[[Path], None]] = {
    "oversize": _oversize,
    "directory": _directory,
}


@contextlib.contextmanager
def working_directory(case: Case, scratch: Path | None = None) -> Iterator[Path]:
    """Change into the directory the case runs from (a copy when it has generated files)."""
    if case.generate:
        if scratch is None:
            raise ValueError(f"case {case.name} generates files: give a scratch directory")
        shutil.copytree(BASE, scratch / "base")
        where = scratch / "cases" / case.name
        shutil.copytree(case.path, where)
        for name, generator in case.generate.items():
            GENERATORS[generator](where / name)
    else:
        where = case.path
    previous = Path.cwd()
    os.chdir(where)
    try:
        yield where
    finally:
        os.chdir(previous)


@dataclass(frozen=True)
class Result:
    exit_code: int
    stdout: str
    stderr: str


def run(case: Case, json_output: bool, scratch: Path | None = None) -> Result:
    """``netmanager validate`` on a case, in this process."""
    out, err = io.StringIO(), io.StringIO()
    with (
        working_directory(case, scratch),
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
    ):
        code = main(case.argv(json_output))
    return Result(code, out.getvalue(), err.getvalue())
