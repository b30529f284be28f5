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

import bisect
import itertools
import math
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
LevelIndex = NDArray[np.intp] | list[int]  # each live step's price level


class Clearing(NamedTuple):
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
    bid_fill = np.zeros(bid_q.shape)
    ask_fill = np.zeros(ask_q.shape)
    # Dust (quantities below a billionth of the book, e.g. remainders of pro-rata fills) is
    # ignored, so that it cannot move the price. Most steps of a month's book are empty, so the
    # work below runs on the live steps only.
    dust = 1e-9 * max(float(bid_q.sum()), float(ask_q.sum()), 1.0)
    b_live = (bid_q > dust).nonzero()[0]
    a_live = (ask_q > dust).nonzero()[0]
    if not b_live.size:
        price = float(ask_p[a_live].min()) if a_live.size else last_price
        return Clearing(price, 0.0, bid_fill, ask_fill)
    if not a_live.size:
        return Clearing(float(bid_p[b_live].max()), 0.0, bid_fill, ask_fill)

    # Aggregate each side into price levels, ascending. The levels are few (buyers and sellers
    # of a sector or kind quote alike), so the crossing is walked level by level.
    bq, aq = bid_q[b_live], ask_q[a_live]
    b_levels, b_level_q, b_level_of = _levels(bid_p[b_live], bq)
    a_levels, a_level_q, a_level_of = _levels(ask_p[a_live], aq)
    if b_levels[-1] < a_levels[0]:
        return Clearing(0.5 * (b_levels[-1] + a_levels[0]), 0.0, bid_fill, ask_fill)
    quantity, b_m_i, a_m_i, price = _cross(b_levels, b_level_q, a_levels, a_level_q)

    bid_fill[b_live] = _fills(bq, b_level_of, _fill_ratio(b_level_q, b_m_i, quantity, above=True))
    ask_fill[a_live] = _fills(aq, a_level_of, _fill_ratio(a_level_q, a_m_i, quantity, above=False))
    return Clearing(price, quantity, bid_fill, ask_fill)


# Below this many live steps a side is aggregated in plain Python: numpy's per-call overhead
# costs more than the work. Both ways add each level's quantities in input order (same sums).
SMALL_SIDE = 32


def _levels(p: FloatArray, q: FloatArray) -> tuple[list[float], list[float], LevelIndex]:
    """Distinct prices (ascending), the quantity at each (summed in input order), each step's level."""
    if p.size <= SMALL_SIDE:
        prices = p.tolist()
        levels = sorted(set(prices))
        position = {price: i for i, price in enumerate(levels)}
        level_of = [position[price] for price in prices]
        level_q = [0.0] * len(levels)
        for i, x in zip(level_of, q.tolist(), strict=True):
            level_q[i] += x
        return levels, level_q, level_of
    order = p.argsort(kind="stable")
    p_sorted = p[order]
    new = np.empty(p.size, dtype=bool)
    new[0] = True
    np.not_equal(p_sorted[1:], p_sorted[:-1], out=new[1:])
    level_array = np.empty(p.size, dtype=np.intp)
    level_array[order] = new.cumsum() - 1
    return p_sorted[new].tolist(), np.bincount(level_array, weights=q).tolist(), level_array


def _fills(q: FloatArray, level_of: LevelIndex, ratio: list[float]) -> FloatArray | list[float]:
    """Each step's fill: its quantity times its level's fill ratio."""
    if isinstance(level_of, list):
        return [x * ratio[i] for x, i in zip(q.tolist(), level_of, strict=True)]
    return q * np.array(ratio)[level_of]


def _cross(
    b_levels: list[float], b_level_q: list[float], a_levels: list[float], a_level_q: list[float]
) -> tuple[float, int, int, float]:
    """Walk the aggregated book: the traded quantity, the marginal bid and ask levels, the price.

    Demand D(p) is the bids at or above p and supply S(p) the asks at or below p; the traded
    quantity is the largest min(D, S) over all levels. The price is the middle of the interval
    of prices that clear that quantity (k = 1/2).
    """
    demand = list(itertools.accumulate(reversed(b_level_q)))[::-1]  # D at each bid level
    supply = list(itertools.accumulate(a_level_q))  # S at each ask level
    quantity = 0.0
    for level, d in zip(b_levels, demand, strict=True):
        s_i = bisect.bisect_right(a_levels, level) - 1
        quantity = max(quantity, min(d, supply[s_i] if s_i >= 0 else 0.0))
    for level, s in zip(a_levels, supply, strict=True):
        d_i = bisect.bisect_left(b_levels, level)
        quantity = max(quantity, min(demand[d_i] if d_i < len(demand) else 0.0, s))

    # Marginal levels: the lowest bid level and highest ask level needed to trade `quantity`.
    tol = 1e-12 * max(quantity, 1.0)
    b_m_i = max(i for i, d in enumerate(demand) if d >= quantity - tol)
    a_m_i = min(i for i, s in enumerate(supply) if s >= quantity - tol)
    b_m, a_m = b_levels[b_m_i], a_levels[a_m_i]
    if demand[b_m_i] > quantity + tol:  # the marginal bid level is rationed
        b_next = b_m
    else:
        b_next = b_levels[b_m_i - 1] if b_m_i > 0 else -math.inf
    if supply[a_m_i] > quantity + tol:  # the marginal ask level is rationed
        a_next = a_m
    else:
        a_next = a_levels[a_m_i + 1] if a_m_i + 1 < len(a_levels) else math.inf
    lower = max(a_m, b_next)
    upper = min(b_m, a_next)
    price = 0.5 * (lower + upper) if lower <= upper else 0.5 * (a_m + b_m)
    return quantity, b_m_i, a_m_i, price


def _fill_ratio(
    level_q: list[float], marginal: int, quantity: float, *, above: bool
) -> list[float]:
    """Share of each level filled: better levels in full, the marginal one pro rata, worse none."""
    ratio = [0.0] * len(level_q)
    better = range(marginal + 1, len(level_q)) if above else range(marginal)
    for i in better:
        ratio[i] = 1.0
    rest = max(quantity - math.fsum(level_q[i] for i in better), 0.0)
    if level_q[marginal] > 0:
        ratio[marginal] = min(rest / level_q[marginal], 1.0)
    return ratio


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
    if not elasticity:
        demand_at_reservation = demand_ref_t
    elif reservation_price <= 0:  # a seller that takes any price faces unbounded demand
        demand_at_reservation = math.inf if elasticity < 0 else 0.0
    else:
        try:
            demand_at_reservation = demand_ref_t * (reservation_price / price_ref) ** elasticity
        except OverflowError:  # a reservation price far below p_ref: demand beyond any offer
            demand_at_reservation = math.inf
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
