"""The importing government: tariffs, price floors, equity, stockpile, and a reaction function.

Levers are the scenario's ``policy`` keys, changed by date through the scenario's ``schedule``
(scripted) or by the government itself (``government.reaction.enabled``). Rules:

- **Tariffs** collected at the border on the FOB value of imports from the foreign supplier
  (pass-through about 100%, CAL: Amiti, Redding and Weinstein 2019).
- **Price floor** contracts (CAL: DoD - MP Materials): for every tonne a domestic miner sells below
  the floor the government pays the gap; above it, the miner pays back ``floor_upside_share`` of
  the excess.
- **Reaction function**: when the share of manufacturers halted, the share of demand unmet or the
  landed-to-reference price ratio crosses its trigger, the government decides after
  ``lag_months`` (CAL: the DoD-MP deal came three months after the April 2025 controls): it sets
  the configured price floors, puts ``equity_musd`` into projects not yet built
  (best NPV first, which also cuts the bank's hurdle for them), and releases its stockpile over
  ``stockpile_release_months``. Each response happens once.
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
        for product, level in (("ndpr", reaction.floor_ndpr), ("dytb", reaction.floor_dytb)):
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
            fleet.gov_equity[i] += stake
            self.equity_cost += stake
            model.ledger.pay(self.account, fleet.accounts[i], stake, "gov_equity")
            model.log_event("government", "policy", f"equity US${stake:,.0f}M in {fleet.names[i]}")

    def stockpile_offers(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Quantities released this month (t) at a zero ask (the government is a price taker)."""
        held = self.model.ledger.tonnes[self.stockpile_account]
        return np.minimum(self.release_per_month, held), np.zeros(4)

    def settle_floor(
        self, fleet: MinerFleet, k: int, sold_t: NDArray[np.float64], price: float
    ) -> float:
        """Pay the floor gap on domestic sales of product ``k`` (or collect the upside share)."""
        model = self.model
        floor = model.floor_array()[k]
        if np.isnan(floor):
            return price
        gap = max(floor - price, 0.0)
        model.ledger.pay(self.account, fleet.accounts, sold_t * gap * 1e-3, "floor_payments")
        upside = max(price - floor, 0.0) * model.current.policy.floor_upside_share
        model.ledger.pay(fleet.accounts, self.account, sold_t * upside * 1e-3, "floor_upside")
        return price + gap - upside

    def equity_holdings(self, fleet: MinerFleet) -> float:
        """Government equity stakes at market value, US$ M."""
        with np.errstate(divide="ignore", invalid="ignore"):
            share = np.where(fleet.capex > 0, fleet.gov_equity / fleet.capex, 0.0)
        marked = np.clip(share, 0.0, 1.0) * fleet.equity_value
        return float(np.where(fleet.gov_equity > 0, marked, 0.0).sum())
