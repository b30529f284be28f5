"""The results columns: the contract's timeseries columns plus this model's additions.

The contract (``shared/CONTRACT.md``) fixes names other programs read; extra columns come after.
Prices in US$/kg, quantities in t REO per month (magnets in t), money in US$ million.
"""

from __future__ import annotations

from sim.params import PRODUCTS

KEY_COLUMNS: tuple[str, ...] = ("run_id", "seed", "month", "date")

_PER_PRODUCT = (
    "price_export",
    "price_foreign",
    "price_landed",
    "price_received",
    "exports",
    "export_quota",
    "price_floor",
    "demand",
    "consumption",
    "unmet_demand",
    "inventory",
    "production_foreign",
    "production_domestic",
)
CONTRACT_COLUMNS: tuple[str, ...] = (
    *(f"{name}_{p}" for name in _PER_PRODUCT for p in PRODUCTS),
    "magnet_exports_t",
    "mine_share_foreign",
    "capacity_domestic_nameplate_t",
    "capacity_domestic_operating_t",
    "capacity_domestic_magnet_t",
    "miners_active",
    "miners_defaulted_cum",
    "manufacturers_halted",
    "manufacturer_output_index",
    "substitution_share",
    "recycling_share",
    "tariff_revenue_musd",
    "floor_payments_musd",
    "gov_equity_musd",
    "bank_loans_musd",
    "bank_equity_musd",
    "bank_losses_cum_musd",
    "miner_equity_value_musd",
    "balance_error_t",
    "balance_error_musd",
)
EXTRA_COLUMNS: tuple[str, ...] = (
    *(f"exports_illicit_{p}" for p in PRODUCTS),
    *(f"home_sales_{p}" for p in PRODUCTS),
    "price_landed_magnet",
    "demand_magnet_t",
    "unmet_demand_magnet_t",
    "inventory_magnet_t",
    "production_magnet_domestic_t",
    "mine_output_domestic_t",
    "miners_financing",
    "miners_construction",
    "miners_idle",
    "licence_rent_musd",
    "export_tax_revenue_musd",
    "gov_cost_cum_musd",
)
TIMESERIES_COLUMNS: tuple[str, ...] = CONTRACT_COLUMNS + EXTRA_COLUMNS
# Columns that are legitimately empty where a policy is absent (never a made-up zero).
OPTIONAL_COLUMNS: frozenset[str] = frozenset(
    {f"export_quota_{p}" for p in PRODUCTS} | {f"price_floor_{p}" for p in PRODUCTS}
)
INTEGER_COLUMNS: frozenset[str] = frozenset(
    {
        "miners_active",
        "miners_defaulted_cum",
        "manufacturers_halted",
        "miners_financing",
        "miners_construction",
        "miners_idle",
    }
)
