"""The cost of a run, measured beside Mesa's cheapest object model in the same session.

Group ``baseline-vs-boltzmann``: the whole baseline run (build and 132 months) against a Boltzmann
wealth model with no space, the same number of agents and the same number of steps. Group
``scaling``: the baseline at 500 and at 5000 manufacturers (60 months each), for the growth in cost.

These only measure; nothing here asserts a wall-clock time. ``make bench`` switches timing on; a
plain ``pytest`` (``--benchmark-disable``) runs each function once as a smoke test.
"""

from __future__ import annotations

import pytest

from sim import build_model, load_scenario, simulate
from sim.params import Scenario
from tests.bench.boltzmann import run_boltzmann

SEED = 1
ROUNDS = 5
SCALING_MONTHS = 60


@pytest.fixture(scope="module")
def baseline_scenario() -> Scenario:
    return load_scenario("baseline")


@pytest.fixture(scope="module")
def baseline_agents(baseline_scenario: Scenario) -> int:
    """How many Mesa agents the baseline registers (miners, manufacturers and the singletons)."""
    return len(build_model(baseline_scenario, seed=SEED).agents)


@pytest.mark.benchmark(group="baseline-vs-boltzmann")
def test_baseline_run(benchmark, baseline_scenario, baseline_agents):
    months = baseline_scenario.scenario.months
    population = baseline_scenario.population
    assert months >= 132
    assert population.manufacturers >= 500
    assert baseline_agents >= 30 + 500
    benchmark.extra_info.update(agents=baseline_agents, months=months)

    frame = benchmark.pedantic(
        simulate,
        args=(baseline_scenario,),
        kwargs={"seed": SEED},
        rounds=ROUNDS,
        iterations=1,
        warmup_rounds=1,
    )

    assert len(frame) == months


@pytest.mark.benchmark(group="baseline-vs-boltzmann")
def test_boltzmann_same_size(benchmark, baseline_scenario, baseline_agents):
    steps = baseline_scenario.scenario.months
    benchmark.extra_info.update(agents=baseline_agents, months=steps)

    model = benchmark.pedantic(
        run_boltzmann,
        args=(baseline_agents, steps, SEED),
        rounds=ROUNDS,
        iterations=1,
        warmup_rounds=1,
    )

    assert len(model.agents) == baseline_agents
    assert model.steps == steps
    assert sum(model.agents.get("wealth")) == baseline_agents


@pytest.mark.benchmark(group="scaling")
@pytest.mark.parametrize("manufacturers", [500, 5000])
def test_scaling_manufacturers(benchmark, manufacturers):
    scenario = load_scenario("baseline", overrides={"population.manufacturers": manufacturers})
    benchmark.extra_info.update(manufacturers=manufacturers, months=SCALING_MONTHS)

    frame = benchmark.pedantic(
        simulate,
        args=(scenario,),
        kwargs={"seed": SEED, "months": SCALING_MONTHS},
        rounds=3,
        iterations=1,
    )

    assert len(frame) == SCALING_MONTHS
