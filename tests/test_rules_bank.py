"""Hand-computed cases for the Bank's decision rules (sim.agents.bank).

Three round-number projects: 1000 t/yr of pure NdPr, all separated, opex 10 US$/kg, 24 months to
build. At the bank's deck price of 0.8 x 40 = 32 US$/kg the operating cash flow is
1000 x 0.85 x 22 / 1000 - 0.15 x 1000 x 10 / 1000 = 17.2 US$ M/yr, so the NPV at the 12% hurdle is
17.2 x 7.469444 (20-year annuity) x 0.711780 (1.12^-3) - capex = 91.4456 - capex.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from sim.agents.miner import MinerFleet, State
from sim.model import RareEarthModel
from tests.helpers import tiny_model

PV_AT_12 = 17.2 * (1 - 1.12**-20) / 0.12 * 1.12**-3  # 91.4456
PV_AT_10 = 17.2 * (1 - 1.10**-20) / 0.10 * 1.10**-3  # 110.0175


def tiny(**overrides: Any) -> RareEarthModel:
    return tiny_model(miners=3, months=12, **overrides)


def requests(model: RareEarthModel, capex: list[float]) -> MinerFleet:
    fleet = model.miners
    n = fleet.n
    fleet.state = np.full(n, int(State.FINANCING), dtype=np.int64)
    fleet.months_in_state = np.zeros(n)
    fleet.basket = np.tile([1.0, 0.0, 0.0], (n, 1))
    fleet.mine_cap = np.full(n, 1000.0)
    fleet.sep_cap = np.full(n, 1000.0)
    fleet.capex = np.array(capex, dtype=float)
    fleet.opex = np.full(n, 10.0)
    fleet.construction_months = np.full(n, 24.0)
    model.bank.expected = np.array([40.0, 0.0, 0.0])
    model.foreign.expected_home = np.zeros(3)
    return fleet


def decide(model: RareEarthModel, fleet: MinerFleet) -> list[bool]:
    order = np.arange(fleet.n)
    return model.bank.decide(fleet, order, np.zeros(fleet.n)).tolist()


def test_pv_constants():
    assert pytest.approx(91.44556186) == PV_AT_12
    assert pytest.approx(110.01750261) == PV_AT_10


def test_approves_iff_npv_at_deck_price_positive():
    model = tiny()
    fleet = requests(model, [91.0, 92.0, 50.0])
    fleet.opex[2] = 40.0  # deck 32 < opex: negative NPV whatever the capex
    assert decide(model, fleet) == [True, False, False]
    assert fleet.loan.tolist() == [45.5, 0.0, 0.0]  # 50% of capex
    assert fleet.loan_rate[0] == 0.08
    assert model.bank.lent_this_year == 45.5


def test_loan_and_sponsor_equity_paid_in():
    model = tiny()
    fleet = requests(model, [60.0, 500.0, 500.0])
    cash = fleet.cash()
    bank_cash = float(model.ledger.money[model.bank.account])
    model.ledger.start_step()
    decide(model, fleet)
    # Loan 30 from the bank; sponsors pay the other 30 of capex plus 6 months of opex at
    # capacity (1000 t / 12 x 10 US$/kg = 0.833 US$ M a month, x 6 = 5) as working capital.
    assert model.ledger.money_flow("loan_disbursed") == pytest.approx(30.0)
    assert model.ledger.money_flow("sponsor_equity") == pytest.approx(35.0)
    assert fleet.cash()[0] - cash[0] == pytest.approx(65.0)
    assert float(model.ledger.money[model.bank.account]) - bank_cash == pytest.approx(-30.0)
    assert fleet.loan_months_left[0] == 0.0  # interest only until construction completes
    assert [e["kind"] for e in model.events] == ["loan"]


def test_deck_price_is_raised_to_a_price_floor():
    model = tiny()
    fleet = requests(model, [200.0, 200.0, 200.0])
    assert decide(model, fleet) == [False, False, False]  # NPV 91.4 - 200 < 0 at deck 32
    model = tiny(**{"policy.price_floor.ndpr": 110.0})
    fleet = requests(model, [200.0, 200.0, 200.0])
    assert decide(model, fleet) == [True, True, True]  # deck 110: 1000 x 0.85 x 100 / 1000 ...


def test_loan_must_fit_the_year_budget_best_npv_per_capex_first():
    model = tiny()
    # Three 10x-sized projects (loan 500 each), budget 800: only one fits.
    fleet = requests(model, [1000.0, 1000.0, 1000.0])
    fleet.mine_cap[:] = 100_000.0
    fleet.sep_cap[:] = 100_000.0
    fleet.opex = np.array([12.0, 10.0, 11.0])  # the second is the best
    assert model.bank.budget_musd() == 800.0
    assert decide(model, fleet) == [False, True, False]
    assert model.bank.budget_musd() == 300.0
    # Same month: still no room. A new year restores the budget: the next best (opex 11) goes.
    fleet.state[:] = int(State.FINANCING)
    requested = np.array([0, 2])
    assert model.bank.decide(fleet, requested, np.zeros(3)).tolist() == [False, False, False]
    model.month = 12
    assert model.bank.decide(fleet, requested, np.zeros(3)).tolist() == [False, False, True]
    assert model.bank.lent_this_year == 500.0


def test_loan_larger_than_budget_is_refused_even_with_positive_npv():
    model = tiny()
    fleet = requests(model, [2000.0, 2000.0, 2000.0])
    fleet.mine_cap[:] = 100_000.0
    fleet.sep_cap[:] = 100_000.0
    # NPV = 100 x 91.4456 - 2000 > 0, but the loan (1000) exceeds the 800 budget.
    assert decide(model, fleet) == [False, False, False]


def test_programme_budget_leverage_rate_hurdle_and_equity():
    model = tiny(**{"policy.bank_initiative": True})
    bank = model.bank
    # 800 + 1500 bn x 1e3 x 1% / 10 yr = 2300 US$ M/yr.
    assert bank.budget_musd() == pytest.approx(2300.0)
    fleet = requests(model, [2000.0, 100.0, 105.0])
    fleet.mine_cap[0] = fleet.sep_cap[0] = 100_000.0
    model.ledger.start_step()
    # Project 1: PV at the programme's 8% hurdle exceeds 100; project 2 (capex 105) too.
    pv8 = 17.2 * (1 - 1.08**-20) / 0.08 * 1.08**-3
    assert pv8 > 105.0
    assert decide(model, fleet) == [True, True, True]
    assert fleet.loan.tolist() == pytest.approx([1400.0, 70.0, 73.5])  # 70% of capex
    assert fleet.loan_rate.tolist() == [0.06] * 3
    # Equity: 20% of capex from a 10 bn x 10% = 1000 US$ M budget, best NPV per capex first.
    order = np.argsort(-np.array([100 * pv8 - 2000, pv8 - 100, pv8 - 105]) / [2000, 100, 105])
    assert order.tolist() == [0, 1, 2]
    assert fleet.bank_equity.tolist() == pytest.approx([400.0, 20.0, 21.0])
    assert bank.equity_committed == pytest.approx(441.0)
    assert model.ledger.money_flow("bank_equity") == pytest.approx(441.0)
    # Sponsors: capex - loan - bank equity (+ working capital 6 months of opex at capacity).
    working = fleet.mine_cap / 12 * 10 * 1e-3 * 6
    expected_sponsor = np.maximum([2000 - 1400 - 400, 100 - 70 - 20, 105 - 73.5 - 21], 0)
    assert model.ledger.money_flow("sponsor_equity") == pytest.approx(
        float((expected_sponsor + working).sum())
    )


def test_programme_equity_budget_runs_out():
    model = tiny(**{"policy.bank_initiative": True, "bank.equity_critical_share": 0.05})
    fleet = requests(model, [2000.0, 2000.0, 2000.0])
    fleet.mine_cap[:] = fleet.sep_cap[:] = 100_000.0
    fleet.opex = np.array([10.0, 11.0, 12.0])
    # Equity budget 10 bn x 5% = 500: 400 to the first, the last 100 to the second.
    # Loans 1400 each against 2300 a year: only the first loan fits.
    assert decide(model, fleet) == [True, False, False]
    assert fleet.bank_equity.tolist() == pytest.approx([400.0, 0.0, 0.0])
    model.month = 12
    fleet.state[:] = int(State.FINANCING)
    model.bank.decide(fleet, np.array([1]), np.zeros(3))
    assert fleet.bank_equity.tolist() == pytest.approx([400.0, 100.0, 0.0])


def test_government_equity_cuts_the_hurdle():
    model = tiny()
    fleet = requests(model, [100.0, 100.0, 100.0])
    fleet.gov_equity[1] = 25.0
    # NPV 91.4 - 100 < 0 at 12%; at 12% - 2% = 10%: 110.0 - 100 > 0.
    assert decide(model, fleet) == [False, True, False]


# ------------------------------------------------------------------------- debt service
def test_annuity_payment_formula_and_amortisation():
    model = tiny()
    fleet = model.miners
    bank = model.bank
    fleet.loan = np.array([100.0, 100.0, 0.0])
    fleet.loan_rate = np.array([0.06, 0.08, 0.0])
    done = np.array([True, False, True])
    bank.start_repayment(fleet, done)
    # r = 0.5%/month over 84 months: 100 x 0.005 / (1 - 1.005^-84) = 1.4608554.
    assert fleet.loan_payment[0] == pytest.approx(1.46085545, rel=1e-8)
    assert fleet.loan_payment[0] == pytest.approx(100 * 0.005 / (1 - 1.005**-84))
    assert fleet.loan_months_left.tolist() == [84.0, 0.0, 0.0]
    bank_cash = float(model.ledger.money[bank.account])
    model.ledger.start_step()
    bank.collect(fleet)
    # Project 0 pays 0.5 interest + 0.9608554 principal; project 1 (building) interest only.
    assert model.ledger.money_flow("loan_interest") == pytest.approx(0.5 + 100 * 0.08 / 12)
    assert model.ledger.money_flow("loan_principal") == pytest.approx(1.46085545 - 0.5)
    assert fleet.loan[:2] == pytest.approx([100 - 0.96085545, 100.0])
    assert float(model.ledger.money[bank.account]) - bank_cash == pytest.approx(
        1.46085545 + 100 * 0.08 / 12
    )
    for _ in range(83):
        bank.collect(fleet)
    assert fleet.loan[0] == pytest.approx(0.0, abs=1e-9)
    assert fleet.loan_months_left[0] == 0.0


def test_zero_rate_loan_repaid_in_equal_instalments():
    model = tiny()
    fleet = model.miners
    fleet.loan = np.array([84.0, 0.0, 0.0])
    fleet.loan_rate = np.zeros(3)
    model.bank.start_repayment(fleet, np.array([True, False, False]))
    assert fleet.loan_payment[0] == pytest.approx(1.0)


def test_write_off_is_loan_times_one_minus_recovery():
    model = tiny(**{"bank.recovery_rate": 0.4})
    fleet = model.miners
    bank = model.bank
    fleet.loan = np.array([100.0, 50.0, 10.0])
    fleet.bank_equity = np.array([0.0, 5.0, 0.0])
    bank_cash = float(model.ledger.money[bank.account])
    bank.write_off(fleet, np.array([True, True, False]))
    assert float(model.ledger.money[bank.account]) - bank_cash == pytest.approx(0.4 * 150.0)
    assert bank.losses_cum == pytest.approx(0.6 * 150.0 + 5.0)
    assert fleet.loan.tolist() == [0.0, 0.0, 10.0]
    assert fleet.bank_equity.tolist() == [0.0, 0.0, 0.0]


def test_bank_expectation_and_book():
    model = tiny()
    bank = model.bank
    bank.expected = np.array([50.0, 300.0, 2.0])
    bank.learn(np.array([70.0, 300.0, 0.0]))
    assert bank.expected == pytest.approx([51.0, 300.0, 1.9])  # lambda 0.05
    fleet = model.miners
    fleet.loan = np.array([10.0, 20.0, 0.0])
    fleet.capex = np.array([100.0, 0.0, 50.0])
    fleet.bank_equity = np.array([20.0, 0.0, 10.0])
    fleet.equity_value = np.array([300.0, 99.0, 40.0])
    loans, equity = bank.book(fleet)
    assert loans == 30.0
    assert equity == pytest.approx(0.2 * 300.0 + 0.2 * 40.0)
