"""The importing government: tariffs, price floors, equity, stockpile, and a reaction function.

Levers are the scenario's ``policy`` keys, changed by date through the scenario's ``schedule``
(scripted) or by the government itself (``government.reaction.enabled``). Rules:

- **Tariffs** collected at the border on the FOB value of imports from the foreign supplier
  (pass-through about 100%, CAL: Amiti, Redding and Weinstein 2019).
- **Price floor** contracts (CAL: DoD - MP Materials): for every tonne a domestic miner sells below
  the floor the government pays the gap; above it, the miner pays back ``floor_upside_share`` (or its contract's share) of
  the excess.
- **Reaction function**: when the share of manufacturers halted, the share of demand unmet or the
  landed-to-reference price ratio crosses its trigger, the government decides after
  ``lag_months`` (CAL: the DoD-MP deal came three months after the April 2025 controls): it sets
  the configured price floors (unless ``set_floors`` is off), puts ``equity_musd`` into projects not yet built
  (best NPV first, which also cuts the bank's hurdle for them), and releases its stockpile over
  ``stockpile_release_months``. Each response happens once.
- **Contracts** with named projects (``government.contracts``, CAL: DoD - MP Materials, USA Rare
  Earth): equity (a stake booked at its post-money share), grants, loans (annuities), project
  price floors with an upside share, and offtake into the stockpile at a contract price, each from
  its date for its term. Loans and stakes in a project that defaults are lost.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import mesa
import numpy as np
from numpy.typing import NDArray

from sim.agents.miner import MinerFleet, State
from sim.params import GOODS

if TYPE_CHECKING:
    from sim.model import RareEarthModel


class Government(mesa.Agent):
    """The importing government."""

    def __init__(self, model: RareEarthModel) -> None:
        super().__init__(model)
        self.account = int(model.ledger.open("government")[0])
        self.stockpile_account = int(model.ledger.open("stockpile")[0])
        stock = model.params.government.stockpile
        for good in GOODS:
            amount = getattr(stock, good)
            model.ledger.move(
                good,
                model.acct["ground_domestic"],
                self.stockpile_account,
                amount,
                "opening_stockpile",
            )
        self.trigger_month: int | None = None
        self.responded = False
        self.release_per_month = np.zeros(4)
        self.equity_cost = 0.0
        self.grants = 0.0
        self.losses = 0.0
        self.offtakes: list[tuple[int, int, float | None, float, float]] = []

    def watch(self, halted_share: float, unmet_share: float, price_ratio: float) -> None:
        """Reaction function: notice a crisis, then respond once after the decision lag."""
        model = self.model
        reaction = model.current.government.reaction
        if not reaction.enabled or self.responded:
            return
        triggered = (
            halted_share >= reaction.trigger_halted_share
            or unmet_share >= reaction.trigger_unmet_share
            or price_ratio >= reaction.trigger_price_ratio
        )
        if self.trigger_month is None and triggered:
            self.trigger_month = model.month
            model.log_event(
                "government",
                "policy",
                f"crisis noticed (halted {halted_share:.1%}, unmet {unmet_share:.1%}, price x{price_ratio:.2f}); decision in {reaction.lag_months} months",
            )
        if (
            self.trigger_month is not None
            and model.month >= self.trigger_month + reaction.lag_months
        ):
            self.respond()

    def respond(self) -> None:
        """Carry out the configured responses."""
        model = self.model
        reaction = model.current.government.reaction
        self.responded = True
        floors = (
            (("ndpr", reaction.floor_ndpr), ("dytb", reaction.floor_dytb))
            if reaction.set_floors
            else ()
        )
        for product, level in floors:
            if level is not None and getattr(model.current.policy.price_floor, product) is None:
                model.set_lever(
                    f"policy.price_floor.{product}", level, source="government reaction"
                )
        if reaction.equity_musd > 0:
            self.take_equity(model.miners, reaction.equity_musd)
        if reaction.stockpile_release_months > 0:
            held = model.ledger.tonnes[self.stockpile_account].copy()
            self.release_per_month = held / reaction.stockpile_release_months
            model.log_event(
                "government",
                "policy",
                f"stockpile release over {reaction.stockpile_release_months:g} months",
            )

    def take_equity(self, fleet: MinerFleet, budget_musd: float) -> None:
        """Put equity into projects not yet built (prospects, seeking finance, building), best NPV per capex first."""
        model = self.model
        candidates = np.nonzero(
            fleet.in_state(State.FINANCING, State.CONSTRUCTION, State.PROSPECT) & (fleet.capex > 0)
        )[0]
        if candidates.size == 0:
            return
        value = fleet.value_per_kg(fleet.expected_received(), model.foreign.expected_home)
        npv = fleet.npv_musd(value, fleet.p.discount_rate)
        order = candidates[np.argsort(-npv[candidates] / fleet.capex[candidates], kind="stable")]
        for i in order:
            if budget_musd <= 0:
                break
            stake = min(0.25 * fleet.capex[i], budget_musd)
            budget_musd -= stake
            model.ledger.pay(self.account, fleet.accounts[i], stake, "gov_equity")
            self.record_stake(fleet, i, stake)
            model.log_event("government", "policy", f"equity US${stake:,.0f}M in {fleet.names[i]}")

    def stockpile_offers(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Quantities released this month (t) at a zero ask (the government is a price taker)."""
        held = self.model.ledger.tonnes[self.stockpile_account]
        return np.minimum(self.release_per_month, held), np.zeros(4)

    def settle_floor(
        self, fleet: MinerFleet, k: int, sold_t: NDArray[np.float64], price: float
    ) -> float:
        """Pay each project the gap to its floor on sales of oxide ``k``; collect upside shares.

        Returns the average price domestic producers received (the market price if none sold).
        """
        if not fleet.any_floor(k):
            return price
        has_floor = fleet.floored()[:, k]
        floors = fleet.floors()[:, k]
        floor = np.where(has_floor, floors, 0.0)
        gap = np.where(has_floor, np.maximum(floor - price, 0.0), 0.0)
        upside = np.where(
            has_floor, np.maximum(price - floor, 0.0) * fleet.upside_shares()[:, k], 0.0
        )
        ledger = self.model.ledger
        ledger.pay(self.account, fleet.accounts, sold_t * gap * 1e-3, "floor_payments")
        ledger.pay(fleet.accounts, self.account, sold_t * upside * 1e-3, "floor_upside")
        sold = float(sold_t.sum())
        if sold <= 0:
            return price + float(gap[has_floor].max())
        return price + float((sold_t * (gap - upside)).sum()) / sold

    # ---------------------------------------------------------------------- contracts
    def sign_contracts(self, fleet: MinerFleet, date: str) -> None:
        """Carry out the contracts dated this month (equity, grant, loan, floor, offtake)."""
        model = self.model
        ledger = model.ledger
        for c in model.contracts_by_date.get(date, []):
            i = fleet.index_of[c.miner]
            account = fleet.accounts[i]
            if c.kind in {"equity", "grant", "loan"}:
                ledger.pay(
                    self.account,
                    account,
                    c.amount_musd,
                    {"equity": "gov_equity", "grant": "grant", "loan": "gov_loan_disbursed"}[
                        c.kind
                    ],
                )
            if c.kind == "equity":
                self.record_stake(fleet, i, c.amount_musd)
            elif c.kind == "grant":
                self.grants += c.amount_musd
            elif c.kind == "loan":
                months = c.years * 12.0
                r = c.interest_rate / 12.0
                fleet.gov_loan[i] += c.amount_musd
                fleet.gov_loan_rate[i] = c.interest_rate
                fleet.gov_loan_payment[i] = (
                    fleet.gov_loan[i] * r / (1.0 - (1.0 + r) ** -months)
                    if r > 0
                    else fleet.gov_loan[i] / months
                )
            elif c.kind == "floor":
                k = ("ndpr", "dytb", "cela").index(str(c.product))
                fleet.contract_floor[i, k] = c.price
                fleet.contract_upside[i, k] = c.upside_share
                fleet.contract_floor_end[i, k] = model.month + c.years * 12.0
            elif c.kind == "offtake":
                self.offtakes.append(
                    (
                        i,
                        GOODS.index(str(c.product)),
                        c.t_per_month,
                        float(c.price or 0.0),
                        model.month + c.years * 12.0,
                    )
                )
            model.log_event(
                "government",
                "policy",
                f"{c.kind} contract with {c.miner}: "
                + (
                    f"US${c.amount_musd:,.0f}M"
                    if c.amount_musd
                    else f"{c.product} at US${c.price}/kg for {c.years:g} yr"
                )
                + (f" ({c.source})" if c.source else ""),
            )

    def record_stake(self, fleet: MinerFleet, i: int, amount_musd: float) -> None:
        """Book an equity stake at a post-money share of the project's value."""
        fleet.gov_equity[i] += amount_musd
        post_money = max(float(fleet.equity_value[i]), float(fleet.capex[i])) + amount_musd
        fleet.gov_share[i] = min(fleet.gov_share[i] + amount_musd / post_money, 1.0)
        self.equity_cost += amount_musd

    def take_offtake(self, fleet: MinerFleet) -> None:
        """Buy contracted offtake from projects into the stockpile at the contract price."""
        ledger = self.model.ledger
        alive = []
        for i, g, quantity, price, end in self.offtakes:
            if self.model.month >= end or fleet.state[i] in (State.DEFAULTED, State.CLOSED):
                continue
            alive.append((i, g, quantity, price, end))
            held = float(ledger.tonnes[fleet.accounts[i], g])
            bought = held if quantity is None else min(quantity, held)
            ledger.move(GOODS[g], fleet.accounts[i], self.stockpile_account, bought, "offtake")
            ledger.pay(self.account, fleet.accounts[i], bought * price * 1e-3, "offtake_purchases")
        self.offtakes = alive

    def collect_loans(self, fleet: MinerFleet) -> None:
        """Interest and principal on government loans."""
        has_loan = fleet.gov_loan > 1e-12
        if not np.count_nonzero(has_loan):
            return
        interest = np.where(has_loan, fleet.gov_loan * fleet.gov_loan_rate / 12.0, 0.0)
        principal = np.where(
            has_loan,
            np.minimum(np.maximum(fleet.gov_loan_payment - interest, 0.0), fleet.gov_loan),
            0.0,
        )
        self.model.ledger.pay(
            fleet.accounts, self.account, interest + principal, "gov_loan_service"
        )
        fleet.gov_loan = fleet.gov_loan - principal

    def write_off(self, broke: NDArray[np.bool_], fleet: MinerFleet) -> None:
        """Government loans and stakes in defaulted projects are lost."""
        self.losses += float((fleet.gov_loan * broke).sum())
        fleet.gov_loan = np.where(broke, 0.0, fleet.gov_loan)
        fleet.gov_share = np.where(broke, 0.0, fleet.gov_share)

    def equity_holdings(self, fleet: MinerFleet) -> float:
        """Government equity stakes at market value, US$ M."""
        return float((fleet.gov_share * fleet.equity_value).sum())
