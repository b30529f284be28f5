"""Hand-computed cases for the ForeignSupplier's rules (sim.agents.foreign_supplier).

Export caps from quotas and licences (with their delay), retaliation and predation, the export
asks and quantities, illicit exports, production at the quota and the home market.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from sim.model import COL, RareEarthModel
from tests.helpers import tiny_model

NDPR, DYTB, CELA, MAGNET = range(4)
INF = math.inf


def tiny(**overrides: Any) -> RareEarthModel:
    return tiny_model(miners=3, months=24, **overrides)


def caps_over(model: RareEarthModel, applications: list[list[float]], capacity: float = 0.0):
    """Run update_regime month by month; return the caps each month."""
    out = []
    for month, apps in enumerate(applications):
        model.month = month
        model.foreign.update_regime(np.array(apps, dtype=float), capacity)
        out.append(model.foreign.caps.copy())
    return np.array(out)


# --------------------------------------------------------------------------- quotas, licences
def test_no_restriction_no_cap():
    caps = caps_over(tiny(), [[100.0] * 4] * 3)
    assert np.all(np.isinf(caps))


def test_quota_cap_is_a_twelfth_of_the_yearly_quota():
    model = tiny(**{"policy.export_quota.dytb": 500.0, "policy.export_quota.magnet": 0.0})
    caps = caps_over(model, [[100.0] * 4])
    assert caps[0].tolist() == [INF, pytest.approx(500.0 / 12), INF, 0.0]


def test_licence_allowance_is_share_of_applications_delay_months_earlier():
    model = tiny(
        **{
            "foreign.licensing.magnet.active": True,
            "foreign.licensing.magnet.approval_share": 0.3,
            "foreign.licensing.magnet.delay_months": 2,
        }
    )
    apps = [[0.0, 0.0, 0.0, a] for a in (100.0, 200.0, 300.0, 400.0, 500.0)]
    caps = caps_over(model, apps)
    # Nothing in the first two months; then 30% of what was applied for two months earlier.
    assert caps[:, MAGNET] == pytest.approx([0.0, 0.0, 30.0, 60.0, 90.0])
    assert np.all(np.isinf(caps[:, :3]))


def test_licence_without_delay_and_with_a_quota():
    model = tiny(
        **{
            "foreign.licensing.ndpr.active": True,
            "foreign.licensing.ndpr.approval_share": 0.5,
            "foreign.licensing.ndpr.delay_months": 0,
            "policy.export_quota.ndpr": 600.0,  # 50 t a month
        }
    )
    caps = caps_over(model, [[a, 0, 0, 0] for a in (40.0, 120.0, -10.0)])
    # min(quota / 12, 0.5 x this month's applications); negative applications count as zero.
    assert caps[:, NDPR] == pytest.approx([20.0, 50.0, 0.0])


def test_licence_regime_lifted_then_reimposed_starts_a_new_queue():
    model = tiny(
        **{
            "foreign.licensing.magnet.active": True,
            "foreign.licensing.magnet.approval_share": 0.5,
            "foreign.licensing.magnet.delay_months": 1,
        }
    )
    caps = caps_over(model, [[0, 0, 0, 100.0]] * 3)
    assert caps[:, MAGNET] == pytest.approx([0.0, 50.0, 50.0])
    model.set_lever("foreign.licensing.magnet.active", False)
    model.foreign.update_regime(np.array([0, 0, 0, 100.0]), 0.0)
    assert model.foreign.caps[MAGNET] == INF
    model.set_lever("foreign.licensing.magnet.active", True)
    model.foreign.update_regime(np.array([0, 0, 0, 100.0]), 0.0)
    assert model.foreign.caps[MAGNET] == 0.0  # queue restarts: nothing in the first month


def test_reported_export_quota_column():
    model = tiny(**{"policy.export_quota.dytb": 500.0})
    model.step()
    assert model.records[0, COL["export_quota_dytb"]] == pytest.approx(500.0 / 12)
    assert np.isnan(model.records[0, COL["export_quota_ndpr"]])
    assert model.records[0, COL["exports_dytb"]] <= 500.0 / 12 + 1e-9


# ------------------------------------------------------------------------------ retaliation
def test_retaliation_after_lag_licences_dytb_and_magnets():
    model = tiny(**{"foreign.retaliation": True, "policy.tariff.magnet": 1.0})
    apps = [[10.0, 10.0, 10.0, a] for a in (100.0, 200.0, 300.0, 400.0, 500.0, 600.0)]
    retaliating = []
    caps = []
    for month, a in enumerate(apps):
        model.month = month
        model.foreign.update_regime(np.array(a), 0.0)
        retaliating.append(model.foreign.retaliating)
        caps.append(model.foreign.caps.copy())
    caps = np.array(caps)
    # A 100% tariff (> 50% threshold) in force from month 0; lag 2: licences from month 2,
    # approving 30% of applications with the licence delay (2 months).
    assert retaliating == [False, False, True, True, True, True]
    assert caps[:, MAGNET] == pytest.approx([INF, INF, 0.0, 0.0, 90.0, 120.0])
    assert caps[:, DYTB] == pytest.approx([INF, INF, 0.0, 0.0, 3.0, 3.0])
    assert np.all(np.isinf(caps[:, [NDPR, CELA]]))
    assert [e["month"] for e in model.events if e["kind"] == "licence"] == [2]


def test_no_retaliation_at_or_below_threshold_and_lifted_when_tariff_falls():
    model = tiny(**{"foreign.retaliation": True, "policy.tariff.magnet": 0.5})
    caps_over(model, [[1.0] * 4] * 6)
    assert not model.foreign.retaliating
    model = tiny(**{"foreign.retaliation": True, "policy.tariff.ndpr": 0.6})
    caps_over(model, [[1.0] * 4] * 3)
    assert model.foreign.retaliating
    model.set_lever("policy.tariff.ndpr", 0.0)
    model.foreign.update_regime(np.ones(4), 0.0)
    assert not model.foreign.retaliating
    assert np.all(np.isinf(model.foreign.caps))


# -------------------------------------------------------------------------------- predation
def test_predation_trigger_lifts_ndpr_cap_and_prices_below_entrants_cost():
    model = tiny(**{"foreign.predatory_pricing": True, "policy.export_quota.ndpr": 120.0})
    foreign = model.foreign
    foreign.update_regime(np.ones(4), 1000.0)  # entrants' capacity at the start: 1000 t/yr
    foreign.update_regime(np.ones(4), 1249.0)
    assert not foreign.predating
    assert foreign.caps[NDPR] == pytest.approx(10.0)
    foreign.update_regime(np.ones(4), 1250.0)  # +25%
    assert foreign.predating
    assert foreign.caps[NDPR] == INF
    offers = foreign.export_offers(20.0, 5.0, 0.25)
    # Entrants break even at (20 - 5) / 0.25 = 60 US$/kg NdPr; the ask is 80% of it, 48.
    assert offers["ask"][NDPR] == pytest.approx(48.0)
    assert offers["qty"][NDPR] == pytest.approx(foreign.stock()[NDPR])


# ------------------------------------------------------------------------ offers and illicit
def quiet_prices(model: RareEarthModel) -> None:
    foreign = model.foreign
    foreign.price_home = np.array([50.0, 300.0, 1.5])
    foreign.expected_home = foreign.price_home.copy()
    # A year of flat expectations: no rise, nothing held back.
    foreign.expectation_history.extend([foreign.expected_home.copy()] * 13)
    foreign.price_export = np.array([50.0, 300.0, 1.5, 49.0])


def test_export_asks_and_quantities_with_holdback_and_tax():
    model = tiny(**{"foreign.export_tax.ndpr": 0.1})
    foreign = model.foreign
    quiet_prices(model)
    # The NdPr expectation rose from 50 a year ago to 55: growth 0.1 of the 0.25 that triggers
    # the full 0.3, so the target share is 0.12 and a quarter of the way there is 0.03.
    foreign.expected_home[NDPR] = 55.0
    target = foreign.stock_target()
    model.ledger.tonnes[foreign.account, :3] = target  # stock at target
    offers = foreign.export_offers(0.0, 0.0, 0.0)
    assert foreign.holdback == pytest.approx([0.03, 0.0, 0.0])
    # Ask: the higher of expected and current home price, plus export tax.
    assert offers["ask"][:3] == pytest.approx([55.0 * 1.1, 300.0, 1.5])
    # Exportable: stock above half the target, less what is held back.
    assert offers["qty"][:3] == pytest.approx(0.5 * target * np.array([0.97, 1.0, 1.0]))
    # A second month with the same signal moves another quarter of the remaining gap.
    foreign.export_offers(0.0, 0.0, 0.0)
    assert foreign.holdback[NDPR] == pytest.approx(0.03 + 0.25 * (0.12 - 0.03))
    # Magnet ask: oxide content at home prices plus the conversion cost that makes the ask equal
    # the reference export price at reference prices (49 - 0.3 x 56 - 0.008 x 370 = 29.24).
    assert offers["ask"][MAGNET] == pytest.approx(0.3 * 55.0 + 0.008 * 300.0 + 29.24)


def test_magnet_export_quantity_grows_with_expected_price():
    model = tiny()
    foreign = model.foreign
    quiet_prices(model)
    plan = 58_152 / 12
    model.expected_import_price[MAGNET] = 49.0 * 1.5  # 50% above reference: +25% capacity
    assert foreign.export_offers(0, 0, 0)["qty"][MAGNET] == pytest.approx(plan * 1.25)
    model.expected_import_price[MAGNET] = 49.0 * 3  # capped at +50%
    assert foreign.export_offers(0, 0, 0)["qty"][MAGNET] == pytest.approx(plan * 1.5)
    model.month = 12  # a year of 8.7% demand growth
    model.expected_import_price[MAGNET] = 40.0
    assert foreign.export_offers(0, 0, 0)["qty"][MAGNET] == pytest.approx(plan * 1.087)


def test_illicit_exports_grow_with_the_export_home_price_gap():
    model = tiny()
    foreign = model.foreign
    quiet_prices(model)
    foreign.price_export = np.array([75.0, 300.0, 1.5, 49.0])  # NdPr 50% above home
    offers = foreign.export_offers(0.0, 0.0, 0.0)
    share_ndpr = 0.3 * (1 - math.exp(-1.0 * 0.5))  # 0.11804
    assert offers["illicit_qty"][NDPR] == pytest.approx(share_ndpr * 2500 / 12)
    assert offers["illicit_qty"][DYTB] == 0.0
    assert offers["illicit_qty"][CELA] == 0.0
    # Magnets: the gap is measured against the supplier's own ask (0.3 x 50 + 2.4 + 29.24).
    magnet_ask = 0.3 * 50.0 + 0.008 * 300.0 + 29.24
    share_magnet = 0.3 * (1 - math.exp(-(49.0 / magnet_ask - 1.0)))
    assert offers["illicit_qty"][MAGNET] == pytest.approx(share_magnet * 58_152 / 12)
    assert offers["illicit_ask"] == pytest.approx([55.0, 330.0, 1.65, magnet_ask * 1.1])


def test_illicit_sensitivity_and_stock_limit():
    model = tiny(**{"foreign.illicit_gap_sensitivity": 2.0, "policy.export_quota.dytb": 0.0})
    foreign = model.foreign
    quiet_prices(model)
    foreign.price_export = np.array([50.0, 450.0, 1.5, 49.0])  # Dy/Tb 50% above home
    foreign.update_regime(np.ones(4), 0.0)
    offers = foreign.export_offers(0.0, 0.0, 0.0)
    assert offers["qty"][DYTB] == 0.0  # quota zero: nothing licit
    # Outside the quota: 0.3 x (1 - e^-1) of the 300 t/yr plan.
    assert offers["illicit_qty"][DYTB] == pytest.approx(0.3 * (1 - math.exp(-1.0)) * 25.0)
    model.ledger.tonnes[foreign.account, DYTB] = 2.0  # but never more than the stock
    assert foreign.export_offers(0.0, 0.0, 0.0)["illicit_qty"][DYTB] == pytest.approx(2.0)


# ------------------------------------------------------------------------------ production
def test_separated_output_at_the_quota_growing_each_january():
    model = tiny()
    foreign = model.foreign
    # min(separation 254,000, mining 270,000 + imported feed 60,000) t/yr.
    assert foreign.separated_t_per_month() == pytest.approx(254_000 / 12)
    model.month = 11  # December 2025
    assert foreign.separated_t_per_month() == pytest.approx(254_000 / 12)
    model.month = 12  # January 2026: +6%
    assert foreign.separated_t_per_month() == pytest.approx(254_000 * 1.06 / 12)
    model.month = 0
    model.set_lever("foreign.separation_quota_t_per_year", 100_000.0)
    model.set_lever("foreign.mine_quota_t_per_year", 20_000.0)
    assert foreign.separated_t_per_month() == pytest.approx(80_000 / 12)  # mining + feed bind


def test_production_by_basket_and_cost():
    model = tiny()
    model.ledger.start_step()
    model.foreign.produce()
    out = 254_000 / 12
    assert model.ledger.tonne_flow("production_foreign", "ndpr") == pytest.approx(0.25 * out)
    assert model.ledger.tonne_flow("production_foreign", "dytb") == pytest.approx(0.012 * out)
    assert model.ledger.money_flow("foreign_cost") == pytest.approx(out * 12.0 * 1e-3)


# ------------------------------------------------------------------------------ home market
def test_home_market_at_target_stock_sells_expected_demand_at_reference():
    model = tiny()
    foreign = model.foreign
    # On hand: the working stock plus this month's expected sales.
    model.ledger.tonnes[foreign.account, :3] = foreign.stock_target() + foreign.home_demand_ref
    foreign.holdback = 0.0
    foreign.sell_home()
    assert foreign.price_home == pytest.approx(foreign.price_ref)
    assert foreign.home_sold == pytest.approx(foreign.home_demand_ref)


def test_home_market_surplus_stock_defends_the_price():
    model = tiny()
    foreign = model.foreign
    demand = foreign.home_demand_ref
    # Three months of demand above target after this month's sales: offer = demand + 3 x demand
    # / 3 = 2 x demand, more than buyers take even at the defended price (0.8 x reference):
    # demand x 0.8^-0.3.
    model.ledger.tonnes[foreign.account, :3] = foreign.stock_target() + 4 * demand
    foreign.holdback = 0.0
    foreign.sell_home()
    assert foreign.price_home == pytest.approx(0.8 * foreign.price_ref)
    assert foreign.home_sold == pytest.approx(demand * 0.8**-0.3)
