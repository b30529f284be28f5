"""Shared fixtures: short runs of the baseline with balance guards on (PyPSA-style guards)."""

from __future__ import annotations

import pandas as pd
import pytest

from sim import load_scenario, simulate
from sim.params import Scenario


@pytest.fixture(scope="session")
def baseline() -> Scenario:
    return load_scenario("baseline")


@pytest.fixture(scope="session")
def baseline_frame(baseline: Scenario) -> pd.DataFrame:
    """The full 132-month baseline, seed 1, with balance checks raising."""
    return simulate(baseline, seed=1, check_balances=True)
