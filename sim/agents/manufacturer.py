"""Manufacturers in the importing market: magnet makers and final-goods makers.

Decision rules (state in arrays, one row per manufacturer; ``Manufacturer`` agents are thin views):

- **Need.** A final-goods maker (EV, wind, electronics, industrial, defence) needs magnets, a
  ``cela_user`` (catalysts, polishing, glass) needs Ce/La oxide, a ``magnet_maker`` needs NdPr and
  Dy/Tb oxide for the magnets it plans to make (intensities from ``market``). Gross need grows at
  the sector's demand growth (Adamas CAGR, DEM section 2).
- **Substitution at two speeds, no rebound** (Sprecher et al. 2017; CAL "two speeds of
  substitution"): price pressure = (expected / reference price - 1) / (full ratio - 1), clipped to
  [0, 1]. Fast thrifting closes the gap to its maximum at ``thrift_rate_per_year`` x pressure;
  slow redesign follows a memory of pressure (time constant ``redesign_memory_months``, 24; the
  weight of each month is 1 / time constant, at most 1) at ``redesign_rate_per_year``; together they
  never grow faster than ``max_substitution_per_year`` and never fall back.
- **Recycling** covers a share of need that rises with price (base + slope x (price ratio - 1)),
  capped, plus any legal mandate (Keilhacker and Minner 2017: recycling mitigates little).
- **Stocks in weeks of cover** (CAL: 6-14 weeks; DEM section 6): each firm's normal cover is drawn
  once; its target rises by ``precaution`` x perceived supply risk (precautionary buying). Risk is a
  memory of shortages, licence or quota announcements and price jumps. Orders follow the
  stock-adjustment rule: need + (target - stock) / ``stock_adjust_months`` (Sterman 2000, ch. 17).
- **Procurement**: two bid steps per good, this month's need at ``wtp_multiple`` x the reference
  price (what the product can bear: material is a small share of its value), restocking at
  expected price x (1 + risk/2), never above that willingness to pay. A magnet maker's
  willingness to pay for an oxide is also derived from the magnet price (Marshall's derived
  demand): expected magnet price less conversion cost and the other oxide, per tonne of oxide.
- **Stoppage**: a firm that can cover less than ``halt_threshold`` of its need stops this month
  (output zero, stock kept); otherwise it uses what it has up to its need.
- **Magnet makers** make magnets from their oxide stock up to capacity and sell them at unit cost
  (expected oxide cost + conversion cost). They commit new capacity, ``magnet_expansion_rate_per_year``
  of their own, while the expected magnet price beats full cost by ``magnet_invest_margin``; it
  arrives ``magnet_build_months`` later (CAL: magnet plant ~3 years, capex ~US$90k per t/yr).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import mesa
import numpy as np
from numpy.typing import NDArray

from sim.market import adapt
from sim.params import GOODS, PRODUCTS, SECTORS

if TYPE_CHECKING:
    from sim.model import RareEarthModel

G_NDPR, G_DYTB, G_CELA, G_MAGNET = range(4)
FINAL_SECTORS = ("ev", "wind", "electronics", "industrial", "defence")
WEEKS_PER_MONTH = 52.0 / 12.0


def memory_weight(months: float) -> float:
    """Weight of this month's value in a memory with time constant ``months``, stepped monthly.

    A first-order delay stepped once a month moves ``1 / months`` of the way to the new value. A
    time constant shorter than the step means no memory: the weight is capped at 1 (this month's
    value) rather than overshooting, which would oscillate and, below half a month, diverge.
    """
    return min(1.0, 1.0 / months)


def allocate_counts(total: int, shares: NDArray[np.float64]) -> NDArray[np.int64]:
    """Split ``total`` agents by ``shares`` with the largest-remainder rule (deterministic)."""
    raw = shares / shares.sum() * total
    counts = np.floor(raw).astype(np.int64)
    remainder = total - int(counts.sum())
    order = np.argsort(-(raw - counts), kind="stable")
    counts[order[:remainder]] += 1
    return counts


class Manufacturer(mesa.Agent):
    """One manufacturer: a view into the population's arrays (no per-agent step)."""

    def __init__(
        self, model: RareEarthModel, population: ManufacturerPopulation, index: int
    ) -> None:
        super().__init__(model)
        self.population = population
        self.index = index

    @property
    def sector(self) -> str:
        """The manufacturer's sector."""
        return SECTORS[int(self.population.sector[self.index])]

    @property
    def halted(self) -> bool:
        """Stopped for lack of material this month."""
        return bool(self.population.halted[self.index])

    @property
    def stock_t(self) -> dict[str, float]:
        """Stocks by good, t."""
        row = self.population.stock[self.index]
        return {good: float(row[g]) for g, good in enumerate(GOODS)}


class ManufacturerPopulation:
    """State and decision rules of all manufacturers, as arrays.

    Sectors are laid out in runs of rows, so the magnet makers are one run (``magnet_rows``, a
    slice) that their rules read and write without a boolean mask.
    """

    def __init__(self, model: RareEarthModel, count: int) -> None:
        self.model = model
        p = model.params.manufacturers
        m = model.params.market
        rng = model.rng
        self.p = p
        self.n = count
        sectors = p.sectors
        shares = np.array([sectors[s].count_share for s in SECTORS])
        counts = allocate_counts(count, shares)
        self.sector = np.repeat(np.arange(len(SECTORS)), counts)
        self.is_magnet_maker = self.sector == SECTORS.index("magnet_maker")
        self.is_final = np.isin(self.sector, [SECTORS.index(s) for s in FINAL_SECTORS])
        self.is_cela = self.sector == SECTORS.index("cela_user")
        self.final_or_cela = ~self.is_magnet_maker
        makers = np.flatnonzero(self.is_magnet_maker)
        self.magnet_count = int(makers.size)
        # np.repeat lays each sector out as one run of rows; should that ever change, an index
        # array selects the same rows (only slower).
        self.magnet_rows: slice | NDArray[np.intp] = (
            slice(int(makers[0]), int(makers[0]) + makers.size)
            if makers.size and makers[-1] - makers[0] + 1 == makers.size
            else makers
        )

        # Firm sizes: lognormal weights within each sector share the sector's demand.
        weights = rng.lognormal(0.0, 0.8, size=count)
        sector_total = np.bincount(self.sector, weights=weights, minlength=len(SECTORS))
        sector_demand = np.array([sectors[s].demand_t_per_year for s in SECTORS])
        size_t_per_year = sector_demand[self.sector] * weights / sector_total[self.sector]
        self.capacity_t_per_year = np.where(self.is_magnet_maker, size_t_per_year, 0.0)

        # Gross monthly need per good at the start (magnet makers' need comes from their plan).
        self.base_need = np.zeros((count, 4))
        self.base_need[self.is_final, G_MAGNET] = size_t_per_year[self.is_final] / 12.0
        self.base_need[self.is_cela, G_CELA] = size_t_per_year[self.is_cela] / 12.0
        self.growth = np.zeros(4)  # demand growth per year by good, the same for every firm
        self.growth[G_MAGNET] = p.demand_growth_magnet
        self.growth[G_CELA] = p.demand_growth_cela
        self.intensity = np.array([m.magnet_ndpr_t_per_t, m.magnet_dytb_t_per_t])
        # Weights that turn t of each good into t REO (a magnet holds the oxides it is made of).
        self.reo_per_t = np.array([1.0, 1.0, 1.0, float(self.intensity.sum())])

        self.wtp_multiple = np.array([sectors[s].wtp_multiple for s in SECTORS])[self.sector]
        self.output_weight = np.array([sectors[s].output_value_weight for s in SECTORS])[
            self.sector
        ]
        self.cover_weeks = rng.uniform(p.cover_weeks_min, p.cover_weeks_max, size=count)
        # Fixed values as full (firms x goods) tables: an operation with a table is several times
        # faster than one that broadcasts a row or a column over four goods.
        self._reo_table = np.tile(self.reo_per_t, (count, 1))
        # Goods that firms other than magnet makers consume, as (index, name): those they need at
        # the start (a need only grows or shrinks from there; base needs are fixed).
        self._consumed_goods = [
            (g, good)
            for g, good in enumerate(GOODS)
            if np.count_nonzero(self.base_need[self.final_or_cela, g])
        ]
        # Flat index into (firms x goods) of the one good each firm other than a magnet maker
        # uses (magnets or Ce/La): its need is zero for the other goods, so that entry alone
        # decides its cover and output. (Magnet makers: the magnet entry; not read for them.)
        self._own_good = np.arange(count) * 4 + np.where(self.is_cela, G_CELA, G_MAGNET)
        others = np.ones((count, 4), dtype=bool)
        others.flat[self._own_good] = False
        others[self.is_magnet_maker] = False
        if np.count_nonzero(self.base_need[others]):  # guards the layout use_material relies on
            msg = "a final-goods maker or Ce/La user needs a second good; use_material assumes one"
            raise RuntimeError(msg)

        # Substitution limits per firm and good: slow redesign by sector, fast thrift by product.
        self.redesign_max = np.zeros((count, 4))
        sub_max = np.array([sectors[s].substitution_max for s in SECTORS])[self.sector]
        self.redesign_max[self.is_final, G_MAGNET] = sub_max[self.is_final]
        self.redesign_max[self.is_cela, G_CELA] = sub_max[self.is_cela]
        self.redesign_max[self.is_magnet_maker, G_NDPR] = sub_max[self.is_magnet_maker] * 0.5
        self.redesign_max[self.is_magnet_maker, G_DYTB] = sub_max[self.is_magnet_maker]
        thrift = p.thrift_max
        self.thrift_max = np.zeros((count, 4))
        self.thrift_max[self.is_magnet_maker, G_NDPR] = thrift.ndpr
        self.thrift_max[self.is_magnet_maker, G_DYTB] = thrift.dytb
        self.thrift_max[self.is_cela, G_CELA] = thrift.cela
        self.thrift_max[self.is_final, G_MAGNET] = thrift.ndpr
        # Thrift and redesign are kept in one (2 x firms x goods) table (``thrift`` and ``redesign``
        # are views into it), so that ``learn`` moves both with one set of calls. The limits are
        # fixed. Only firm-goods with a limit above 0 (goods the firm uses) have room to
        # substitute, so ``learn`` updates those alone: flat indices into the table, thrift's then
        # redesign's; which of the 8 rates (thrift's 4 goods, then redesign's) applies to each;
        # and the limits there (divisors: 1 where a limit is 0, so none is zero).
        at = np.flatnonzero((self.thrift_max > 0) | (self.redesign_max > 0))
        self._substitutable = np.concatenate([at, at + count * 4])
        self._substitutable_rate = np.concatenate([at % 4, at % 4 + 4])
        limit = np.concatenate([self.thrift_max.take(at), self.redesign_max.take(at)])
        self._room_divisor = np.where(limit > 0, limit, 1.0)
        self._room_upper = (limit > 0).astype(float)
        self._substitution = np.zeros((2, count, 4))
        self.pressure_memory = np.zeros(4)

        self.risk = np.zeros(4)
        self.reference_price = model.import_price.copy()
        self.expected_price = model.import_price.copy()
        self.magnet_sales_ema = self.capacity_t_per_year / 12.0 * 0.8
        self.magnet_sold = np.zeros(count)
        self.magnet_made = np.zeros(self.magnet_count)
        self.used = np.zeros((count, 4))
        self.recycled = np.zeros((count, 4))
        self.gross_need = np.zeros((count, 4))
        self.halted = np.zeros(count, dtype=bool)
        self.output = np.zeros(count)
        self.need = np.zeros((count, 4))
        self.planned_magnets = np.zeros(count)
        self.base_output: float | None = None

        self.capacity_pipeline: dict[int, NDArray[np.float64]] = {}
        self.accounts = model.ledger.open("manufacturer", count)
        first = int(self.accounts[0]) if count else 0
        self._ledger_rows = slice(first, first + count)
        self.magnet_accounts = model.ledger.as_block(self.accounts[self.magnet_rows])
        self._bid_accounts = np.concatenate([self.accounts, self.accounts])
        self._bid_accounts.flags.writeable = False
        # Bid prices and stock targets of all goods, made by the first ``bids`` call of a month.
        self._bid_prices = np.zeros((4, 2 * count))
        self._bid_need = np.zeros((4, count))
        self._bid_targets = np.zeros((4, count))
        self._bids_made: tuple[int, int] | None = None  # (month, good) of the last bids call
        self.agents = [Manufacturer(model, self, i) for i in range(count)]

    # ------------------------------------------------------------------------------ views
    @property
    def thrift(self) -> NDArray[np.float64]:
        """Demand cut by fast thrifting (firms x goods), a share of need; a view, writable."""
        return self._substitution[0]

    @thrift.setter
    def thrift(self, value: NDArray[np.float64]) -> None:
        self._substitution[0] = value

    @property
    def redesign(self) -> NDArray[np.float64]:
        """Demand cut by slow redesign (firms x goods), a share of need; a view, writable."""
        return self._substitution[1]

    @redesign.setter
    def redesign(self, value: NDArray[np.float64]) -> None:
        self._substitution[1] = value

    @property
    def stock(self) -> NDArray[np.float64]:
        """Stocks (manufacturers x goods), t; a view into the ledger."""
        # Read the ledger's array each time: opening accounts may reallocate it.
        return self.model.ledger.tonnes[self._ledger_rows]

    def magnet_need_per_t(self) -> NDArray[np.float64]:
        """Oxide needed per t of magnet for each magnet maker (after thrifting), (n x 2)."""
        return self._oxide_per_magnet(slice(None))

    def _oxide_per_magnet(self, rows: slice | NDArray[np.intp]) -> NDArray[np.float64]:
        """Oxide per t of magnet (after thrifting) for the given rows, (rows x 2)."""
        cut = 1.0 - self.thrift[rows, :2]
        cut -= self.redesign[rows, :2]
        return self.intensity[None, :] * np.minimum(np.maximum(cut, 0.0), 1.0)

    # -------------------------------------------------------------------------- the month
    def make_magnets(self) -> None:
        """Magnet makers turn oxide stock into magnets, up to capacity and their sales plan."""
        if not self.magnet_count:
            self.oxide_wanted = np.zeros(2)
            self.oxide_used = np.zeros(2)
            self.planned_magnets[:] = 0.0
            return
        rows = self.magnet_rows
        stock = self.stock[rows]
        per_t = self._oxide_per_magnet(rows)
        sales = self.magnet_sales_ema[rows]
        # plan = sales + (target stock - stock) / adjustment time, within [0, capacity].
        plan = sales * self.cover_weeks[rows]
        plan /= WEEKS_PER_MONTH  # the target stock
        plan -= stock[:, G_MAGNET]
        plan /= self.p.stock_adjust_months
        plan += sales
        np.maximum(plan, 0.0, out=plan)
        np.minimum(plan, self.capacity_t_per_year[rows] / 12.0, out=plan)
        # Magnets the oxide stock allows, by oxide (unlimited if the magnet needs none of it).
        by_oxide = np.full(per_t.shape, np.inf)
        np.divide(stock[:, :2], per_t, out=by_oxide, where=per_t > 0)
        # Finite: the plan is capped by capacity.
        made = np.minimum(plan, np.minimum(by_oxide[:, 0], by_oxide[:, 1]))
        oxide_in = made[:, None] * per_t
        accounts = self.magnet_accounts
        ledger = self.model.ledger
        sink = self.model.acct["magnet_inputs"]
        ledger.move("ndpr", accounts, sink, oxide_in[:, 0], "magnet_input_domestic")
        ledger.move("dytb", accounts, sink, oxide_in[:, 1], "magnet_input_domestic")
        ledger.move(
            "magnet", self.model.acct["magnet_making"], accounts, made, "magnet_made_domestic"
        )
        conversion = self.model.params.market.magnet_conversion_cost_usd_per_kg
        ledger.pay(
            accounts, self.model.acct["economy"], made * conversion * 1e-3, "magnet_conversion_cost"
        )
        self.planned_magnets[:] = 0.0
        self.planned_magnets[rows] = plan
        self.magnet_made = made
        # Oxide demand and use of magnet making this month, for the reported balances.
        self.oxide_wanted = (plan[:, None] * per_t).sum(axis=0)
        self.oxide_used = oxide_in.sum(axis=0)

    def invest_in_magnets(self, month: int, unit_cost: float, expected_price: float) -> None:
        """Magnet makers commit new capacity while the expected price beats full cost by a margin.

        Full cost = cash unit cost + a 10%/yr capital charge on ``magnet_capex_usd_per_t_per_year``;
        capacity arrives ``magnet_build_months`` later (CAL: a magnet plant takes ~3 years).
        """
        arriving = self.capacity_pipeline.pop(month, None)
        if arriving is not None:
            self.capacity_t_per_year += arriving
        p = self.p
        capital_charge = 0.1 * p.magnet_capex_usd_per_t_per_year * 1e-3  # US$/kg
        if not self.magnet_count or expected_price < (1.0 + p.magnet_invest_margin) * (
            unit_cost + capital_charge
        ):
            return
        added = np.where(
            self.is_magnet_maker,
            self.capacity_t_per_year * p.magnet_expansion_rate_per_year / 12.0,
            0.0,
        )
        capex = added * p.magnet_capex_usd_per_t_per_year * 1e-6  # US$ M
        ledger = self.model.ledger
        ledger.pay(self.model.acct["investors"], self.accounts, capex, "magnet_investment_equity")
        ledger.pay(self.accounts, self.model.acct["economy"], capex, "magnet_capex")
        if p.magnet_build_months == 0:
            self.capacity_t_per_year += added
            return
        due = month + p.magnet_build_months
        self.capacity_pipeline[due] = self.capacity_pipeline.get(due, 0.0) + added

    def magnet_offers(
        self, unit_cost: float
    ) -> tuple[NDArray[np.intp], NDArray[np.float64], NDArray[np.float64]]:
        """Magnet makers offer their magnet stock at unit cost: (accounts, t, US$/kg)."""
        qty = self.stock[self.magnet_rows, G_MAGNET].copy()
        return self.magnet_accounts, qty, np.full(qty.shape, unit_cost)

    def plan_needs(self, month: int) -> None:
        """Set this month's needs after substitution, and bring recycled material in."""
        need = self.base_need * (1.0 + self.growth) ** (month / 12.0)
        rows = self.magnet_rows
        need[rows, :2] = self.planned_magnets[rows, None] * self.intensity[None, :]
        self.gross_need = need  # not changed after this: no copy needed
        cut = 1.0 - self.thrift
        cut -= self.redesign
        np.maximum(cut, 0.0, out=cut)
        np.minimum(cut, 1.0, out=cut)
        self.need = need * cut  # for magnet makers this is magnet_need_per_t x plan

        # The mandate is a lever: it may change during a run, so it is read from the policy in force.
        mandate = self.model.current.manufacturers.recycling_mandate
        p = self.p
        base = p.recycling_base + mandate
        # Four goods: plain floats are cheaper than numpy calls, and round the same.
        share = []
        for ratio in (self.expected_price / self.reference_price).tolist():
            rising = base + p.recycling_slope * max(ratio - 1.0, 0.0)
            share.append(max(min(max(rising, 0.0), p.recycling_max), mandate))
        recycled = self.need * np.array(share)
        ledger = self.model.ledger
        scrap = self.model.acct["scrap"]
        for g, good in enumerate(GOODS):
            if share[g]:  # else nothing is recycled
                ledger.move(good, scrap, self.accounts, recycled[:, g], "recycled")
        self.recycled = recycled

    def bids(self, g: int) -> tuple[NDArray[np.intp], NDArray[np.float64], NDArray[np.float64]]:
        """Two bid steps per firm for good ``g``: (accounts, quantities, prices), need first.

        Only quantities depend on stocks. The first call of a month (good 0, or any call that does
        not follow the previous good's) sets prices and stock targets for all goods at once, which
        later calls reuse: nothing but stocks may change between the calls for goods 0 to 3.
        The returned accounts and prices are read only.
        """
        month = self.model.month
        if g == 0 or self._bids_made != (month, g - 1):
            self._prepare_bids()
        self._bids_made = (month, g)
        n = self.n
        need = self._bid_need[g]
        qty = np.empty(2 * n)
        wanted = np.subtract(self._bid_targets[g], self.stock[:, g], out=qty[n:])
        wanted /= self.p.stock_adjust_months
        wanted += need
        np.maximum(wanted, 0.0, out=wanted)
        urgent = np.minimum(wanted, need, out=qty[:n])
        wanted -= urgent  # what is left is restocking
        return self._bid_accounts, qty, self._bid_prices[g]

    def _prepare_bids(self) -> None:
        """Needs and stock targets (goods x n) and bid prices (goods x 2n) for ``bids``."""
        # One row per good, so that each good's values are contiguous.
        need = self.need.T.copy()
        targets = need * self.cover_weeks
        targets /= WEEKS_PER_MONTH
        targets *= (1.0 + self.p.precaution * self.risk)[:, None]
        self._bid_need = need
        self._bid_targets = targets
        n = self.n
        prices = np.empty((4, 2 * n))
        # Willingness to pay for this month's need is anchored on the product's economics at the
        # reference price (the material is a small share of product value), not on the latest
        # price, so bids cannot chase prices up without limit.
        wtp = np.multiply(
            self.wtp_multiple[None, :], self.reference_price[:, None], out=prices[:, :n]
        )
        if self.magnet_count:
            # Derived demand (Marshall): a magnet maker can pay for an oxide what a tonne of magnet
            # fetches, less conversion and the other oxide, per tonne of this oxide; so oxide
            # prices can move far more than magnet prices when oxides are short.
            derived = np.array([self.derived_oxide_value(G_NDPR), self.derived_oxide_value(G_DYTB)])
            rows = self.magnet_rows
            wtp[:2, rows] = np.maximum(wtp[:2, rows], derived[:, None])
        restock_price = self.expected_price * (1.0 + 0.5 * self.risk)
        np.minimum(restock_price[:, None], wtp, out=prices[:, n:])
        prices.flags.writeable = False
        self._bid_prices = prices

    def derived_oxide_value(self, g: int) -> float:
        """What a tonne of oxide ``g`` is worth to a magnet maker at expected magnet prices, US$/kg."""
        conversion = self.model.params.market.magnet_conversion_cost_usd_per_kg
        other = 1 - g
        margin = (
            self.expected_price[G_MAGNET]
            - conversion
            - self.intensity[other] * self.expected_price[other]
        )
        return max(margin, 0.0) / max(float(self.intensity[g]), 1e-12)

    def use_material(self) -> None:
        """Consume material for this month's output; firms short of material stop."""
        need = self.need
        # A firm's cover: stock / need of its one good if it needs any, else unlimited. (The
        # same as the least cover over all four goods: the others are not needed.)
        own = self._own_good
        own_need = need.take(own)
        firm_cover = np.full(self.n, np.inf)
        np.divide(self.stock.take(own), own_need, out=firm_cover, where=own_need > 0)
        # Magnet makers are short when their oxide stock cannot feed their plan.
        rows = self.magnet_rows
        if self.magnet_count:
            plan = self.planned_magnets[rows]
            made_ratio = np.ones(plan.shape)
            np.divide(self.magnet_made, plan, out=made_ratio, where=plan > 0)
            firm_cover[rows] = made_ratio
        # Stocks are finite, so a firm's cover is finite or, if it needs nothing, infinite: such a
        # firm is not halted (the threshold is at most 1) and uses its whole (zero) need.
        self.halted = firm_cover < self.p.halt_threshold
        ratio = np.where(self.halted, 0.0, np.minimum(firm_cover, 1.0))
        # Magnet makers' material is used in ``make_magnets``: here they use and make nothing.
        ratio[rows] = 0.0
        use = need * ratio[:, None]
        ledger = self.model.ledger
        consumed = self.model.acct["consumed"]
        accounts = self.accounts
        for g, good in self._consumed_goods:
            ledger.move(good, accounts, consumed, use[:, g], "consumed")
        self.used = use
        # Gross output, not net of substitution: substituted demand is met by other materials.
        output = self.gross_need.take(own)  # its row sum: the other goods are not needed
        output *= ratio
        output *= self.output_weight
        self.output = output
        total = float(output.sum())
        if self.base_output is None:
            self.base_output = total if total > 0 else 1.0

    def learn(
        self,
        landed_price: NDArray[np.float64],
        unmet_share: NDArray[np.float64],
        alerts: NDArray[np.float64],
    ) -> None:
        """Update price expectations, perceived risk and substitution after the month."""
        p = self.p
        # Per good as plain floats (four goods: cheaper than numpy calls, and rounded the same);
        # each update is ``adapt``'s: old + weight x (new - old).
        risk_weight = memory_weight(p.risk_memory_months)
        lam = p.expectation_lambda
        full = p.pressure_full_ratio - 1.0
        memory = memory_weight(p.redesign_memory_months)
        risk, expected, pressure, pressure_memory = [], [], [], []
        for landed, old_expected, unmet, alert, old_risk, reference, old_memory in zip(
            landed_price.tolist(),
            self.expected_price.tolist(),
            unmet_share.tolist(),
            alerts.tolist(),
            self.risk.tolist(),
            self.reference_price.tolist(),
            self.pressure_memory.tolist(),
            strict=True,
        ):
            price_jump = (landed / max(old_expected, 1e-9) - 1.0) / 0.5
            signal = max(_clip01(unmet * 5.0), alert, _clip01(price_jump))
            risk.append(old_risk + risk_weight * (signal - old_risk))
            new_expected = old_expected + lam * (landed - old_expected)
            expected.append(new_expected)
            push = _clip01((new_expected / reference - 1.0) / full)
            pressure.append(push)
            pressure_memory.append(old_memory + memory * (push - old_memory))
        self.risk = np.array(risk)
        self.expected_price = np.array(expected)
        self.pressure_memory = np.array(pressure_memory)
        # Where a firm has no limit for a good there is no room: only the other entries move.
        at = self._substitutable
        done = self._substitution.take(at)  # thrift's entries, then redesign's
        thrift_rate = p.thrift_rate_per_year / 12.0
        redesign_rate = p.redesign_rate_per_year / 12.0
        rates = [thrift_rate * x for x in pressure] + [redesign_rate * x for x in pressure_memory]
        step = np.array(rates).take(self._substitutable_rate)
        step *= _room(done, self._room_divisor, self._room_upper)
        half = step.size // 2
        d_thrift = step[:half]
        d_redesign = step[half:]
        total = d_thrift + d_redesign
        cap = p.max_substitution_per_year / 12.0
        if total.size and total.max() > cap:
            scale = np.where(total > cap, cap / np.maximum(total, 1e-300), 1.0)
            d_thrift *= scale
            d_redesign *= scale
        # Increments are >= 0: no rebound when prices fall.
        done += step
        self._substitution.put(at, done)

        self.magnet_sales_ema = adapt(self.magnet_sales_ema, self.magnet_sold, 0.3)

    # ------------------------------------------------------------------------- reporting
    def substitution_share(self) -> float:
        """Share of importers' REE demand (REO-equivalent) removed by thrift and redesign."""
        # Weights are each firm's demand at capacity, not this month's plan: a magnet maker that
        # plans no output for a month must not drop out of the average and read as a rebound.
        weights = self.gross_need * self._reo_table
        rows = self.magnet_rows
        weights[rows, :2] = (self.capacity_t_per_year[rows] / 12.0)[:, None] * self.intensity[
            None, :
        ]
        sub = (self.thrift + self.redesign) * weights
        total = float(weights.sum())
        return float(sub.sum() / total) if total > 0 else 0.0

    def recycling_share(self) -> float:
        """Share of importers' REE need (REO-equivalent) met by recycled material."""
        total = float((self.need * self._reo_table).sum())
        return float((self.recycled * self._reo_table).sum() / total) if total > 0 else 0.0


def _room(
    done: NDArray[np.float64], divisor: NDArray[np.float64], upper: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Room left to substitute, 1 - done / limit clipped to [0, 1], where there is a limit; else 0.

    ``divisor`` is the limit where there is one, else 1 (so that no division is by zero);
    ``upper`` is 1 where there is a limit, else 0: the upper clip then also zeroes the room of
    entries without a limit (the room is at least 0 by then).
    """
    room = done / divisor
    np.subtract(1.0, room, out=room)
    np.maximum(room, 0.0, out=room)
    return np.minimum(room, upper, out=room)


def _clip01(value: float) -> float:
    """``value`` clipped to [0, 1], as ``np.minimum(np.maximum(value, 0.0), 1.0)`` does."""
    return min(max(value, 0.0), 1.0)


__all__ = ["PRODUCTS", "Manufacturer", "ManufacturerPopulation"]
