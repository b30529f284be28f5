"""Hand-computed cases for the Manufacturer decision rules (sim.agents.manufacturer).

Each test builds a tiny model, sets the population's array state directly and calls one method.
With 7 manufacturers the sectors are [ev, wind, electronics, electronics, industrial, industrial,
cela_user]; with 25 the first firm is the only magnet maker.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from sim import build_model, load_scenario
from sim.agents.manufacturer import WEEKS_PER_MONTH, allocate_counts
from sim.model import RareEarthModel
from sim.params import SECTORS

MAGNET, NDPR, DYTB, CELA = 3, 0, 1, 2
EV, WIND, ELEC, CELA_FIRM = 0, 1, 2, 6


def tiny(manufacturers: int = 7, **overrides: Any) -> RareEarthModel:
    scenario = load_scenario(
        "baseline",
        overrides={
            "population.manufacturers": manufacturers,
            "population.miners": 3,
            "scenario.months": 12,
            **overrides,
        },
    )
    return build_model(scenario, seed=1)


def test_tiny_population_sectors():
    pop = tiny().manufacturers
    assert [SECTORS[s] for s in pop.sector] == [
        "ev",
        "wind",
        "electronics",
        "electronics",
        "industrial",
        "industrial",
        "cela_user",
    ]
    assert pop.is_magnet_maker.sum() == 0
    assert tiny(25).manufacturers.is_magnet_maker.tolist() == [True] + [False] * 24


def test_allocate_counts_largest_remainder():
    # 7 x shares: 0.28 1.05 0.35 1.75 2.10 0.21 1.26 -> floors 0 1 0 1 2 0 1 (5); the two largest
    # remainders (0.75 electronics, 0.35 wind) get the last two agents.
    shares = np.array([0.04, 0.15, 0.05, 0.25, 0.30, 0.03, 0.18])
    assert allocate_counts(7, shares).tolist() == [0, 1, 1, 2, 2, 0, 1]
    assert allocate_counts(100, shares).tolist() == [4, 15, 5, 25, 30, 3, 18]


# ----------------------------------------------------------------------- stock adjustment
def set_bid_state(pop, need, stock, cover_weeks=13.0, risk=0.5):
    """One good (magnets): need and stock per firm; 13 weeks of cover = 3 months exactly."""
    pop.need[:] = 0.0
    pop.need[:, MAGNET] = need
    pop.stock[:, MAGNET] = stock
    pop.cover_weeks[:] = cover_weeks
    pop.risk[:] = 0.0
    pop.risk[MAGNET] = risk


def test_bid_quantities_follow_the_stock_adjustment_rule():
    model = tiny()
    pop = model.manufacturers
    assert pytest.approx(3.0) == 13.0 / WEEKS_PER_MONTH
    # need 12, cover 3 months, precaution 1 x risk 0.5: target = 12 x 3 x 1.5 = 54.
    # wanted = need + (54 - stock) / 3, split into this month's need and restocking.
    stock = np.array([24.0, 100.0, 50.0, 60.0, 54.0, 0.0, 0.0])
    set_bid_state(pop, need=np.array([12.0, 12, 12, 12, 12, 12, 0]), stock=stock)
    accounts, qty, _ = pop.bids(MAGNET)
    urgent, restock = qty[: pop.n], qty[pop.n :]
    # stock 24: 12 + 30/3 = 22 -> 12 + 10.   stock 100: 12 - 46/3 < 0 -> nothing.
    # stock 50: 12 + 4/3 -> 12 + 1.333.       stock 60: 12 - 2 = 10 -> 10 + 0.
    # stock 54 (at target): exactly the need.  stock 0: 12 + 18 = 30 -> 12 + 18.   no need: 0.
    assert urgent == pytest.approx([12, 0, 12, 10, 12, 12, 0])
    assert restock == pytest.approx([10, 0, 4 / 3, 0, 0, 18, 0])
    assert accounts.tolist() == [*pop.accounts, *pop.accounts]


def test_precaution_and_adjustment_speed_enter_the_target():
    # precaution 2 x risk 0.25 = the same 1.5 factor; adjusting over 2 months instead of 3.
    model = tiny(**{"manufacturers.precaution": 2.0, "manufacturers.stock_adjust_months": 2.0})
    pop = model.manufacturers
    set_bid_state(pop, need=12.0, stock=24.0, risk=0.25)
    _, qty, _ = pop.bids(MAGNET)
    # target 54; wanted = 12 + 30 / 2 = 27 -> 12 urgent + 15 restock.
    assert qty[0] == pytest.approx(12.0)
    assert qty[pop.n] == pytest.approx(15.0)


def test_bid_prices_need_at_wtp_of_reference_restock_at_expected_plus_risk():
    model = tiny()
    pop = model.manufacturers
    set_bid_state(pop, need=12.0, stock=0.0, risk=0.5)
    pop.reference_price[MAGNET] = 40.0
    pop.expected_price[MAGNET] = 50.0
    _, _, price = pop.bids(MAGNET)
    wtp = pop.wtp_multiple * 40.0
    # ev wtp multiple 6 (240), wind 3 (120), electronics/industrial 4 (160), cela 3.
    assert price[: pop.n] == pytest.approx([240, 120, 160, 160, 160, 160, 120])
    # Restock at 50 x (1 + 0.5/2) = 62.5, never above the willingness to pay.
    assert price[pop.n :] == pytest.approx(np.minimum(62.5, wtp))
    pop.expected_price[MAGNET] = 130.0  # 162.5 with risk: capped at wind's 120, elec's 160
    _, _, price = pop.bids(MAGNET)
    assert price[pop.n :] == pytest.approx([162.5, 120, 160, 160, 160, 160, 120])


# ---------------------------------------------------------------------------- substitution
def substitution_setup(model, price_ratio):
    pop = model.manufacturers
    pop.expected_price = pop.reference_price * price_ratio
    return pop


def learn_at(pop, price_ratio):
    pop.learn(pop.reference_price * price_ratio, np.zeros(4), np.zeros(4))


def test_full_pressure_increments_scaled_down_to_the_yearly_cap():
    # thrift 0.06/yr + redesign 0.04/yr at full pressure = 0.10/yr, cap 0.05/yr: both halved.
    model = tiny(**{"manufacturers.max_substitution_per_year": 0.05})
    pop = substitution_setup(model, 3.0)  # (3 - 1) / (2 - 1) -> pressure clipped to 1
    pop.pressure_memory[:] = 1.0
    learn_at(pop, 3.0)
    assert pop.thrift[EV, MAGNET] == pytest.approx(0.06 / 12 * 0.5)
    assert pop.redesign[EV, MAGNET] == pytest.approx(0.04 / 12 * 0.5)
    assert pop.thrift[CELA_FIRM, CELA] == pytest.approx(0.0025)
    assert pop.thrift[EV, MAGNET] + pop.redesign[EV, MAGNET] == pytest.approx(0.05 / 12)
    # Goods a firm does not use have no room to substitute.
    assert pop.thrift[EV, :3].tolist() == [0.0, 0.0, 0.0]
    assert pop.thrift[CELA_FIRM, MAGNET] == 0.0


def test_partial_pressure_and_room_below_the_cap():
    model = tiny()
    # expected / reference 1.5 -> pressure (1.5 - 1) / (2 - 1) = 0.5; memory 0.2 -> after the
    # month's update 0.2 + (0.5 - 0.2) / 24 = 0.2125; thrift already 0.05 of its 0.1 maximum.
    pop = substitution_setup(model, 1.5)
    pop.pressure_memory[:] = 0.2
    pop.thrift[EV, MAGNET] = 0.05
    learn_at(pop, 1.5)
    d_thrift = 0.06 / 12 * 0.5 * (1 - 0.05 / 0.1)
    d_redesign = 0.04 / 12 * 0.2125 * 1.0
    assert d_thrift + d_redesign < 0.10 / 12  # under the cap: no scaling
    assert pop.thrift[EV, MAGNET] == pytest.approx(0.05 + d_thrift)
    assert pop.redesign[EV, MAGNET] == pytest.approx(d_redesign)
    assert pop.pressure_memory[MAGNET] == pytest.approx(0.2125)


def test_room_is_exhausted_at_the_maximum():
    model = tiny()
    pop = substitution_setup(model, 3.0)
    pop.pressure_memory[:] = 1.0
    pop.thrift[EV, MAGNET] = 0.1  # thrift_max for final goods = thrift_max.ndpr = 0.1
    pop.redesign[EV, MAGNET] = 0.3  # ev substitution_max
    learn_at(pop, 3.0)
    assert pop.thrift[EV, MAGNET] == pytest.approx(0.1)
    assert pop.redesign[EV, MAGNET] == pytest.approx(0.3)


def test_substitution_never_falls_back_when_prices_fall():
    model = tiny()
    pop = substitution_setup(model, 0.5)  # prices halve: pressure 0
    pop.thrift[EV, MAGNET] = 0.05
    pop.redesign[EV, MAGNET] = 0.1
    pop.pressure_memory[:] = 0.0
    learn_at(pop, 0.5)
    assert pop.thrift[EV, MAGNET] == 0.05
    assert pop.redesign[EV, MAGNET] == 0.1
    # With a remembered pressure, redesign keeps growing slowly even though prices are low.
    pop.pressure_memory[:] = 0.5
    learn_at(pop, 0.5)
    memory = 0.5 + (0.0 - 0.5) / 24
    assert pop.thrift[EV, MAGNET] == 0.05
    assert pop.redesign[EV, MAGNET] == pytest.approx(0.1 + 0.04 / 12 * memory * (1 - 0.1 / 0.3))


def test_substitution_path_is_monotone_and_capped_each_month():
    model = tiny(**{"manufacturers.max_substitution_per_year": 0.05})
    pop = model.manufacturers
    cap = 0.05 / 12
    ratios = [1.0, 2.5, 4.0, 4.0, 1.2, 0.6, 0.6, 3.0, 1.0, 0.5] * 3
    before = pop.thrift + pop.redesign
    for ratio in ratios:
        learn_at(pop, ratio)
        after = pop.thrift + pop.redesign
        step = after - before
        assert np.all(step >= 0.0)
        assert np.all(step <= cap * (1 + 1e-12))
        before = after


# ------------------------------------------------------------------------------- recycling
@pytest.mark.parametrize(
    ("ratio", "overrides", "share"),
    [
        (1.0, {}, 0.01),  # base share at reference prices
        (0.5, {}, 0.01),  # no less than the base when prices are low
        (2.0, {}, 0.03),  # 0.01 + 0.02 x (2 - 1)
        (20.0, {}, 0.15),  # 0.01 + 0.02 x 19 = 0.39, capped at 0.15
        (1.0, {"manufacturers.recycling_mandate": 0.05}, 0.06),  # mandate adds to the base
        (20.0, {"manufacturers.recycling_mandate": 0.2}, 0.2),  # a mandate above the cap holds
    ],
)
def test_recycled_share_of_need(ratio, overrides, share):
    model = tiny(**overrides)
    pop = model.manufacturers
    pop.expected_price = pop.reference_price * ratio
    model.ledger.start_step()
    pop.plan_needs(0)
    assert pop.need.sum() > 0
    assert pop.recycled == pytest.approx(pop.need * share)
    assert model.ledger.tonne_flow("recycled", "magnet") == pytest.approx(
        share * pop.need[:, MAGNET].sum()
    )
    assert pop.recycling_share() == pytest.approx(share)


def test_need_grows_and_is_cut_by_substitution():
    model = tiny()
    pop = model.manufacturers
    pop.thrift[EV, MAGNET] = 0.1
    pop.redesign[EV, MAGNET] = 0.2
    pop.plan_needs(24)  # two years at 8.7%/yr magnet demand growth
    base = pop.base_need[EV, MAGNET]
    assert pop.gross_need[EV, MAGNET] == pytest.approx(base * 1.087**2)
    assert pop.need[EV, MAGNET] == pytest.approx(base * 1.087**2 * 0.7)
    assert pop.need[CELA_FIRM, CELA] == pytest.approx(pop.base_need[CELA_FIRM, CELA] * 1.01**2)


# -------------------------------------------------------------------------------- stoppage
def test_firm_halts_below_threshold_and_keeps_its_stock():
    model = tiny()
    pop = model.manufacturers
    pop.need[:] = 0.0
    pop.need[[EV, WIND, ELEC], MAGNET] = 10.0
    pop.need[CELA_FIRM, CELA] = 10.0
    pop.gross_need = pop.need.copy()
    pop.stock[:] = 0.0
    pop.stock[[EV, WIND, ELEC], MAGNET] = [4.0, 6.0, 25.0]
    pop.stock[CELA_FIRM, CELA] = 5.0  # exactly the 0.5 threshold: not halted
    model.ledger.start_step()
    pop.use_material()
    # Cover 0.4 < 0.5 halts; 0.6 uses all it has; 2.5 uses its need; cover 0.5 uses half.
    assert pop.halted.tolist() == [True, False, False, False, False, False, False]
    assert pop.used[[EV, WIND, ELEC], MAGNET] == pytest.approx([0.0, 6.0, 10.0])
    assert pop.used[CELA_FIRM, CELA] == pytest.approx(5.0)
    assert pop.stock[[EV, WIND, ELEC], MAGNET] == pytest.approx([4.0, 0.0, 15.0])
    assert model.ledger.tonne_flow("consumed", "magnet") == pytest.approx(16.0)
    # Output = gross need x share covered x value weight (ev 3, wind 1, electronics 2, cela 0.5).
    assert pop.output[[EV, WIND, ELEC, CELA_FIRM]] == pytest.approx([0.0, 6.0, 20.0, 2.5])


def test_halt_threshold_parameter():
    model = tiny(**{"manufacturers.halt_threshold": 0.7})
    pop = model.manufacturers
    pop.need[:] = 0.0
    pop.need[WIND, MAGNET] = 10.0
    pop.stock[:] = 0.0
    pop.stock[WIND, MAGNET] = 6.0
    pop.use_material()
    assert pop.halted[WIND]
    assert pop.used[WIND, MAGNET] == 0.0


# ---------------------------------------------------------------------------- magnet makers
def test_magnet_plan_and_output_limited_by_oxide():
    model = tiny(25)
    pop = model.manufacturers
    mm = 0
    pop.magnet_sales_ema[mm] = 100.0
    pop.cover_weeks[mm] = 13.0  # 3 months: target magnet stock 300
    pop.capacity_t_per_year[mm] = 2400.0  # 200 t/month
    pop.stock[mm] = [30.0, 2.0, 0.0, 240.0]
    model.ledger.start_step()
    pop.make_magnets()
    # plan = 100 + (300 - 240) / 3 = 120; NdPr 30 / 0.3 = 100 t, Dy/Tb 2 / 0.008 = 250 t.
    assert pop.planned_magnets[mm] == pytest.approx(120.0)
    assert pop.magnet_made[0] == pytest.approx(100.0)
    assert pop.stock[mm] == pytest.approx([0.0, 2.0 - 0.8, 0.0, 340.0])
    assert pop.oxide_wanted == pytest.approx([36.0, 0.96])
    assert pop.oxide_used == pytest.approx([30.0, 0.8])
    assert model.ledger.tonne_flow("magnet_made_domestic", "magnet") == pytest.approx(100.0)


def test_magnet_plan_capped_by_capacity_and_halts_when_oxide_short():
    model = tiny(25)
    pop = model.manufacturers
    pop.magnet_sales_ema[0] = 100.0
    pop.cover_weeks[0] = 13.0
    pop.capacity_t_per_year[0] = 1320.0  # 110 t/month < the 120 the rule asks for
    pop.stock[0] = [12.0, 10.0, 0.0, 240.0]
    pop.make_magnets()
    assert pop.planned_magnets[0] == pytest.approx(110.0)
    assert pop.magnet_made[0] == pytest.approx(40.0)  # 12 t NdPr / 0.3
    pop.plan_needs(0)
    pop.use_material()
    assert pop.halted[0]  # made 40 of 110 planned: 0.36 < 0.5


def test_magnet_offers_at_unit_cost():
    model = tiny(25)
    pop = model.manufacturers
    pop.stock[0, MAGNET] = 77.0
    accounts, qty, ask = pop.magnet_offers(41.5)
    assert accounts.tolist() == [pop.accounts[0]]
    assert qty.tolist() == [77.0]
    assert ask.tolist() == [41.5]


def test_magnet_investment_when_price_beats_full_cost_by_margin():
    model = tiny(25)
    pop = model.manufacturers
    pop.capacity_t_per_year[0] = 1200.0
    # Full cost = 30 + 10%/yr x US$90,000 per t/yr = 30 + 9 US$/kg; x 1.15 = 44.85.
    model.ledger.start_step()
    pop.invest_in_magnets(0, 30.0, 44.8)
    assert pop.capacity_pipeline == {}
    pop.invest_in_magnets(0, 30.0, 44.9)
    added = 1200.0 * 0.2 / 12  # 20 t/yr of new capacity
    assert pop.capacity_pipeline[36] == pytest.approx([added] + [0.0] * 24)
    assert model.ledger.money_flow("magnet_capex") == pytest.approx(added * 90_000 * 1e-6)
    assert pop.capacity_t_per_year[0] == 1200.0
    pop.invest_in_magnets(35, 30.0, 0.0)
    assert pop.capacity_t_per_year[0] == 1200.0
    pop.invest_in_magnets(36, 30.0, 0.0)  # arrives magnet_build_months later
    assert pop.capacity_t_per_year[0] == pytest.approx(1200.0 + added)
    assert 36 not in pop.capacity_pipeline


# ------------------------------------------------------------------------ expectations, risk
def test_expectations_and_risk_adapt():
    model = tiny()
    pop = model.manufacturers
    pop.expected_price[:] = [50.0, 300.0, 2.0, 50.0]
    pop.risk[:] = 0.0
    landed = np.array([60.0, 600.0, 2.0, 50.0])  # NdPr +20%, Dy/Tb doubles
    unmet = np.array([0.0, 0.0, 0.1, 0.0])  # 10% of Ce/La unmet: signal 0.5
    alerts = np.array([0.0, 0.0, 0.0, 1.0])  # a quota or licence on magnets
    pop.learn(landed, unmet, alerts)
    # Expectations move 0.2 of the way; risk moves 1/6 of the way to the signal, where the
    # signal is the largest of 5 x unmet share, alert, and the price jump / 50% (clipped to 1).
    assert pop.expected_price == pytest.approx([52.0, 360.0, 2.0, 50.0])
    assert pop.risk == pytest.approx(np.array([0.4, 1.0, 0.5, 1.0]) / 6)
