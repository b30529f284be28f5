"""The scenario files in scenarios/: each loads, runs a year with its books balanced, and cites
a source for every key it sets and every scheduled change.

Sweep files (a top-level ``[sweep]`` table) are not scenarios and are left out here.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sim import load_scenario, simulate
from sim.scenario import SCENARIO_DIR

FAST = {"population.manufacturers": 100}
UNCITED_TABLES = ("scenario", "sources", "schedule")

# Files that copy another scenario and change only a few things (scenario files cannot inherit):
# name -> (the scenario it copies, keys allowed to differ, whether the schedule may differ).
VARIANTS: dict[str, tuple[str, set[str], bool]] = {
    "bank_initiative": ("baseline", {"policy.bank_initiative"}, False),
    "embargo_heavy": ("baseline", set(), True),
    "recycling_mandate": ("baseline", set(), True),
    "licensing_round_2028": ("baseline", set(), True),
    "stockpile_release": (
        "embargo_heavy",
        {
            "government.stockpile.dytb",
            "government.stockpile.magnet",
            "government.reaction.enabled",
            "government.reaction.stockpile_release_months",
            "government.reaction.set_floors",
            "government.reaction.equity_musd",
        },
        False,
    ),
}


def _read(path: Path) -> dict[str, Any]:
    with path.open("rb") as handle:
        return tomllib.load(handle)


def _scenario_files() -> list[Path]:
    return [p for p in sorted(SCENARIO_DIR.glob("*.toml")) if "sweep" not in _read(p)]


SCENARIO_FILES = _scenario_files()


def _leaves(data: dict[str, Any], prefix: str = "") -> Iterator[str]:
    """Dotted keys of every value set in a TOML table (tables, inline or not, are walked)."""
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            yield from _leaves(value, f"{dotted}.")
        else:
            yield dotted


def _cited(key: str, sources: dict[str, str]) -> bool:
    """A key is cited by its own entry or by an entry for a table that holds it
    (``manufacturers.sectors.ev`` cites every field of that sector); top-level groups such as
    ``foreign`` alone do not count."""
    parts = key.split(".")
    return any(str(sources.get(".".join(parts[:n]), "")).strip() for n in range(len(parts), 1, -1))


def _flat(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(_flat(value, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): data}


def _changes(resolved: dict[str, Any]) -> list[tuple[str, str, Any]]:
    return [(c["date"], c["key"], c["value"]) for c in resolved["schedule"]]


def test_there_are_scenario_files():
    stems = {p.stem for p in SCENARIO_FILES}
    assert {"baseline", "history_2010_quota"} <= stems


@pytest.mark.parametrize("path", SCENARIO_FILES, ids=lambda p: p.stem)
def test_scenario_runs_a_year_with_balanced_books(path):
    scenario = load_scenario(path, overrides=FAST)
    frame = simulate(scenario, seed=1, months=12, check_balances=True)
    assert len(frame) == 12
    assert frame["balance_error_t"].max() < 1e-6
    assert frame["balance_error_musd"].max() < 1e-6


@pytest.mark.parametrize("path", SCENARIO_FILES, ids=lambda p: p.stem)
def test_every_key_set_cites_a_source(path):
    data = _read(path)
    sources = data.get("sources", {})
    settable = {k: v for k, v in data.items() if k not in UNCITED_TABLES}
    uncited = [key for key in _leaves(settable) if not _cited(key, sources)]
    assert not uncited, f"{path.name}: keys without an entry in [sources]: {uncited}"


@pytest.mark.parametrize("path", SCENARIO_FILES, ids=lambda p: p.stem)
def test_every_scheduled_change_cites_a_source(path):
    schedule = _read(path).get("schedule", [])
    missing = [
        f"{change.get('date')} {change.get('key')}"
        for change in schedule
        if not str(change.get("source", "")).strip()
    ]
    assert not missing, f"{path.name}: schedule entries without a source: {missing}"


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_variant_files_still_match_the_scenario_they_copy(name):
    base_name, allowed, schedule_may_differ = VARIANTS[name]
    variant = load_scenario(name).model_dump(mode="json")
    base = load_scenario(base_name).model_dump(mode="json")
    ignore = {"scenario.name", "scenario.description"} | allowed
    flat_variant = _flat({k: v for k, v in variant.items() if k not in ("schedule", "sources")})
    flat_base = _flat({k: v for k, v in base.items() if k not in ("schedule", "sources")})
    differ = sorted(
        key
        for key in flat_variant.keys() | flat_base.keys()
        if key not in ignore and flat_variant.get(key) != flat_base.get(key)
    )
    assert not differ, f"{name} no longer matches {base_name} on: {differ}"
    assert not (allowed - flat_variant.keys()), f"{name}: unknown keys {allowed}"
    if not schedule_may_differ:
        assert _changes(variant) == _changes(base), f"{name}: schedule differs from {base_name}"
