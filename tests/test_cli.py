"""The command line: results folders, exit codes, nothing half-written."""

from __future__ import annotations

import json

import pandas as pd

from sim.cli import main
from sim.columns import CONTRACT_COLUMNS


def test_run_writes_a_complete_results_folder(tmp_path, capsys):
    out = tmp_path / "r"
    code = main(["run", "baseline", "--seeds", "2", "--months", "6", "--out", str(out)])
    assert code == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["scenario"] == "baseline"
    assert [r["status"] for r in manifest["runs"]] == ["done", "done"]
    ts = pd.read_parquet(out / "timeseries.parquet")
    assert len(ts) == 12
    assert set(CONTRACT_COLUMNS) <= set(ts.columns)
    summary = pd.read_parquet(out / "summary.parquet")
    assert len(summary) == 2
    events = pd.read_parquet(out / "events.parquet")
    assert list(events.columns) == ["run_id", "month", "date", "agent", "kind", "detail"]
    assert "Results in" in capsys.readouterr().out


def test_bad_key_exits_2_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "r"
    code = main(["run", "baseline", "--set", "policy.tarif.ndpr=1", "--out", str(out)])
    assert code == 2
    err = capsys.readouterr().err
    assert "baseline.toml" in err
    assert "policy.tarif" in err
    assert "Traceback" not in err
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_negative_quota_exits_2(tmp_path, capsys):
    code = main(
        ["run", "baseline", "--set", "policy.export_quota.dytb=-1", "--out", str(tmp_path / "r")]
    )
    assert code == 2
    assert "greater than or equal to 0" in capsys.readouterr().err


def test_check_and_scenarios(capsys):
    assert main(["check", "baseline"]) == 0
    assert main(["scenarios"]) == 0
    assert "baseline" in capsys.readouterr().out
