"""Extreme but valid settings run to the end with the books balanced.

Tariffs of 1,000%, a quota of zero on everything, every miner defaulting, a bank programme ten
times the seed scenario's, price floors far above the market, one manufacturer, ten thousand
manufacturers and a 30-year horizon: each runs with ``check_balances=True`` (the model raises on
a stock-flow residual beyond rounding, a negative stock or a non-finite value) and the frame is
checked again here: no NaN, no negative stock, flow or price, balance errors at rounding level.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from sim import ScenarioError, build_model, load_scenario, simulate
from sim.agents.manufacturer import memory_weight
from sim.columns import OPTIONAL_COLUMNS
from sim.scenario import SCENARIO_DIR

GOODS = ("ndpr", "dytb", "cela", "magnet")
OXIDES = ("ndpr", "dytb", "cela")
# Columns that are stocks, flows, capacities, counts or prices: never below zero.
NON_NEGATIVE = (
    "price_",
    "exports",
    "magnet_exports",
    "demand",
    "consumption",
    "unmet_demand",
    "inventory",
    "production",
    "capacity_",
    "miners_",
    "manufacturers_halted",
    "home_sales",
    "mine_output",
    "tariff_revenue",
    "floor_payments",
    "bank_loans",
    "bank_losses",
    "export_tax_revenue",
    "licence_rent",
    "balance_error",
)


def check_invariants(frame: pd.DataFrame, months: int) -> None:
    assert len(frame) == months
    numeric = frame.select_dtypes("number")
    required = [c for c in numeric.columns if c not in OPTIONAL_COLUMNS]
    nan = [c for c in required if numeric[c].isna().any()]
    assert not nan, f"NaN in {nan}"
    assert np.isfinite(numeric.fillna(0.0).to_numpy()).all(), "infinite values"
    bounded = [c for c in numeric.columns if c.startswith(NON_NEGATIVE)]
    negative = {
        c: float(numeric[c].min())
        for c in bounded
        if (numeric[c].fillna(0.0) < -1e-9 * max(1.0, float(numeric[c].abs().max()))).any()
    }
    assert not negative, f"negative stock, flow or price: {negative}"
    # Rounding level: 1e-6 absolute, or 1e-12 of the largest quantity in the books (a floor of
    # US$100,000/kg over 30 years moves US$10^14, whose last bits are a few dollars).
    tonnes = frame.filter(regex="inventory|exports|production|consumption").abs().cumsum().max()
    money = frame.filter(like="_musd").abs().cumsum().max()
    for column, scale in (("balance_error_t", tonnes.max()), ("balance_error_musd", money.max())):
        worst = float(frame[column].max())
        assert worst < 1e-6 + 1e-12 * float(scale), f"{column} {worst:.3g} (scale {scale:.3g})"


def run(overrides: dict[str, Any], months: int = 132, seed: int = 1) -> pd.DataFrame:
    scenario = load_scenario("baseline", {"scenario.months": months, **overrides})
    frame = simulate(scenario, seed=seed, check_balances=True)
    check_invariants(frame, months)
    return frame


@pytest.fixture(scope="module")
def baseline_run() -> pd.DataFrame:
    return run({})


@pytest.fixture
def broke_miners(tmp_path: Path) -> str:
    """The projects file with every project operating at an opex no price covers."""
    source = SCENARIO_DIR / "data" / "miners_2025.csv"
    with source.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        row.update(status="operating", opex_usd_per_kg="5000", permit_months="0")
        row.update(construction_months="0", ramp_months="0")
    path = tmp_path / "broke.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return str(path)


def test_tariffs_of_1000_percent(baseline_run):
    frame = run({f"policy.tariff.{g}": 10.0 for g in GOODS})
    assert frame["price_landed_ndpr"].mean() > 2 * baseline_run["price_landed_ndpr"].mean()
    assert frame["tariff_revenue_musd"].sum() > 0


def test_a_quota_of_zero_on_everything():
    overrides: dict[str, Any] = {f"policy.export_quota.{g}": 0.0 for g in GOODS}
    overrides |= {"foreign.mine_quota_t_per_year": 0.0, "foreign.separation_quota_t_per_year": 0.0}
    frame = run(overrides)
    for p in OXIDES:
        assert frame[f"exports_{p}"].sum() == 0.0  # licit exports; smuggling is modelled apart
    assert frame["magnet_exports_t"].sum() == 0.0


def test_every_miner_defaulting(broke_miners):
    frame = run({"population.miners_file": broke_miners, "miners.initial_cash_months": 0.0})
    with Path(broke_miners).open(encoding="utf-8") as handle:
        projects = sum(1 for _ in handle) - 1
    assert frame["miners_defaulted_cum"].iloc[-1] == projects
    assert frame["miners_active"].iloc[-1] == 0
    assert frame["capacity_domestic_operating_t"].iloc[-1] == 0.0


def test_a_bank_programme_ten_times_the_seed_scenarios(baseline):
    ten_times = {
        "policy.bank_initiative": True,
        "bank.programme_size_busd": 10 * baseline.bank.programme_size_busd,
        "bank.equity_budget_busd": 10 * baseline.bank.equity_budget_busd,
    }
    usual = run({"policy.bank_initiative": True})
    frame = run(ten_times)
    assert frame["bank_loans_musd"].max() >= usual["bank_loans_musd"].max()


def test_price_floors_far_above_the_market():
    frame = run({f"policy.price_floor.{p}": 1e5 for p in OXIDES})  # the schema's maximum
    assert frame["floor_payments_musd"].sum() > 0
    producing = frame["production_domestic_ndpr"] > 0
    assert (frame.loc[producing, "price_received_ndpr"] >= 1e5 * (1 - 1e-12)).all()


def test_one_manufacturer():
    frame = run({"population.manufacturers": 1})
    assert frame["manufacturers_halted"].max() <= 1


def test_ten_thousand_manufacturers_in_a_few_seconds():
    started = time.perf_counter()
    frame = run({"population.manufacturers": 10_000}, months=24)
    seconds = time.perf_counter() - started
    assert frame["manufacturers_halted"].max() <= 10_000
    assert seconds < 30, f"10,000 manufacturers x 24 months took {seconds:.1f} s"


def test_a_30_year_horizon():
    started = time.perf_counter()
    frame = run({}, months=360)
    seconds = time.perf_counter() - started
    assert frame["date"].iloc[-1] == "2054-12"
    assert seconds < 60, f"30 years took {seconds:.1f} s"


def test_all_extremes_at_once(broke_miners):
    """Every extreme above in one run (tariffs and floors far beyond any market, no quota)."""
    overrides: dict[str, Any] = {f"policy.tariff.{g}": 10.0 for g in GOODS}
    overrides |= {f"policy.export_quota.{g}": 0.0 for g in GOODS}
    overrides |= {f"policy.price_floor.{p}": 1e5 for p in OXIDES}
    overrides |= {
        "policy.bank_initiative": True,
        "bank.programme_size_busd": 15_000.0,
        "population.miners_file": broke_miners,
        "miners.initial_cash_months": 0.0,
        "population.manufacturers": 1,
    }
    run(overrides, months=360)


def test_the_supplier_never_offers_a_magnet_below_the_value_of_its_oxide():
    """Hand-computed: the baseline conversion cost is 49 - (0.30 x 56 + 0.008 x 370) = 29.24
    US$/kg; with a reference magnet price of US$10/kg, below the oxide content (19.76), it is
    zero, not negative, and the magnet ask still covers the oxide at home prices."""
    small = {"scenario.months": 6, "population.manufacturers": 20}
    assert build_model(load_scenario("baseline", small)).foreign.magnet_conversion == (
        pytest.approx(29.24)
    )
    model = build_model(
        load_scenario("baseline", {**small, "foreign.magnet_price_ref": 10.0}),
        seed=1,
        check_balances=True,
    )
    foreign = model.foreign
    assert foreign.magnet_conversion == 0.0
    for _ in range(6):
        model.step()
        oxide_value = float(
            foreign.intensity @ np.maximum(foreign.expected_home, foreign.price_home)[:2]
        )
        assert foreign.export_offers(0.0, 0.0, 0.0)["ask"][3] >= oxide_value


# ------------------------------------------------------------- every parameter at its bounds
def _bound_cases() -> list[tuple[str, Any]]:
    """Each bounded parameter at its lowest and highest allowed value (just inside a strict
    bound); each per-oxide table entry (no upper bound) at zero and at a million."""
    from sim.params import field_rows

    cases: list[tuple[str, Any]] = []
    for row in field_rows():
        key = row["key"]
        if row["type"] == "ByProduct":
            cases += [(f"{key}.{p}", v) for p in OXIDES for v in (0.0, 1e6)]
            continue
        if not row["range"] or key.startswith("scenario."):
            continue
        for bound in row["range"].split(", "):
            op, number = bound.split(" ")
            value: Any = float(number)
            if op == ">":
                value = value * (1 + 1e-9) + 1e-12
            if row["type"] == "int":
                value = int(value) if value == int(value) else int(value) + 1
            if key == "population.manufacturers" and value > 10_000:
                continue  # 100,000 manufacturers: a size test, not a bounds test (see above)
            cases.append((key, value))
    return cases


def _bound_param(key: str, value: Any) -> Any:
    return pytest.param(key, value, id=f"{key}={value:g}")


@pytest.mark.parametrize(("key", "value"), [_bound_param(k, v) for k, v in _bound_cases()])
def test_every_parameter_at_its_bounds_runs_or_is_refused(key, value):
    """Six months (fast), 20 manufacturers; the model's balance checks on. A value the schema
    allows alone but not with the other defaults (cover_weeks_min above cover_weeks_max) may
    be refused, naming the key."""
    months = 6
    overrides = {"scenario.months": months, "population.manufacturers": 20, key: value}
    try:
        scenario = load_scenario("baseline", overrides)
    except ScenarioError as err:
        refused = str(err)
    else:
        check_invariants(simulate(scenario, seed=1, check_balances=True), months)
        return
    assert key.rsplit(".", 1)[0] in refused, refused


@pytest.mark.parametrize("key", ["redesign_memory_months", "risk_memory_months"])
def test_the_shortest_memories_run_the_full_horizon(key):
    """A time constant just above zero once overflowed (BalanceError at month 42): the memory's
    weight is now capped at 1, so it equals this month's value."""
    run({"population.manufacturers": 20, f"manufacturers.{key}": 1e-12})


def test_memory_weight_by_hand():
    assert memory_weight(24.0) == 1.0 / 24.0  # the baseline's weight, unchanged bit for bit
    assert memory_weight(1.0) == 1.0
    assert memory_weight(0.5) == 1.0
    assert memory_weight(1e-12) == 1.0


# ------------------------------------------------------------------ dates outside the run
@pytest.mark.parametrize(
    ("table", "key"),
    [
        (
            '[[schedule]]\ndate = "2024-12"\nkey = "policy.tariff.ndpr"\nvalue = 1.0\n',
            "schedule[0].date",
        ),
        (
            (
                '[[government.contracts]]\ndate = "2024-12"\nminer = "Mountain Pass"\n'
                'kind = "grant"\namount_musd = 5.0\n'
            ),
            "government.contracts[0].date",
        ),
    ],
    ids=["schedule", "contract"],
)
def test_a_date_before_the_start_is_refused_and_one_after_the_end_is_not(tmp_path, table, key):
    """Dated before the start, a change or deal would silently never happen: refused, naming
    the file, the key and the months allowed. Dated after the end it is kept (a shorter run of
    the same scenario ends first)."""
    path = tmp_path / "s.toml"
    path.write_text("[scenario]\nmonths = 3\n" + table, encoding="utf-8")
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert info.value.file == str(path)
    assert info.value.key == key
    assert "2025-01 or later" in str(info.value)
    path.write_text(
        "[scenario]\nmonths = 3\n" + table.replace("2024-12", "2030-01"), encoding="utf-8"
    )
    frame = simulate(load_scenario(path), seed=1, check_balances=True)
    check_invariants(frame, 3)
