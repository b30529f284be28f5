"""Dated policy changes apply from their month, are logged, and move miners' equity at once."""

from __future__ import annotations

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
