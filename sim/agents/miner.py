"""Miners: rare-earth projects outside the foreign supplier, one agent per deposit.

Each project (``scenarios/data/miners_*.csv``, from DEP Table 1 or Table 3) has an ore basket of
NdPr, Dy/Tb and Ce/La (co-production: every tonne of ore yields all three), a mine capacity, an
optional integrated separation plant, capex, opex, lead times and reserves. State lives in arrays;
``Miner`` agents are thin views.

State machine (Riddle et al. 2015 deposit developers; CAL lead-time rows):
``prospect -> financing -> construction -> ramp_up -> operating <-> idle``, and ``defaulted`` or
``closed`` at the end. Rules, each with its parameter in ``miners``:

- **Expectations**: adaptive (Nerlove) expectations of the importing market's price per product;
  the price a project expects to receive is that, raised to any floor it holds.
- **Seek finance** when permitted and the project's NPV at expected prices and ``discount_rate``
  is positive; the bank decides (``sim.agents.bank``). Unfunded after ``financing_patience_months``:
  shelved back to prospect for a year.
- **Construction** spends capex evenly over ``construction_months``.
- **Ramp-up** rises linearly to a ceiling over ``ramp_months``; with probability
  ``ramp_ceiling_low_probability`` the ceiling is ``ramp_ceiling_low`` (McNulty 1998: complex
  flowsheets, some never pass 60-70% of design).
- **Produce or idle**: operate while expected basket value per kg REO is at least
  ``idle_margin`` x opex; restart from idle above ``restart_margin`` x opex (hysteresis).
- **Sell**: separated oxides are offered in the importing market at ``sell_ratio`` x expected
  market price (kept in stock below that; at any price under a floor, which tops it up);
  unseparated concentrate is sold to the foreign supplier at its home prices less
  ``concentrate_discount``.
- **Default** when cash falls below zero after opex, fixed costs and debt service.
- **Equity value** of every project (the reported column sums the listed ones): expected discounted cash flow at current expectations,
  financing terms and policy (a floor raises the price used, the bank's programme raises the chance
  and lowers the cost of finance), times the chance of reaching production, less bank and
  government debt; it moves on
  the month a policy is announced.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from enum import IntEnum
from math import inf
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mesa
import numpy as np
from numpy.typing import NDArray

from sim.market import adapt
from sim.params import PRODUCTS
from sim.scenario import ScenarioError

if TYPE_CHECKING:
    from sim.model import RareEarthModel


class State(IntEnum):
    """Project life-cycle states."""

    PROSPECT = 0
    FINANCING = 1
    CONSTRUCTION = 2
    RAMP_UP = 3
    OPERATING = 4
    IDLE = 5
    DEFAULTED = 6
    CLOSED = 7


STATUS_TO_STATE = {
    "prospect": State.PROSPECT,
    "financing": State.FINANCING,
    "construction": State.CONSTRUCTION,
    "ramp_up": State.RAMP_UP,
    "operating": State.OPERATING,
    "idle": State.IDLE,
}
CSV_COLUMNS = (
    "name",
    "country",
    "owner",
    "status",
    "listed",
    "ndpr_share",
    "dytb_share",
    "cela_share",
    "mine_capacity_t_per_year",
    "separation_capacity_t_per_year",
    "capex_musd",
    "opex_usd_per_kg",
    "permit_months",
    "construction_months",
    "ramp_months",
    "reserves_t",
    "source",
    "est_fields",
)
NUMERIC = CSV_COLUMNS[5:16]
OPTIONAL_NUMERIC = ("magnet_capacity_t_per_year",)  # 0 when the column is absent


def _state_table(*states: State) -> NDArray[np.bool_]:
    """Lookup table by state value, True for ``states``: ``table[fleet.state]`` is their mask."""
    table = np.zeros(len(State), dtype=bool)
    table[[int(state) for state in states]] = True
    table.flags.writeable = False
    return table


# Tables of the state sets asked for so far (``MinerFleet.in_state``).
_STATE_TABLES: dict[tuple[State, ...], NDArray[np.bool_]] = {}
# Chance of reaching production by state (value_equity): a fixed part plus a multiple of the
# project's chance of finance. Built plants 1, construction 0.9, financing the chance of finance,
# prospects half of it; defaulted and closed projects 0.
CHANCE_FIXED = np.zeros(len(State))
CHANCE_FIXED[[State.RAMP_UP, State.OPERATING, State.IDLE]] = 1.0
CHANCE_FIXED[State.CONSTRUCTION] = 0.9
CHANCE_PER_FINANCE = np.zeros(len(State))
CHANCE_PER_FINANCE[State.FINANCING] = 1.0
CHANCE_PER_FINANCE[State.PROSPECT] = 0.5


@dataclass(frozen=True)
class Project:
    """One row of a projects file."""

    name: str
    status: str
    listed: bool
    basket: tuple[float, float, float]
    mine_capacity_t_per_year: float
    separation_capacity_t_per_year: float
    capex_musd: float
    opex_usd_per_kg: float
    permit_months: float
    construction_months: float
    ramp_months: float
    reserves_t: float
    magnet_capacity_t_per_year: float = 0.0


def read_projects(path: Path) -> list[Project]:
    """Read and check a projects CSV; problems raise ``ScenarioError`` naming row and column.

    The file must be UTF-8 text (a byte-order mark, as spreadsheets write, is allowed).
    """
    key = "population.miners_file"
    try:
        found = path.is_file()
        raw = path.read_bytes() if found else b""
    except (OSError, ValueError) as err:  # unreadable, or a NUL byte in the name
        problem = f"cannot read: {getattr(err, 'strerror', None) or err}"
        raise ScenarioError(str(path), key, problem) from None
    if not found:
        raise ScenarioError(str(path), key, "no such file")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        problem = (
            f"not a UTF-8 text file ({err.reason} at byte {err.start}); "
            "a projects file is CSV text in UTF-8"
        )
        raise ScenarioError(str(path), key, problem) from None
    # Decoded whole, then read with newline="" so that csv sees line ends as written.
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        return _parse_projects(reader, path)
    except csv.Error as err:
        problem = f"not a readable CSV row ({err})"
        raise ScenarioError(str(path), f"line {reader.line_num}", problem) from None


def _parse_projects(reader: csv.DictReader[str], path: Path) -> list[Project]:
    """The rows of a projects file as ``Project`` records, each field checked."""
    missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise ScenarioError(
            str(path), "header", f"missing column(s) {missing}; expected {list(CSV_COLUMNS)}"
        )
    projects = []
    for line, row in enumerate(reader, start=2):
        short = [c for c in CSV_COLUMNS if row.get(c) is None]
        if short:
            raise ScenarioError(
                str(path),
                f"line {line}",
                f"no value for column(s) {short}; each row needs one value per header column",
            )
        values: dict[str, float] = {}
        for col in NUMERIC + OPTIONAL_NUMERIC:
            if col in OPTIONAL_NUMERIC and row.get(col) in (None, ""):
                values[col] = 0.0
                continue
            try:
                values[col] = float(row[col])
            except (TypeError, ValueError):
                raise ScenarioError(
                    str(path), f"line {line} {col}", f"got {row[col]!r}; must be a number"
                ) from None
            if not np.isfinite(values[col]) or values[col] < 0:
                raise ScenarioError(
                    str(path),
                    f"line {line} {col}",
                    f"got {row[col]!r}; must be a finite number >= 0",
                )
        status = row["status"].strip()
        if status not in STATUS_TO_STATE:
            raise ScenarioError(
                str(path),
                f"line {line} status",
                f"got {status!r}; allowed: {sorted(STATUS_TO_STATE)}",
            )
        basket = (values["ndpr_share"], values["dytb_share"], values["cela_share"])
        if sum(basket) > 1.0 + 1e-9:
            raise ScenarioError(
                str(path),
                f"line {line} basket",
                f"shares add up to {sum(basket):.3f}; must be <= 1",
            )
        projects.append(
            Project(
                name=row["name"].strip(),
                status=status,
                listed=row["listed"].strip().lower() == "true",
                basket=basket,
                mine_capacity_t_per_year=values["mine_capacity_t_per_year"],
                separation_capacity_t_per_year=min(
                    values["separation_capacity_t_per_year"], values["mine_capacity_t_per_year"]
                ),
                capex_musd=values["capex_musd"],
                opex_usd_per_kg=values["opex_usd_per_kg"],
                permit_months=values["permit_months"],
                construction_months=max(values["construction_months"], 1.0),
                ramp_months=max(values["ramp_months"], 1.0),
                reserves_t=values["reserves_t"],
                magnet_capacity_t_per_year=values["magnet_capacity_t_per_year"],
            )
        )
    return projects


def choose_projects(
    projects: list[Project], count: int | None, rng: np.random.Generator
) -> list[Project]:
    """The first ``count`` projects; beyond the file, resampled rows with jittered size."""
    if count is None or count == len(projects):
        return list(projects)
    if count <= len(projects):
        return list(projects[:count])
    extra = []
    prospects = [p for p in projects if p.status in {"prospect", "financing"}] or projects
    for k in range(count - len(projects)):
        base = prospects[int(rng.integers(len(prospects)))]
        scale = float(rng.lognormal(0.0, 0.3))
        extra.append(
            Project(
                name=f"{base.name} (synthetic {k + 1})",
                status="prospect",
                listed=base.listed,
                basket=base.basket,
                mine_capacity_t_per_year=base.mine_capacity_t_per_year * scale,
                separation_capacity_t_per_year=base.separation_capacity_t_per_year * scale,
                capex_musd=max(base.capex_musd, 50.0) * scale**0.8,
                opex_usd_per_kg=base.opex_usd_per_kg * float(rng.lognormal(0.0, 0.15)),
                permit_months=base.permit_months + float(rng.integers(0, 36)),
                construction_months=base.construction_months,
                ramp_months=base.ramp_months,
                reserves_t=base.reserves_t * scale,
            )
        )
    return list(projects) + extra


class Miner(mesa.Agent):
    """One project: a view into the fleet's arrays."""

    def __init__(self, model: RareEarthModel, fleet: MinerFleet, index: int) -> None:
        super().__init__(model)
        self.fleet = fleet
        self.index = index

    @property
    def name(self) -> str:
        """Project name."""
        return self.fleet.names[self.index]

    @property
    def state(self) -> State:
        """Life-cycle state."""
        return State(int(self.fleet.state[self.index]))

    @property
    def equity_value_musd(self) -> float:
        """Market value of the equity (listed or not), US$ M."""
        return float(self.fleet.equity_value[self.index])


class MinerFleet:
    """State and decision rules of all miners, as arrays."""

    def __init__(self, model: RareEarthModel, projects: list[Project]) -> None:
        self.model = model
        self.p = model.params.miners
        n = len(projects)
        self.n = n
        self.names = [p.name for p in projects]
        self.listed = np.array([p.listed for p in projects], dtype=bool)
        self.basket = np.array([p.basket for p in projects]).reshape(n, 3)
        self.mine_cap = np.array([p.mine_capacity_t_per_year for p in projects])
        self.sep_cap = np.array([p.separation_capacity_t_per_year for p in projects])
        self.capex = np.array([p.capex_musd for p in projects])
        self.opex = np.array([p.opex_usd_per_kg for p in projects])
        self.permit_left = np.array([p.permit_months for p in projects]) * self.p.permit_time_factor
        self.construction_months = np.array([p.construction_months for p in projects])
        self.ramp_months = np.array([p.ramp_months for p in projects])
        self.reserves = np.array([p.reserves_t for p in projects])
        self.magnet_cap = np.array([p.magnet_capacity_t_per_year for p in projects])
        self.magnets_made = np.zeros(n)
        # Per-project price floors from government contracts (NaN = none), their upside share and
        # the month they end; policy floors apply to every project on top (sim.agents.government).
        self.contract_floor = np.full((n, 3), np.nan)
        self.contract_upside = np.zeros((n, 3))
        self.contract_floor_end = np.zeros((n, 3))
        self.gov_share = np.zeros(n)
        # Floors as last computed, and what they were computed from (_update_floors).
        self._floors_contracts: tuple[bytes, bytes] = (b"", b"")
        self._floors_policy: object = None
        self._floors_from, self._floors_until = 0.0, -inf
        self._floors_version = 0  # counts the computations of the floors
        # Value per kg at expected prices, by what it was computed from (_expected_value).
        self._value_key: tuple[object, ...] = ()
        self._value = np.zeros(n)
        self._floors = np.full((n, 3), np.nan)
        self._floored = np.zeros((n, 3), dtype=bool)
        self._floor_any = [False, False, False]
        self._floor_finance = np.zeros(n)
        # Terms computed from project figures only, by what they were computed from (_memo).
        self._memo: dict[tuple[object, ...], Any] = {}
        self.index_of = {name: i for i, name in enumerate(self.names)}
        self.gov_loan = np.zeros(n)
        self.gov_loan_rate = np.zeros(n)
        self.gov_loan_payment = np.zeros(n)
        self.state = np.array([STATUS_TO_STATE[p.status] for p in projects], dtype=np.int64)
        self.months_in_state = np.zeros(n)
        low = model.rng.random(n) < self.p.ramp_ceiling_low_probability
        self.ramp_ceiling = np.where(low, self.p.ramp_ceiling_low, 1.0)
        # Plants already operating at the start have passed their ramp-up.
        self.ramp_ceiling[self.state == State.OPERATING] = 1.0

        self.loan = np.zeros(n)
        self.loan_rate = np.zeros(n)
        self.loan_payment = np.zeros(n)
        self.loan_months_left = np.zeros(n)
        self.bank_equity = np.zeros(n)
        self.gov_equity = np.zeros(n)
        self.equity_value = np.zeros(n)
        self.output_t = np.zeros(n)
        self.util = np.zeros(n)
        self.construction_spend = np.zeros(n)

        self.accounts = model.ledger.open("miner", n)
        ledger = model.ledger
        # Opening cash: operating projects hold working capital; projects under construction hold
        # the rest of their capex (already financed by their sponsors).
        monthly_opex = self.mine_cap / 12.0 * self.opex * 1e-3
        opening = np.where(
            np.isin(self.state, [State.OPERATING, State.RAMP_UP, State.IDLE]),
            monthly_opex * self.p.initial_cash_months,
            0.0,
        )
        opening += np.where(self.state == State.CONSTRUCTION, self.capex, 0.0)
        ledger.pay(model.acct["investors"], self.accounts, opening, "opening_equity")
        self.expected_market = model.import_price[:3].copy()
        self.separated_t = np.zeros(n)
        self.agents = [Miner(model, self, i) for i in range(n)]

    # ------------------------------------------------------------------------------ views
    def in_state(self, *states: State) -> NDArray[np.bool_]:
        """Mask of projects in any of ``states``."""
        table = _STATE_TABLES.get(states)
        if table is None:
            table = _STATE_TABLES[states] = _state_table(*states)
        return table[self.state]

    def cash(self) -> NDArray[np.float64]:
        """Cash by project, US$ M (a copy)."""
        return self.model.ledger.cash(self.accounts).copy()

    def stock(self) -> NDArray[np.float64]:
        """Oxide stocks by project (n x 3), t (a copy)."""
        return self.model.ledger.rows(self.accounts)[:, :3].copy()

    def value_per_kg(
        self, prices: NDArray[np.float64], foreign_prices: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        """Value per kg REO mined: separated share at ``prices``, concentrate at foreign prices."""
        sep_share, concentrate_share = self._memo_of(
            "separated share", self.sep_cap, self.mine_cap, self._separated_share
        )
        # Prices may be one row for all projects (3,) or a row per project (n, 3).
        separated = (self.basket * prices).sum(axis=1)
        concentrate = self.basket @ foreign_prices * (1.0 - self.p.concentrate_discount)
        return sep_share * separated + concentrate_share * concentrate

    def _separated_share(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Share of its ore each project separates, and the share it sells as concentrate."""
        sep_share = np.divide(
            self.sep_cap, self.mine_cap, out=np.zeros(self.n), where=self.mine_cap > 0
        )
        return sep_share, 1.0 - sep_share

    def _expected_value(self) -> NDArray[np.float64]:
        """``value_per_kg`` at the expected prices received and the foreign expected home prices.

        Asked for at the end of a month (value_equity) and again at the start of the next
        (advance), usually from the same inputs: kept while they stay the same. Read only.
        """
        self._update_floors()
        home = self.model.foreign.expected_home
        key = (
            self._floors_version,
            self.expected_market.tobytes(),
            home.tobytes(),
            self.basket.tobytes(),
            self.sep_cap.tobytes(),
            self.mine_cap.tobytes(),
            self.p,
        )
        if key != self._value_key:
            self._value = self.value_per_kg(self.expected_received(), home)
            self._value.flags.writeable = False
            self._value_key = key
        return self._value

    def npv_musd(
        self,
        value_per_kg: NDArray[np.float64],
        rate: float | NDArray[np.float64],
        utilisation: float = 0.85,
    ) -> NDArray[np.float64]:
        """NPV of building now: discounted operating cash flow after construction, less capex."""
        annual_cf = (
            self.mine_cap * utilisation * (value_per_kg - self.opex) * 1e-3
            - self._annual_fixed_cost()
        )
        rate_arr = np.asarray(rate, dtype=float)
        annuity, delay = self._memo_of(
            "discount" if rate_arr.ndim == 0 else "discount by project",
            rate_arr,
            self.construction_months,
            lambda: self._discount(rate_arr),
        )
        return annual_cf * annuity * delay - self.capex

    def _discount(
        self, rate: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Annuity factor over the project life and discount for the years until production."""
        years = self.p.project_life_years
        rate_arr = np.maximum(rate, 1e-6)
        annuity = (1.0 - (1.0 + rate_arr) ** -years) / rate_arr
        delay = (1.0 + rate_arr) ** -(self.construction_months / 12.0 + 1.0)
        return annuity, delay

    def fixed_cost_musd(self) -> NDArray[np.float64]:
        """Monthly fixed cost, US$ M (read only)."""
        return self._memo_of("fixed cost", self.mine_cap, self.opex, self._fixed_cost)

    def _fixed_cost(self) -> NDArray[np.float64]:
        cost = self.p.fixed_cost_share * self.mine_cap / 12.0 * self.opex * 1e-3
        cost.flags.writeable = False
        return cost

    def _annual_fixed_cost(self) -> NDArray[np.float64]:
        """Yearly fixed cost (12 x the monthly), US$ M (read only)."""
        return self._memo_of("annual fixed cost", self.mine_cap, self.opex, self._fixed_cost_year)

    def _fixed_cost_year(self) -> NDArray[np.float64]:
        cost = self.fixed_cost_musd() * 12.0
        cost.flags.writeable = False
        return cost

    def _memo_of(self, name: str, first: NDArray[Any], second: NDArray[Any], compute: Any) -> Any:
        """``compute()``, computed again only when the contents of ``first`` or ``second`` change.

        Project figures are constant within a run, but tests set them by hand (whole arrays or
        single entries), so the key is their contents, not their identity.
        """
        key = (name, first.tobytes(), second.tobytes())
        value = self._memo.get(key)
        if value is None:
            if len(self._memo) >= 64:  # figures set by hand many times over: start afresh
                self._memo.clear()
            value = self._memo[key] = compute()
        return value

    # -------------------------------------------------------------------------- the month
    def advance(self) -> None:
        """State transitions for this month (before production)."""
        model = self.model
        self.months_in_state += 1
        value = self._expected_value()

        prospect = self.in_state(State.PROSPECT)
        self.permit_left = np.where(prospect, np.maximum(self.permit_left - 1, 0), self.permit_left)
        npv = self.npv_musd(value, self.p.discount_rate)
        ready = prospect & (self.permit_left <= 0) & (npv > 0) & (self.mine_cap > 0)
        self._enter(ready, State.FINANCING, "seeks financing")

        financing = np.nonzero(self.in_state(State.FINANCING))[0]
        if financing.size:
            approved = model.bank.decide(self, financing, value)
            self._enter(approved, State.CONSTRUCTION, "financed; construction starts")
            gave_up = self.in_state(State.FINANCING) & (
                self.months_in_state >= self.p.financing_patience_months
            )
            self.permit_left = np.where(gave_up, 12.0, self.permit_left)
            self._enter(gave_up, State.PROSPECT, "no finance; shelved")

        # (Each step below that concerns one state is skipped in months with no project in it.)
        building = self.in_state(State.CONSTRUCTION)
        if np.count_nonzero(building):
            done = building & (self.months_in_state >= self.construction_months)
            # Capex is spent in the construction_months before completion, not in the month after.
            self.construction_spend = np.where(
                building & ~done, self.capex / self.construction_months, 0.0
            )
            self._enter(done, State.RAMP_UP, "construction complete; ramp-up starts")
        else:
            self.construction_spend = np.zeros(self.n)

        ramping = self.in_state(State.RAMP_UP)
        if np.count_nonzero(ramping):
            ramped = ramping & (self.months_in_state >= self.ramp_months)
            self._enter(ramped, State.OPERATING, "ramp-up complete")

        ratio = np.divide(value, self.opex, out=np.full(self.n, np.inf), where=self.opex > 0)
        to_idle = self.in_state(State.OPERATING, State.RAMP_UP) & (ratio < self.p.idle_margin)
        self._enter(to_idle, State.IDLE, "idles: expected value below cash cost")
        idle = self.in_state(State.IDLE)
        if np.count_nonzero(idle):
            restart = idle & (ratio >= self.p.restart_margin) & (self.reserves > 0)
            self._enter(restart, State.OPERATING, "restarts")
        # Repayment starts at completion: the first month a financed plant operates, whether it
        # got there by finishing its ramp-up or by restarting after idling during it.
        completed = self.in_state(State.OPERATING) & (self.loan > 1e-9) & (self.loan_payment <= 0)
        model.bank.start_repayment(self, completed)

    def produce(self) -> None:
        """Mine and separate this month's output; sell concentrate to the foreign supplier."""
        model = self.model
        ledger = model.ledger
        ramping = self.in_state(State.RAMP_UP)
        if np.count_nonzero(ramping):
            progress = np.minimum(np.maximum(self.months_in_state / self.ramp_months, 0.0), 1.0)
            ramp_util: NDArray[np.float64] | float = np.where(
                ramping, self.ramp_ceiling * progress, 0.0
            )
        else:
            ramp_util = 0.0  # no project ramping up
        self.util = np.where(self.in_state(State.OPERATING), self.ramp_ceiling, ramp_util)
        self.output_t = np.minimum(self.mine_cap / 12.0 * self.util, self.reserves)
        self.reserves = self.reserves - self.output_t
        separated = np.minimum(self.output_t, self.sep_cap / 12.0 * self.util)
        concentrate = self.output_t - separated
        self.separated_t = separated
        ground = model.acct["ground_domestic"]
        for k, product in enumerate(PRODUCTS):
            ledger.move(
                product, ground, self.accounts, separated * self.basket[:, k], "mine_domestic"
            )
        if np.count_nonzero(concentrate):
            model.foreign.buy_concentrate(self, concentrate)
        exhausted = (self.reserves <= 0) & self.in_state(State.OPERATING, State.RAMP_UP, State.IDLE)
        self._enter(exhausted, State.CLOSED, "reserves exhausted; closed")

    def offers(self, k: int) -> tuple[NDArray[np.intp], NDArray[np.float64], NDArray[np.float64]]:
        """Oxide offers of product ``k``: (accounts, t, ask US$/kg)."""
        qty = self.model.ledger.rows(self.accounts)[:, k].copy()
        ask = self.p.sell_ratio * self.expected_market[k]
        if not self.any_floor(k):
            return self.accounts, qty, np.full(self.n, ask)
        # Under a floor the project is paid at least the floor whatever the market price: it sells.
        return self.accounts, qty, np.where(self.floored()[:, k], 0.0, ask)

    def make_magnets(self, intensity: NDArray[np.float64], conversion_usd_per_kg: float) -> None:
        """Integrated magnet stages make magnets from the project's own oxides, up to capacity.

        NdPr limits output; Dy/Tb is used if the project has it (Dy-lean grades otherwise). The
        conversion cost is paid to the wider economy.
        """
        has_stage = (self.magnet_cap > 0) & ~self.in_state(State.DEFAULTED, State.CLOSED)
        if not np.count_nonzero(has_stage):
            self.magnets_made = np.zeros(self.n)
            return
        ledger = self.model.ledger
        held = ledger.rows(self.accounts)  # a view: read before the moves below
        made = np.where(
            has_stage,
            np.minimum(self.magnet_cap / 12.0, held[:, 0] / max(intensity[0], 1e-12)),
            0.0,
        )
        dytb_used = np.minimum(made * intensity[1], held[:, 1])
        sink, source = self.model.acct["magnet_inputs"], self.model.acct["magnet_making"]
        ledger.move("ndpr", self.accounts, sink, made * intensity[0], "magnet_input_domestic")
        ledger.move("dytb", self.accounts, sink, dytb_used, "magnet_input_domestic")
        ledger.move("magnet", source, self.accounts, made, "magnet_made_domestic")
        ledger.pay(
            self.accounts,
            self.model.acct["economy"],
            made * conversion_usd_per_kg * 1e-3,
            "magnet_conversion_cost",
        )
        self.magnets_made = made

    def pay_costs(self) -> None:
        """Opex, fixed costs and construction spending to the wider economy."""
        ledger = self.model.ledger
        economy = self.model.acct["economy"]
        active = self.in_state(State.OPERATING, State.RAMP_UP, State.IDLE)
        ledger.pay(self.accounts, economy, self.output_t * self.opex * 1e-3, "miner_opex")
        ledger.pay(
            self.accounts,
            economy,
            np.where(active, self.fixed_cost_musd(), 0.0),
            "miner_fixed_cost",
        )
        if np.count_nonzero(self.construction_spend):
            ledger.pay(self.accounts, economy, self.construction_spend, "capex")

    def check_defaults(self) -> None:
        """Projects that cannot pay their way default; the bank writes off what it cannot recover."""
        alive = ~self.in_state(State.DEFAULTED, State.CLOSED, State.PROSPECT)
        broke = alive & (self.model.ledger.cash(self.accounts) < -1e-9)
        if np.count_nonzero(broke):
            self.model.bank.write_off(self, broke)
            self.model.government.write_off(broke, self)
            self._enter(broke, State.DEFAULTED, "defaults: cannot pay costs and debt service")

    def learn(self, market_price: NDArray[np.float64]) -> None:
        """Adaptive expectations of the importing market's prices."""
        self.expected_market = adapt(self.expected_market, market_price, self.p.expectation_lambda)

    def floors(self) -> NDArray[np.float64]:
        """Price floor of each project for each oxide (n x 3, NaN = none).

        The policy floor for all domestic producers or the project's own contract floor,
        whichever is higher.
        """
        self._update_floors()
        return self._floors

    def floored(self) -> NDArray[np.bool_]:
        """Mask of the projects holding a price floor, for each oxide (n x 3); do not modify it."""
        self._update_floors()
        return self._floored

    def any_floor(self, k: int) -> bool:
        """Whether any project holds a price floor on oxide ``k``."""
        self._update_floors()
        return bool(self._floor_any[k])

    def _update_floors(self) -> None:
        # Floors change only with a lever (a new model.current), a contract, or when the month
        # reaches the end of a contract: cache on those. The levers object is held, not its id(),
        # which a later object could reuse.
        model = self.model
        month = model.month
        contracts = (self.contract_floor.tobytes(), self.contract_floor_end.tobytes())
        if (
            contracts != self._floors_contracts
            or model.current is not self._floors_policy
            or not self._floors_from <= month < self._floors_until
        ):
            active = self.contract_floor_end > month
            contract = np.where(active, self.contract_floor, np.nan)
            # The policy floors (one per oxide) broadcast over the projects.
            self._floors = np.fmax(model.floor_array(), contract)
            self._floored = ~np.isnan(self._floors)
            # Whether any project holds a floor, by oxide (offers), and what a floor adds to a
            # project's chance of finance (value_equity).
            self._floor_any = self._floored.any(axis=0).tolist()
            self._floor_finance = np.where(self._floored.any(axis=1), 0.2, 0.0)
            self._floors_contracts = contracts
            self._floors_policy = model.current
            self._floors_version += 1
            # The same contracts are active from this month until the first to end after it.
            ends = self.contract_floor_end[active]
            self._floors_from, self._floors_until = month, float(ends.min()) if ends.size else inf

    def upside_shares(self) -> NDArray[np.float64]:
        """Share of the price above its floor each project pays back (n x 3)."""
        policy = self.model.current.policy.floor_upside_share
        active = self.contract_floor_end > self.model.month
        # The policy floors (one per oxide) broadcast over the projects.
        contract_binds = active & ~(self.model.floor_array() > self.contract_floor)
        return np.where(contract_binds, self.contract_upside, policy)

    def expected_received(self) -> NDArray[np.float64]:
        """Expected price received (n x 3): market expectation, raised to any floor in force."""
        # The expectation (one per oxide) broadcasts over the projects.
        return np.fmax(self.expected_market, self.floors())

    def value_equity(self) -> None:
        """Equity value (US$ M): discounted expected cash flows x chance of production - debt."""
        model = self.model
        bank = model.params.bank
        programme = model.current.policy.bank_initiative
        value = self._expected_value()
        # Cheaper finance lowers the discount rate, never below 1%/yr.
        rate = max(
            self.p.discount_rate
            - (bank.hurdle_commercial - bank.hurdle_programme if programme else 0.0),
            0.01,
        )
        self._update_floors()  # for _floor_finance below
        annual_cf = (
            self.mine_cap
            * np.where(
                self.in_state(State.OPERATING, State.RAMP_UP),
                np.maximum(self.ramp_ceiling, 0.0),
                0.85,
            )
            * (value - self.opex)
            * 1e-3
            - self._annual_fixed_cost()
        )
        years = self.p.project_life_years
        annuity = (1.0 - (1.0 + rate) ** -years) / rate
        franchise = np.maximum(annual_cf, 0.0) * annuity
        # A floor on any oxide raises the chance of finance by 0.2.
        p_finance = 0.3 + (0.3 if programme else 0.0) + self._floor_finance
        chance = CHANCE_FIXED[self.state] + CHANCE_PER_FINANCE[self.state] * p_finance
        unfunded_capex = np.where(self.in_state(State.FINANCING, State.PROSPECT), self.capex, 0.0)
        cash = self.model.ledger.cash(self.accounts)
        value_musd = chance * (franchise - unfunded_capex) + cash - self.loan - self.gov_loan
        self.equity_value = np.maximum(value_musd, 0.0)

    def _enter(self, mask: NDArray[np.bool_], state: State, detail: str) -> None:
        # (np.count_nonzero is the cheapest test for any True, here and elsewhere.)
        if not np.count_nonzero(mask):
            return
        self.state = np.where(mask, int(state), self.state)
        self.months_in_state = np.where(mask, 0.0, self.months_in_state)
        kind = {State.DEFAULTED: "default", State.CLOSED: "closure"}.get(state, "miner_state")
        for i in np.nonzero(mask)[0]:
            self.model.log_event(self.names[i], kind, detail)
