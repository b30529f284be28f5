"""Hand-computed cases for the Government's rules (sim.agents.government).

Price-floor contracts, the reaction function and its lag, equity stakes, the stockpile, and the
tariff collected at the border.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from sim.agents.miner import State
from sim.model import COL, RareEarthModel
from tests.helpers import tiny_model


def tiny(**overrides: Any) -> RareEarthModel:
    return tiny_model(miners=3, months=12, **overrides)


REACTION_ON = {"government.reaction.enabled": True}


# ----------------------------------------------------------------------------- price floor
def test_floor_pays_the_gap_below_the_floor():
    model = tiny(**{"policy.price_floor.ndpr": 110.0})
    gov, fleet, ledger = model.government, model.miners, model.ledger
    cash = fleet.cash()
    ledger.start_step()
    received = gov.settle_floor(fleet, 0, np.array([10.0, 0.0, 5.0]), 80.0)
    # (110 - 80) US$/kg x [10, 0, 5] t = [0.30, 0, 0.15] US$ M.
    assert received == 110.0
    assert fleet.cash() - cash == pytest.approx([0.30, 0.0, 0.15])
    assert ledger.money_flow("floor_payments") == pytest.approx(0.45)
    assert float(ledger.money[gov.account]) == pytest.approx(-0.45)
    assert ledger.money_flow("floor_upside") == 0.0


def test_floor_upside_share_paid_back_above_the_floor():
    model = tiny(**{"policy.price_floor.ndpr": 110.0, "policy.floor_upside_share": 0.3})
    gov, fleet, ledger = model.government, model.miners, model.ledger
    cash = fleet.cash()
    ledger.start_step()
    received = gov.settle_floor(fleet, 0, np.array([10.0, 0.0, 5.0]), 150.0)
    # 30% of (150 - 110) = 12 US$/kg goes back to the government.
    assert received == pytest.approx(138.0)
    assert fleet.cash() - cash == pytest.approx([-0.12, 0.0, -0.06])
    assert ledger.money_flow("floor_upside") == pytest.approx(0.18)
    assert ledger.money_flow("floor_payments") == 0.0
    assert float(ledger.money[gov.account]) == pytest.approx(0.18)


def test_no_floor_no_payments():
    model = tiny(**{"policy.price_floor.dytb": 500.0})
    model.ledger.start_step()
    assert model.government.settle_floor(model.miners, 0, np.array([10.0, 1, 1]), 80.0) == 80.0
    assert model.ledger.money_flow("floor_payments") == 0.0
    assert model.government.settle_floor(model.miners, 1, np.array([1.0, 0, 0]), 300.0) == 500.0
    assert model.ledger.money_flow("floor_payments") == pytest.approx(0.2)


def test_price_received_is_the_landed_price_topped_up_to_the_floor_in_a_run():
    model = tiny(**{"policy.price_floor.ndpr": 110.0, "scenario.months": 3})
    for _ in range(3):
        model.step()
    landed = model.records[:, COL["price_landed_ndpr"]]
    received = model.records[:, COL["price_received_ndpr"]]
    assert received == pytest.approx(np.maximum(landed, 110.0))
    assert np.all(model.records[:, COL["price_floor_ndpr"]] == 110.0)
    assert np.all(landed < 110.0)
    assert np.all(model.records[:, COL["floor_payments_musd"]] > 0.0)


# ----------------------------------------------------------------------- reaction function
@pytest.mark.parametrize(
    ("halted", "unmet", "ratio", "triggered"),
    [
        (0.0, 0.0, 1.0, False),
        (0.049, 0.049, 1.99, False),
        (0.05, 0.0, 1.0, True),  # thresholds are inclusive
        (0.0, 0.05, 1.0, True),
        (0.0, 0.0, 2.0, True),
    ],
)
def test_reaction_triggers(halted, unmet, ratio, triggered):
    model = tiny(**REACTION_ON)
    model.month = 4
    model.government.watch(halted, unmet, ratio)
    assert (model.government.trigger_month == 4) is triggered


def test_reaction_responds_exactly_lag_months_after_the_trigger_and_only_once():
    model = tiny(**REACTION_ON, **{"government.reaction.lag_months": 3})
    gov = model.government
    responded = []
    for month in range(12):
        model.month = month
        crisis = month == 5  # one bad month is enough; the decision follows regardless
        gov.watch(0.2 if crisis else 0.0, 0.0, 1.0)
        responded.append(gov.responded)
    assert gov.trigger_month == 5
    assert responded == [False] * 8 + [True] * 4  # decided in month 5 + 3 = 8
    assert model.current.policy.price_floor.ndpr == 110.0
    floor_events = [e for e in model.events if "price_floor" in e["detail"]]
    assert [e["month"] for e in floor_events] == [8]
    gov.watch(1.0, 1.0, 10.0)
    assert len([e for e in model.events if "price_floor" in e["detail"]]) == 1


def test_reaction_with_zero_lag_responds_in_the_trigger_month():
    model = tiny(**REACTION_ON, **{"government.reaction.lag_months": 0})
    model.month = 2
    model.government.watch(0.0, 0.0, 3.0)
    assert model.government.responded
    assert model.current.policy.price_floor.ndpr == 110.0


def test_reaction_disabled_never_responds():
    model = tiny()
    for month in range(10):
        model.month = month
        model.government.watch(1.0, 1.0, 10.0)
    assert model.government.trigger_month is None
    assert not model.government.responded
    assert model.current.policy.price_floor.ndpr is None


def test_reaction_keeps_an_existing_floor_and_sets_a_configured_dytb_floor():
    model = tiny(
        **REACTION_ON,
        **{
            "government.reaction.lag_months": 0,
            "government.reaction.floor_dytb": 450.0,
            "policy.price_floor.ndpr": 90.0,
        },
    )
    model.government.watch(1.0, 0.0, 1.0)
    assert model.current.policy.price_floor.ndpr == 90.0
    assert model.current.policy.price_floor.dytb == 450.0


def test_equity_goes_to_unbuilt_projects_best_npv_per_capex_first():
    model = tiny()
    fleet = model.miners
    fleet.state = np.array([State.FINANCING, State.PROSPECT, State.OPERATING], dtype=np.int64)
    fleet.basket = np.tile([1.0, 0.0, 0.0], (3, 1))
    fleet.mine_cap = np.full(3, 1000.0)
    fleet.sep_cap = np.full(3, 1000.0)
    fleet.opex = np.full(3, 10.0)
    fleet.construction_months = np.full(3, 24.0)
    fleet.capex = np.array([100.0, 400.0, 50.0])
    fleet.expected = np.array([30.0, 0.0, 0.0])
    # NPV at 10% = 99.14 - capex: per capex -0.009 (first) beats -0.75 (second).
    model.ledger.start_step()
    model.government.take_equity(fleet, 120.0)
    # 25% of capex each, until the budget runs out: 25, then the remaining 95 (< 100).
    assert fleet.gov_equity.tolist() == [25.0, 95.0, 0.0]
    assert model.government.equity_cost == 120.0
    assert model.ledger.money_flow("gov_equity") == 120.0
    assert float(model.ledger.money[model.government.account]) == -120.0


def test_stockpile_released_evenly_over_the_configured_months():
    model = tiny(
        **REACTION_ON,
        **{
            "government.stockpile.dytb": 120.0,
            "government.reaction.stockpile_release_months": 6.0,
            "government.reaction.equity_musd": 0.0,
        },
    )
    gov = model.government
    release, ask = gov.stockpile_offers()
    assert release.tolist() == [0.0, 0.0, 0.0, 0.0]
    gov.respond()
    release, ask = gov.stockpile_offers()
    assert release.tolist() == [0.0, 20.0, 0.0, 0.0]
    assert ask.tolist() == [0.0] * 4  # a price taker
    model.ledger.tonnes[gov.stockpile_account, 1] = 7.0
    assert gov.stockpile_offers()[0].tolist() == [0.0, 7.0, 0.0, 0.0]


# -------------------------------------------------------------------------------- tariffs
def test_tariff_revenue_is_tariff_times_fob_value_of_imports():
    # 100 firms (4 magnet makers) and every project: NdPr is imported in the first month.
    model = tiny(
        **{
            "policy.tariff.ndpr": 1.0,
            "population.manufacturers": 100,
            "population.miners": None,
        }
    )
    model.step()
    foreign = model.foreign
    imported = foreign.exported + foreign.illicit
    assert imported[0] > 0.0  # the NdPr tariff has a base in the first month
    tariffs = np.array([1.0, 0.0, 0.055, 0.021])
    expected = float((imported * foreign.price_export * tariffs).sum() * 1e-3)
    assert model.records[0, COL["tariff_revenue_musd"]] == pytest.approx(expected)
    # Landed = FOB x (1 + tariff) + freight: FOB 56 gives 56 x 2 + 0.4 = 112.4 US$/kg.
    assert model.records[0, COL["price_landed_ndpr"]] == pytest.approx(112.4)
    assert model.records[0, COL["price_export_ndpr"]] == pytest.approx(56.0)
