"""Regenerate the stored summary of reference runs, ``tests/reference/summary.csv``.

Every scenario file in ``scenarios/`` (sweep files, which have a ``[sweep]`` table, are left out)
runs for seeds 1-3 with 100 manufacturers over 48 months; the headline columns of
``sim.results.summarize`` are written one row per scenario and seed. ``tests/test_reference.py``
reruns the same and fails on any difference, so a change of behaviour shows up in review.

Run it only when a behaviour change is intended, and review the diff of the CSV with the change::

    .venv/bin/python tools/regen_reference.py

Runs are deterministic: the same code and parameters give the same numbers to the last digit.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pandas as pd

from sim import load_scenario, simulate
from sim.results import summarize
from sim.scenario import SCENARIO_DIR, ScenarioError, read_toml

ROOT = Path(__file__).resolve().parent.parent
REFERENCE_CSV = ROOT / "tests" / "reference" / "summary.csv"
SEEDS: tuple[int, ...] = (1, 2, 3)
MONTHS = 48
OVERRIDES: dict[str, object] = {"population.manufacturers": 100}
KEY_COLUMNS: tuple[str, ...] = ("scenario", "seed")
# Summary columns that are labels, not results: the run id hashes the parameters.
NOT_COMPARED: frozenset[str] = frozenset({"run_id", "seed"})
REGENERATE = ".venv/bin/python tools/regen_reference.py"
HEADER = (
    f"# Reference runs: seeds {', '.join(map(str, SEEDS))} of every scenario file, "
    f"{MONTHS} months, population.manufacturers={OVERRIDES['population.manufacturers']}. "
    f"Written by `{REGENERATE}`: regenerate only for an intended behaviour change "
    "and review the diff (tests/reference/README.md)."
)


def scenario_names() -> list[str]:
    """Stems of the scenario files in ``scenarios/``, sweep files left out.

    A file that cannot be read counts as a scenario, so that loading it reports the problem.
    """
    names = []
    for path in sorted(SCENARIO_DIR.glob("*.toml")):
        try:
            is_sweep = "sweep" in read_toml(path)
        except ScenarioError:
            is_sweep = False
        if not is_sweep:
            names.append(path.stem)
    return names


def reference_rows(name: str, seeds: tuple[int, ...] = SEEDS) -> pd.DataFrame:
    """The reference rows of one scenario: scenario, seed and the headline columns."""
    scenario = load_scenario(name, overrides=OVERRIDES)
    frames = [simulate(scenario, seed, months=MONTHS) for seed in seeds]
    summary = summarize(pd.concat(frames, ignore_index=True))
    headline = [c for c in summary.columns if c not in NOT_COMPARED]
    rows = summary[headline].copy()
    rows.insert(0, "seed", summary["seed"].astype("int64"))
    rows.insert(0, "scenario", name)
    return rows.reset_index(drop=True)


def all_reference_rows() -> pd.DataFrame:
    """The reference rows of every scenario file."""
    return pd.concat([reference_rows(name) for name in scenario_names()], ignore_index=True)


def read_reference(path: Path = REFERENCE_CSV) -> pd.DataFrame:
    """The stored reference rows; numbers parsed by Python, so floats read back exactly."""
    raw = pd.read_csv(path, comment="#", dtype=str, keep_default_na=False)
    rows = pd.DataFrame({"scenario": raw["scenario"]})
    for column in raw.columns.drop("scenario"):
        text = raw[column].tolist()
        if all(v.lstrip("-").isdigit() for v in text):
            rows[column] = pd.Series([int(v) for v in text], dtype="int64")
        else:
            rows[column] = pd.Series([float(v) if v else math.nan for v in text], dtype="float64")
    return rows


def write_reference(rows: pd.DataFrame, path: Path = REFERENCE_CSV) -> None:
    """Write the rows with the header comment; floats keep every digit (repr)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".csv.tmp")
    with tmp.open("w", encoding="utf-8", newline="") as handle:
        handle.write(HEADER + "\n")
        rows.to_csv(handle, index=False, lineterminator="\n")
    tmp.replace(path)


def main() -> int:
    """Regenerate the CSV and say which scenarios changed."""
    old = read_reference() if REFERENCE_CSV.is_file() else None
    rows = all_reference_rows()
    write_reference(rows)
    print(f"wrote {len(rows)} rows ({rows['scenario'].nunique()} scenarios) to {REFERENCE_CSV}")
    if old is not None:
        new = read_reference()
        for name in sorted(set(old["scenario"]) | set(new["scenario"])):
            before = old[old["scenario"] == name].reset_index(drop=True)
            after = new[new["scenario"] == name].reset_index(drop=True)
            if before.empty:
                print(f"  added: {name}")
            elif after.empty:
                print(f"  removed: {name}")
            elif not before.equals(after):
                print(f"  changed: {name}")
    print("Review `git diff tests/reference/summary.csv` before committing it.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
