"""Scenario loading and the refusals users meet when they get something wrong."""

from __future__ import annotations

import pytest

from sim import ScenarioError, load_scenario


def test_baseline_loads_with_contract_keys(baseline):
    assert baseline.scenario.name == "baseline"
    assert baseline.policy.tariff.magnet == pytest.approx(0.021)
    assert baseline.policy.export_quota.ndpr is None
    assert baseline.population.manufacturers >= 500


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("policy.tariff.ndpr", "1.0"),
        ("policy.tariff.magnet", 1.5),
        ("policy.export_quota.dytb", "1000"),
        ("policy.price_floor.ndpr", "110"),
        ("policy.bank_initiative", "true"),
        ("foreign.predatory_pricing", "true"),
        ("population.manufacturers", "50"),
        ("population.miners", "40"),
    ],
)
def test_contract_keys_can_be_overridden(key, value):
    scenario = load_scenario("baseline", overrides={key: value})
    node = scenario
    for part in key.split("."):
        node = getattr(node, part)
    assert node is not None


@pytest.mark.parametrize(
    ("overrides", "key", "fragment"),
    [
        ({"policy.tarif.ndpr": "1"}, "policy.tarif", "did you mean 'tariff'"),
        (
            {"policy.export_quota.ndpr": "-5"},
            "policy.export_quota.ndpr",
            "greater than or equal to 0",
        ),
        ({"policy.tariff.ndpr": "abc"}, "policy.tariff.ndpr", "valid number"),
        ({"policy.tariff.ndpr": "nan"}, "policy.tariff.ndpr", "finite"),
        ({"scenario.start": "2025-13"}, "scenario.start", "YYYY-MM"),
        (
            {"population.manufacturers": "0"},
            "population.manufacturers",
            "greater than or equal to 1",
        ),
    ],
)
def test_bad_values_name_file_key_and_allowed(overrides, key, fragment):
    with pytest.raises(ScenarioError) as info:
        load_scenario("baseline", overrides=overrides)
    err = info.value
    assert err.key == key
    assert fragment in str(err)
    assert "baseline.toml" in err.file


def test_unknown_scenario_suggests_a_name():
    with pytest.raises(ScenarioError, match="did you mean 'baseline'"):
        load_scenario("baselin")


def test_malformed_toml_names_the_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[policy\ntariff = 1")
    with pytest.raises(ScenarioError, match="not valid TOML") as info:
        load_scenario(bad)
    assert str(bad) in str(info.value)


def test_schedule_values_are_validated(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('[[schedule]]\ndate = "2026-01"\nkey = "policy.tariff.ndpr"\nvalue = -1\n')
    with pytest.raises(ScenarioError, match=r"schedule\[0\]"):
        load_scenario(path)


def test_schedule_rejects_structural_keys(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('[[schedule]]\ndate = "2026-01"\nkey = "population.miners"\nvalue = 3\n')
    with pytest.raises(ScenarioError, match="cannot change during a run"):
        load_scenario(path)


def test_scenario_inherits_from_its_base(tmp_path):
    parent = tmp_path / "parent.toml"
    parent.write_text(
        "[scenario]\nmonths = 24\n[policy.tariff]\nndpr = 0.5\n"
        '[[schedule]]\ndate = "2025-06"\nkey = "policy.tariff.dytb"\nvalue = 0.2\n'
    )
    child = tmp_path / "child.toml"
    child.write_text(
        '[scenario]\nbase = "parent.toml"\n[policy.tariff]\nmagnet = 1.0\n'
        '[[schedule]]\ndate = "2025-09"\nkey = "policy.tariff.cela"\nvalue = 0.3\n'
    )
    scenario = load_scenario(child)
    assert scenario.scenario.name == "child"
    assert scenario.scenario.months == 24
    assert scenario.policy.tariff.ndpr == 0.5
    assert scenario.policy.tariff.magnet == 1.0
    assert [c.key for c in scenario.schedule] == ["policy.tariff.dytb", "policy.tariff.cela"]


def test_inheritance_cycle_is_refused(tmp_path):
    (tmp_path / "a.toml").write_text('[scenario]\nbase = "b.toml"\n')
    (tmp_path / "b.toml").write_text('[scenario]\nbase = "a.toml"\n')
    with pytest.raises(ScenarioError, match="cycle"):
        load_scenario(tmp_path / "a.toml")
