"""Double-entry books for tonnes and dollars: the one place where anything moves.

Every tonne (per good) and every US$ million sits in an account. Agents own accounts; the outside
world is represented by source and sink accounts (the ground a mine digs from, scrap, goods
consumed, the wider economy that is paid wages and reagents, investors, final customers). A transfer
debits one account and credits another by the same amount, so the sum over all accounts of each
good and of money stays zero for ever; ``residuals`` reports how far rounding has moved it.

Each transfer carries a flow label; the per-step totals by label (``tonne_flows`` and
``money_flows``) feed the reported
columns and the stock-flow identities that ``sim.model`` checks every month.
"""

from __future__ import annotations

import math
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
        tonne_flows: per-step totals of tonnes by (flow label, good).
        money_flows: per-step totals of money by flow label.
    """

    def __init__(self, capacity: int = 64) -> None:
        self.names: list[str] = []
        self.tonnes = np.zeros((capacity, len(GOODS)))
        self.money = np.zeros(capacity)
        self.tonne_flows: defaultdict[tuple[str, str], float] = defaultdict(float)
        self.money_flows: defaultdict[str, float] = defaultdict(float)
        # Account arrays handed out by ``open``, by id, with the slice they cover.
        self._blocks: dict[int, tuple[NDArray[np.intp], slice]] = {}

    # ----------------------------------------------------------------------------- accounts
    def open(self, name: str, count: int = 1) -> NDArray[np.intp]:
        """Open ``count`` accounts named ``name[i]`` (or ``name`` if one); return their indices.

        The returned array is read-only. Accounts opened together are contiguous, and a transfer
        given this very array updates them through a slice, much faster than an index array.
        """
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
        accounts = np.arange(start, needed, dtype=np.intp)
        accounts.flags.writeable = False
        self._blocks[id(accounts)] = (accounts, slice(start, needed))
        return accounts

    def as_block(self, accounts: ArrayLike) -> NDArray[np.intp]:
        """A read-only copy of ``accounts`` that transfers update through a slice if contiguous.

        For subsets an agent uses every month (say the magnet makers among the manufacturers):
        build it once, and transfers to it are as fast as to a block from ``open``.
        """
        block = np.array(accounts, dtype=np.intp)
        block.flags.writeable = False
        if (
            block.ndim == 1
            and block.size
            and np.array_equal(block, np.arange(block[0], block[0] + block.size))
        ):
            self._blocks[id(block)] = (block, slice(int(block[0]), int(block[0]) + block.size))
        return block

    @property
    def size(self) -> int:
        """Number of open accounts."""
        return len(self.names)

    # ---------------------------------------------------------------------------- transfers
    def move(self, good: str, src: ArrayLike, dst: ArrayLike, amount: ArrayLike, flow: str) -> None:
        """Move tonnes of ``good`` from ``src`` to ``dst`` account(s); arrays broadcast together.

        An array of accounts must not repeat an account (sum repeated steps first).
        """
        if amount.__class__ is float and amount == 0.0:  # the commonest transfer: nothing
            return
        if isinstance(amount, _SCALARS) and isinstance(src, _INDICES) and isinstance(dst, _INDICES):
            value = float(amount)
            if not -1e-9 <= value < math.inf:  # also refuses NaN
                raise _invalid(flow, [value])
            if value:
                g = GOOD_INDEX[good]
                tonnes = self.tonnes
                tonnes[src, g] -= value
                tonnes[dst, g] += value
                self.tonne_flows[flow, good] += value
            return
        column = self.tonnes[:, GOOD_INDEX[good]]
        self.tonne_flows[flow, good] += self._apply(column, src, dst, amount, flow)

    def pay(self, src: ArrayLike, dst: ArrayLike, amount_musd: ArrayLike, flow: str) -> None:
        """Pay US$ million from ``src`` to ``dst`` account(s); arrays broadcast together.

        An array of accounts must not repeat an account (sum repeated steps first).
        """
        if amount_musd.__class__ is float and amount_musd == 0.0:  # the commonest: nothing
            return
        if (
            isinstance(amount_musd, _SCALARS)
            and isinstance(src, _INDICES)
            and isinstance(dst, _INDICES)
        ):
            value = float(amount_musd)
            if not -1e-9 <= value < math.inf:  # also refuses NaN
                raise _invalid(flow, [value])
            if value:
                money = self.money
                money[src] -= value
                money[dst] += value
                self.money_flows[flow] += value
            return
        self.money_flows[flow] += self._apply(self.money, src, dst, amount_musd, flow)

    def _apply(
        self,
        column: NDArray[np.float64],
        src: ArrayLike,
        dst: ArrayLike,
        amount: ArrayLike,
        flow: str,
    ) -> float:
        """Debit ``src`` and credit ``dst`` by ``amount``; return the total moved.

        Accounts are scalars or arrays of distinct accounts, so plain indexed updates are exact (no
        ``ufunc.at`` needed). A scalar account facing several amounts takes their sum; a scalar
        amount facing an array of accounts applies to each of them.
        """
        src_many = isinstance(src, np.ndarray) and src.ndim > 0
        dst_many = isinstance(dst, np.ndarray) and dst.ndim > 0
        if amount.__class__ is np.ndarray and amount.dtype is _FLOAT:
            values = amount
        else:
            values = np.asarray(amount, dtype=float)
            if values.ndim == 0 and (src_many or dst_many):
                values = np.full(len(src if src_many else dst), float(values))  # type: ignore[arg-type]
        if not values.size:
            return 0.0
        # NaN and infinity propagate into the sum; the minimum catches negative amounts. (The
        # ufuncs' reduce is what ndarray.sum and .min call, without their Python wrappers.)
        total = float(_sum(values, axis=None))
        if not math.isfinite(total) or _min(values, axis=None) < -1e-9:
            raise _invalid(flow, values[~np.isfinite(values) | (values < -1e-9)][:5].tolist())
        if total == 0.0:  # amounts are >= 0, so a zero total moves nothing
            return 0.0
        if src_many:
            column[self._block(src)] -= values  # type: ignore[arg-type]
        else:
            column[src] -= total  # type: ignore[index]
        if dst_many:
            column[self._block(dst)] += values  # type: ignore[arg-type]
        else:
            column[dst] += total  # type: ignore[index]
        return total

    def _block(self, accounts: NDArray[np.intp]) -> slice | NDArray[np.intp]:
        """A slice for an account array handed out by ``open``, else the array itself."""
        block = self._blocks.get(id(accounts))
        return block[1] if block is not None and block[0] is accounts else accounts

    # ------------------------------------------------------------------------------ reading
    def held(self, good: str, accounts: ArrayLike) -> NDArray[np.float64]:
        """Holdings of ``good`` in the given accounts (a copy)."""
        return self.tonnes[np.asarray(accounts), GOOD_INDEX[good]].copy()

    def rows(self, accounts: NDArray[np.intp]) -> NDArray[np.float64]:
        """Holdings of every good in the given accounts (accounts x goods); read only.

        A view for an account block handed out by ``open``, a copy otherwise: do not modify it.
        """
        return self.tonnes[self._block(accounts)]

    def cash(self, accounts: NDArray[np.intp]) -> NDArray[np.float64]:
        """Cash of the given accounts, US$ million; read only (a view for an account block)."""
        return self.money[self._block(accounts)]

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


_SCALARS = (float, int)  # np.float64 is a float
_FLOAT = np.dtype(float)
_INDICES = (int, np.integer)
_sum = np.add.reduce
_min = np.minimum.reduce


def _invalid(flow: str, amounts: list[float]) -> NegativeTransferError:
    return NegativeTransferError(
        f"transfer {flow!r} with invalid amount(s) {amounts}: amounts must be finite and >= 0"
    )
