"""Hand-computed cases for the Miner decision rules (sim.agents.miner).

A tiny model with 4 projects; each test overwrites the fleet's arrays with round numbers (one
product, NdPr, in the basket unless said otherwise; separation = mine capacity so the whole output
is separated) and calls one method.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from sim.agents.miner import MinerFleet, State
from sim.model import RareEarthModel
from tests.helpers import tiny_model


def tiny(**overrides: Any) -> RareEarthModel:
    return tiny_model(miners=4, months=12, **overrides)


def simple_fleet(model: RareEarthModel, states: list[State]) -> MinerFleet:
    """Four identical round-number projects in the given states."""
    fleet = model.miners
    n = fleet.n
    fleet.state = np.array([int(s) for s in states], dtype=np.int64)
    fleet.months_in_state = np.zeros(n)
    fleet.basket = np.tile([1.0, 0.0, 0.0], (n, 1))
    fleet.mine_cap = np.full(n, 1000.0)
    fleet.sep_cap = np.full(n, 1000.0)
    fleet.capex = np.full(n, 50.0)
    fleet.opex = np.full(n, 10.0)
    fleet.construction_months = np.full(n, 24.0)
    fleet.ramp_months = np.full(n, 12.0)
    fleet.ramp_ceiling = np.ones(n)
    fleet.reserves = np.full(n, 1e9)
    fleet.permit_left = np.zeros(n)
    return fleet


def set_expected_ndpr(fleet: MinerFleet, price: float) -> None:
    fleet.expected_market = np.array([price, 0.0, 0.0])


# ------------------------------------------------------------------------------------ NPV
def test_npv_formula_by_hand():
    model = tiny()
    fleet = simple_fleet(model, [State.PROSPECT] * 4)
    # 1000 t/yr x 0.85 x (30 - 10) US$/kg = 17.0 M/yr; fixed 0.15 x opex at capacity = 1.5 M/yr.
    # 15.5 M/yr over 20 years at 10% (annuity 8.51356) starting 24 + 12 months out (1.1^-3).
    npv = fleet.npv_musd(np.full(4, 30.0), 0.10)
    assert npv[0] == pytest.approx(49.14367968, rel=1e-9)
    assert npv[0] == pytest.approx(15.5 * (1 - 1.1**-20) / 0.1 * 1.1**-3 - 50.0)
    # Capex 100 more makes it negative; opex equal to value leaves only fixed costs.
    fleet.capex[1] = 150.0
    fleet.opex[2] = 30.0
    npv = fleet.npv_musd(np.full(4, 30.0), 0.10)
    assert npv[1] == pytest.approx(49.14367968 - 100.0)
    # Fixed cost 0.15 x 1000 t x 30 US$/kg = 4.5 M/yr.
    assert npv[2] == pytest.approx(-4.5 * (1 - 1.1**-20) / 0.1 * 1.1**-3 - 50.0)


def test_value_per_kg_mixes_separated_and_concentrate():
    model = tiny()
    fleet = simple_fleet(model, [State.OPERATING] * 4)
    fleet.basket[:] = [0.25, 0.01, 0.74]
    fleet.sep_cap[0] = 250.0  # a quarter separated, the rest sold as concentrate
    prices = np.array([60.0, 400.0, 2.0])
    foreign = np.array([50.0, 300.0, 1.0])
    value = fleet.value_per_kg(prices, foreign)
    separated = 0.25 * 60 + 0.01 * 400 + 0.74 * 2  # 20.48
    concentrate = (0.25 * 50 + 0.01 * 300 + 0.74 * 1) * (1 - 0.5)  # 8.12
    assert value[0] == pytest.approx(0.25 * separated + 0.75 * concentrate)
    assert value[1] == pytest.approx(separated)


# ------------------------------------------------------------------------- idle / restart
def test_idle_and_restart_thresholds():
    model = tiny()
    fleet = simple_fleet(model, [State.OPERATING, State.OPERATING, State.IDLE, State.IDLE])
    fleet.opex = np.array([9.5, 11.0, 9.0, 8.0])
    set_expected_ndpr(fleet, 10.0)
    fleet.advance()
    # value / opex: 1.053 stays on; 0.909 < 1 idles; 1.111 < 1.15 stays idle; 1.25 restarts.
    assert [State(s) for s in fleet.state] == [
        State.OPERATING,
        State.IDLE,
        State.IDLE,
        State.OPERATING,
    ]


def test_idle_restart_hysteresis_path():
    model = tiny()
    fleet = simple_fleet(model, [State.OPERATING] + [State.CLOSED] * 3)
    fleet.opex[0] = 9.5
    path = []
    for price in [10.0, 9.0, 10.5, 11.0, 9.6, 9.4]:
        set_expected_ndpr(fleet, price)
        fleet.advance()
        path.append(State(int(fleet.state[0])))
    # 1.053 on; 0.947 idles; 1.105 stays idle (below 1.15); 1.158 restarts; 1.011 stays on;
    # 0.989 idles again.
    assert path == [
        State.OPERATING,
        State.IDLE,
        State.IDLE,
        State.OPERATING,
        State.OPERATING,
        State.IDLE,
    ]


def test_idle_without_reserves_does_not_restart():
    model = tiny()
    fleet = simple_fleet(model, [State.IDLE] * 4)
    fleet.reserves[0] = 0.0
    set_expected_ndpr(fleet, 20.0)
    fleet.advance()
    assert State(int(fleet.state[0])) == State.IDLE
    assert State(int(fleet.state[1])) == State.OPERATING


# ----------------------------------------------------------------------------- production
def test_ramp_up_linear_to_ceiling():
    model = tiny()
    fleet = simple_fleet(model, [State.RAMP_UP] + [State.CLOSED] * 3)
    fleet.mine_cap[0] = fleet.sep_cap[0] = 1200.0  # 100 t/month at full rate
    fleet.ramp_months[0] = 10.0
    fleet.ramp_ceiling[0] = 0.65
    utils, outputs = [], []
    for months in [0.0, 4.0, 5.0, 10.0, 15.0]:
        fleet.months_in_state[0] = months
        model.ledger.start_step()
        fleet.produce()
        utils.append(float(fleet.util[0]))
        outputs.append(model.ledger.tonne_flow("mine_domestic", "ndpr"))
    assert utils == pytest.approx([0.0, 0.26, 0.325, 0.65, 0.65])
    assert outputs == pytest.approx([0.0, 26.0, 32.5, 65.0, 65.0])


def test_ramp_up_through_the_state_machine_then_operates_at_ceiling():
    model = tiny()
    fleet = simple_fleet(model, [State.RAMP_UP] + [State.CLOSED] * 3)
    fleet.ramp_months[0] = 3.0
    fleet.ramp_ceiling[0] = 0.6
    set_expected_ndpr(fleet, 50.0)
    utils, states = [], []
    for _ in range(5):
        fleet.advance()
        fleet.produce()
        utils.append(float(fleet.util[0]))
        states.append(State(int(fleet.state[0])))
    assert utils == pytest.approx([0.2, 0.4, 0.6, 0.6, 0.6])
    assert states == [State.RAMP_UP, State.RAMP_UP] + [State.OPERATING] * 3


def test_concentrate_sold_to_foreign_supplier_at_discounted_home_prices():
    model = tiny()
    fleet = simple_fleet(model, [State.OPERATING] + [State.CLOSED] * 3)
    fleet.basket[0] = [0.25, 0.01, 0.74]
    fleet.mine_cap[0] = 1200.0
    fleet.sep_cap[0] = 600.0
    model.foreign.price_home = np.array([56.0, 370.0, 1.5])
    cash_before = fleet.cash()[0]
    model.ledger.start_step()
    fleet.produce()
    # 100 t mined, 50 t separated, 50 t concentrate at 18.81 US$/kg x (1 - 0.5).
    assert fleet.output_t[0] == pytest.approx(100.0)
    assert fleet.separated_t[0] == pytest.approx(50.0)
    assert model.ledger.tonne_flow("mine_domestic", "ndpr") == pytest.approx(12.5)
    assert model.ledger.tonne_flow("concentrate", "ndpr") == pytest.approx(12.5)
    assert model.ledger.tonne_flow("concentrate", "cela") == pytest.approx(37.0)
    value = 50.0 * (0.25 * 56 + 0.01 * 370 + 0.74 * 1.5) * 0.5 * 1e-3
    assert model.ledger.money_flow("concentrate_sales") == pytest.approx(value)
    assert fleet.cash()[0] - cash_before == pytest.approx(value)


def test_output_limited_by_reserves_then_closed():
    model = tiny()
    fleet = simple_fleet(model, [State.OPERATING] + [State.CLOSED] * 3)
    fleet.mine_cap[0] = fleet.sep_cap[0] = 1200.0
    fleet.reserves[0] = 30.0
    fleet.produce()
    assert fleet.output_t[0] == pytest.approx(30.0)
    assert fleet.reserves[0] == 0.0
    assert State(int(fleet.state[0])) == State.CLOSED


def test_offers_at_sell_ratio_of_expected_market_price_or_any_price_under_a_floor():
    model = tiny()
    fleet = model.miners
    fleet.expected_market = np.array([50.0, 300.0, 2.0])
    model.ledger.tonnes[fleet.accounts, 1] = [1.0, 2.0, 3.0, 4.0]
    accounts, qty, ask = fleet.offers(1)
    assert accounts.tolist() == fleet.accounts.tolist()
    assert qty.tolist() == [1.0, 2.0, 3.0, 4.0]
    assert ask == pytest.approx([210.0] * 4)  # 0.7 x 300
    model.set_lever("policy.price_floor.dytb", 500.0)
    _, _, ask_floor = fleet.offers(1)
    assert ask_floor.tolist() == [0.0] * 4
    # A project's own floor contract makes only that project a price taker.
    model.set_lever("policy.price_floor.dytb", None)
    fleet.contract_floor[2, 1] = 400.0
    fleet.contract_floor_end[2, 1] = model.month + 12
    _, _, ask_contract = fleet.offers(1)
    assert ask_contract == pytest.approx([210.0, 210.0, 0.0, 210.0])


# --------------------------------------------------------------------- finance, construction
def test_prospect_seeks_finance_when_permitted_and_npv_positive_then_shelved():
    model = tiny(**{"bank.commercial_budget_musd_per_year": 0.0})  # the bank cannot lend
    fleet = simple_fleet(model, [State.PROSPECT, State.PROSPECT, State.CLOSED, State.CLOSED])
    fleet.permit_left[:2] = 2.0
    fleet.opex[1] = 40.0  # value 30 < opex: NPV < 0, never seeks finance
    set_expected_ndpr(fleet, 30.0)
    states = []
    for _ in range(14):
        fleet.advance()
        states.append(State(int(fleet.state[0])))
    # Permit runs out in month 2; 12 months of refusals later (month 14) it is shelved.
    assert states[0] == State.PROSPECT
    assert states[1:13] == [State.FINANCING] * 12
    assert states[13] == State.PROSPECT
    assert fleet.permit_left[0] == 12.0  # a year before it may try again
    assert State(int(fleet.state[1])) == State.PROSPECT
    fleet.advance()
    assert fleet.permit_left[0] == 11.0
    assert State(int(fleet.state[0])) == State.PROSPECT


def test_construction_spends_exactly_capex_then_ramps_up():
    model = tiny()
    fleet = simple_fleet(model, [State.FINANCING] + [State.CLOSED] * 3)
    fleet.capex[0] = 120.0
    fleet.construction_months[0] = 4.0
    set_expected_ndpr(fleet, 60.0)
    model.bank.expected = np.array([60.0, 0.0, 0.0])
    spent, states = [], []
    for _ in range(7):
        model.ledger.start_step()
        fleet.advance()
        fleet.pay_costs()
        spent.append(model.ledger.money_flow("capex"))
        states.append(State(int(fleet.state[0])))
    # Financed in the first month: 30 a month for 4 months, ramp-up from the fifth.
    assert spent == pytest.approx([30.0, 30.0, 30.0, 30.0, 0.0, 0.0, 0.0])
    assert sum(spent) == pytest.approx(120.0)
    assert states == [State.CONSTRUCTION] * 4 + [State.RAMP_UP] * 3
    # The loan (50% of capex) does not amortise during ramp-up: repayment starts at completion.
    assert fleet.loan[0] == pytest.approx(60.0)
    assert fleet.loan_months_left[0] == 0
    fleet.ramp_months[0] = 3.0
    for _ in range(1):
        model.ledger.start_step()
        fleet.advance()
    assert State(int(fleet.state[0])) == State.OPERATING
    assert fleet.loan_months_left[0] == 84  # amortised over the 7-year tenor from completion


def test_interest_is_capitalised_until_completion():
    model = tiny()
    fleet = simple_fleet(model, [State.CONSTRUCTION, State.RAMP_UP, State.OPERATING, State.CLOSED])
    fleet.loan[:3] = 120.0
    fleet.loan_rate[:3] = 0.06
    model.ledger.start_step()
    model.bank.collect(fleet)
    # 0.5% a month: added to the loan while building or ramping up, paid in cash once operating.
    assert fleet.loan[:3] == pytest.approx([120.6, 120.6, 120.0])
    assert model.ledger.money_flow("loan_interest") == pytest.approx(0.6)


# -------------------------------------------------------------------------------- default
def test_default_on_negative_cash_and_bank_write_off():
    model = tiny()
    fleet = simple_fleet(model, [State.OPERATING] * 4)
    ledger, bank = model.ledger, model.bank
    fleet.loan[0] = 100.0
    fleet.bank_equity[0] = 20.0
    ledger.pay(fleet.accounts[0], model.acct["economy"], float(fleet.cash()[0]) + 5.0, "test")
    assert fleet.cash()[0] == pytest.approx(-5.0)
    bank_cash = float(ledger.money[bank.account])
    fleet.check_defaults()
    # Recovery 30% of the loan; written off: 70 of the loan plus the 20 equity stake.
    assert State(int(fleet.state[0])) == State.DEFAULTED
    assert float(ledger.money[bank.account]) - bank_cash == pytest.approx(30.0)
    assert bank.losses_cum == pytest.approx(100.0 * (1 - 0.3) + 20.0)
    assert fleet.loan[0] == 0.0
    assert fleet.bank_equity[0] == 0.0
    assert fleet.cash()[0] == pytest.approx(0.0)  # suppliers settled by the owners
    assert [State(int(s)) for s in fleet.state[1:]] == [State.OPERATING] * 3
    assert [e["kind"] for e in model.events] == ["default"]


def test_no_default_at_zero_cash_or_for_prospects():
    model = tiny()
    fleet = simple_fleet(model, [State.OPERATING, State.PROSPECT, State.OPERATING, State.CLOSED])
    ledger = model.ledger
    ledger.money[fleet.accounts[0]] = 0.0
    ledger.money[fleet.accounts[1]] = -3.0
    fleet.check_defaults()
    assert [State(int(s)) for s in fleet.state] == [
        State.OPERATING,
        State.PROSPECT,
        State.OPERATING,
        State.CLOSED,
    ]
    assert model.bank.losses_cum == 0.0


# ---------------------------------------------------------------------------- equity value
def test_equity_value_of_operating_and_prospect():
    model = tiny()
    fleet = simple_fleet(model, [State.OPERATING, State.PROSPECT, State.CLOSED, State.CLOSED])
    set_expected_ndpr(fleet, 30.0)
    fleet.loan[0] = 40.0
    model.ledger.money[fleet.accounts] = [25.0, 0.0, 7.0, 0.0]
    fleet.value_equity()
    annuity = (1 - 1.1**-20) / 0.1
    # Operating at its ceiling (1.0): (20 - 1.5) M/yr, certain; plus cash, less debt.
    assert fleet.equity_value[0] == pytest.approx(18.5 * annuity + 25.0 - 40.0)
    # Prospect at 85%: chance 0.5 x 0.3 of (15.5 M/yr x annuity - capex 50).
    assert fleet.equity_value[1] == pytest.approx(0.15 * (15.5 * annuity - 50.0))
    assert fleet.equity_value[2] == pytest.approx(7.0)  # closed: only its cash


def test_repayment_starts_when_a_plant_restarts_after_idling_in_ramp_up():
    model = tiny()
    fleet = simple_fleet(model, [State.IDLE, State.CLOSED, State.CLOSED, State.CLOSED])
    fleet.loan[0] = 50.0
    fleet.loan_rate[0] = 0.06
    set_expected_ndpr(fleet, 200.0)  # restarts at once
    model.ledger.start_step()
    fleet.advance()
    assert State(int(fleet.state[0])) == State.OPERATING
    assert fleet.loan_months_left[0] == 84
    assert fleet.loan_payment[0] > 0


def test_contract_floor_holds_until_its_end_month_then_lapses():
    model = tiny()
    fleet = model.miners
    fleet.contract_floor[1, 0] = 90.0
    fleet.contract_floor_end[1, 0] = model.month + 2
    held = []
    for _ in range(4):
        held.append(fleet.floored()[:, 0].tolist())
        model.month += 1
    # Active while the month is before the end: two months, then none (the cached floors lapse).
    assert held == [[False, True, False, False]] * 2 + [[False] * 4] * 2
    assert np.isnan(fleet.floors()[1, 0])


def test_prices_and_figures_edited_in_place_reach_the_next_decision():
    model = tiny()
    fleet = simple_fleet(model, [State.OPERATING] * 4)
    fleet.opex = np.full(4, 9.5)
    set_expected_ndpr(fleet, 10.0)
    fleet.advance()
    assert [State(s) for s in fleet.state] == [State.OPERATING] * 4
    # Value and costs are worked out again from the edited arrays (1.053 -> 0.947 idles).
    fleet.expected_market[0] = 9.0
    fleet.opex[3] = 8.0  # 9 / 8 = 1.125 still covers its cash cost
    fleet.advance()
    assert [State(s) for s in fleet.state] == [State.IDLE] * 3 + [State.OPERATING]
