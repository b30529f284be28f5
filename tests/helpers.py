"""Builders shared by the hand-computed rule tests."""

from __future__ import annotations

from typing import Any

from sim import build_model, load_scenario
from sim.model import RareEarthModel


def tiny_model(*, miners: int, months: int, **overrides: Any) -> RareEarthModel:
    """A baseline model with 7 manufacturers and ``miners`` projects, seed 1, not yet stepped.

    Rule tests overwrite the agents' arrays with round numbers and step it by hand; ``overrides``
    are dotted scenario keys (pass them as ``**{"policy.tariff.ndpr": 1.0}``).
    """
    scenario = load_scenario(
        "baseline",
        overrides={
            "population.manufacturers": 7,
            "population.miners": miners,
            "scenario.months": months,
            **overrides,
        },
    )
    return build_model(scenario, seed=1)
