"""Running a scenario: one seed to a DataFrame, several seeds to a results folder."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim.columns import INTEGER_COLUMNS, TIMESERIES_COLUMNS
from sim.model import RareEarthModel
from sim.params import Scenario
from sim.scenario import load_scenario, resolved_dict, validate


def with_months(scenario: Scenario, months: int | None) -> Scenario:
    """The scenario with another horizon, validated like any other change.

    Raises:
        ScenarioError: naming ``scenario.months`` and what is allowed.
    """
    if months is None or months == scenario.scenario.months:
        return scenario
    data = scenario.model_dump()
    data["scenario"]["months"] = months
    return validate(data, f"scenario {scenario.scenario.name!r} with months={months!r}")


def run_id(scenario: Scenario, seed: int) -> str:
    """A stable hash of the resolved parameters and the seed."""
    payload = json.dumps(
        {"params": resolved_dict(scenario), "seed": seed}, sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def build_model(
    scenario: Scenario | str | Path, seed: int = 0, *, check_balances: bool = False
) -> RareEarthModel:
    """A ready-to-step model (``model.step()`` advances one month)."""
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    return RareEarthModel(
        scenario, seed=seed, check_balances=check_balances, run_id=run_id(scenario, seed)
    )


def model_frame(model: RareEarthModel) -> pd.DataFrame:
    """The months a model has run, as the contract's timeseries frame."""
    data, dates = model.frame_data()
    n = len(dates)
    # One column at a time into one constructor call: no concat, no re-typing after the fact.
    columns: dict[str, Any] = {
        "run_id": np.full(n, model.run_id, dtype=object),
        "seed": np.full(n, model.seed, dtype="int64"),
        "month": np.arange(n, dtype="int64"),
        "date": np.array(dates, dtype=object),
    }
    for i, name in enumerate(TIMESERIES_COLUMNS):
        column = data[:, i]
        columns[name] = column.astype("int64") if name in INTEGER_COLUMNS else column.copy()
    return pd.DataFrame(columns, copy=False)


def simulate(
    scenario: Scenario | str | Path,
    seed: int = 0,
    months: int | None = None,
    *,
    check_balances: bool = False,
) -> pd.DataFrame:
    """Run one seed to the end; return the timeseries frame (one row per month)."""
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    scenario = with_months(scenario, months)
    model = build_model(scenario, seed, check_balances=check_balances)
    for _ in range(scenario.scenario.months):
        model.step()
    return model_frame(model)


def simulate_with_events(
    scenario: Scenario, seed: int, *, check_balances: bool = False
) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Run one seed; return its frame and its events."""
    model = build_model(scenario, seed, check_balances=check_balances)
    for _ in range(scenario.scenario.months):
        model.step()
    return model_frame(model), model.events
