"""Hand-computed cases for the call auction and the home-market curve."""

from __future__ import annotations

import numpy as np
import pytest

from sim.market import adapt, clear_against_curve, clear_call_auction


def auction(bids, asks, last=0.0):
    bq, bp = (
        (np.array(x, dtype=float) for x in zip(*bids, strict=True))
        if bids
        else (np.zeros(0), np.zeros(0))
    )
    aq, ap = (
        (np.array(x, dtype=float) for x in zip(*asks, strict=True))
        if asks
        else (np.zeros(0), np.zeros(0))
    )
    return clear_call_auction(bq, bp, aq, ap, last)


def test_excess_supply_price_falls_to_marginal_ask():
    r = auction([(10, 100)], [(20, 10)])
    assert r.price == 10.0
    assert r.quantity == 10.0
    assert r.ask_fill.tolist() == [10.0]


def test_partially_filled_seller_sets_price():
    # Demand 10 @ 100; supply 5 @ 10 then 10 @ 50: the second seller sells 5 of 10 and sets 50.
    r = auction([(10, 100)], [(5, 10), (10, 50)])
    assert r.price == 50.0
    assert r.ask_fill.tolist() == [5.0, 5.0]


def test_excess_demand_price_rises_to_marginal_bid_and_rations_pro_rata():
    # Two equal buyers at 100 want 20; only 5 offered at 20: price is the buyers' 100, split 2.5/2.5.
    r = auction([(10, 100), (10, 100)], [(5, 20)])
    assert r.price == 100.0
    assert r.bid_fill.tolist() == [2.5, 2.5]


def test_price_is_middle_of_clearing_interval():
    # 10 trade; any price in [40, 60] clears (next bid 40, next ask 60): midpoint 50.
    r = auction([(10, 100), (5, 40)], [(10, 20), (10, 60)])
    assert r.price == 50.0
    assert r.quantity == 10.0
    assert r.bid_fill.tolist() == [10.0, 0.0]


def test_no_crossing_quotes_midpoint_and_trades_nothing():
    r = auction([(10, 30)], [(10, 50)])
    assert r.quantity == 0.0
    assert r.price == 40.0


def test_empty_sides_give_indicative_prices():
    assert auction([], [], last=7.0).price == 7.0
    assert auction([(5, 80), (5, 120)], []).price == 120.0  # the keenest buyer, nothing traded
    assert auction([], [(5, 30), (5, 10)]).price == 10.0


def test_fills_do_not_depend_on_order():
    bids = [(3, 50), (4, 70), (5, 60), (2, 70)]
    asks = [(6, 40), (2, 55), (5, 45)]
    r1 = auction(bids, asks)
    r2 = auction(bids[::-1], asks[::-1])
    assert r1.price == r2.price
    assert r1.bid_fill.tolist() == r2.bid_fill[::-1].tolist()
    assert r1.ask_fill.sum() == pytest.approx(r1.bid_fill.sum())


def test_curve_reservation_binds_when_offer_exceeds_demand():
    # D(p) = 100 (p/10)^-0.5; at reservation 8 demand is 100 * 0.8^-0.5 = 111.80.
    price, sold = clear_against_curve(200.0, 8.0, 100.0, 10.0, -0.5)
    assert price == 8.0
    assert sold == pytest.approx(100 * 0.8**-0.5)


def test_curve_short_offer_raises_price():
    # Offer 25 against D(p) = 100 (p/10)^-0.5: p = 10 * (0.25)^(-2) = 160, below a 20x choke.
    price, sold = clear_against_curve(25.0, 8.0, 100.0, 10.0, -0.5, choke_ratio=20.0)
    assert price == pytest.approx(160.0)
    assert sold == 25.0


def test_curve_price_capped_at_choke():
    # The same offer with the default 10x choke: buyers pay no more than 100; all 25 t sell.
    assert clear_against_curve(25.0, 8.0, 100.0, 10.0, -0.5) == (100.0, 25.0)


def test_adaptive_expectation():
    assert float(adapt(10.0, 20.0, 0.25)) == 12.5


@pytest.mark.parametrize("reservation", [0.0, 1e-200])
def test_curve_with_a_reservation_price_near_zero_sells_the_offer(reservation):
    """A seller that takes (almost) any price faces demand beyond its offer: it sells all of it,
    at the price where the curve meets the offer; no division by zero or overflow."""
    price, sold = clear_against_curve(
        offer_t=500.0,
        reservation_price=reservation,
        demand_ref_t=1000.0,
        price_ref=50.0,
        elasticity=-5.0,
    )
    assert sold == 500.0
    assert price == pytest.approx(50.0 * 0.5 ** (1 / -5.0))
