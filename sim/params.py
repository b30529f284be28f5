"""The parameter schema: every input with its type, unit, default, allowed range and source.

Following PyPSA's component attribute tables, each parameter is data: one pydantic field with a
unit, a source (a row of ``shared/data/calibration.md``, ``demand.md`` or ``deposits.md``, or
``EST`` with a plausible range for derived estimates) and a one-line description. The same
schema validates scenario files, drives ``--set`` overrides and generates the parameter table in
``docs/ODD.md`` (``python -m sim.docs``).

Sources are abbreviated: ``CAL`` = ``shared/data/calibration.md``, ``DEM`` = ``demand.md``,
``DEP`` = ``deposits.md``; the text after the colon names the table and row.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

PRODUCTS: tuple[str, ...] = ("ndpr", "dytb", "cela")
GOODS: tuple[str, ...] = (*PRODUCTS, "magnet")
SECTORS: tuple[str, ...] = (
    "magnet_maker",
    "ev",
    "wind",
    "electronics",
    "industrial",
    "defence",
    "cela_user",
)


def param(
    default: Any,
    unit: str,
    source: str,
    description: str,
    *,
    ge: float | None = None,
    le: float | None = None,
    gt: float | None = None,
    est_range: tuple[float, float] | None = None,
) -> Any:
    """A schema field: default, unit, source and allowed range, kept together as data.

    Args:
        default: value used when a scenario does not set it.
        unit: physical or money unit ("t REO/yr", "US$/kg", "fraction", "-").
        source: calibration row, or "EST: how it was derived" for estimates.
        description: one line for the parameter table.
        ge: inclusive lower bound.
        le: inclusive upper bound.
        gt: exclusive lower bound.
        est_range: plausible (low, high) for an EST parameter, used by sensitivity sweeps.
    """
    extra: dict[str, Any] = {"unit": unit, "source": source}
    if est_range is not None:
        extra["est_range"] = list(est_range)
    return Field(default, ge=ge, le=le, gt=gt, description=description, json_schema_extra=extra)


class Strict(BaseModel):
    """Base for every parameter group: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


# --------------------------------------------------------------------------------------- meta
class Meta(Strict):
    """What the scenario is and the simulated period."""

    name: str = param("unnamed", "-", "-", "scenario name (file stem)")
    description: str = param("", "-", "-", "one-line description shown by `resim scenarios`")
    base: str = param(
        "",
        "-",
        "-",
        "scenario this file builds on (stem or path); its keys, schedule and contracts are inherited",
    )
    start: str = param(
        "2025-01", "YYYY-MM", "CAL: Prices table (2024 averages are the start state)", "first month"
    )
    months: int = param(
        132, "months", "-", "simulated months (one step = one month)", ge=1, le=1200
    )

    @field_validator("start")
    @classmethod
    def _start_is_month(cls, value: str) -> str:
        parts = value.split("-")
        if len(parts) != 2 or not all(p.isdigit() for p in parts):
            msg = f"must be a month written YYYY-MM, got {value!r}"
            raise ValueError(msg)
        year, month = int(parts[0]), int(parts[1])
        if not (1900 <= year <= 2200 and 1 <= month <= 12):
            msg = f"must be a month YYYY-MM with year 1900-2200 and month 01-12, got {value!r}"
            raise ValueError(msg)
        return f"{year:04d}-{month:02d}"


class Population(Strict):
    """How many agents of each many-agent type, and where the miners come from."""

    miners: int | None = param(
        None,
        "agents",
        "DEP: Table 1 (one agent per project)",
        "number of Miner agents; empty = one per row of miners_file; more rows are resampled",
        ge=0,
        le=5000,
    )
    manufacturers: int = param(
        500,
        "agents",
        "DEM: section 4 (no count found; EST)",
        "number of Manufacturer agents in the importing market",
        ge=1,
        le=100_000,
    )
    miners_file: str = param(
        "data/miners_2025.csv",
        "path",
        "DEP: Table 1",
        "CSV of projects, relative to scenarios/ (see scenarios/data/README.md)",
    )


# ------------------------------------------------------------------------------------- policy
class Tariff(Strict):
    """Importers' ad valorem tariff on imports from the foreign supplier (1.0 = 100%)."""

    ndpr: float = param(
        0.0,
        "fraction",
        "CAL: US normal (MFN) tariffs (other oxides 0%)",
        "tariff on NdPr oxide",
        ge=0,
        le=100,
    )
    dytb: float = param(
        0.0,
        "fraction",
        "CAL: US normal (MFN) tariffs (other oxides 0%)",
        "tariff on Dy/Tb oxide",
        ge=0,
        le=100,
    )
    cela: float = param(
        0.055,
        "fraction",
        "CAL: US normal (MFN) tariffs (cerium compounds 5.5%)",
        "tariff on Ce/La oxide",
        ge=0,
        le=100,
    )
    magnet: float = param(
        0.021,
        "fraction",
        "DEM: section 7 (US MFN HTS 8505.11, 2.1%)",
        "tariff on NdFeB magnets",
        ge=0,
        le=100,
    )


class ExportQuota(Strict):
    """The foreign supplier's export quota (t/yr); empty = no quota."""

    ndpr: float | None = param(None, "t REO/yr", "-", "NdPr oxide export quota", ge=0, le=1e7)
    dytb: float | None = param(None, "t REO/yr", "-", "Dy/Tb oxide export quota", ge=0, le=1e7)
    cela: float | None = param(None, "t REO/yr", "-", "Ce/La oxide export quota", ge=0, le=1e7)
    magnet: float | None = param(
        None, "t magnet/yr", "-", "NdFeB magnet export quota", ge=0, le=1e7
    )


class PriceFloor(Strict):
    """Government price floor paid to domestic producers (US$/kg); empty = none."""

    ndpr: float | None = param(
        None, "US$/kg", "-", "NdPr oxide floor (DoD-MP deal: 110)", gt=0, le=1e5
    )
    dytb: float | None = param(None, "US$/kg", "-", "Dy/Tb oxide floor", gt=0, le=1e5)
    cela: float | None = param(None, "US$/kg", "-", "Ce/La oxide floor", gt=0, le=1e5)


class Policy(Strict):
    """Importing-country policy levers (the contract's policy keys)."""

    tariff: Tariff = Tariff()
    export_quota: ExportQuota = ExportQuota()
    price_floor: PriceFloor = PriceFloor()
    floor_upside_share: float = param(
        0.0,
        "fraction",
        "CAL: DoD - MP Materials (30% of upside above the floor)",
        "share of the market price above the floor that producers pay back to the government",
        ge=0,
        le=1,
    )
    bank_initiative: bool = param(
        False, "-", "CAL: JPMorgan Security and Resiliency Initiative", "the bank's programme is on"
    )


# ------------------------------------------------------------------------------------ foreign
class Licensing(Strict):
    """An export licence regime for one good."""

    active: bool = param(False, "-", "CAL: China export licensing I", "licences are required")
    approval_share: float = param(
        0.5,
        "fraction",
        "EST: no published approval rate",
        "share of applications approved",
        ge=0,
        le=1,
        est_range=(0.2, 0.9),
    )
    delay_months: int = param(
        2,
        "months",
        "CAL: China export licensing I (about 45 business days)",
        "licence processing delay",
        ge=0,
        le=36,
    )


class LicensingByGood(Strict):
    """Licence regimes per good."""

    ndpr: Licensing = Licensing()
    dytb: Licensing = Licensing()
    cela: Licensing = Licensing()
    magnet: Licensing = Licensing()


class ExportTax(Strict):
    """The foreign state's export tax, fraction of FOB value."""

    ndpr: float = param(
        0.0,
        "fraction",
        "CAL: export taxes row (abolished with quotas, 2015)",
        "export tax on NdPr oxide",
        ge=0,
        le=10,
    )
    dytb: float = param(
        0.0,
        "fraction",
        "CAL: export taxes row (abolished with quotas, 2015)",
        "export tax on Dy/Tb oxide",
        ge=0,
        le=10,
    )
    cela: float = param(
        0.0,
        "fraction",
        "CAL: export taxes row (abolished with quotas, 2015)",
        "export tax on Ce/La oxide",
        ge=0,
        le=10,
    )
    magnet: float = param(0.0, "fraction", "-", "export tax on magnets", ge=0, le=10)


class ByProduct(Strict):
    """A number for each oxide."""

    ndpr: float = Field(ge=0)
    dytb: float = Field(ge=0)
    cela: float = Field(ge=0)


class Foreign(Strict):
    """The dominant foreign supplier: production, home market, export regime, strategy."""

    mine_quota_t_per_year: float = param(
        270_000, "t REO/yr", "CAL: China quotas (mining 2024)", "mining quota", ge=0, le=1e7
    )
    separation_quota_t_per_year: float = param(
        254_000,
        "t REO/yr",
        "CAL: China quotas (separation 2024)",
        "separation quota (cap on separated output)",
        ge=0,
        le=1e7,
    )
    quota_growth_per_year: float = param(
        0.06,
        "fraction/yr",
        "EST: CAL world/China mine production 2022-2024 (210 to 270 kt, quotas track demand); range 0-0.12",
        "yearly growth of the mining and separation quotas and imported feed",
        ge=-0.5,
        le=1,
        est_range=(0.0, 0.12),
    )
    imported_feed_t_per_year: float = param(
        60_000,
        "t REO/yr",
        "DEM: 1B total row (~60 kt imported feed)",
        "feed imported from third countries (Myanmar etc.)",
        ge=0,
        le=1e7,
    )
    basket: ByProduct = param(
        ByProduct(ndpr=0.25, dytb=0.012, cela=0.65),
        "fraction of REO",
        "EST: NdPr+Dy/Tb from IEA magnet-REE demand 93 kt (CAL) on ~254 kt separated; range ndpr 0.18-0.30",
        "share of separated output by product",
    )
    home_demand_t_per_year: ByProduct = param(
        ByProduct(ndpr=52_000, dytb=2_300, cela=150_000),
        "t REO/yr",
        "EST: separated supply plus concentrate bought abroad, less magnet exports (DEM 5B) and oxide exports; see ODD",
        "home-market demand at reference prices (start year)",
    )
    home_demand_growth_per_year: float = param(
        0.06,
        "fraction/yr",
        "EST: DEM section 2 aggregate growth (Adamas CAGR 8.7% magnets; slower for Ce/La)",
        "growth of home demand",
        ge=-0.5,
        le=1,
        est_range=(0.02, 0.09),
    )
    home_demand_elasticity: float = param(
        -0.3,
        "-",
        "EST: DEM section 6 (long-run -0.3 to -0.6; magnets near 0)",
        "price elasticity of home demand",
        ge=-5,
        le=0,
        est_range=(-0.6, -0.05),
    )
    price_ref: ByProduct = param(
        ByProduct(ndpr=56.0, dytb=370.0, cela=1.5),
        "US$/kg",
        "CAL: Prices table 2024 (Nd 56; Dy 260 and Tb 810 mixed 80:20 = 370, EST; Ce/La 1-2)",
        "home price at the start; each > 0 (demand curves and reference prices are anchored at it)",
    )
    production_cost_usd_per_kg: float = param(
        12.0,
        "US$/kg REO",
        "EST: no published figure; range 6-20",
        "cash cost of mining and separation per kg REO",
        ge=0,
        le=1e4,
        est_range=(6.0, 20.0),
    )
    magnet_export_t_per_year: float = param(
        58_152,
        "t/yr",
        "DEM: 5B (2024 exports 58,152 t)",
        "magnet exports at reference prices",
        ge=0,
        le=1e7,
    )
    magnet_price_ref: float = param(
        49.0,
        "US$/kg",
        "DEM: 5B (avg export price US$46-52/kg 2024)",
        "magnet export price at the start",
        gt=0,
        le=1e5,
    )
    export_tax: ExportTax = ExportTax()
    licensing: LicensingByGood = LicensingByGood()
    oxide_export_t_per_year: ByProduct = param(
        ByProduct(ndpr=2_500, dytb=300, cela=40_000),
        "t REO/yr",
        "EST: DEM section 4 (US 10.4 kt from China 2024, EU 12.9 kt, Japan 9.9 kt H1)",
        "oxide exports the supplier plans at reference prices",
    )
    illicit_max_share: float = param(
        0.3,
        "fraction",
        "EST from CAL: illicit exports (~20,000 t in 2008, one-third of all leaving)",
        "illicit exports as a share of licit export plans at a large price gap",
        ge=0,
        le=1,
        est_range=(0.1, 0.5),
    )
    illicit_gap_sensitivity: float = param(
        1.0,
        "1/(relative gap)",
        "EST: how fast smuggling grows with the export/home price gap",
        "illicit share = max_share x (1 - exp(-s x gap))",
        ge=0,
        le=100,
        est_range=(0.3, 3.0),
    )
    holdback_full_growth: float = param(
        0.25,
        "fraction/yr",
        "EST: rise in the expected price at which the full share is held back",
        "expected-price growth over a year that triggers the largest holdback",
        gt=0,
        le=10,
        est_range=(0.1, 0.5),
    )
    home_choke_price_ratio: float = param(
        10.0,
        "ratio",
        "EST: home buyers stop bidding more above this multiple of the reference price",
        "cap of the home demand curve, multiple of the reference price",
        gt=1,
        le=1000,
        est_range=(5.0, 20.0),
    )
    holdback_max_share: float = param(
        0.3,
        "fraction",
        "CAL: supplier stock holding (Japan Metal Bulletin 2010); EST size",
        "largest share of exportable stock held back when higher prices are expected",
        ge=0,
        le=1,
        est_range=(0.0, 0.5),
    )
    stock_target_months: float = param(
        3.0,
        "months",
        "EST: supplier's working stock",
        "stock the supplier keeps before offering at home",
        ge=0,
        le=60,
        est_range=(1.0, 6.0),
    )
    defend_price_ratio: float = param(
        0.8,
        "fraction of reference",
        "EST: level not published; mechanism CAL: the dominant supplier defends prices (AP 2011)",
        "home price below which the state buys into stock instead of selling",
        ge=0,
        le=10,
        est_range=(0.6, 1.0),
    )
    predatory_pricing: bool = param(
        False, "-", "-", "price exports to push entrants out when their capacity grows"
    )
    predatory_trigger_growth: float = param(
        0.25,
        "fraction",
        "EST: Pothen and Fink (policy motive)",
        "growth of entrants' capacity that triggers predation",
        ge=0,
        le=100,
        est_range=(0.1, 0.5),
    )
    predatory_price_ratio: float = param(
        0.8,
        "fraction",
        "EST",
        "export ask as a share of entrants' average cash cost under predation",
        ge=0,
        le=10,
        est_range=(0.6, 1.0),
    )
    retaliation: bool = param(
        False,
        "-",
        "CAL: export licensing I (followed the April 2025 tariffs)",
        "answer tariffs with licence cuts",
    )
    retaliation_tariff_threshold: float = param(
        0.5,
        "fraction",
        "EST",
        "tariff on any good above which the supplier retaliates",
        ge=0,
        le=100,
        est_range=(0.25, 1.0),
    )
    retaliation_approval_share: float = param(
        0.3,
        "fraction",
        "EST",
        "licence approval share imposed in retaliation",
        ge=0,
        le=1,
        est_range=(0.1, 0.6),
    )
    retaliation_lag_months: int = param(
        2,
        "months",
        "CAL: US tariffs (Apr 2025) then licensing I (4 Apr 2025)",
        "months from tariff to retaliation",
        ge=0,
        le=36,
    )
    expectation_lambda: float = param(
        0.2,
        "1/month",
        "EST: adaptive expectations (Nerlove); range 0.05-0.5",
        "weight of the latest price in the supplier's expectation",
        ge=0,
        le=1,
        est_range=(0.05, 0.5),
    )

    @field_validator("price_ref")
    @classmethod
    def _reference_prices_positive(cls, value: ByProduct) -> ByProduct:
        # The home demand curve D(p) = D_ref (p / price_ref)^e, importers' reference landed prices
        # and their price pressure are all measured against this price: zero defines none of them.
        zero = [f"{p} = {getattr(value, p)}" for p in PRODUCTS if getattr(value, p) <= 0]
        if zero:
            msg = (
                f"got {', '.join(zero)}; each reference price must be > 0 (US$/kg): the home "
                "demand curve and importers' reference prices are anchored at it"
            )
            raise ValueError(msg)
        return value


# ------------------------------------------------------------------------------------- market
class Market(Strict):
    """Trade costs and magnet technology shared by all agents."""

    freight_usd_per_kg: ByProduct = param(
        ByProduct(ndpr=0.4, dytb=0.4, cela=0.4),
        "US$/kg",
        "DEM: section 7 (ocean + handling ~US$0.3-0.5/kg, EST)",
        "freight to the importing market",
    )
    freight_magnet_usd_per_kg: float = param(
        0.4, "US$/kg", "DEM: section 7 (magnet sea freight 0.3-0.5)", "magnet freight", ge=0, le=1e3
    )
    magnet_ndpr_t_per_t: float = param(
        0.30,
        "t/t",
        "DEM: section 3 (average NdFeB ~30% NdPr)",
        "NdPr oxide per tonne of magnet",
        ge=0,
        le=1,
    )
    magnet_dytb_t_per_t: float = param(
        0.008,
        "t/t",
        "DEM: section 3 (average HRE ~0.8 wt% of magnet, 2023-24 EST)",
        "Dy/Tb oxide per tonne of magnet",
        ge=0,
        le=1,
    )
    magnet_conversion_cost_usd_per_kg: float = param(
        25.0,
        "US$/kg",
        "EST: magnet price 49 less oxide content (DEM 5B, CAL prices)",
        "cost to turn oxides into magnets",
        ge=0,
        le=1e4,
        est_range=(15.0, 35.0),
    )
    initial_stock_weeks: float = param(
        10.0,
        "weeks",
        "CAL: manufacturers' inventory 6-14 weeks (EST)",
        "importers' stock at the start",
        ge=0,
        le=520,
    )


# ------------------------------------------------------------------------------------- miners
class Miners(Strict):
    """Decision-rule parameters shared by Miner agents (projects come from the CSV)."""

    expectation_lambda: float = param(
        0.1,
        "1/month",
        "EST: adaptive expectations (Nerlove)",
        "weight of the latest price received",
        ge=0,
        le=1,
        est_range=(0.03, 0.3),
    )
    discount_rate: float = param(
        0.10,
        "1/yr",
        "EST: mining equity cost of capital",
        "discount rate for NPV and equity value",
        gt=0,
        le=1,
        est_range=(0.07, 0.15),
    )
    project_life_years: float = param(
        20.0, "yr", "EST: reserve-limited; DEP reserves", "horizon of the NPV", gt=0, le=100
    )
    idle_margin: float = param(
        1.0,
        "ratio",
        "EST: stop when expected basket value < opex",
        "idle when expected value / opex falls below",
        ge=0,
        le=10,
        est_range=(0.8, 1.2),
    )
    restart_margin: float = param(
        1.15,
        "ratio",
        "EST: hysteresis of restarts",
        "restart when expected value / opex exceeds",
        ge=0,
        le=10,
        est_range=(1.0, 1.5),
    )
    fixed_cost_share: float = param(
        0.15,
        "fraction of opex at capacity",
        "EST",
        "monthly fixed cost, paid operating or idle",
        ge=0,
        le=5,
        est_range=(0.05, 0.3),
    )
    ramp_ceiling_low: float = param(
        0.65,
        "fraction",
        "CAL: ramp-up (McNulty: some never pass 60-70%)",
        "utilisation ceiling of a troubled ramp-up",
        ge=0,
        le=1,
    )
    ramp_ceiling_low_probability: float = param(
        0.3,
        "probability",
        "EST: McNulty series 3-4",
        "chance a new plant's ramp-up stalls",
        ge=0,
        le=1,
        est_range=(0.1, 0.5),
    )
    permit_time_factor: float = param(
        1.0,
        "factor",
        "-",
        "multiplies every project's remaining permit time (faster permitting < 1)",
        ge=0,
        le=10,
    )
    financing_patience_months: int = param(
        12, "months", "EST", "months seeking finance before shelving", ge=1, le=240
    )
    concentrate_discount: float = param(
        0.5,
        "fraction",
        "EST: concentrate sells far below separated value",
        "discount on concentrate sold to the foreign supplier",
        ge=0,
        le=1,
        est_range=(0.3, 0.7),
    )
    initial_cash_months: float = param(
        6.0,
        "months of opex",
        "EST",
        "cash held at the start by operating miners, and raised with finance as working capital",
        ge=0,
        le=120,
    )
    sell_ratio: float = param(
        0.7,
        "fraction of expected price",
        "EST",
        "ask below which a miner keeps output in stock",
        ge=0,
        le=10,
        est_range=(0.5, 0.9),
    )


# ------------------------------------------------------------------------------ manufacturers
class Sector(Strict):
    """One final-goods or magnet-making sector in the importing market."""

    count_share: float = Field(ge=0, le=1, description="share of Manufacturer agents")
    demand_t_per_year: float = Field(
        ge=0,
        description="sector demand at the start: t magnets/yr, or t Ce/La/yr for cela_user, or magnet capacity for magnet_maker",
    )
    wtp_multiple: float = Field(
        ge=0,
        description="willingness to pay for this month's need, multiple of the reference price",
    )
    substitution_max: float = Field(
        ge=0, le=1, description="largest share of demand that redesign can remove"
    )
    output_value_weight: float = Field(ge=0, description="output per tonne of material, relative")


def _default_sectors() -> dict[str, Sector]:
    # Magnet demand of the importing market ~ foreign magnet exports 58 kt (DEM 5B) plus allied
    # output ~20 kt (DEP Table 2); split by DEM section 2 shares (EST). Ce/La: DEM section 4 (EST).
    # Magnet makers: DEP Table 2 operating plants less MP Fort Worth (1,000 t/yr), which belongs to
    # the Mountain Pass miner's integrated magnet stage.
    return {
        "magnet_maker": Sector(
            count_share=0.04,
            demand_t_per_year=23_500,
            wtp_multiple=2.5,
            substitution_max=0.5,
            output_value_weight=0.0,
        ),
        "ev": Sector(
            count_share=0.15,
            demand_t_per_year=20_000,
            wtp_multiple=6.0,
            substitution_max=0.3,
            output_value_weight=3.0,
        ),
        "wind": Sector(
            count_share=0.05,
            demand_t_per_year=10_000,
            wtp_multiple=3.0,
            substitution_max=0.4,
            output_value_weight=1.0,
        ),
        "electronics": Sector(
            count_share=0.25,
            demand_t_per_year=16_000,
            wtp_multiple=4.0,
            substitution_max=0.3,
            output_value_weight=2.0,
        ),
        "industrial": Sector(
            count_share=0.30,
            demand_t_per_year=30_000,
            wtp_multiple=4.0,
            substitution_max=0.4,
            output_value_weight=1.5,
        ),
        "defence": Sector(
            count_share=0.03,
            demand_t_per_year=1_000,
            wtp_multiple=20.0,
            substitution_max=0.05,
            output_value_weight=5.0,
        ),
        "cela_user": Sector(
            count_share=0.18,
            demand_t_per_year=35_000,
            wtp_multiple=3.0,
            substitution_max=0.3,
            output_value_weight=0.5,
        ),
    }


class Manufacturers(Strict):
    """Decision-rule parameters of Manufacturer agents in the importing market."""

    sectors: dict[str, Sector] = Field(
        default_factory=_default_sectors,
        description="sector table (EST: DEM sections 2 and 4; DEP Table 2 for magnet capacity)",
        json_schema_extra={"unit": "table", "source": "EST: DEM sections 2, 4; DEP Table 2"},
    )
    cover_weeks_min: float = param(
        6.0,
        "weeks",
        "CAL: manufacturers' inventory 6-14 weeks (EST)",
        "lowest normal stock target",
        ge=0,
        le=520,
    )
    cover_weeks_max: float = param(
        14.0,
        "weeks",
        "CAL: manufacturers' inventory 6-14 weeks (EST)",
        "highest normal stock target",
        ge=0,
        le=520,
    )
    precaution: float = param(
        1.0,
        "fraction",
        "EST from DEM: section 6 (1-3 months working, 3-6 months strategic)",
        "extra stock target at full perceived risk (1.0 = double)",
        ge=0,
        le=20,
        est_range=(0.3, 2.0),
    )
    risk_memory_months: float = param(
        6.0,
        "months",
        "EST",
        "time constant of perceived supply risk",
        gt=0,
        le=240,
        est_range=(2.0, 18.0),
    )
    stock_adjust_months: float = param(
        3.0,
        "months",
        "EST: stock-adjustment rule (Sterman)",
        "months to close the gap to the stock target",
        gt=0,
        le=120,
        est_range=(1.0, 6.0),
    )
    demand_growth_magnet: float = param(
        0.087,
        "fraction/yr",
        "DEM: section 2 (Adamas CAGR 8.7% 2024-40)",
        "growth of magnet demand",
        ge=-0.5,
        le=1,
    )
    demand_growth_cela: float = param(
        0.01,
        "fraction/yr",
        "EST: DEM 1B (mature uses)",
        "growth of Ce/La demand",
        ge=-0.5,
        le=1,
        est_range=(-0.02, 0.03),
    )
    thrift_rate_per_year: float = param(
        0.06,
        "fraction/yr",
        "CAL: substitution and thrifting (<= 10%/yr, Sprecher 2017); split EST",
        "fast thrifting speed at full price pressure",
        ge=0,
        le=1,
        est_range=(0.02, 0.08),
    )
    thrift_max: ByProduct = param(
        ByProduct(ndpr=0.1, dytb=0.5, cela=0.1),
        "fraction",
        "DEM: section 3 (grain-boundary diffusion cuts Dy/Tb by 1/2-2/3)",
        "largest fast thrift by product",
    )
    redesign_rate_per_year: float = param(
        0.04,
        "fraction/yr",
        "CAL: two speeds of substitution (redesign over 5-10 years); split EST",
        "slow redesign speed at full sustained pressure",
        ge=0,
        le=1,
        est_range=(0.01, 0.06),
    )
    redesign_memory_months: float = param(
        24.0,
        "months",
        "CAL: two speeds of substitution",
        "time constant of the pressure that drives redesign",
        gt=0,
        le=600,
    )
    max_substitution_per_year: float = param(
        0.10,
        "fraction/yr",
        "CAL: substitution and thrifting (Sprecher 2017)",
        "cap on total substitution growth",
        ge=0,
        le=1,
    )
    pressure_full_ratio: float = param(
        2.0,
        "ratio",
        "EST: a doubling is a 'sustained price spike'",
        "expected/reference price at which pressure is full",
        gt=1,
        le=100,
        est_range=(1.5, 4.0),
    )
    halt_threshold: float = param(
        0.5,
        "fraction",
        "EST: 2025 plant stoppages",
        "a plant stops when it can cover less than this share of its need",
        ge=0,
        le=1,
        est_range=(0.3, 0.8),
    )
    recycling_base: float = param(
        0.01,
        "fraction",
        "CAL: Keilhacker and Minner 2017 (recycling little); EST",
        "recycled share of demand at reference prices",
        ge=0,
        le=1,
        est_range=(0.0, 0.03),
    )
    recycling_slope: float = param(
        0.02,
        "fraction per price ratio",
        "EST",
        "added recycled share per unit of expected/reference price above 1",
        ge=0,
        le=1,
        est_range=(0.0, 0.05),
    )
    recycling_max: float = param(0.15, "fraction", "EST", "largest recycled share", ge=0, le=1)
    recycling_mandate: float = param(
        0.0, "fraction", "-", "recycled share required by law (adds to the base)", ge=0, le=1
    )
    magnet_capex_usd_per_t_per_year: float = param(
        90_000.0,
        "US$ per t/yr",
        "CAL: capex per t/yr of capacity (magnets ~ $90k, MP, EST)",
        "capex of new magnet capacity",
        ge=0,
        le=1e8,
        est_range=(60_000.0, 150_000.0),
    )
    magnet_build_months: int = param(
        36,
        "months",
        "CAL: magnet plant ~3 years (MP Fort Worth)",
        "months from commitment to new magnet capacity",
        ge=0,
        le=240,
    )
    magnet_expansion_rate_per_year: float = param(
        0.2,
        "fraction/yr",
        "EST",
        "capacity magnet makers commit per year while expansion pays",
        ge=0,
        le=5,
        est_range=(0.05, 0.4),
    )
    magnet_invest_margin: float = param(
        0.15,
        "fraction",
        "EST",
        "expected magnet price must exceed full cost (cash + 10%/yr capital charge) by this share",
        ge=0,
        le=10,
        est_range=(0.05, 0.5),
    )
    expectation_lambda: float = param(
        0.2,
        "1/month",
        "EST: adaptive expectations",
        "weight of the latest price in buyers' expectations",
        ge=0,
        le=1,
        est_range=(0.05, 0.5),
    )

    @field_validator("sectors", mode="before")
    @classmethod
    def _known_sectors(cls, value: Any) -> Any:
        if isinstance(value, dict):
            unknown = sorted(set(value) - set(SECTORS))
            if unknown:
                msg = f"unknown sector(s) {unknown}; allowed: {list(SECTORS)}"
                raise ValueError(msg)
        return value

    @field_validator("sectors")
    @classmethod
    def _shares_add_up(cls, value: dict[str, Sector]) -> dict[str, Sector]:
        merged = _default_sectors() | value
        total = sum(s.count_share for s in merged.values())
        if not 0.99 <= total <= 1.01:
            msg = f"sector count_share values must add up to 1, got {total:.3f}"
            raise ValueError(msg)
        return merged

    @model_validator(mode="after")
    def _cover_range(self) -> Manufacturers:
        if self.cover_weeks_min > self.cover_weeks_max:
            msg = f"cover_weeks_min ({self.cover_weeks_min}) must not exceed cover_weeks_max ({self.cover_weeks_max})"
            raise ValueError(msg)
        return self


# --------------------------------------------------------------------------------------- bank
class Bank(Strict):
    """The bank: commercial lending always; the programme when policy.bank_initiative is on."""

    programme_size_busd: float = param(
        1500.0,
        "US$ bn",
        "CAL: JPMorgan initiative (up to $1.5 trillion)",
        "programme size",
        ge=0,
        le=1e6,
    )
    programme_years: float = param(
        10.0, "yr", "CAL: JPMorgan initiative (over 10 years)", "programme length", gt=0, le=100
    )
    critical_minerals_share: float = param(
        0.01,
        "fraction",
        "EST: 1 of 27 sub-sectors, much of it facilitation; range 0.002-0.03",
        "share of the programme for rare-earth projects",
        ge=0,
        le=1,
        est_range=(0.002, 0.03),
    )
    equity_budget_busd: float = param(
        10.0,
        "US$ bn",
        "CAL: JPMorgan initiative (up to $10 billion direct equity)",
        "direct equity budget, all sectors",
        ge=0,
        le=1e5,
    )
    equity_critical_share: float = param(
        0.1,
        "fraction",
        "EST",
        "share of the equity budget for rare-earth projects",
        ge=0,
        le=1,
        est_range=(0.02, 0.3),
    )
    equity_stake_share: float = param(
        0.2,
        "fraction of capex",
        "EST",
        "equity the programme puts into a funded project",
        ge=0,
        le=1,
    )
    commercial_budget_musd_per_year: float = param(
        800.0,
        "US$ M/yr",
        "EST: project finance for the sector without the programme",
        "lending budget without the programme",
        ge=0,
        le=1e7,
        est_range=(300.0, 2000.0),
    )
    hurdle_commercial: float = param(
        0.12,
        "1/yr",
        "CAL: project finance (EST)",
        "hurdle rate, commercial",
        ge=0,
        le=1,
        est_range=(0.08, 0.16),
    )
    hurdle_programme: float = param(
        0.08, "1/yr", "EST", "hurdle rate under the programme", ge=0, le=1, est_range=(0.05, 0.11)
    )
    leverage_commercial: float = param(
        0.5,
        "fraction of capex",
        "CAL: project finance (debt 50-70% of capex)",
        "largest loan, commercial",
        ge=0,
        le=1,
    )
    leverage_programme: float = param(
        0.7,
        "fraction of capex",
        "CAL: project finance (debt 50-70% of capex)",
        "largest loan under the programme",
        ge=0,
        le=1,
    )
    interest_commercial: float = param(
        0.08, "1/yr", "EST", "loan interest, commercial", ge=0, le=1, est_range=(0.06, 0.11)
    )
    interest_programme: float = param(
        0.06, "1/yr", "EST", "loan interest under the programme", ge=0, le=1, est_range=(0.04, 0.08)
    )
    tenor_years: float = param(
        7.0,
        "yr",
        "CAL: project finance (5-8 year tenors)",
        "loan tenor after construction",
        gt=0,
        le=50,
    )
    price_haircut: float = param(
        0.8,
        "fraction",
        "EST: size not published; CAL: project finance (lenders test at conservative prices)",
        "bank's price deck as a share of its expectation",
        ge=0,
        le=2,
        est_range=(0.6, 0.95),
    )
    gov_backing_hurdle_cut: float = param(
        0.02,
        "1/yr",
        "EST",
        "hurdle reduction when the government holds equity in the project",
        ge=0,
        le=1,
    )
    recovery_rate: float = param(
        0.3,
        "fraction",
        "EST: mining bankruptcies",
        "share of a defaulted loan recovered",
        ge=0,
        le=1,
        est_range=(0.1, 0.5),
    )
    expectation_lambda: float = param(
        0.05,
        "1/month",
        "EST: lenders' long memory",
        "weight of the latest price in the bank's expectation",
        ge=0,
        le=1,
    )


# --------------------------------------------------------------------------------- government
class Reaction(Strict):
    """The government's reaction function: conditions it watches, its lag and its responses."""

    enabled: bool = param(False, "-", "-", "the government decides levers itself")
    lag_months: int = param(
        3,
        "months",
        "CAL: DoD-MP (Jul 2025) three months after licensing I (Apr 2025)",
        "decision lag after a trigger",
        ge=0,
        le=120,
    )
    trigger_halted_share: float = param(
        0.05,
        "fraction",
        "EST",
        "share of manufacturers halted that triggers a response",
        ge=0,
        le=1,
    )
    trigger_unmet_share: float = param(
        0.05, "fraction", "EST", "share of demand unmet that triggers a response", ge=0, le=1
    )
    trigger_price_ratio: float = param(
        2.0, "ratio", "EST", "landed/reference price that triggers a response", gt=0, le=100
    )
    set_floors: bool = param(True, "-", "-", "the response includes the price floors below")
    floor_ndpr: float | None = param(
        110.0,
        "US$/kg",
        "CAL: DoD - MP Materials (floor $110/kg)",
        "NdPr floor set in response",
        gt=0,
        le=1e5,
    )
    floor_dytb: float | None = param(
        None, "US$/kg", "-", "Dy/Tb floor set in response", gt=0, le=1e5
    )
    equity_musd: float = param(
        400.0,
        "US$ M",
        "CAL: DoD - MP Materials ($400M preferred)",
        "equity the government puts into projects in response",
        ge=0,
        le=1e7,
    )
    stockpile_release_months: float = param(
        0.0,
        "months",
        "-",
        "months over which a stockpile is released in response (0 = no release)",
        ge=0,
        le=600,
    )


class Stockpile(Strict):
    """A government stockpile held in the importing market."""

    ndpr: float = param(0.0, "t REO", "-", "NdPr oxide in the stockpile at the start", ge=0, le=1e8)
    dytb: float = param(
        0.0, "t REO", "-", "Dy/Tb oxide in the stockpile at the start", ge=0, le=1e8
    )
    cela: float = param(
        0.0, "t REO", "-", "Ce/La oxide in the stockpile at the start", ge=0, le=1e8
    )
    magnet: float = param(0.0, "t", "-", "magnets in the stockpile at the start", ge=0, le=1e8)


class Contract(Strict):
    """A dated deal between the government and one named project (CAL: DoD - MP Materials).

    ``equity`` and ``grant`` pay ``amount_musd`` into the project (equity is a stake the
    government holds; a grant is not); ``loan`` lends ``amount_musd`` at ``interest_rate``,
    repaid as an annuity over ``years``; ``floor`` guarantees ``price`` for ``product`` on the
    project's sales for ``years`` (the government pays the gap, takes ``upside_share`` of the
    excess); ``offtake`` buys ``t_per_month`` of ``product`` (empty = all the project has) at
    ``price`` into the government stockpile for ``years``.
    """

    date: str = Field(description="month the deal takes effect, YYYY-MM")
    miner: str = Field(description="project name, as in the miners file")
    kind: Literal["equity", "grant", "loan", "floor", "offtake"]
    amount_musd: float = Field(
        0.0, ge=0, le=1e7, description="money paid in (equity, grant, loan), US$ M"
    )
    product: Literal["ndpr", "dytb", "cela", "magnet"] | None = Field(
        None, description="product of a floor or offtake"
    )
    price: float | None = Field(None, gt=0, le=1e5, description="floor or offtake price, US$/kg")
    t_per_month: float | None = Field(
        None, ge=0, le=1e7, description="offtake quantity; empty = all available"
    )
    years: float = Field(10.0, gt=0, le=100, description="duration of a floor, offtake or loan")
    upside_share: float = Field(
        0.0, ge=0, le=1, description="share of price above a floor paid back"
    )
    interest_rate: float = Field(
        0.04, ge=0, le=1, description="interest on a government loan, 1/yr"
    )
    source: str = Field("", description="where the deal comes from")

    @field_validator("date")
    @classmethod
    def _date(cls, value: str) -> str:
        return Meta._start_is_month(value)

    @model_validator(mode="after")
    def _complete(self) -> Contract:
        if self.kind in {"floor", "offtake"} and (self.product is None or self.price is None):
            msg = f"a {self.kind} contract needs product and price"
            raise ValueError(msg)
        if self.kind == "floor" and self.product == "magnet":
            msg = "a floor contract is for an oxide (ndpr, dytb or cela)"
            raise ValueError(msg)
        if self.kind in {"equity", "grant", "loan"} and self.amount_musd <= 0:
            msg = f"a {self.kind} contract needs amount_musd > 0"
            raise ValueError(msg)
        return self


class Government(Strict):
    """The importing government: reaction function, stockpile, contracts (levers live in `policy`)."""

    reaction: Reaction = Reaction()
    stockpile: Stockpile = Stockpile()
    contracts: list[Contract] = Field(
        default_factory=list, description="dated deals with named projects"
    )


# ----------------------------------------------------------------------------------- schedule
class ScheduledChange(Strict):
    """A dated change of one policy key (a tariff path, a licence regime, a programme start)."""

    date: str = Field(description="month the change applies from, YYYY-MM")
    key: str = Field(description="dotted key, e.g. policy.tariff.magnet")
    value: Any = Field(description="new value, validated like the key itself")
    source: str = Field(default="", description="where the date and value come from")

    @field_validator("date")
    @classmethod
    def _date(cls, value: str) -> str:
        return Meta._start_is_month(value)


# Keys that the schedule and the government may change while a run goes on.
SCHEDULABLE_PREFIXES: tuple[str, ...] = (
    "policy.",
    "foreign.export_tax.",
    "foreign.licensing.",
    "foreign.mine_quota_t_per_year",
    "foreign.separation_quota_t_per_year",
    "foreign.predatory_pricing",
    "foreign.retaliation",
    "government.reaction.",
    "manufacturers.recycling_mandate",
)


class Scenario(Strict):
    """A complete, validated scenario: every parameter group plus a schedule of policy changes."""

    scenario: Meta = Meta()
    population: Population = Population()
    policy: Policy = Policy()
    foreign: Foreign = Foreign()
    market: Market = Market()
    miners: Miners = Miners()
    manufacturers: Manufacturers = Manufacturers()
    bank: Bank = Bank()
    government: Government = Government()
    schedule: list[ScheduledChange] = Field(
        default_factory=list, description="dated policy changes"
    )
    sources: dict[str, str] = Field(
        default_factory=dict, description="citation for each key the scenario file sets"
    )

    @model_validator(mode="after")
    def _schedule_keys(self) -> Scenario:
        for i, change in enumerate(self.schedule):
            if not change.key.startswith(SCHEDULABLE_PREFIXES):
                msg = (
                    f"schedule[{i}].key {change.key!r} cannot change during a run; "
                    f"allowed prefixes: {', '.join(SCHEDULABLE_PREFIXES)}"
                )
                raise ValueError(msg)
        return self


def field_rows(model: type[BaseModel] = Scenario, prefix: str = "") -> list[dict[str, Any]]:
    """Flatten the schema into rows: key, type, unit, default, range, source, description."""
    rows: list[dict[str, Any]] = []
    for name, info in model.model_fields.items():
        key = f"{prefix}{name}"
        annotation = info.annotation
        default = info.get_default(call_default_factory=True)
        if (
            isinstance(annotation, type)
            and issubclass(annotation, BaseModel)
            and annotation is not ByProduct
        ):
            rows.extend(field_rows(annotation, f"{key}."))
            continue
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        bounds = []
        for meta in info.metadata:
            for attr, sym in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
                if getattr(meta, attr, None) is not None:
                    bounds.append(f"{sym} {getattr(meta, attr)}")
        if isinstance(default, BaseModel):
            default = default.model_dump()
        elif isinstance(default, dict):
            default = "see table" if default else {}
        rows.append(
            {
                "key": key,
                "type": getattr(annotation, "__name__", str(annotation)).replace("typing.", ""),
                "unit": extra.get("unit", "-"),
                "default": default,
                "range": ", ".join(bounds),
                "est_range": extra.get("est_range"),
                "source": extra.get("source", "-"),
                "description": info.description or "",
            }
        )
    return rows


def est_parameters() -> list[dict[str, Any]]:
    """The EST parameters with their plausible ranges, for sensitivity sweeps."""
    return [row for row in field_rows() if row["est_range"] is not None]


Layer = Literal["foreign", "import"]
