"""The one text output module: tables and progress (pure, no terminal needed)."""

from __future__ import annotations

import io

from netmanager.output import Progress, progress_wanted, table


def test_tables_align_left_numbers_right_clip_and_drop_trailing_blanks() -> None:
    rows = [["host", "pid", "health"], ["host1", "7", "ok"], ["h2", "12345", ""]]
    assert table(rows, right={1}) == [
        "host     pid  health",
        "host1      7  ok",
        "h2     12345",
    ]
    assert table([["abcdef", "x"]], clip=3, indent="  ") == ["  abc  x"]
    assert table([]) == []


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_one_line_per_stage_with_counts_and_time() -> None:
    out = io.StringIO()
    bar = Progress(True, stream=out)
    bar.stage("infrastructure")
    bar.stage("committing on 2 host(s)", "steps")
    bar.count(3, 10)
    bar.count(10, 10)
    bar.finish()
    bar.finish()  # nothing open: nothing more
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("  infrastructure ... ") and lines[0].endswith("s")
    assert lines[1].startswith("  committing on 2 host(s) ... 10/10 steps ")


def test_progress_on_a_terminal_redraws_one_bar_and_nothing_when_off() -> None:
    out = _Tty()
    bar = Progress(True, stream=out)
    bar.stage("scan")
    bar.count(0, 4)
    bar.count(4, 4)
    bar.finish()
    text = out.getvalue()
    assert "\r  scan [" + "#" * Progress.WIDTH + "] 4/4" in text
    assert text.rstrip().split("\r")[-1].startswith("  scan: 4/4 ")
    quiet = io.StringIO()
    off = Progress(False, stream=quiet)
    off.stage("x")
    off.count(1, 2)
    off.finish()
    assert quiet.getvalue() == ""
    assert not progress_wanted(True, _Tty()) and progress_wanted(False, _Tty())
