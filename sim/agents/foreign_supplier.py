"""The dominant foreign supplier: a state-coordinated producer, exporter and home market.

One agent stands for the supplier's mines, separators, magnet makers, traders and the state that
sets quotas, taxes and licences (Mancheri et al. 2019: separate home and rest-of-world price
layers with their own inventories). Decision rules, parameters in ``foreign``:

- **Production** at the separation quota, from mined ore, imported feed and concentrate bought
  (CAL: output equals the quota); quotas grow each January by ``quota_growth_per_year`` counted
  from the year they were last set (the state plans supply to demand); cash cost
  ``production_cost_usd_per_kg``. Concentrate bought from miners abroad is separated on top of
  the quota, its cost included in the price paid.
- **Export offers** per oxide and for magnets at an FOB ask of the higher of the expected and the
  current home price (plus export
  tax, CAL/OECD row), so without restrictions import prices track home prices plus trade costs.
  A magnet is asked at its oxide content at that price plus a conversion cost calibrated to the
  reference magnet price, never below zero: no magnet is offered below the value of its oxide.
  The quantity is capped by the export quota (``policy.export_quota``, spread evenly over the
  year) and, under a licence regime, by licences approved ``delay_months`` earlier for
  ``approval_share`` of applications (applications = importers' demand less domestic output this month).
  When a cap binds, importers bid the price up: the gap between the import-market FOB price and
  the home price is a licence rent kept by quota holders (CAL: licences are tradable rents), and
  two-tier pricing emerges rather than being imposed.
- **Illicit exports** outside the quota grow with the export/home price gap:
  ``illicit_max_share`` x (1 - exp(-``illicit_gap_sensitivity`` x gap)) of planned exports (CAL:
  ~20,000 t, a third of all exports, in 2008).
- **Stock held back** while the supplier's expected home price has risen over the past year,
  up to ``holdback_max_share`` at a rise of ``holdback_full_growth``, adjusting gradually (CAL: exporters hold stock back); **prices defended** at home: below
  ``defend_price_ratio`` x reference the state buys into stock instead of selling (CAL: AP 2011).
- **Predatory pricing** (option): when entrants' operating separation capacity has grown by
  ``predatory_trigger_growth``, NdPr export asks drop to ``predatory_price_ratio`` of the price at
  which entrants' average basket value covers their cash cost (Pothen and Fink: the policy aims to
  keep the industry at home).
- **Retaliation** (option): a tariff above ``retaliation_tariff_threshold`` for
  ``retaliation_lag_months`` brings a licence regime on Dy/Tb and magnets at
  ``retaliation_approval_share``.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

import mesa
import numpy as np
from numpy.typing import NDArray

from sim.market import adapt, clear_against_curve
from sim.params import GOODS, PRODUCTS

if TYPE_CHECKING:
    from sim.agents.miner import MinerFleet
    from sim.model import RareEarthModel

MAGNET = 3


class ForeignSupplier(mesa.Agent):
    """The state-coordinated foreign supplier."""

    def __init__(self, model: RareEarthModel) -> None:
        super().__init__(model)
        p = model.params.foreign
        m = model.params.market
        self.p = p
        self.account = int(model.ledger.open("foreign_supplier")[0])
        self.state_account = int(model.ledger.open("foreign_state")[0])
        self.basket = np.array([p.basket.ndpr, p.basket.dytb, p.basket.cela])
        self.price_ref = np.array([p.price_ref.ndpr, p.price_ref.dytb, p.price_ref.cela])
        self.home_demand_ref = (
            np.array(
                [
                    p.home_demand_t_per_year.ndpr,
                    p.home_demand_t_per_year.dytb,
                    p.home_demand_t_per_year.cela,
                ]
            )
            / 12.0
        )
        self.export_plan = (
            np.array(
                [
                    p.oxide_export_t_per_year.ndpr,
                    p.oxide_export_t_per_year.dytb,
                    p.oxide_export_t_per_year.cela,
                    p.magnet_export_t_per_year,
                ]
            )
            / 12.0
        )
        self.intensity = np.array([m.magnet_ndpr_t_per_t, m.magnet_dytb_t_per_t])
        monthly = self.home_demand_ref + self.export_plan[:3]
        monthly[:2] += self.export_plan[MAGNET] * self.intensity
        self._stock_target = p.stock_target_months * monthly
        self._stock_target.flags.writeable = False
        # Conversion cost chosen so the magnet ask equals the reference export price at reference
        # oxide prices (DEM 5B, CAL prices): the supplier's costs are not published. A cost is
        # never negative: where the reference magnet price is below the value of the oxide in a
        # magnet (an inconsistent calibration), conversion counts as costless, so the magnet ask
        # never falls below the oxide content at home prices: no magnet is sold below the value
        # of its material, which the supplier could sell as oxide instead.
        self.magnet_conversion = max(
            p.magnet_price_ref - float(self.intensity @ self.price_ref[:2]), 0.0
        )
        self.price_home = self.price_ref.copy()
        self.expected_home = self.price_ref.copy()
        self.price_export = np.append(self.price_ref, p.magnet_price_ref)
        self.pipeline: list[deque[float]] = [deque() for _ in GOODS]
        self.tariff_months_high = 0
        self.retaliating = False
        self.predating = False
        self.entrant_capacity_start: float | None = None
        self.exported = np.zeros(4)
        self.illicit = np.zeros(4)
        self.home_sold = np.zeros(3)
        self.caps = np.full(4, np.inf)
        self.holdback = np.zeros(3)
        self.expectation_history: deque[NDArray[np.float64]] = deque(maxlen=13)
        # Working stock at the start: stock_target_months of home demand and export plans.
        opening = self.stock_target()
        for k, product in enumerate(PRODUCTS):
            model.ledger.move(
                product, model.acct["ground_foreign"], self.account, opening[k], "opening_stock"
            )

    # ------------------------------------------------------------------------------ views
    def stock(self) -> NDArray[np.float64]:
        """Oxide stock by product, t."""
        return self.model.ledger.tonnes[self.account, :3].copy()

    def stock_target(self) -> NDArray[np.float64]:
        """Working stock the supplier keeps, t per product (read only)."""
        return self._stock_target

    def quota_growth(self) -> float:
        """Growth factor of the quotas since they were last set (applied each January)."""
        return (1.0 + self.p.quota_growth_per_year) ** self.model.years_since_quota_set()

    def separated_t_per_month(self, growth: float | None = None) -> float:
        """Separated output this month at the quotas in force, t REO.

        Args:
            growth: the quotas' ``quota_growth()`` if the caller has it already.
        """
        cur = self.model.current.foreign
        if growth is None:
            growth = self.quota_growth()
        return (
            min(
                cur.separation_quota_t_per_year,
                cur.mine_quota_t_per_year + self.p.imported_feed_t_per_year,
            )
            * growth
            / 12.0
        )

    # -------------------------------------------------------------------------- the month
    def produce(self) -> None:
        """Separate this month's output at the quota and pay its cash cost."""
        model = self.model
        growth = self.quota_growth()
        output = self.separated_t_per_month(growth)
        for k, product in enumerate(PRODUCTS):
            model.ledger.move(
                product,
                model.acct["ground_foreign"],
                self.account,
                output * self.basket[k],
                "production_foreign",
            )
        model.ledger.pay(
            self.account,
            model.acct["economy"],
            output * self.p.production_cost_usd_per_kg * 1e-3,
            "foreign_cost",
        )
        self.mined_t = min(model.current.foreign.mine_quota_t_per_year * growth / 12.0, output)

    def buy_concentrate(self, fleet: MinerFleet, concentrate_t: NDArray[np.float64]) -> None:
        """Buy miners' unseparated output at home prices less the concentrate discount."""
        ledger = self.model.ledger
        ground = self.model.acct["ground_domestic"]
        for k, product in enumerate(PRODUCTS):
            # One account to one account: the total moves.
            bought_t = float((concentrate_t * fleet.basket[:, k]).sum())
            ledger.move(product, ground, self.account, bought_t, "concentrate")
        value = (
            concentrate_t
            * (fleet.basket @ self.price_home)
            * (1.0 - fleet.p.concentrate_discount)
            * 1e-3
        )
        ledger.pay(self.account, fleet.accounts, value, "concentrate_sales")

    def update_regime(self, applications: NDArray[np.float64], entrant_capacity: float) -> None:
        """Set this month's export caps from quotas, licences, retaliation and predation."""
        model = self.model
        cur = model.current
        quota = cur.policy.export_quota
        tariffs = model.tariff_array()
        high = bool((tariffs > self.p.retaliation_tariff_threshold).any())
        self.tariff_months_high = self.tariff_months_high + 1 if high else 0
        retaliate = (
            cur.foreign.retaliation and self.tariff_months_high > self.p.retaliation_lag_months
        )
        if retaliate != self.retaliating:
            self.retaliating = retaliate
            model.log_event(
                "foreign_supplier",
                "licence",
                "retaliation: licences on dytb and magnets" if retaliate else "retaliation lifted",
            )

        if self.entrant_capacity_start is None:
            self.entrant_capacity_start = max(entrant_capacity, 1.0)
        predate = (
            cur.foreign.predatory_pricing
            and entrant_capacity
            >= (1.0 + self.p.predatory_trigger_growth) * self.entrant_capacity_start
        )
        if predate != self.predating:
            self.predating = predate
            model.log_event(
                "foreign_supplier",
                "predation",
                "predatory export pricing starts" if predate else "predatory export pricing ends",
            )

        for g, good in enumerate(GOODS):
            cap = np.inf
            q = getattr(quota, good)
            if q is not None:
                cap = q / 12.0
            lic = getattr(cur.foreign.licensing, good)
            active, share, delay = lic.active, lic.approval_share, lic.delay_months
            if self.retaliating and good in {"dytb", "magnet"}:
                active, share, delay = (
                    True,
                    min(share, self.p.retaliation_approval_share)
                    if lic.active
                    else self.p.retaliation_approval_share,
                    lic.delay_months,
                )
            pipe = self.pipeline[g]
            if active:
                pipe.append(share * max(float(applications[g]), 0.0))
                allowance = pipe.popleft() if len(pipe) > delay else 0.0
                cap = min(cap, allowance)
            else:
                pipe.clear()
            if self.predating and good == "ndpr":
                cap = np.inf
            self.caps[g] = cap

    def export_offers(
        self,
        entrant_cost: float,
        entrant_other_value: float,
        entrant_ndpr_share: float,
    ) -> dict[str, NDArray[np.float64]]:
        """Export offers for the month: licit and illicit quantities (t) and FOB asks (US$/kg)."""
        tax = self.model.export_tax_array()
        stock = self.stock()
        self.update_holdback()
        exportable = np.maximum(stock - 0.5 * self.stock_target(), 0.0) * (1.0 - self.holdback)
        home_basis = np.maximum(self.expected_home, self.price_home)
        ask = np.empty(4)
        ask[:3] = home_basis * (1.0 + tax[:3])
        ask[MAGNET] = (float(self.intensity @ home_basis[:2]) + self.magnet_conversion) * (
            1.0 + tax[MAGNET]
        )
        if self.predating and entrant_ndpr_share > 0:
            breakeven = (entrant_cost - float(entrant_other_value)) / entrant_ndpr_share
            ask[0] = min(ask[0], max(self.p.predatory_price_ratio * breakeven, 0.01))
            exportable[0] = stock[0]

        growth = (1.0 + self.model.params.manufacturers.demand_growth_magnet) ** (
            self.model.month / 12.0
        )
        magnet_price_ratio = self.model.expected_import_price[MAGNET] / max(
            self.p.magnet_price_ref, 1e-9
        )
        magnet_capacity = (
            self.export_plan[MAGNET]
            * growth
            * (1.0 + 0.5 * min(max(magnet_price_ratio - 1.0, 0.0), 1.0))
        )
        # Magnets the oxide stock could make (no limit from an oxide a magnet does not use).
        oxide_limit = min(
            float(stock[k] / max(self.intensity[k], 1e-12)) if self.intensity[k] > 0 else np.inf
            for k in range(2)
        )
        qty = np.empty(4)
        qty[:3] = np.minimum(exportable, self.caps[:3])
        qty[MAGNET] = min(magnet_capacity, self.caps[MAGNET], oxide_limit)

        gap = np.empty(4)
        gap[:3] = np.maximum(self.price_export[:3] / self.price_home - 1.0, 0.0)
        gap[MAGNET] = max(self.price_export[MAGNET] / max(ask[MAGNET], 1e-9) - 1.0, 0.0)
        illicit_share = self.p.illicit_max_share * (
            1.0 - np.exp(-self.p.illicit_gap_sensitivity * gap)
        )
        illicit_qty = illicit_share * self.export_plan
        illicit_qty[:3] = np.minimum(illicit_qty[:3], np.maximum(stock - qty[:3], 0.0))
        illicit_qty[MAGNET] = min(illicit_qty[MAGNET], max(oxide_limit - qty[MAGNET], 0.0))
        illicit_ask = np.empty(4)
        illicit_ask[:3] = self.price_home * 1.1
        illicit_ask[MAGNET] = ask[MAGNET] * 1.1
        return {"qty": qty, "ask": ask, "illicit_qty": illicit_qty, "illicit_ask": illicit_ask}

    def update_holdback(self) -> None:
        """Hold stock back while the supplier's own price expectation has been rising.

        The signal is the growth of the expected home price over the past year (a rising
        expectation, not a single month's dip below it), and the share held back moves a quarter
        of the way to its target each month: a speculative stock decision, not a monthly switch.
        """
        history = self.expectation_history
        # history holds this month's expectation and the 12 before it.
        year_ago = history[0] if len(history) == history.maxlen else self.price_ref
        growth = self.expected_home / np.maximum(year_ago, 1e-9) - 1.0
        target = self.p.holdback_max_share * np.minimum(
            np.maximum(growth / self.p.holdback_full_growth, 0.0), 1.0
        )
        self.holdback = self.holdback + 0.25 * (target - self.holdback)

    def make_export_magnets(self, tonnes: float) -> None:
        """Magnets are made to order: turn oxide stock into the magnets sold abroad."""
        if tonnes <= 0:
            return
        model = self.model
        ledger = model.ledger
        ledger.move(
            "ndpr",
            self.account,
            model.acct["magnet_inputs"],
            tonnes * self.intensity[0],
            "magnet_input_foreign",
        )
        ledger.move(
            "dytb",
            self.account,
            model.acct["magnet_inputs"],
            tonnes * self.intensity[1],
            "magnet_input_foreign",
        )
        ledger.move(
            "magnet", model.acct["magnet_making"], self.account, tonnes, "magnet_made_foreign"
        )
        ledger.pay(
            self.account,
            model.acct["economy"],
            tonnes * self.magnet_conversion * 1e-3,
            "foreign_magnet_cost",
        )

    def sell_home(self) -> None:
        """Clear the home market for each oxide against home demand; keep what does not sell."""
        model = self.model
        ledger = model.ledger
        stock = self.stock()
        growth = (1.0 + self.p.home_demand_growth_per_year) ** (model.month / 12.0)
        # Stock-adjustment rule (Sterman 2000): sell expected demand, plus or minus a third of the
        # gap between the stock that would remain and the working-stock target.
        expected_demand = (
            self.home_demand_ref
            * growth
            * (self.expected_home / self.price_ref) ** self.p.home_demand_elasticity
        )
        target = self.stock_target()
        # The gap is measured on the stock left after selling the expected demand: this month's
        # output is part of what is on hand now, not of the working stock.
        remaining = stock - expected_demand
        offer = np.minimum(np.maximum(expected_demand + (remaining - target) / 3.0, 0.0), stock) * (
            1.0 - self.holdback
        )
        reservation = self.p.defend_price_ratio * self.price_ref
        for k, product in enumerate(PRODUCTS):
            price, sold = clear_against_curve(
                float(offer[k]),
                float(reservation[k]),
                float(self.home_demand_ref[k] * growth),
                float(self.price_ref[k]),
                self.p.home_demand_elasticity,
                self.p.home_choke_price_ratio,
            )
            self.price_home[k] = price
            self.home_sold[k] = sold
            ledger.move(product, self.account, model.acct["foreign_buyers"], sold, "home_sales")
            ledger.pay(
                model.acct["foreign_buyers"], self.account, sold * price * 1e-3, "home_sales"
            )

    def learn(self) -> None:
        """Adaptive expectations of home prices."""
        self.expected_home = adapt(self.expected_home, self.price_home, self.p.expectation_lambda)
        self.expectation_history.append(self.expected_home.copy())
