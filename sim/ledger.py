"""Double-entry books for tonnes and dollars: the one place where anything moves.

Every tonne (per good) and every US$ million sits in an account. Agents own accounts; the outside
world is represented by source and sink accounts (the ground a mine digs from, scrap, goods
consumed, the wider economy that is paid wages and reagents, investors, the treasury). A transfer
debits one account and credits another by the same amount, so the sum over all accounts of each
good and of money stays zero for ever; ``residuals`` reports how far rounding has moved it.

Each transfer carries a flow label; the per-step totals by label (``flows``) feed the reported
columns and the stock-flow identities that ``sim.model`` checks every month.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
from numpy.typing import ArrayLike, NDArray

from sim.params import GOODS

GOOD_INDEX = {good: i for i, good in enumerate(GOODS)}


class NegativeTransferError(ValueError):
    """A transfer of a negative or non-finite amount was requested."""


class Ledger:
    """Accounts for tonnes of each good and for money (US$ million).

    Attributes:
        tonnes: array (accounts x goods) of holdings in t (t REO for oxides, t for magnets).
        money: array (accounts) of cash in US$ million.
        flows: per-step totals by flow label, tonnes by (label, good) and money by label.
    """

    def __init__(self, capacity: int = 64) -> None:
        self.names: list[str] = []
        self.tonnes = np.zeros((capacity, len(GOODS)))
        self.money = np.zeros(capacity)
        self.tonne_flows: defaultdict[tuple[str, str], float] = defaultdict(float)
        self.money_flows: defaultdict[str, float] = defaultdict(float)

    # ----------------------------------------------------------------------------- accounts
    def open(self, name: str, count: int = 1) -> NDArray[np.intp]:
        """Open ``count`` accounts named ``name[i]`` (or ``name`` if one); return their indices."""
        start = len(self.names)
        if count == 1:
            self.names.append(name)
        else:
            self.names.extend(f"{name}[{i}]" for i in range(count))
        needed = len(self.names)
        if needed > self.money.shape[0]:
            grow = max(needed, 2 * self.money.shape[0])
            self.tonnes = np.vstack(
                [self.tonnes, np.zeros((grow - self.tonnes.shape[0], len(GOODS)))]
            )
            self.money = np.concatenate([self.money, np.zeros(grow - self.money.shape[0])])
        return np.arange(start, needed, dtype=np.intp)

    @property
    def size(self) -> int:
        """Number of open accounts."""
        return len(self.names)

    # ---------------------------------------------------------------------------- transfers
    def move(self, good: str, src: ArrayLike, dst: ArrayLike, amount: ArrayLike, flow: str) -> None:
        """Move tonnes of ``good`` from ``src`` to ``dst`` account(s); arrays broadcast together."""
        amount_arr = np.asarray(amount, dtype=float)
        _check_amount(amount_arr, flow)
        g = GOOD_INDEX[good]
        src_arr, dst_arr, amount_arr = np.broadcast_arrays(
            np.asarray(src), np.asarray(dst), amount_arr
        )
        np.subtract.at(self.tonnes[:, g], src_arr.ravel(), amount_arr.ravel())
        np.add.at(self.tonnes[:, g], dst_arr.ravel(), amount_arr.ravel())
        self.tonne_flows[flow, good] += float(amount_arr.sum())

    def pay(self, src: ArrayLike, dst: ArrayLike, amount_musd: ArrayLike, flow: str) -> None:
        """Pay US$ million from ``src`` to ``dst`` account(s); arrays broadcast together."""
        amount_arr = np.asarray(amount_musd, dtype=float)
        _check_amount(amount_arr, flow)
        src_arr, dst_arr, amount_arr = np.broadcast_arrays(
            np.asarray(src), np.asarray(dst), amount_arr
        )
        np.subtract.at(self.money, src_arr.ravel(), amount_arr.ravel())
        np.add.at(self.money, dst_arr.ravel(), amount_arr.ravel())
        self.money_flows[flow] += float(amount_arr.sum())

    # ------------------------------------------------------------------------------ reading
    def held(self, good: str, accounts: ArrayLike) -> NDArray[np.float64]:
        """Holdings of ``good`` in the given accounts (a copy)."""
        return self.tonnes[np.asarray(accounts), GOOD_INDEX[good]].copy()

    def tonne_flow(self, flow: str, good: str) -> float:
        """Total of a tonne flow in the current step."""
        return self.tonne_flows.get((flow, good), 0.0)

    def money_flow(self, flow: str) -> float:
        """Total of a money flow in the current step."""
        return self.money_flows.get(flow, 0.0)

    def start_step(self) -> None:
        """Forget last step's flow totals."""
        self.tonne_flows.clear()
        self.money_flows.clear()

    def residuals(self) -> tuple[float, float]:
        """Sum over all accounts of each good (largest absolute) and of money; zero if conserved."""
        n = self.size
        tonnes = float(np.abs(self.tonnes[:n].sum(axis=0)).max())
        money = float(abs(self.money[:n].sum()))
        return tonnes, money


def _check_amount(amount: NDArray[np.float64], flow: str) -> None:
    if not np.all(np.isfinite(amount)) or np.any(amount < -1e-9):
        bad = amount[~np.isfinite(amount) | (amount < -1e-9)]
        msg = f"transfer {flow!r} with invalid amount(s) {bad[:5].tolist()}: amounts must be finite and >= 0"
        raise NegativeTransferError(msg)
