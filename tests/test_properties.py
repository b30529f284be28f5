"""Property tests (hypothesis): the call auction on random books, the model on random scenarios."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim import load_scenario, simulate
from sim.columns import CONTRACT_COLUMNS, OPTIONAL_COLUMNS
from sim.market import clear_against_curve, clear_call_auction

FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TOL = 1e-9

# Prices from a small grid (ties between steps and between the two sides) or anywhere.
price = st.one_of(
    st.sampled_from([1.0, 5.0, 10.0, 20.0, 50.0]),
    st.floats(0.01, 200.0, allow_nan=False, allow_infinity=False),
)
# Quantities are zero or at least 1 kg: see test_auction_ignores_dust for sub-rounding steps.
quantity = st.one_of(st.just(0.0), st.floats(1e-3, 100.0, allow_nan=False, allow_infinity=False))
steps = st.lists(st.tuples(quantity, price), max_size=8)


def book(bids, asks):
    bq = np.array([q for q, _ in bids], dtype=float)
    bp = np.array([p for _, p in bids], dtype=float)
    aq = np.array([q for q, _ in asks], dtype=float)
    ap = np.array([p for _, p in asks], dtype=float)
    return bq, bp, aq, ap


def best_quantity(bq, bp, aq, ap) -> float:
    """Brute force: the largest min(demand at p, supply at p) over every quoted price."""
    best = 0.0
    for p in np.concatenate([bp, ap]):
        demand = bq[bp >= p].sum()
        supply = aq[ap <= p].sum()
        best = max(best, min(demand, supply))
    return float(best)


@FAST
@given(bids=steps, asks=steps, last=st.floats(0.0, 100.0))
def test_auction_fills_are_feasible_and_balanced(bids, asks, last):
    bq, bp, aq, ap = book(bids, asks)
    r = clear_call_auction(bq, bp, aq, ap, last)
    assert r.bid_fill.shape == bq.shape
    assert r.ask_fill.shape == aq.shape
    assert np.all(r.bid_fill >= -TOL)
    assert np.all(r.ask_fill >= -TOL)
    assert np.all(r.bid_fill <= bq * (1 + 1e-12) + TOL)
    assert np.all(r.ask_fill <= aq * (1 + 1e-12) + TOL)
    scale = max(1.0, r.quantity)
    assert r.bid_fill.sum() == pytest.approx(r.quantity, rel=1e-9, abs=TOL * scale)
    assert r.ask_fill.sum() == pytest.approx(r.quantity, rel=1e-9, abs=TOL * scale)
    assert np.isfinite(r.price)


@FAST
@given(bids=steps, asks=steps)
def test_auction_filled_steps_are_on_the_right_side_of_the_price(bids, asks):
    bq, bp, aq, ap = book(bids, asks)
    r = clear_call_auction(bq, bp, aq, ap, 0.0)
    filled_b = r.bid_fill > TOL
    filled_a = r.ask_fill > TOL
    assert np.all(bp[filled_b] >= r.price - 1e-9)  # no buyer pays above its limit
    assert np.all(ap[filled_a] <= r.price + 1e-9)  # no seller sells below its limit
    # Steps strictly better than the price are filled in full.
    assert np.allclose(r.bid_fill[bp > r.price + 1e-9], bq[bp > r.price + 1e-9])
    assert np.allclose(r.ask_fill[ap < r.price - 1e-9], aq[ap < r.price - 1e-9])


@FAST
@given(bids=steps, asks=steps)
def test_auction_trades_the_largest_crossing_quantity(bids, asks):
    bq, bp, aq, ap = book(bids, asks)
    r = clear_call_auction(bq, bp, aq, ap, 0.0)
    assert r.quantity == pytest.approx(best_quantity(bq, bp, aq, ap), rel=1e-9, abs=1e-9)
    live_b, live_a = bq > 0, aq > 0
    if live_b.any() and live_a.any() and bp[live_b].max() < ap[live_a].min():
        assert r.quantity == 0.0


@FAST
@given(bids=steps, asks=steps, data=st.data())
def test_auction_does_not_depend_on_the_order_of_steps(bids, asks, data):
    bq, bp, aq, ap = book(bids, asks)
    pb = np.array(data.draw(st.permutations(range(len(bids)))), dtype=int)
    pa = np.array(data.draw(st.permutations(range(len(asks)))), dtype=int)
    r1 = clear_call_auction(bq, bp, aq, ap, 7.0)
    r2 = clear_call_auction(bq[pb], bp[pb], aq[pa], ap[pa], 7.0)
    assert r2.price == pytest.approx(r1.price, rel=1e-12)
    assert r2.quantity == pytest.approx(r1.quantity, rel=1e-12, abs=1e-12)
    assert np.allclose(r2.bid_fill, r1.bid_fill[pb], rtol=1e-12, atol=1e-12)
    assert np.allclose(r2.ask_fill, r1.ask_fill[pa], rtol=1e-12, atol=1e-12)


def test_auction_ignores_dust():
    bids = (np.array([2.0]), np.array([5.0]))
    clean = clear_call_auction(*bids, np.array([1.0]), np.array([0.5]), 0.0)
    assert clean.price == 5.0  # short supply: the rationed buyer sets the price
    dusty = clear_call_auction(*bids, np.array([1.0, 1e-12]), np.array([0.5, 1.0]), 0.0)
    assert dusty.price == pytest.approx(clean.price)


@pytest.mark.parametrize(("offer", "elasticity"), [(50.0, -1e-9), (50.0, -1e-3), (1e-300, -0.5)])
def test_curve_price_continuous_at_the_capped_cases(offer, elasticity):
    assert clear_against_curve(50.0, 0.8, 100.0, 1.0, 0.0) == (10.0, 50.0)
    assert clear_against_curve(0.0, 0.8, 100.0, 1.0, -0.5) == (10.0, 0.0)
    price, sold = clear_against_curve(offer, 0.8, 100.0, 1.0, elasticity)
    assert sold == offer
    assert np.isfinite(price)
    assert price <= 10.0 * (1 + 1e-6)


@FAST
@given(
    offer=st.one_of(st.just(0.0), st.floats(1.0, 1e5)),
    reservation=st.floats(0.01, 500.0),
    demand_ref=st.floats(0.0, 1e5),
    price_ref=st.floats(0.01, 500.0),
    elasticity=st.one_of(st.just(0.0), st.floats(-3.0, -0.05)),
)
def test_curve_clearing_respects_offer_and_reservation(
    offer, reservation, demand_ref, price_ref, elasticity
):
    p, sold = clear_against_curve(offer, reservation, demand_ref, price_ref, elasticity)
    assert 0.0 <= sold <= offer * (1 + 1e-12) + 1e-12
    assert p >= reservation * (1 - 1e-12)
    assert np.isfinite(p)


# ------------------------------------------------------------------------- random scenarios
GOOD_KEYS = ("ndpr", "dytb", "cela", "magnet")
optional_quota = st.one_of(st.none(), st.floats(0.0, 200_000.0))


@st.composite
def scenarios(draw) -> tuple[dict[str, Any], int]:
    o: dict[str, Any] = {
        "scenario.months": draw(st.integers(6, 24)),
        "population.manufacturers": draw(st.integers(1, 60)),
        "population.miners": draw(st.integers(0, 40)),
        "policy.bank_initiative": draw(st.booleans()),
        "foreign.predatory_pricing": draw(st.booleans()),
        "foreign.retaliation": draw(st.booleans()),
    }
    for good in GOOD_KEYS:
        o[f"policy.tariff.{good}"] = draw(st.floats(0.0, 10.0))
        o[f"policy.export_quota.{good}"] = draw(optional_quota)
    o["policy.price_floor.ndpr"] = draw(st.one_of(st.none(), st.floats(1.0, 300.0)))
    o["policy.price_floor.dytb"] = draw(st.one_of(st.none(), st.floats(10.0, 2000.0)))
    for good in draw(st.sets(st.sampled_from(GOOD_KEYS), max_size=2)):
        o[f"foreign.licensing.{good}.active"] = True
        o[f"foreign.licensing.{good}.approval_share"] = draw(st.floats(0.0, 1.0))
        o[f"foreign.licensing.{good}.delay_months"] = draw(st.integers(0, 6))
    return o, draw(st.integers(0, 10_000))


@FAST
@given(case=scenarios())
def test_random_scenarios_run_clean(case):
    overrides, seed = case
    scenario = load_scenario("baseline", overrides=overrides)
    frame = simulate(scenario, seed=seed, check_balances=True)
    assert len(frame) == overrides["scenario.months"]
    required = [c for c in CONTRACT_COLUMNS if c not in OPTIONAL_COLUMNS]
    empty = [c for c in required if frame[c].isna().any()]
    assert not empty, f"NaN in {empty}"
    prices = frame.filter(like="price_")
    assert (prices.fillna(0.0) >= 0.0).all().all()
    inventories = frame.filter(like="inventory_")
    assert (inventories >= -1e-9).all().all()
    assert frame["balance_error_t"].max() < 1e-6
    assert frame["balance_error_musd"].max() < 1e-6
