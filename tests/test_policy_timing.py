"""Dated policy changes apply from their month, are logged, and move miners' equity at once."""

from __future__ import annotations

import numpy as np
import pytest

from sim import build_model, load_scenario
from sim.scenario import deep_merge


def _with_schedule(tmp_path, schedule: str):
    path = tmp_path / "s.toml"
    path.write_text('[scenario]\nname = "timing"\nmonths = 24\n' + schedule)
    return load_scenario(path, overrides={"population.manufacturers": 50})


def test_scheduled_tariff_applies_from_its_month_and_is_logged(tmp_path):
    scenario = _with_schedule(
        tmp_path,
        '[[schedule]]\ndate = "2025-07"\nkey = "policy.tariff.ndpr"\nvalue = 1.0\nsource = "test"\n',
    )
    model = build_model(scenario, seed=1)
    tariffs = []
    for _ in range(12):
        model.step()
        tariffs.append(model.current.policy.tariff.ndpr)
    assert tariffs[:6] == [0.0] * 6
    assert tariffs[6:] == [1.0] * 6
    logged = [
        e for e in model.events if e["kind"] == "policy" and "policy.tariff.ndpr" in e["detail"]
    ]
    assert [e["date"] for e in logged] == ["2025-07"]


def test_bank_programme_announcement_lifts_equity_in_its_month(tmp_path):
    scenario = _with_schedule(
        tmp_path, '[[schedule]]\ndate = "2025-10"\nkey = "policy.bank_initiative"\nvalue = true\n'
    )
    model = build_model(scenario, seed=1)
    values = []
    for _ in range(12):
        model.step()
        values.append(float(model.miners.equity_value[model.miners.listed].sum()))
    jump = values[9] / values[8] - 1.0
    drift = max(abs(values[i] / values[i - 1] - 1.0) for i in range(1, 9))
    assert jump > 0.05
    assert jump > 3 * drift


def test_deep_merge_keeps_untouched_keys():
    assert deep_merge({"a": {"b": 1, "c": 2}}, {"a": {"b": 3}}) == {"a": {"b": 3, "c": 2}}


CONTRACTS = """
[[government.contracts]]
date = "2025-03"
miner = "Mountain Pass"
kind = "equity"
amount_musd = 400
[[government.contracts]]
date = "2025-03"
miner = "Mountain Pass"
kind = "loan"
amount_musd = 120
years = 10
interest_rate = 0.0
[[government.contracts]]
date = "2025-04"
miner = "Mountain Pass"
kind = "floor"
product = "ndpr"
price = 110
upside_share = 0.3
[[government.contracts]]
date = "2025-05"
miner = "Mountain Pass"
kind = "offtake"
product = "magnet"
price = 120
"""


def test_contracts_with_a_named_project(tmp_path):
    scenario = _with_schedule(tmp_path, CONTRACTS)
    model = build_model(scenario, seed=1, check_balances=True)
    mp = model.miners.index_of["Mountain Pass"]
    gov = model.government
    for _ in range(2):
        model.step()
    cash_before = float(model.ledger.money[model.miners.accounts[mp]])
    model.step()  # 2025-03: equity and loan paid in
    assert model.miners.gov_equity[mp] == 400.0
    assert model.miners.gov_loan[mp] == pytest.approx(
        120.0 - 1.0
    )  # one month repaid, 0% over 10 yr
    assert float(model.ledger.money[model.miners.accounts[mp]]) > cash_before + 400.0
    model.step()  # 2025-04: the floor covers Mountain Pass only
    floors = model.miners.floors()[:, 0]
    assert floors[mp] == 110.0
    assert np.isnan(np.delete(floors, mp)).all()
    for _ in range(3):
        model.step()
    # Offtake: the stockpile holds Mountain Pass magnets, bought at the contract price.
    assert model.ledger.tonnes[gov.stockpile_account, 3] > 0
    assert model.ledger.money_flow("offtake_purchases") == pytest.approx(
        model.ledger.tonne_flow("offtake", "magnet") * 120.0 * 1e-3
    )


def test_contract_with_unknown_project_is_refused(tmp_path):
    from sim import ScenarioError

    # Refused when the scenario loads (so `resim check` finds it), naming the file.
    with pytest.raises(
        ScenarioError, match=r"s\.toml: government.contracts\[0\].miner.*Mount Pass.*Mountain Pass"
    ):
        _with_schedule(
            tmp_path,
            '[[government.contracts]]\ndate = "2025-03"\nminer = "Mount Pass"\nkind = "grant"\namount_musd = 5\n',
        )


def test_incomplete_contract_is_refused(tmp_path):
    from sim import ScenarioError

    with pytest.raises(ScenarioError, match="needs product and price"):
        _with_schedule(
            tmp_path,
            '[[government.contracts]]\ndate = "2025-03"\nminer = "Mountain Pass"\nkind = "floor"\n',
        )


def test_scheduled_none_lifts_a_quota(tmp_path):
    scenario = _with_schedule(
        tmp_path,
        "[policy.export_quota]\ndytb = 12.0\n"
        '[[schedule]]\ndate = "2025-04"\nkey = "policy.export_quota.dytb"\nvalue = "none"\n',
    )
    model = build_model(scenario, seed=1)
    quotas = []
    for _ in range(5):
        model.step()
        quotas.append(model.current.policy.export_quota.dytb)
    assert quotas == [12.0, 12.0, 12.0, None, None]


def test_none_is_refused_where_a_value_is_required():
    from sim import ScenarioError

    with pytest.raises(ScenarioError, match=r"policy\.tariff\.ndpr"):
        load_scenario("baseline", overrides={"policy.tariff.ndpr": "none"})
