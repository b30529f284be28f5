"""Market clearing: a uniform-price call auction over bid and ask steps, and an aggregate curve.

Every month each good clears once in each layer. In the importing market, buyers (manufacturers)
submit bid steps (quantity, highest price) and sellers (miners, the foreign supplier's licensed and
illicit exports, a government stockpile) submit ask steps (quantity, lowest price), all in landed
US$/kg. The auction trades the largest quantity at which bids meet asks; the price is the middle
of the interval of prices that clear that quantity (a k = 1/2 double auction, Friedman and Rust
1993), so a rationed marginal seller sets the price when supply is plentiful and a rationed
marginal buyer sets it when supply is short. Steps at the marginal price are filled pro rata
(rationing rule), so the result does not depend on the order of agents.

The foreign supplier's home market has an aggregate isoelastic demand curve rather than agents;
``clear_against_curve`` gives the same answer a call auction would give against that curve.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class Clearing:
    """Result of one call auction.

    Attributes:
        price: uniform clearing price (US$/kg); an indicative price when nothing trades.
        quantity: traded quantity (t).
        bid_fill: quantity each bid step bought, in input order.
        ask_fill: quantity each ask step sold, in input order.
    """

    price: float
    quantity: float
    bid_fill: FloatArray
    ask_fill: FloatArray


def clear_call_auction(
    bid_q: FloatArray, bid_p: FloatArray, ask_q: FloatArray, ask_p: FloatArray, last_price: float
) -> Clearing:
    """Clear a uniform-price call auction.

    Args:
        bid_q: quantities buyers want (t), >= 0.
        bid_p: the highest price each buyer step pays (US$/kg).
        ask_q: quantities sellers offer (t), >= 0.
        ask_p: the lowest price each seller step accepts (US$/kg).
        last_price: price quoted when neither side has any quantity.

    Returns:
        The clearing. With no trade the price is indicative: the best ask if there are no bids,
        the best bid if there is no supply (what the keenest buyer would pay), the midpoint if
        both exist but do not cross, ``last_price`` if the book is empty.
    """
    bid_q = np.asarray(bid_q, dtype=float)
    bid_p = np.asarray(bid_p, dtype=float)
    ask_q = np.asarray(ask_q, dtype=float)
    ask_p = np.asarray(ask_p, dtype=float)
    # Dust (quantities below a billionth of the book, e.g. remainders of pro-rata fills) is
    # ignored, so that it cannot move the price.
    dust = 1e-9 * max(float(bid_q.sum()), float(ask_q.sum()), 1.0)
    bid_live = bid_q > dust
    ask_live = ask_q > dust
    no_fill_b = np.zeros_like(bid_q)
    no_fill_a = np.zeros_like(ask_q)
    if not bid_live.any() and not ask_live.any():
        return Clearing(last_price, 0.0, no_fill_b, no_fill_a)
    if not bid_live.any():
        return Clearing(float(ask_p[ask_live].min()), 0.0, no_fill_b, no_fill_a)
    if not ask_live.any():
        return Clearing(float(bid_p[bid_live].max()), 0.0, no_fill_b, no_fill_a)

    best_bid = float(bid_p[bid_live].max())
    best_ask = float(ask_p[ask_live].min())
    if best_bid < best_ask:
        return Clearing(0.5 * (best_bid + best_ask), 0.0, no_fill_b, no_fill_a)

    # Aggregate the book into price levels: demand D(p) = bids at >= p, supply S(p) = asks at <= p.
    b_levels, b_inv = np.unique(bid_p[bid_live], return_inverse=True)
    b_level_q = np.bincount(b_inv, weights=bid_q[bid_live])
    a_levels, a_inv = np.unique(ask_p[ask_live], return_inverse=True)
    a_level_q = np.bincount(a_inv, weights=ask_q[ask_live])
    demand_at_or_above = np.cumsum(b_level_q[::-1])[::-1]  # D at each bid level (ascending levels)
    supply_at_or_below = np.cumsum(a_level_q)  # S at each ask level

    candidates = np.union1d(b_levels, a_levels)
    d_idx = np.searchsorted(b_levels, candidates, side="left")
    demand = np.where(
        d_idx < b_levels.size, demand_at_or_above[np.minimum(d_idx, b_levels.size - 1)], 0.0
    )
    s_idx = np.searchsorted(a_levels, candidates, side="right") - 1
    supply = np.where(s_idx >= 0, supply_at_or_below[np.maximum(s_idx, 0)], 0.0)
    quantity = float(np.minimum(demand, supply).max())

    # Marginal levels: the lowest bid level and highest ask level needed to trade `quantity`.
    tol = 1e-12 * max(quantity, 1.0)
    b_m_i = int(np.nonzero(demand_at_or_above >= quantity - tol)[0].max())
    a_m_i = int(np.nonzero(supply_at_or_below >= quantity - tol)[0].min())
    b_m, a_m = float(b_levels[b_m_i]), float(a_levels[a_m_i])
    bid_partial = demand_at_or_above[b_m_i] > quantity + tol
    ask_partial = supply_at_or_below[a_m_i] > quantity + tol
    b_next = b_m if bid_partial else (float(b_levels[b_m_i - 1]) if b_m_i > 0 else -np.inf)
    a_next = (
        a_m
        if ask_partial
        else (float(a_levels[a_m_i + 1]) if a_m_i + 1 < a_levels.size else np.inf)
    )
    lower = max(a_m, b_next)
    upper = min(b_m, a_next)
    price = 0.5 * (lower + upper) if lower <= upper else 0.5 * (a_m + b_m)

    bid_fill = _fill(np.where(bid_live, bid_q, 0.0), bid_p, quantity, b_m, above=True)
    ask_fill = _fill(np.where(ask_live, ask_q, 0.0), ask_p, quantity, a_m, above=False)
    return Clearing(float(price), quantity, bid_fill, ask_fill)


def _fill(
    q: FloatArray, p: FloatArray, quantity: float, marginal: float, *, above: bool
) -> FloatArray:
    """Fill steps strictly better than the marginal level in full, the marginal level pro rata."""
    better = (p > marginal) if above else (p < marginal)
    fill = np.where(better, q, 0.0)
    at_margin = (p == marginal) & (q > 0)
    rest = max(quantity - float(fill.sum()), 0.0)
    margin_total = float(q[at_margin].sum())
    if margin_total > 0:
        fill = np.where(at_margin, q * min(rest / margin_total, 1.0), fill)
    return fill


def clear_against_curve(
    offer_t: float,
    reservation_price: float,
    demand_ref_t: float,
    price_ref: float,
    elasticity: float,
    choke_ratio: float = 10.0,
) -> tuple[float, float]:
    """Clear one seller's offer against an isoelastic demand curve D(p) = D_ref (p / p_ref)^e.

    The seller offers ``offer_t`` at no less than ``reservation_price``; what does not sell at the
    reservation price is kept. Above the choke price ``choke_ratio`` x ``p_ref`` buyers stop
    bidding more (the curve is capped there), so a short offer sells whole at no more than the
    choke price, whatever the elasticity: the price is continuous in the offer and in the
    elasticity, including at e = 0. This is the call auction's result against a continuous curve.

    Returns:
        (price, quantity sold).
    """
    choke = max(choke_ratio * price_ref, reservation_price)
    if demand_ref_t <= 0:
        return reservation_price, 0.0
    demand_at_reservation = (
        demand_ref_t * (reservation_price / price_ref) ** elasticity if elasticity else demand_ref_t
    )
    if offer_t >= demand_at_reservation:
        return reservation_price, demand_at_reservation
    if offer_t <= 0:
        return choke, 0.0
    # Solve D(p) = offer in logs so that tiny offers or elasticities near zero cannot overflow.
    log_ratio = math.log(offer_t / demand_ref_t)
    if elasticity == 0 or log_ratio / elasticity >= math.log(choke / price_ref):
        return choke, offer_t
    return max(price_ref * math.exp(log_ratio / elasticity), reservation_price), offer_t


def adapt(expected: FloatArray | float, observed: FloatArray | float, weight: float) -> FloatArray:
    """Adaptive (Nerlove) expectation: move a share ``weight`` of the way to the observation."""
    expected_arr = np.asarray(expected, dtype=float)
    return expected_arr + weight * (np.asarray(observed, dtype=float) - expected_arr)
