"""The generated parts of ``docs/ODD.md``: the parameter table, rendered from the schema.

The schema in ``sim.params`` is the one source of every parameter's unit, default, range and
source (PyPSA's component attribute tables work the same way). ``python -m sim.docs docs/ODD.md``
rewrites the table between the marker lines; ``--check`` exits 1 when the file is out of date.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from sim.params import Manufacturers, Sector, field_rows

START_MARKER = "<!-- parameter-table:start -->"
END_MARKER = "<!-- parameter-table:end -->"
DEFAULT_ODD = Path(__file__).resolve().parent.parent / "docs" / "ODD.md"
COLUMNS = ("key", "unit", "default", "allowed range", "EST range", "source", "description")
SECTOR_COLUMNS = (
    "count_share",
    "demand_t_per_year",
    "wtp_multiple",
    "substitution_max",
    "output_value_weight",
)


class DocsError(ValueError):
    """The ODD file cannot be rendered: a marker line is missing, repeated or out of order."""


def _number(value: float | int) -> str:
    """A number as a reader writes it: 270000, 0.055, 1e-06."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:g}"


def _value(value: Any) -> str:
    """A default value in TOML-like words (``true``, ``ndpr 0.25, dytb 0.012``, ``(none)``)."""
    if value is None:
        return "(none)"
    if isinstance(value, bool | int | float):
        return _number(value)
    if isinstance(value, BaseModel):
        value = value.model_dump()
    if isinstance(value, dict):
        if not value:
            return "(empty)"
        return ", ".join(f"{k} {_value(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(_value(v) for v in value) if value else "(empty)"
    if value == "see table":
        return "see the sector table below"
    return str(value) if value != "" else "(empty)"


def _range(text: str) -> str:
    """Reformat the numbers in a bounds string such as ``>= 0, <= 10000000.0``."""
    parts = []
    for bound in text.split(", ") if text else []:
        symbol, _, number = bound.partition(" ")
        parts.append(f"{symbol} {_number(float(number))}")
    return ", ".join(parts)


def _cell(text: str) -> str:
    """Escape a table cell: pipes would split it, newlines would end the row."""
    return text.replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(_cell(c) for c in cells) + " |"


def parameter_table() -> str:
    """The schema as a Markdown table, one row per parameter key (``sim.params.field_rows``)."""
    lines = [_row(COLUMNS), _row(["---"] * len(COLUMNS))]
    for row in field_rows():
        est = row["est_range"]
        lines.append(
            _row(
                [
                    f"`{row['key']}`",
                    row["unit"],
                    _value(row["default"]),
                    _range(row["range"]),
                    f"{_number(est[0])} to {_number(est[1])}" if est is not None else "",
                    row["source"],
                    row["description"],
                ]
            )
        )
    return "\n".join(lines)


def sector_table() -> str:
    """The default ``manufacturers.sectors`` table (one row per sector)."""
    sectors = Manufacturers().sectors
    header = ["sector", *SECTOR_COLUMNS]
    lines = [_row(header), _row(["---"] * len(header))]
    for name, sector in sectors.items():
        lines.append(_row([f"`{name}`", *(_value(getattr(sector, c)) for c in SECTOR_COLUMNS)]))
    lines.append("")
    for column in SECTOR_COLUMNS:
        description = Sector.model_fields[column].description or ""
        lines.append(f"- `{column}`: {description}")
    return "\n".join(lines)


GENERATED_NOTE = (
    "Generated from `sim/params.py` by `python -m sim.docs docs/ODD.md`; do not edit by hand. "
    "Keys are dotted paths for scenario files and `--set`. Source abbreviations: "
    "CAL = `shared/data/calibration.md`, DEM = `demand.md`, DEP = `deposits.md`; EST = a derived "
    "estimate, with the range used by sensitivity sweeps where one is given."
)
SECTOR_NOTE = (
    "Default sector table (`manufacturers.sectors`; source: EST from DEM sections 2 and 4, "
    "DEP Table 2 for magnet capacity):"
)


def generated_block() -> str:
    """Everything that goes between the marker lines."""
    return "\n".join([GENERATED_NOTE, "", parameter_table(), "", SECTOR_NOTE, "", sector_table()])


def render_odd(template: str) -> str:
    """Replace the lines between the parameter-table markers with the generated table.

    Raises:
        DocsError: a marker line is missing, repeated, or the end comes before the start.
    """
    lines = template.splitlines()
    starts = [i for i, line in enumerate(lines) if line.strip() == START_MARKER]
    ends = [i for i, line in enumerate(lines) if line.strip() == END_MARKER]
    if len(starts) != 1 or len(ends) != 1 or ends[0] < starts[0]:
        msg = (
            f"expected one line {START_MARKER!r} followed by one line {END_MARKER!r}; "
            f"found {len(starts)} start and {len(ends)} end marker(s)"
        )
        raise DocsError(msg)
    start, end = starts[0], ends[0]
    out = [*lines[: start + 1], "", generated_block(), "", *lines[end:]]
    return "\n".join(out) + "\n"


def is_up_to_date(path: Path = DEFAULT_ODD) -> bool:
    """Whether the generated table in ``path`` matches the schema.

    Raises:
        DocsError: the markers are missing or out of order.
        OSError: the file cannot be read.
    """
    text = path.read_text(encoding="utf-8")
    return render_odd(text) == text


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main(argv: Sequence[str] | None = None) -> int:
    """Rewrite the ODD's parameter table, or check it (exit 1 if stale, 2 on bad input)."""
    parser = argparse.ArgumentParser(
        prog="python -m sim.docs", description="Render the parameter table into docs/ODD.md."
    )
    parser.add_argument("path", nargs="?", type=Path, default=DEFAULT_ODD, help="the ODD file")
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if the file is out of date; change nothing"
    )
    args = parser.parse_args(argv)
    path: Path = args.path
    try:
        text = path.read_text(encoding="utf-8")
        rendered = render_odd(text)
    except (OSError, DocsError) as err:
        print(f"{path}: {err}", file=sys.stderr)
        return 2
    if args.check:
        if rendered != text:
            print(
                f"{path}: parameter table is out of date; run `python -m sim.docs {path}`",
                file=sys.stderr,
            )
            return 1
        print(f"{path}: parameter table is up to date")
        return 0
    if rendered != text:
        _write_atomic(path, rendered)
        print(f"{path}: parameter table rewritten")
    else:
        print(f"{path}: parameter table already up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
