"""The bank: project finance for miners, with and without its critical-minerals programme.

Decision rule for each financing request (CAL "project finance" row; Esty 2004, *Modern Project
Finance*): value the project at the bank's own price deck, ``price_haircut`` x its adaptive
expectation of prices (lenders test cash flows at conservative prices), raised to any government
price floor; approve when the NPV at the hurdle rate is positive and this year's budget can carry
the loan. The loan is ``leverage`` x capex at the ``interest`` rate; interest is capitalised until
completion (the end of ramp-up) and the loan is then amortised over ``tenor_years``. The programme (``policy.bank_initiative``,
CAL JPMorgan initiative) adds budget (programme size x ``critical_minerals_share`` / years),
lowers the hurdle, raises leverage, lowers the rate and takes a direct equity stake
(``equity_stake_share`` x capex, from the equity budget). A government equity stake in the project
or a government floor contract cuts the hurdle by ``gov_backing_hurdle_cut``. On default the
bank recovers ``recovery_rate`` of the loan (asset sale) and writes off the rest, and its equity stake goes to zero.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import mesa
import numpy as np
from numpy.typing import NDArray

from sim.agents.miner import State
from sim.market import adapt

if TYPE_CHECKING:
    from sim.agents.miner import MinerFleet
    from sim.model import RareEarthModel


class Bank(mesa.Agent):
    """The bank's lending decisions and its book."""

    def __init__(self, model: RareEarthModel) -> None:
        super().__init__(model)
        self.p = model.params.bank
        self.account = int(model.ledger.open("bank")[0])
        self.expected = model.import_price[:3].copy()
        self.lent_this_year = 0.0
        self.equity_committed = 0.0
        self.losses_cum = 0.0
        self.year = -1

    def budget_musd(self) -> float:
        """Lending budget left this year, US$ M."""
        annual = self.p.commercial_budget_musd_per_year
        if self.model.current.policy.bank_initiative:
            annual += (
                self.p.programme_size_busd
                * 1e3
                * self.p.critical_minerals_share
                / self.p.programme_years
            )
        return annual - self.lent_this_year

    def decide(
        self, fleet: MinerFleet, requests: NDArray[np.intp], value_per_kg: NDArray[np.float64]
    ) -> NDArray[np.bool_]:
        """Decide this month's financing requests; return the mask of approved projects."""
        model = self.model
        year = model.month // 12
        if year != self.year:
            self.year, self.lent_this_year = year, 0.0
        programme = model.current.policy.bank_initiative
        hurdle = self.p.hurdle_programme if programme else self.p.hurdle_commercial
        leverage = self.p.leverage_programme if programme else self.p.leverage_commercial
        rate = self.p.interest_programme if programme else self.p.interest_commercial
        # The deck is raised to any floor the project holds (policy or contract): n x 3.
        # (The deck of one price per oxide broadcasts over the projects.)
        deck = np.fmax(self.p.price_haircut * self.expected, fleet.floors())
        deck_value = fleet.value_per_kg(deck, model.foreign.expected_home * self.p.price_haircut)
        backed = (fleet.gov_equity > 0) | (fleet.contract_floor_end > model.month).any(axis=1)
        hurdles = np.where(backed, hurdle - self.p.gov_backing_hurdle_cut, hurdle)
        npv = fleet.npv_musd(deck_value, hurdles)
        approved = np.zeros(fleet.n, dtype=bool)
        # Best projects first: the bank's budget goes to the highest NPV per dollar of capex.
        order = requests[
            np.argsort(-(npv[requests] / np.maximum(fleet.capex[requests], 1.0)), kind="stable")
        ]
        equity_left = (
            self.p.equity_budget_busd * 1e3 * self.p.equity_critical_share - self.equity_committed
        )
        for i in order:
            loan = leverage * fleet.capex[i]
            if npv[i] <= 0 or loan > self.budget_musd():
                continue
            approved[i] = True
            self.lent_this_year += loan
            self._lend(fleet, i, loan, rate)
            if programme and equity_left > 0:
                stake = min(self.p.equity_stake_share * fleet.capex[i], equity_left)
                equity_left -= stake
                self.equity_committed += stake
                fleet.bank_equity[i] += stake
                model.ledger.pay(self.account, fleet.accounts[i], stake, "bank_equity")
            working_capital = (
                fleet.mine_cap[i] / 12.0 * fleet.opex[i] * 1e-3 * fleet.p.initial_cash_months
            )
            sponsor = (
                max(fleet.capex[i] - loan - fleet.bank_equity[i] - fleet.gov_equity[i], 0.0)
                + working_capital
            )
            model.ledger.pay(model.acct["investors"], fleet.accounts[i], sponsor, "sponsor_equity")
            model.log_event(
                "bank",
                "loan",
                f"{fleet.names[i]}: US${loan:,.0f}M at {rate:.1%}, NPV at hurdle {npv[i]:,.0f}M",
            )
        return approved

    def _lend(self, fleet: MinerFleet, i: int, loan: float, rate: float) -> None:
        fleet.loan[i] = loan
        fleet.loan_rate[i] = rate
        fleet.loan_months_left[i] = 0.0  # interest capitalised until completion (end of ramp-up)
        self.model.ledger.pay(self.account, fleet.accounts[i], loan, "loan_disbursed")

    def start_repayment(self, fleet: MinerFleet, done: NDArray[np.bool_]) -> None:
        """Turn loans of completed projects into annuities over the tenor."""
        start = done & (fleet.loan > 0)
        if not np.count_nonzero(start):
            return
        months = self.p.tenor_years * 12.0
        r = fleet.loan_rate / 12.0
        with np.errstate(divide="ignore", invalid="ignore"):
            payment = np.where(
                r > 0, fleet.loan * r / (1.0 - (1.0 + r) ** -months), fleet.loan / months
            )
        fleet.loan_payment = np.where(start, payment, fleet.loan_payment)
        fleet.loan_months_left = np.where(start, months, fleet.loan_months_left)

    def collect(self, fleet: MinerFleet) -> None:
        """Interest and principal due from every borrower this month."""
        has_loan = fleet.loan > 1e-12
        if not np.count_nonzero(has_loan):
            return
        interest = np.where(has_loan, fleet.loan * fleet.loan_rate / 12.0, 0.0)
        # Interest until completion (construction and ramp-up) is capitalised, as project finance
        # does: repayment starts once the plant has passed its ramp-up (completion).
        building = has_loan & fleet.in_state(State.CONSTRUCTION, State.RAMP_UP)
        if np.count_nonzero(building):
            fleet.loan = fleet.loan + np.where(building, interest, 0.0)
            interest = np.where(building, 0.0, interest)
        amortising = has_loan & (fleet.loan_months_left > 0)
        principal = np.where(
            amortising, np.minimum(np.maximum(fleet.loan_payment - interest, 0.0), fleet.loan), 0.0
        )
        ledger = self.model.ledger
        # No interest is due while every loan is capitalising, no principal before amortising.
        if np.count_nonzero(interest):
            ledger.pay(fleet.accounts, self.account, interest, "loan_interest")
        if np.count_nonzero(principal):
            ledger.pay(fleet.accounts, self.account, principal, "loan_principal")
        fleet.loan = fleet.loan - principal
        fleet.loan_months_left = np.where(
            amortising, fleet.loan_months_left - 1, fleet.loan_months_left
        )

    def write_off(self, fleet: MinerFleet, broke: NDArray[np.bool_]) -> None:
        """Recover part of defaulted loans through an asset sale; write off the rest."""
        ledger = self.model.ledger
        recovered = fleet.loan * self.p.recovery_rate * broke
        ledger.pay(self.model.acct["investors"], self.account, recovered, "loan_recovery")
        loss = float(
            (fleet.loan * broke).sum() - recovered.sum() + (fleet.bank_equity * broke).sum()
        )
        self.losses_cum += loss
        fleet.loan = np.where(broke, 0.0, fleet.loan)
        fleet.loan_payment = np.where(broke, 0.0, fleet.loan_payment)
        fleet.bank_equity = np.where(broke, 0.0, fleet.bank_equity)
        # What the defaulted project still owes its suppliers is settled by its owners.
        shortfall = np.maximum(-fleet.cash(), 0.0) * broke
        ledger.pay(self.model.acct["investors"], fleet.accounts, shortfall, "default_settlement")

    def learn(self, prices: NDArray[np.float64]) -> None:
        """The bank's slow-moving price expectation."""
        self.expected = adapt(self.expected, prices, self.p.expectation_lambda)

    def book(self, fleet: MinerFleet) -> tuple[float, float]:
        """Loans outstanding and equity stakes at market value, US$ M."""
        share = np.divide(
            fleet.bank_equity, fleet.capex, out=np.zeros(fleet.n), where=fleet.capex > 0
        )
        equity = float((np.minimum(np.maximum(share, 0.0), 1.0) * fleet.equity_value).sum())
        return float(fleet.loan.sum()), equity
