"""The rare-earth supply-chain model: the monthly schedule, the markets and the books.

An agent-based model in the line of Riddle, Macal et al. (2015), *Global critical materials
markets: an agent-based modeling approach*: a dominant foreign supplier, miners outside it, a bank,
a government and manufacturers, trading NdPr, Dy/Tb and Ce/La oxides and NdFeB magnets in two
layers (the supplier's home market and the importing market, Mancheri et al. 2019). One step is
one month. Prices come only from the call auctions in ``sim.market``; every tonne and dollar moves
through ``sim.ledger`` and the stock-flow identities are checked every month (``balance_error_*``).
See ``docs/ODD.md`` for the full description.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import mesa
import numpy as np
from numpy.typing import NDArray

from sim.agents.bank import Bank
from sim.agents.foreign_supplier import ForeignSupplier
from sim.agents.government import Government
from sim.agents.manufacturer import ManufacturerPopulation
from sim.agents.miner import MinerFleet, State, choose_projects, read_projects
from sim.columns import TIMESERIES_COLUMNS
from sim.ledger import Ledger
from sim.market import clear_call_auction
from sim.params import GOODS, PRODUCTS, Scenario
from sim.scenario import (
    SCENARIO_DIR,
    ScenarioError,
    check_seed,
    load_scenario,
    set_dotted,
    validate,
)

BALANCE_TOLERANCE = 1e-6  # relative to the largest holding (tonnes) or balance (US$ M)
COL = {name: i for i, name in enumerate(TIMESERIES_COLUMNS)}
# Column positions of the per-oxide columns (``<prefix>_ndpr``, ``_dytb``, ``_cela``), one array
# per prefix, so a month's row is written a block at a time.
PRODUCT_COL = {
    prefix: np.array([COL[f"{prefix}_{p}"] for p in PRODUCTS])
    for prefix in (
        name.removesuffix(f"_{PRODUCTS[0]}")
        for name in TIMESERIES_COLUMNS
        if name.endswith(f"_{PRODUCTS[0]}")
    )
}

# Flows that cross the boundary of each layer's holdings, with their sign.
IMPORT_LAYER_FLOWS = {
    "mine_domestic": 1,
    "export": 1,
    "illicit": 1,
    "recycled": 1,
    "magnet_made_domestic": 1,
    "consumed": -1,
    "magnet_input_domestic": -1,
    "outlet_export": -1,
}
FOREIGN_LAYER_FLOWS = {
    "production_foreign": 1,
    "concentrate": 1,
    "outlet_export": 1,
    "magnet_made_foreign": 1,
    "export": -1,
    "illicit": -1,
    "home_sales": -1,
    "magnet_input_foreign": -1,
}


class SettlementFlows(NamedTuple):
    """Flow labels of one good's money settlement."""

    purchases: str
    domestic_sales: str
    export_sales: str


SETTLEMENT_FLOWS = [
    SettlementFlows(f"purchases_{good}", f"domestic_sales_{good}", f"export_sales_{good}")
    for good in GOODS
]

# The same, as (flow, good) keys of ``Ledger.tonne_flows`` for each good.
IMPORT_LAYER_KEYS = [
    [((f, good), sign) for f, sign in IMPORT_LAYER_FLOWS.items()] for good in GOODS
]
FOREIGN_LAYER_KEYS = [
    [((f, good), sign) for f, sign in FOREIGN_LAYER_FLOWS.items()] for good in GOODS
]


class BalanceError(RuntimeError):
    """A stock-flow identity failed beyond rounding: a tonne or dollar went missing."""


def add_months(start: str, months: int) -> str:
    """``YYYY-MM`` plus ``months``."""
    year, month = (int(x) for x in start.split("-"))
    total = year * 12 + (month - 1) + months
    return f"{total // 12:04d}-{total % 12 + 1:02d}"


class RareEarthModel(mesa.Model):
    """The rare-earth supply chain, one step per month.

    Args:
        scenario: a validated ``Scenario``, or a scenario name or path to load.
        seed: seed of the run's one random generator (``model.rng``).
        overrides: dotted-key overrides applied when ``scenario`` is a name or path.
        check_balances: raise ``BalanceError`` when an identity fails (tests switch it on).
        run_id: label written into events.
    """

    def __init__(
        self,
        scenario: Scenario | str | Path = "baseline",
        seed: int = 0,
        overrides: dict[str, Any] | None = None,
        check_balances: bool = False,
        run_id: str = "",
    ) -> None:
        # Checked here, for every caller: numpy's own message would not say what is allowed.
        seed = check_seed(seed, "RareEarthModel")
        super().__init__(rng=seed)
        if not isinstance(scenario, Scenario):
            scenario = load_scenario(scenario, overrides)
        self.params = scenario
        self.current = scenario
        self.seed = seed
        self.run_id = run_id
        self.check_balances = check_balances
        self.month = 0
        self.months = scenario.scenario.months
        self.start = scenario.scenario.start
        self.events: list[dict[str, Any]] = []
        self.schedule_by_date: dict[str, list[Any]] = {}
        for change in scenario.schedule:
            self.schedule_by_date.setdefault(change.date, []).append(change)
        self.records = np.full((self.months, len(TIMESERIES_COLUMNS)), np.nan)

        self.ledger = Ledger()
        self.acct = {
            name: int(self.ledger.open(name)[0])
            for name in (
                "ground_foreign",
                "ground_domestic",
                "scrap",
                "consumed",
                "magnet_inputs",
                "magnet_making",
                "economy",
                "shipping",
                "investors",
                "foreign_buyers",
                "final_customers",
                "clearing",
            )
        }
        f = scenario.foreign
        m = scenario.market
        self.freight = np.array(
            [
                m.freight_usd_per_kg.ndpr,
                m.freight_usd_per_kg.dytb,
                m.freight_usd_per_kg.cela,
                m.freight_magnet_usd_per_kg,
            ]
        )
        export_ref = np.array(
            [f.price_ref.ndpr, f.price_ref.dytb, f.price_ref.cela, f.magnet_price_ref]
        )
        self.import_price = (
            export_ref * (1.0 + self.export_tax_array()) * (1.0 + self.tariff_array())
            + self.freight
        )
        self.expected_import_price = self.import_price.copy()
        self.reference_import_price = self.import_price.copy()

        self.foreign = ForeignSupplier(self)
        self.bank = Bank(self)
        self.government = Government(self)
        projects_path = SCENARIO_DIR / scenario.population.miners_file
        if Path(scenario.population.miners_file).is_absolute():
            projects_path = Path(scenario.population.miners_file)
        projects = choose_projects(
            read_projects(projects_path), scenario.population.miners, self.rng
        )
        self.miners = MinerFleet(self, projects)
        self.contracts_by_date: dict[str, list[Any]] = {}
        for i, contract in enumerate(scenario.government.contracts):
            if contract.miner not in self.miners.index_of:
                known = ", ".join(sorted(self.miners.index_of))
                where = f"scenario {scenario.scenario.name!r}"
                problem = f"got {contract.miner!r}; no such project in {scenario.population.miners_file}; known: {known}"
                raise ScenarioError(where, f"government.contracts[{i}].miner", problem)
            self.contracts_by_date.setdefault(contract.date, []).append(contract)
        self.manufacturers = ManufacturerPopulation(self, scenario.population.manufacturers)
        self._open_stocks()

        self.applications = self.foreign.export_plan.copy()
        self.last_unmet_share = np.zeros(4)
        self.defaults_cum = 0
        self.quota_set_year = int(self.start[:4])
        self.previous_caps = np.full(4, np.inf)
        self.running = True

    # --------------------------------------------------------------------------- policy
    def tariff_array(self) -> NDArray[np.float64]:
        """Tariffs in force by good."""
        t = self.current.policy.tariff
        return np.array([t.ndpr, t.dytb, t.cela, t.magnet])

    def export_tax_array(self) -> NDArray[np.float64]:
        """Foreign export taxes in force by good."""
        t = self.current.foreign.export_tax
        return np.array([t.ndpr, t.dytb, t.cela, t.magnet])

    def floor_array(self) -> NDArray[np.float64]:
        """Price floors in force by oxide (NaN where none)."""
        fl = self.current.policy.price_floor
        return np.array(
            [np.nan if getattr(fl, p) is None else float(getattr(fl, p)) for p in PRODUCTS]
        )

    def set_lever(self, key: str, value: Any, source: str = "") -> None:
        """Change a policy key from the next market clearing on; validated, logged as an event."""
        data = self.current.model_dump()
        set_dotted(data, key, value, f"lever {key}")
        data["schedule"] = []
        try:
            updated = validate(data, f"lever {key}")
        except ScenarioError:
            raise
        self.current = updated.model_copy(update={"schedule": self.params.schedule})
        if key.startswith(("foreign.mine_quota", "foreign.separation_quota")):
            self.quota_set_year = int(add_months(self.start, self.month)[:4])
        self.log_event(
            "government" if key.startswith(("policy", "government")) else "foreign_supplier",
            "policy",
            f"{key} = {value!r}" + (f" ({source})" if source else ""),
        )

    def years_since_quota_set(self) -> int:
        """Whole calendar years since the foreign quotas were last set (growth applies each January)."""
        year = int(add_months(self.start, self.month)[:4])
        return max(year - self.quota_set_year, 0)

    def log_event(self, agent: str, kind: str, detail: str) -> None:
        """Record a dated discrete event."""
        self.events.append(
            {
                "run_id": self.run_id,
                "month": self.month,
                "date": add_months(self.start, self.month),
                "agent": agent,
                "kind": kind,
                "detail": detail,
            }
        )

    # ---------------------------------------------------------------------------- set-up
    def _open_stocks(self) -> None:
        """Importers start with ``initial_stock_weeks`` of cover (CAL: 6-14 weeks)."""
        pop = self.manufacturers
        weeks = self.params.market.initial_stock_weeks
        months = weeks * 12.0 / 52.0
        start_need = pop.base_need.copy()
        mm = pop.is_magnet_maker
        start_need[mm, :2] = (pop.capacity_t_per_year[mm] / 12.0 * 0.8)[:, None] * pop.intensity[
            None, :
        ]
        start_need[mm, 3] = pop.capacity_t_per_year[mm] / 12.0 * 0.8
        for g, good in enumerate(GOODS):
            self.ledger.move(
                good,
                self.acct["ground_foreign"],
                pop.accounts,
                start_need[:, g] * months,
                "opening_stock",
            )

    # --------------------------------------------------------------------------- reading
    def separation_capacity(self) -> tuple[float, float]:
        """Outside-foreign separation capacity, t REO/yr: (nameplate built, operating)."""
        fleet = self.miners
        built = fleet.in_state(State.RAMP_UP, State.OPERATING, State.IDLE)
        running = fleet.in_state(State.RAMP_UP, State.OPERATING)
        return float(fleet.sep_cap[built].sum()), float((fleet.sep_cap * fleet.util)[running].sum())

    def import_layer_holdings(self) -> NDArray[np.float64]:
        """Tonnes held in the importing market by good (miners, manufacturers, stockpile)."""
        ledger = self.ledger
        t = ledger.tonnes
        return (
            ledger.rows(self.miners.accounts).sum(axis=0)
            + ledger.rows(self.manufacturers.accounts).sum(axis=0)
            + t[self.government.stockpile_account]
            + t[self.acct["clearing"]]
        )

    # ------------------------------------------------------------------------------ step
    def step(self) -> None:
        """Advance one month."""
        if self.month >= self.months:
            self.running = False
            return
        ledger = self.ledger
        ledger.start_step()
        date = add_months(self.start, self.month)
        for change in self.schedule_by_date.get(date, []):
            self.set_lever(change.key, change.value, change.source or "schedule")
        before_import = self.import_layer_holdings()
        before_foreign = ledger.tonnes[self.foreign.account].copy()
        before_gov = float(ledger.money[self.government.account])
        before_bank = float(ledger.money[self.bank.account])
        self.government.sign_contracts(self.miners, date)

        fleet, pop, foreign = self.miners, self.manufacturers, self.foreign
        foreign.produce()
        fleet.advance()
        fleet.produce()
        fleet.make_magnets(pop.intensity, self.params.market.magnet_conversion_cost_usd_per_kg)
        self.government.take_offtake(fleet)
        unit_cost = (
            float(pop.intensity @ pop.expected_price[:2])
            + self.params.market.magnet_conversion_cost_usd_per_kg
        )
        pop.invest_in_magnets(self.month, unit_cost, float(pop.expected_price[3]))
        pop.make_magnets()
        pop.plan_needs(self.month)
        nameplate, operating = self.separation_capacity()
        foreign.update_regime(self.applications, operating)
        entrant_cost, other_value, ndpr_share = self._entrant_economics()
        offers = foreign.export_offers(entrant_cost, other_value, ndpr_share)
        release, _ = self.government.stockpile_offers()

        row = self.records[self.month]
        tariffs = self.tariff_array()
        floors = self.floor_array()
        tax = self.export_tax_array()
        unmet = np.zeros(4)
        for g, good in enumerate(GOODS):
            price, received, _ = self._clear(g, good, offers, release, tariffs, tax, floors)
            self.import_price[g] = price
            if g < 3:
                row[COL[f"price_landed_{good}"]] = price
                row[COL[f"price_received_{good}"]] = received
                row[COL[f"price_export_{good}"]] = max(
                    (price - self.freight[g]) / (1.0 + tariffs[g]), 0.0
                )
            foreign.price_export[g] = max((price - self.freight[g]) / (1.0 + tariffs[g]), 0.0)
        foreign.sell_home()
        was_halted = pop.halted.copy()
        pop.use_material()
        for i in np.nonzero(pop.halted & ~was_halted)[0]:
            sector = pop.agents[i].sector
            self.log_event(
                f"manufacturer[{i}]", "stoppage", f"{sector} plant stops for lack of material"
            )
        # Manufacturers pass material costs on to their customers in the month they incur them.
        ledger.pay(
            self.acct["final_customers"],
            pop.accounts,
            np.maximum(-ledger.cash(pop.accounts), 0.0),
            "final_sales",
        )

        fleet.pay_costs()
        self.bank.collect(fleet)
        self.government.collect_loans(fleet)
        defaulted_before = int(fleet.in_state(State.DEFAULTED).sum())
        fleet.check_defaults()
        self.defaults_cum += int(fleet.in_state(State.DEFAULTED).sum()) - defaulted_before

        # Importers' demand and use: final goods and Ce/La users' need, plus the oxides magnet
        # makers wanted for this month's magnets and the oxides they could use.
        final_or_cela = ~pop.is_magnet_maker
        need = pop.need[final_or_cela].sum(axis=0)
        used = pop.used[final_or_cela].sum(axis=0)
        need[:2] += pop.oxide_wanted
        used[:2] += pop.oxide_used
        unmet = np.maximum(need - used, 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            unmet_share = np.where(need > 0, unmet / need, 0.0)
        halted_share = float(pop.halted.mean()) if pop.n else 0.0
        price_ratio = float(np.max(self.import_price / self.reference_import_price))
        self.government.watch(halted_share, float(unmet_share.max()), price_ratio)

        # Buyers are alarmed by a new or tighter restriction, not by one long in force.
        alerts = (foreign.caps < self.previous_caps * 0.9).astype(float)
        self.previous_caps = foreign.caps.copy()
        fleet.learn(self.import_price[:3])
        self.bank.learn(self.import_price[:3])
        foreign.learn()
        pop.learn(self.import_price, unmet_share, alerts)
        self.expected_import_price = pop.expected_price.copy()
        # Licence applications: what importers need from abroad, their demand less what domestic
        # producers made this month (not last month's purchases, which a tight regime shrinks).
        domestic = np.array(
            [
                *(ledger.tonne_flow("mine_domestic", p) for p in PRODUCTS),
                ledger.tonne_flow("magnet_made_domestic", "magnet"),
            ]
        )
        self.applications = np.maximum(need - domestic, 0.0)
        self.last_unmet_share = unmet_share
        fleet.value_equity()

        self._record(row, date, nameplate, operating, need, unmet)
        self._check(row, before_import, before_foreign, before_gov, before_bank)
        self.month += 1
        if self.month >= self.months:
            self.running = False

    # ------------------------------------------------------------------- market clearing
    def _entrant_economics(self) -> tuple[float, float, float]:
        """Entrants' average cash cost, non-NdPr value and NdPr share, per kg REO (operating)."""
        fleet = self.miners
        running = fleet.in_state(State.OPERATING, State.RAMP_UP)
        if not running.any():
            return 0.0, 0.0, 0.0
        # Capacity-weighted means (what np.average computes, without its overhead).
        w = fleet.mine_cap[running]
        total_w = w.sum()
        basket = (fleet.basket[running] * w[:, None]).sum(axis=0) / total_w
        cost = float((fleet.opex[running] * w).sum() / total_w)
        other = float(basket[1:] @ self.expected_import_price[1:3])
        return cost, other, float(basket[0])

    def _clear(
        self,
        g: int,
        good: str,
        offers: dict[str, NDArray[np.float64]],
        release: NDArray[np.float64],
        tariffs: NDArray[np.float64],
        tax: NDArray[np.float64],
        floors: NDArray[np.float64],
    ) -> tuple[float, float, float]:
        """Clear one good in the importing market and settle every trade; return prices."""
        ledger = self.ledger
        fleet, pop, foreign = self.miners, self.manufacturers, self.foreign
        clearing, shipping = self.acct["clearing"], self.acct["shipping"]
        gov_account = self.government.account
        freight = self.freight[g]
        tariff = tariffs[g]

        # Sellers: miners (oxides) or magnet makers (magnets), foreign licit and illicit, stockpile.
        if g < 3:
            s_acc, s_q, s_p = fleet.offers(g)
        else:
            conversion = self.params.market.magnet_conversion_cost_usd_per_kg
            unit_cost = float(pop.intensity @ pop.expected_price[:2]) + conversion
            m_acc, m_q, m_p = pop.magnet_offers(unit_cost)
            # Miners' integrated magnet stages sell their magnet stock at their own unit cost.
            own_cost = pop.intensity[0] * fleet.expected_market[0] + conversion
            s_acc = np.concatenate([m_acc, fleet.accounts])
            s_q = np.concatenate([m_q, ledger.rows(fleet.accounts)[:, 3]])
            s_p = np.concatenate([m_p, np.full(fleet.n, own_cost)])
        n_dom = s_q.size
        ask_q = np.empty(n_dom + 3)
        ask_p = np.empty(n_dom + 3)
        ask_q[:n_dom] = s_q
        ask_p[:n_dom] = s_p
        ask_q[n_dom] = offers["qty"][g]
        ask_q[n_dom + 1] = offers["illicit_qty"][g]
        ask_q[n_dom + 2] = release[g]
        # Foreign offers are quoted FOB; buyers compare landed prices.
        ask_p[n_dom] = offers["ask"][g] * (1.0 + tariff) + freight
        ask_p[n_dom + 1] = offers["illicit_ask"][g] * (1.0 + tariff) + freight
        ask_p[n_dom + 2] = 0.0

        # Buyers: manufacturers' two steps each, and the foreign outlet for domestic oxide.
        b_acc, b_q, b_p = pop.bids(g)
        n_bid = b_q.size
        bid_q = np.empty(n_bid + 1)
        bid_p = np.empty(n_bid + 1)
        bid_q[:n_bid] = b_q
        bid_p[:n_bid] = b_p
        bid_q[n_bid] = float(s_q.sum()) if g < 3 else 0.0
        bid_p[n_bid] = max(float(foreign.expected_home[g]) - freight, 0.0) if g < 3 else 0.0

        result = clear_call_auction(bid_q, bid_p, ask_q, ask_p, float(self.import_price[g]))
        price = result.price
        fob = max((price - freight) / (1.0 + tariff), 0.0)
        fill_dom = result.ask_fill[:n_dom]
        fill_foreign, fill_illicit, fill_release = result.ask_fill[n_dom:].tolist()
        if g == 3:
            foreign.make_export_magnets(fill_foreign + fill_illicit)

        # Tonnes: sellers -> clearing -> buyers.
        ledger.move(good, s_acc, clearing, fill_dom, "domestic_sale")
        ledger.move(good, foreign.account, clearing, fill_foreign, "export")
        ledger.move(good, foreign.account, clearing, fill_illicit, "illicit")
        ledger.move(
            good, self.government.stockpile_account, clearing, fill_release, "stockpile_release"
        )
        # Each firm bid two steps (need, restock): sum them per firm before moving goods.
        fill_buy = result.bid_fill[: pop.n] + result.bid_fill[pop.n : 2 * pop.n]
        b_acc = pop.accounts
        ledger.move(good, clearing, b_acc, fill_buy, "purchase")
        outlet_fill = float(result.bid_fill[-1])
        ledger.move(good, clearing, foreign.account, outlet_fill, "outlet_export")

        # Money: buyers pay the landed price; it is split by who receives what.
        labels = SETTLEMENT_FLOWS[g]
        ledger.pay(b_acc, clearing, fill_buy * price * 1e-3, labels.purchases)
        ledger.pay(foreign.account, clearing, outlet_fill * price * 1e-3, "outlet_purchases")
        ledger.pay(foreign.account, shipping, outlet_fill * freight * 1e-3, "freight")
        ledger.pay(clearing, s_acc, fill_dom * price * 1e-3, labels.domestic_sales)
        imported = fill_foreign + fill_illicit
        ledger.pay(clearing, foreign.account, imported * fob * 1e-3, labels.export_sales)
        ledger.pay(clearing, gov_account, imported * fob * tariff * 1e-3, "tariff_revenue")
        ledger.pay(clearing, shipping, imported * freight * 1e-3, "freight")
        ledger.pay(clearing, gov_account, fill_release * price * 1e-3, "stockpile_sales")
        export_tax = fill_foreign * fob * tax[g] / (1.0 + tax[g]) * 1e-3
        ledger.pay(foreign.account, foreign.state_account, export_tax, "export_tax")
        foreign.exported[g] = fill_foreign
        foreign.illicit[g] = fill_illicit

        received = price
        if g < 3:
            received = self.government.settle_floor(fleet, g, fill_dom, price)
        else:
            pop.magnet_sold = np.zeros(pop.n)
            pop.magnet_sold[pop.magnet_rows] = fill_dom[: pop.magnet_count]
        return price, received, imported

    # ------------------------------------------------------------------------- recording
    def _record(
        self,
        row: NDArray[np.float64],
        date: str,
        nameplate: float,
        operating: float,
        need: NDArray[np.float64],
        unmet: NDArray[np.float64],
    ) -> None:
        ledger = self.ledger
        fleet, pop, foreign = self.miners, self.manufacturers, self.foreign
        stock = ledger.rows(pop.accounts).sum(axis=0)
        quota = self.current.policy.export_quota
        quota_on = [
            bool(np.isfinite(foreign.caps[k]))
            and (
                getattr(quota, p) is not None or bool(foreign.pipeline[k]) or self._licensing_on(p)
            )
            for k, p in enumerate(PRODUCTS)
        ]
        row[PRODUCT_COL["price_foreign"]] = foreign.price_home
        row[PRODUCT_COL["exports"]] = foreign.exported[:3]
        row[PRODUCT_COL["exports_illicit"]] = foreign.illicit[:3]
        row[PRODUCT_COL["export_quota"]] = np.where(quota_on, foreign.caps[:3], np.nan)
        row[PRODUCT_COL["price_floor"]] = self.floor_array()
        row[PRODUCT_COL["demand"]] = need[:3]
        row[PRODUCT_COL["consumption"]] = need[:3] - unmet[:3]
        row[PRODUCT_COL["unmet_demand"]] = unmet[:3]
        row[PRODUCT_COL["inventory"]] = stock[:3]
        row[PRODUCT_COL["production_foreign"]] = [
            ledger.tonne_flow("production_foreign", p) for p in PRODUCTS
        ]
        row[PRODUCT_COL["production_domestic"]] = [
            ledger.tonne_flow("mine_domestic", p) for p in PRODUCTS
        ]
        row[PRODUCT_COL["home_sales"]] = foreign.home_sold[:3]
        row[COL["price_landed_magnet"]] = self.import_price[3]
        row[COL["magnet_exports_t"]] = foreign.exported[3]
        row[COL["demand_magnet_t"]] = need[3]
        row[COL["unmet_demand_magnet_t"]] = unmet[3]
        row[COL["inventory_magnet_t"]] = stock[3]
        row[COL["production_magnet_domestic_t"]] = ledger.tonne_flow(
            "magnet_made_domestic", "magnet"
        )
        domestic_mined = float(fleet.output_t.sum())
        foreign_mined = float(foreign.mined_t)
        total = domestic_mined + foreign_mined
        row[COL["mine_share_foreign"]] = foreign_mined / total if total > 0 else np.nan
        row[COL["capacity_domestic_nameplate_t"]] = nameplate
        row[COL["capacity_domestic_operating_t"]] = operating
        miner_stages = fleet.magnet_cap[~fleet.in_state(State.DEFAULTED, State.CLOSED)].sum()
        row[COL["capacity_domestic_magnet_t"]] = float(
            pop.capacity_t_per_year[pop.is_magnet_maker & ~pop.halted].sum() + miner_stages
        )
        in_state = np.bincount(fleet.state, minlength=len(State)).tolist()
        row[COL["miners_active"]] = in_state[State.OPERATING] + in_state[State.RAMP_UP]
        row[COL["miners_financing"]] = in_state[State.FINANCING]
        row[COL["miners_construction"]] = in_state[State.CONSTRUCTION]
        row[COL["miners_idle"]] = in_state[State.IDLE]
        row[COL["miners_defaulted_cum"]] = self.defaults_cum
        row[COL["manufacturers_halted"]] = int(pop.halted.sum())
        row[COL["manufacturer_output_index"]] = float(pop.output.sum()) / (pop.base_output or 1.0)
        row[COL["substitution_share"]] = pop.substitution_share()
        row[COL["recycling_share"]] = pop.recycling_share()
        row[COL["tariff_revenue_musd"]] = ledger.money_flow("tariff_revenue")
        row[COL["floor_payments_musd"]] = ledger.money_flow("floor_payments")
        row[COL["gov_equity_musd"]] = self.government.equity_holdings(fleet)
        loans, equity = self.bank.book(fleet)
        row[COL["bank_loans_musd"]] = loans
        row[COL["bank_equity_musd"]] = equity
        row[COL["bank_losses_cum_musd"]] = self.bank.losses_cum
        row[COL["miner_equity_value_musd"]] = float(fleet.equity_value[fleet.listed].sum())
        row[COL["licence_rent_musd"]] = float(
            np.sum(
                foreign.exported[:3]
                * np.maximum(foreign.price_export[:3] - foreign.price_home, 0.0)
            )
            * 1e-3
        )
        row[COL["export_tax_revenue_musd"]] = ledger.money_flow("export_tax")
        row[COL["gov_cost_cum_musd"]] = float(-ledger.money[self.government.account])
        row[COL["mine_output_domestic_t"]] = domestic_mined

    def _licensing_on(self, product: str) -> bool:
        return bool(getattr(self.current.foreign.licensing, product).active) or (
            self.foreign.retaliating and product == "dytb"
        )

    def _check(
        self,
        row: NDArray[np.float64],
        before_import: NDArray[np.float64],
        before_foreign: NDArray[np.float64],
        before_gov: float,
        before_bank: float,
    ) -> None:
        """Stock-flow identities for tonnes and dollars; residuals go to balance_error_*."""
        ledger = self.ledger
        cons_t, cons_m = ledger.residuals()
        resid_t = cons_t
        scale_t = 1.0
        holdings_import = self.import_layer_holdings()
        flows = ledger.tonne_flows
        for g in range(len(GOODS)):
            flow_in_import = 0.0
            for key, sign in IMPORT_LAYER_KEYS[g]:
                flow_in_import += sign * flows.get(key, 0.0)
            flow_in_foreign = 0.0
            for key, sign in FOREIGN_LAYER_KEYS[g]:
                flow_in_foreign += sign * flows.get(key, 0.0)
            after_import = holdings_import[g]
            after_foreign = ledger.tonnes[self.foreign.account, g]
            resid_t += abs(after_import - before_import[g] - flow_in_import)
            resid_t += abs(after_foreign - before_foreign[g] - flow_in_foreign)
            scale_t = max(scale_t, abs(after_import), abs(after_foreign))
        gov_flow = (
            ledger.money_flow("tariff_revenue")
            + ledger.money_flow("floor_upside")
            + ledger.money_flow("stockpile_sales")
            - ledger.money_flow("floor_payments")
            - ledger.money_flow("gov_equity")
            + ledger.money_flow("gov_loan_service")
            - ledger.money_flow("gov_loan_disbursed")
            - ledger.money_flow("grant")
            - ledger.money_flow("offtake_purchases")
        )
        bank_flow = (
            ledger.money_flow("loan_interest")
            + ledger.money_flow("loan_principal")
            + ledger.money_flow("loan_recovery")
            - ledger.money_flow("loan_disbursed")
            - ledger.money_flow("bank_equity")
        )
        resid_m = cons_m
        resid_m += abs(float(ledger.money[self.government.account]) - before_gov - gov_flow)
        resid_m += abs(float(ledger.money[self.bank.account]) - before_bank - bank_flow)
        resid_m += abs(float(ledger.money[self.acct["clearing"]]))
        resid_t += float(np.abs(ledger.tonnes[self.acct["clearing"]]).sum())
        row[COL["balance_error_t"]] = resid_t
        row[COL["balance_error_musd"]] = resid_m
        if self.check_balances:
            scale_m = max(1.0, float(np.abs(ledger.money[: ledger.size]).max()))
            if resid_t > BALANCE_TOLERANCE * scale_t or resid_m > BALANCE_TOLERANCE * scale_m:
                msg = f"month {self.month}: stock-flow residuals {resid_t:.3g} t, US${resid_m:.3g}M exceed rounding"
                raise BalanceError(msg)
            n = ledger.size
            agents_t = np.concatenate(
                [
                    self.miners.accounts,
                    self.manufacturers.accounts,
                    [self.foreign.account, self.government.stockpile_account],
                ]
            )
            if np.any(ledger.tonnes[agents_t] < -1e-6 * max(scale_t, 1.0)):
                msg = f"month {self.month}: a negative stock in an agent's account"
                raise BalanceError(msg)
            if np.any(~np.isfinite(row[~np.isnan(row)])) or np.any(self.import_price < 0) or n == 0:
                msg = f"month {self.month}: non-finite or negative values"
                raise BalanceError(msg)

    # ----------------------------------------------------------------------------- output
    def frame_data(self) -> tuple[NDArray[np.float64], list[str]]:
        """Recorded months so far (array view) and their dates."""
        dates = [add_months(self.start, i) for i in range(self.month)]
        return self.records[: self.month], dates
