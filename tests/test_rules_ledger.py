"""Hand-computed cases for the double-entry ledger (sim.ledger): conservation and refusals."""

from __future__ import annotations

import numpy as np
import pytest

from sim.ledger import Ledger, NegativeTransferError


@pytest.fixture
def books() -> tuple[Ledger, int, int, int]:
    ledger = Ledger(capacity=4)
    a = int(ledger.open("a")[0])
    b = int(ledger.open("b")[0])
    c = int(ledger.open("c")[0])
    return ledger, a, b, c


def test_open_names_and_grows_past_capacity():
    ledger = Ledger(capacity=2)
    first = ledger.open("single")
    many = ledger.open("firm", 5)
    assert first.tolist() == [0]
    assert many.tolist() == [1, 2, 3, 4, 5]
    assert ledger.size == 6
    assert ledger.names == ["single", *(f"firm[{i}]" for i in range(5))]
    assert ledger.tonnes.shape[0] >= 6
    assert ledger.money.shape[0] >= 6
    assert np.all(ledger.tonnes[:6] == 0.0)
    assert np.all(ledger.money[:6] == 0.0)


def test_move_debits_source_credits_destination_and_records_flow(books):
    ledger, a, b, _ = books
    ledger.move("ndpr", a, b, 12.5, "sale")
    assert ledger.tonnes[a].tolist() == [-12.5, 0.0, 0.0, 0.0]
    assert ledger.tonnes[b].tolist() == [12.5, 0.0, 0.0, 0.0]
    assert ledger.tonne_flow("sale", "ndpr") == 12.5
    assert ledger.tonne_flow("sale", "dytb") == 0.0
    assert ledger.residuals() == (0.0, 0.0)


def test_move_array_of_distinct_accounts_against_one_account(books):
    ledger, a, b, c = books
    # One source, two distinct destinations: the source is debited with the sum.
    ledger.move("magnet", a, np.array([b, c]), np.array([1.0, 2.0]), "ship")
    assert ledger.tonnes[a, 3] == -3.0
    assert ledger.tonnes[b, 3] == 1.0
    assert ledger.tonnes[c, 3] == 2.0
    assert ledger.tonne_flow("ship", "magnet") == 3.0
    # Two distinct sources, one destination.
    ledger.move("cela", np.array([b, c]), a, np.array([0.25, 0.75]), "back")
    assert ledger.tonnes[a, 2] == 1.0
    assert ledger.tonnes[b, 2] == -0.25
    assert ledger.tonne_flow("back", "cela") == 1.0
    # Element-wise between two arrays of accounts.
    ledger.move("dytb", np.array([b, c]), np.array([c, a]), np.array([4.0, 5.0]), "swap")
    assert ledger.tonnes[:3, 1].tolist() == [5.0, -4.0, -1.0]
    assert ledger.residuals() == (0.0, 0.0)


def test_scalar_amount_broadcast_over_accounts_conserves(books):
    ledger, a, b, c = books
    ledger.move("ndpr", a, np.array([b, c]), 2.0, "each")
    ledger.pay(np.array([b, c]), a, 1.0, "each")
    assert ledger.tonnes[b, 0] == 2.0
    assert ledger.tonnes[c, 0] == 2.0
    assert ledger.tonnes[a, 0] == -4.0
    assert ledger.money[a] == 2.0
    assert ledger.residuals() == (0.0, 0.0)


def test_pay_conserves_money_and_sums_flows(books):
    ledger, a, b, c = books
    ledger.pay(a, b, 7.0, "wages")
    ledger.pay(b, np.array([a, c]), np.array([1.5, 2.5]), "wages")
    assert ledger.money[a] == -5.5
    assert ledger.money[b] == 3.0
    assert ledger.money[c] == 2.5
    assert ledger.money_flow("wages") == 11.0
    assert ledger.money_flow("nothing") == 0.0
    assert ledger.residuals() == (0.0, 0.0)


def test_many_transfers_keep_totals_at_zero(books):
    ledger, *accounts = books
    rng = np.random.default_rng(5)
    for _ in range(200):
        src, dst = rng.choice(accounts, 2, replace=False)
        ledger.move("dytb", src, dst, float(rng.uniform(0, 1e4)), "x")
        ledger.pay(dst, src, float(rng.uniform(0, 1e3)), "y")
    tonnes_resid, money_resid = ledger.residuals()
    assert tonnes_resid < 1e-9
    assert money_resid < 1e-9


@pytest.mark.parametrize("bad", [-1.0, -1e-6, np.nan, np.inf, -np.inf])
def test_move_rejects_negative_or_non_finite_and_changes_nothing(books, bad):
    ledger, a, b, _ = books
    ledger.move("ndpr", a, b, 3.0, "ok")
    before = ledger.tonnes.copy()
    with pytest.raises(NegativeTransferError, match="bad_flow"):
        ledger.move("ndpr", a, np.array([b, b]), np.array([1.0, bad]), "bad_flow")
    assert np.array_equal(ledger.tonnes, before)
    assert ledger.tonne_flow("bad_flow", "ndpr") == 0.0


@pytest.mark.parametrize("bad", [-2.0, np.nan, np.inf])
def test_pay_rejects_negative_or_non_finite_and_changes_nothing(books, bad):
    ledger, a, b, _ = books
    before = ledger.money.copy()
    with pytest.raises(NegativeTransferError):
        ledger.pay(a, b, bad, "bad_pay")
    assert np.array_equal(ledger.money, before)
    assert ledger.money_flow("bad_pay") == 0.0


def test_rounding_sized_negative_is_tolerated(books):
    # Amounts down to -1e-9 count as rounding noise of a zero transfer (documented tolerance).
    ledger, a, b, _ = books
    ledger.pay(a, b, -1e-10, "noise")
    assert ledger.residuals()[1] == 0.0


def test_start_step_forgets_flows_but_not_holdings(books):
    ledger, a, b, _ = books
    ledger.move("ndpr", a, b, 2.0, "sale")
    ledger.pay(b, a, 1.0, "payment")
    ledger.start_step()
    assert ledger.tonne_flow("sale", "ndpr") == 0.0
    assert ledger.money_flow("payment") == 0.0
    assert ledger.tonnes[b, 0] == 2.0
    assert ledger.money[a] == 1.0


def test_held_is_a_copy(books):
    ledger, a, b, _ = books
    ledger.move("cela", a, b, 4.0, "sale")
    held = ledger.held("cela", [a, b])
    assert held.tolist() == [-4.0, 4.0]
    held[:] = 0.0
    assert ledger.tonnes[b, 2] == 4.0


def test_as_block_transfers_match_an_index_array():
    """A contiguous subset built with ``as_block`` moves exactly what an index array moves; a
    non-contiguous one still works (through the index array)."""
    from sim.ledger import Ledger

    fast, slow = Ledger(), Ledger()
    for ledger in (fast, slow):
        ledger.open("source")
        ledger.open("firm", 6)
    amounts = np.array([1.0, 2.5, 0.0])
    fast.move("ndpr", 0, fast.as_block([3, 4, 5]), amounts, "buy")
    slow.move("ndpr", 0, np.array([3, 4, 5]), amounts, "buy")
    fast.pay(fast.as_block([1, 3, 6]), 0, amounts, "pay")
    slow.pay(np.array([1, 3, 6]), 0, amounts, "pay")
    assert np.array_equal(fast.tonnes, slow.tonnes)
    assert np.array_equal(fast.money, slow.money)
    assert fast.tonne_flow("buy", "ndpr") == 3.5
