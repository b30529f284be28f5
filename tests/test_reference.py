"""Reference runs: every scenario file, seeds 1-3, against the stored ``tests/reference/summary.csv``.

Runs are deterministic, so any difference beyond floating-point rounding means behaviour changed.
If the change is intended, regenerate the file with ``.venv/bin/python tools/regen_reference.py``
and review its diff with the change (tests/reference/README.md).
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent
RELATIVE_TOLERANCE = 1e-9
# Tonnes, US$ M, US$/kg: a millionth absorbs rounding noise (balance errors are ~1e-9) only.
ABSOLUTE_TOLERANCE = 1e-6


def _load_tool() -> ModuleType:
    name = "regen_reference"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / "regen_reference.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


regen = _load_tool()
HOW = (
    f"If this change is intended, run `{regen.REGENERATE}` and review the diff of "
    "tests/reference/summary.csv with the change (tests/reference/README.md)."
)


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    if not regen.REFERENCE_CSV.is_file():
        pytest.fail(f"{regen.REFERENCE_CSV} is missing. Run `{regen.REGENERATE}` to create it.")
    return regen.read_reference()


def _same(old: Any, new: Any) -> bool:
    a, b = float(old), float(new)
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return math.isclose(a, b, rel_tol=RELATIVE_TOLERANCE, abs_tol=ABSOLUTE_TOLERANCE)


def _describe(column: str, old: float, new: float, *, integer: bool) -> str:
    change = ""
    if not (math.isnan(old) or math.isnan(new)) and old != 0:
        change = f" ({(new - old) / abs(old):+.3%})"
    shown = [f"{v:.0f}" if integer and not math.isnan(v) else repr(v) for v in (old, new)]
    return f"{column}: {shown[0]} -> {shown[1]}{change}"


def differences(stored: pd.DataFrame, fresh: pd.DataFrame) -> list[str]:
    """One entry per seed whose headline numbers differ, naming the columns and values."""
    lines: list[str] = []
    columns = [c for c in fresh.columns if c not in regen.KEY_COLUMNS]
    stored_columns = [c for c in stored.columns if c not in regen.KEY_COLUMNS]
    if columns != stored_columns:
        added = [c for c in columns if c not in stored_columns]
        gone = [c for c in stored_columns if c not in columns]
        lines.append(
            f"summary columns differ from the stored ones (new: {added or 'none'}, "
            f"gone: {gone or 'none'}, or reordered)"
        )
        return lines
    old_seeds = [int(s) for s in stored["seed"]]
    new_seeds = [int(s) for s in fresh["seed"]]
    if old_seeds != new_seeds:
        return [f"seeds differ: stored {old_seeds}, now {new_seeds}"]
    for (_, old_row), (_, new_row) in zip(stored.iterrows(), fresh.iterrows(), strict=True):
        changed = [
            _describe(c, float(old_row[c]), float(new_row[c]), integer=fresh[c].dtype.kind in "iu")
            for c in columns
            if not _same(old_row[c], new_row[c])
        ]
        if changed:
            lines.append("\n    ".join([f"seed {int(new_row['seed'])}:", *changed]))
    return lines


@pytest.mark.parametrize("name", regen.scenario_names())
def test_reference_runs_unchanged(name: str, reference: pd.DataFrame) -> None:
    stored = reference[reference["scenario"] == name].reset_index(drop=True)
    if stored.empty:
        pytest.fail(
            f"scenario {name!r} has no reference rows in tests/reference/summary.csv "
            f"(a new scenario file?). Run `{regen.REGENERATE}` and commit the reviewed rows.",
            pytrace=False,
        )
    fresh = regen.reference_rows(name)
    lines = differences(stored, fresh)
    if lines:
        listing = "\n  ".join(lines)
        pytest.fail(
            f"reference runs of scenario {name!r} changed:\n  {listing}\n{HOW}",
            pytrace=False,
        )


def test_no_reference_rows_without_a_scenario_file(reference: pd.DataFrame) -> None:
    stale = sorted(set(reference["scenario"]) - set(regen.scenario_names()))
    assert not stale, (
        f"tests/reference/summary.csv has rows for scenarios with no file in scenarios/ "
        f"(removed or renamed?): {stale}. Run `{regen.REGENERATE}` to drop them."
    )


def test_differences_name_scenario_seed_and_column() -> None:
    """The comparison itself: NaN equals NaN, rounding passes, a real change is named."""
    stored = pd.DataFrame(
        {"scenario": ["x", "x"], "seed": [1, 2], "a": [1.0, float("nan")], "n": [2, 2]}
    )
    same = stored.assign(a=[1.0 + 1e-12, float("nan")])
    assert differences(stored, same) == []
    changed = stored.assign(a=[1.5, 2.0], n=[2, 3])
    assert differences(stored, changed) == [
        "seed 1:\n    a: 1.0 -> 1.5 (+50.000%)",
        "seed 2:\n    a: nan -> 2.0\n    n: 2 -> 3 (+50.000%)",
    ]
