"""Pre-compile the shipped MIB modules for pysnmp (a build step; needs pysmi).

``python -m netmanager.snmp.mibcompile`` turns ``netmanager/snmp/mibs/NETMANAGER-MIB`` and the
IETF modules it imports that pysnmp lacks (IF-MIB, IANAifType-MIB) into
``netmanager/snmp/mibs/<MODULE>.py``.  The generated files are committed: the agent then
needs neither pysmi nor a compile at start-up (which would block, write under
``~/.pysnmp`` and, with pysmi's defaults, reach for the network to borrow modules).
Nothing here touches the network: sources are the shipped files only.

Output is deterministic (pysmi's time stamp and host lines are dropped), so a test can
re-run the compiler and compare with the committed files.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

MIBS_DIR = Path(__file__).resolve().parent / "mibs"

#: modules compiled for pysnmp (the others it imports are built into pysnmp)
COMPILED = ("NETMANAGER-MIB", "IF-MIB", "IANAifType-MIB")

_HEADER = "# mypy: ignore-errors\n# ruff: noqa\n# fmt: off\n"
_DROP = ("# Produced by ", "# On host ", "# Using Python ")


def _normalise(name: str, text: str) -> str:
    # pysmi 2.0 still writes pysnmp's deprecated camelCase builder calls
    text = text.replace("mibBuilder.importSymbols(", "mibBuilder.import_symbols(")
    text = text.replace("mibBuilder.exportSymbols(", "mibBuilder.export_symbols(")
    lines = []
    for line in text.splitlines():
        if line.startswith(_DROP):
            continue
        if line.startswith("# ASN.1 source "):
            line = f"# ASN.1 source: netmanager/snmp/mibs/{name}"
        lines.append(line.rstrip())
    return _HEADER + "\n".join(lines).rstrip() + "\n"


def compile_mibs(src_dir: Path = MIBS_DIR) -> dict[str, str]:
    """Module name -> generated Python text, for :data:`COMPILED`."""
    from pysmi.codegen import PySnmpCodeGen
    from pysmi.compiler import MibCompiler
    from pysmi.parser import SmiStarParser
    from pysmi.reader import FileReader
    from pysmi.searcher import StubSearcher
    from pysmi.writer import CallbackWriter

    out: dict[str, str] = {}

    def keep(name: str, data: str, _ctx: object) -> None:
        out[name] = data

    compiler = MibCompiler(SmiStarParser(), PySnmpCodeGen(), CallbackWriter(keep))
    compiler.add_sources(FileReader(str(src_dir)))
    stubs = [m for m in PySnmpCodeGen.baseMibs if m not in PySnmpCodeGen.fakeMibs]
    compiler.add_searchers(StubSearcher(*stubs))
    status = compiler.compile("NETMANAGER-MIB", rebuild=True, genTexts=False)
    failed = {k: v for k, v in status.items() if v in ("failed", "missing")}
    if failed:
        raise RuntimeError(f"MIB compilation failed: {failed}")
    missing = [m for m in COMPILED if m not in out]
    if missing:
        raise RuntimeError(f"pysmi produced no code for {', '.join(missing)}")
    return {name: _normalise(name, out[name]) for name in COMPILED}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if a shipped file is stale")
    args = parser.parse_args(argv)
    stale = []
    for name, text in compile_mibs().items():
        target = MIBS_DIR / f"{name}.py"
        current = target.read_text() if target.exists() else None
        if current == text:
            continue
        stale.append(name)
        if not args.check:
            target.write_text(text)
            print(f"wrote {target}")
    if args.check and stale:
        print(
            f"stale compiled MIB(s): {', '.join(stale)}; run python -m netmanager.snmp.mibcompile"
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
