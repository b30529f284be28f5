"""The scenario files in scenarios/: each loads, runs a year with its books balanced, and cites
a source for every key it sets and every scheduled change.

A file that inherits (``[scenario] base = ...``) cites only the keys it sets itself; its base
cites the rest. Sweep files (a top-level ``[sweep]`` table) are not scenarios and are left out here.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sim import load_scenario, simulate
from sim.scenario import SCENARIO_DIR, inherited_data

FAST = {"population.manufacturers": 100}
UNCITED_TABLES = ("scenario", "sources", "schedule")

# Files that inherit from another scenario (``[scenario] base``) and change only a few things:
# name -> (its base, the keys whose resolved values differ from the base's, whether the schedule
# adds changes to the base's). Every inheriting scenario file must be listed here.
VARIANTS: dict[str, tuple[str, set[str], bool]] = {
    "bank_initiative": ("baseline", {"policy.bank_initiative"}, False),
    "embargo_heavy": ("baseline", set(), True),
    "faster_permitting": ("baseline", {"miners.permit_time_factor"}, False),
    "recycling_mandate": ("baseline", set(), True),
    "licensing_round_2028": ("baseline", set(), True),
    "history_2025_events": ("baseline", {"scenario.start", "scenario.months"}, True),
    "history_2025_licensing": ("history_2025_events", {"government.contracts"}, False),
    "history_2025_licensing_reaction": (
        "history_2025_events",
        {"government.reaction.enabled", "policy.floor_upside_share"},
        False,
    ),
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
# Keys of the [scenario] table that a variant always sets for itself.
OWN_SCENARIO_KEYS = {"scenario.name", "scenario.description", "scenario.base"}


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


def _set_keys(data: dict[str, Any]) -> list[str]:
    """Dotted keys a scenario file's data sets, outside the tables that need no citation."""
    return list(_leaves({k: v for k, v in data.items() if k not in UNCITED_TABLES}))


@pytest.mark.parametrize("path", SCENARIO_FILES, ids=lambda p: p.stem)
def test_every_key_set_cites_a_source(path):
    """Each file cites the keys it sets itself, in its own [sources]; inherited keys are cited
    by the file that sets them."""
    data = _read(path)
    sources = data.get("sources", {})
    uncited = [key for key in _set_keys(data) if not _cited(key, sources)]
    assert not uncited, f"{path.name}: keys without an entry in [sources]: {uncited}"


@pytest.mark.parametrize("path", SCENARIO_FILES, ids=lambda p: p.stem)
def test_sources_name_only_keys_the_file_sets(path):
    """A file's [sources] cite only what the file itself sets (no citations copied from a base)."""
    data = _read(path)
    keys = list(_leaves({k: v for k, v in data.items() if k not in ("sources", "schedule")}))
    stale = [
        entry
        for entry in data.get("sources", {})
        if not any(key == entry or key.startswith(f"{entry}.") for key in keys)
    ]
    assert not stale, f"{path.name}: [sources] entries for keys the file does not set: {stale}"


@pytest.mark.parametrize("path", SCENARIO_FILES, ids=lambda p: p.stem)
def test_inherited_keys_are_cited_along_the_chain(path):
    """With its bases merged in, every key a scenario sets is cited by some file in the chain."""
    data = inherited_data(path, ())
    sources = data.get("sources", {})
    uncited = [key for key in _set_keys(data) if not _cited(key, sources)]
    assert not uncited, f"{path.name} (with its bases): keys without a source: {uncited}"


@pytest.mark.parametrize("path", SCENARIO_FILES, ids=lambda p: p.stem)
def test_every_scheduled_change_cites_a_source(path):
    schedule = _read(path).get("schedule", [])
    missing = [
        f"{change.get('date')} {change.get('key')}"
        for change in schedule
        if not str(change.get("source", "")).strip()
    ]
    assert not missing, f"{path.name}: schedule entries without a source: {missing}"


def test_every_inheriting_file_is_a_listed_variant():
    inheriting = {p.stem for p in SCENARIO_FILES if _read(p).get("scenario", {}).get("base")}
    assert inheriting == set(VARIANTS)


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_variant_differs_from_its_base_only_on_its_keys(name):
    base_name, keys, adds_schedule = VARIANTS[name]
    assert _read(SCENARIO_DIR / f"{name}.toml")["scenario"]["base"] == base_name
    variant = load_scenario(name).model_dump(mode="json")
    base = load_scenario(base_name).model_dump(mode="json")
    flat_variant = _flat({k: v for k, v in variant.items() if k not in ("schedule", "sources")})
    flat_base = _flat({k: v for k, v in base.items() if k not in ("schedule", "sources")})
    assert flat_variant.keys() == flat_base.keys()
    differ = {
        key
        for key in flat_variant
        if key not in OWN_SCENARIO_KEYS and flat_variant[key] != flat_base[key]
    }
    assert differ == keys, (
        f"{name} differs from {base_name} on {sorted(differ - keys)}; "
        f"listed but equal: {sorted(keys - differ)}"
    )
    own, inherited = _changes(variant), _changes(base)
    if adds_schedule:
        assert own[: len(inherited)] == inherited, f"{name}: {base_name}'s schedule is not kept"
        assert len(own) > len(inherited), f"{name}: adds no scheduled changes to {base_name}"
    else:
        assert own == inherited, f"{name}: schedule differs from {base_name}"
