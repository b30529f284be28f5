"""``resim compare``: seed-paired differences, intervals, plots, and refusals that name the folder."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from sim import load_scenario
from sim.cli import main
from sim.compare import (
    FAN_SERIES,
    CompareError,
    compare,
    paired_difference,
    read_folder,
    sensitivity_table,
    sweep_settings,
    t_quantile,
)
from sim.results import events_frame, summarize, versions, write_json, write_parquet
from sim.runner import run_id, simulate_with_events

SMALL = ["--months", "6", "--set", "population.manufacturers=40"]


def _run(out: Path, *extra: str) -> Path:
    code = main(["run", "baseline", "--seeds", "3", *SMALL, *extra, "--out", str(out)])
    assert code == 0
    return out


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runs")
    return {
        "base": _run(root / "base"),
        "tariff": _run(root / "tariff", "--set", "policy.tariff.ndpr=1.0"),
        "later_seeds": _run(root / "later_seeds", "--seed", "10"),
    }


@pytest.fixture(scope="module")
def compared(folders: dict[str, Path], tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("compare") / "out"
    return compare([folders["base"], folders["tariff"]], None, out)


def _copy(folder: Path, tmp_path: Path, name: str = "copy") -> Path:
    target = tmp_path / name
    shutil.copytree(folder, target)
    return target


def _edit_manifest(folder: Path, edit: Any) -> None:
    path = folder / "manifest.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


# ----------------------------------------------------------------------------- hand-computed
def test_t_quantiles_match_the_printed_table():
    # Two-sided 95% points of Student's t (any statistics table).
    for df, value in [(1, 12.7062), (2, 4.3027), (4, 2.7764), (9, 2.2622), (29, 2.0452)]:
        assert t_quantile(df) == pytest.approx(value, abs=1e-4)
    assert t_quantile(2000) == pytest.approx(1.96115, abs=1e-4)


def test_paired_difference_by_hand():
    # Differences 1, 2, 3: mean 2, sd 1, se 1/sqrt(3), half-width 4.3027/sqrt(3) = 2.4841.
    out = paired_difference(np.array([11.0, 22.0, 33.0]), np.array([10.0, 20.0, 30.0]))
    assert out["difference"] == pytest.approx(2.0)
    assert out["se"] == pytest.approx(1 / math.sqrt(3))
    assert out["ci_low"] == pytest.approx(2.0 - 2.4841, abs=1e-4)
    assert out["ci_high"] == pytest.approx(2.0 + 2.4841, abs=1e-4)
    assert out["distinguishable"] == "no"
    same = paired_difference(np.array([5.0, 6.0]), np.array([4.0, 5.0]))
    assert (same["ci_low"], same["ci_high"], same["distinguishable"]) == (1.0, 1.0, "yes")
    one = paired_difference(np.array([5.0]), np.array([4.0]))
    assert one["distinguishable"] == "undefined"
    assert "one shared seed" in one["note"]


# ----------------------------------------------------------------------------- two run folders
def test_compare_writes_report_tables_and_plots(compared):
    out = compared.out
    expected = {"report.md", "means.csv", "differences.csv", "differences.png"}
    expected |= {f"fan_{column}.png" for column in FAN_SERIES}
    assert expected <= {p.name for p in out.iterdir()}
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no staging left
    report = (out / "report.md").read_text()
    assert "How to read this" in report
    for png in out.glob("*.png"):
        assert f"]({png.name})" in report


def test_price_difference_has_its_interval_computed_from_the_seeds(compared, folders):
    table = pd.read_csv(compared.out / "differences.csv")
    row = table[table["metric"] == "mean_price_landed_ndpr"].iloc[0]
    assert row["setting"] == "tariff"
    assert row["reference"] == "base"
    assert row["n_seeds"] == 3
    # By hand from the two summaries: per-seed difference, t(0.975, 2) = 4.3027.
    base = pd.read_parquet(folders["base"] / "summary.parquet").set_index("seed")
    tariff = pd.read_parquet(folders["tariff"] / "summary.parquet").set_index("seed")
    diff = (tariff["mean_price_landed_ndpr"] - base["mean_price_landed_ndpr"]).to_numpy()
    half = 4.302653 * diff.std(ddof=1) / math.sqrt(3)
    assert row["difference"] == pytest.approx(diff.mean(), rel=1e-5)
    assert row["ci_low"] == pytest.approx(diff.mean() - half, rel=1e-4)
    assert row["ci_high"] == pytest.approx(diff.mean() + half, rel=1e-4)
    # A 100% tariff on NdPr raises its landed price on every seed.
    assert row["ci_low"] > 0
    assert row["distinguishable"] == "yes"
    means = pd.read_csv(compared.out / "means.csv")
    assert set(means["setting"]) == {"base", "tariff"}


def test_pngs_are_readable_images(compared):
    for png in compared.out.glob("*.png"):
        with Image.open(png) as image:
            image.verify()
        with Image.open(png) as image:
            width, height = image.size
            assert image.format == "PNG"
        assert width >= 900
        assert height >= 400


def test_command_line_with_one_shared_seed_says_the_interval_is_undefined(
    folders, tmp_path, capsys
):
    import argparse

    from sim.compare import add_arguments, cmd_compare

    single = tmp_path / "single"
    assert (
        main(["run", "baseline", "--seeds", "1", "--seed", "3", *SMALL, "--out", str(single)]) == 0
    )
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    out = tmp_path / "cli"
    args = parser.parse_args(
        [
            *(str(folders["base"]), str(single)),
            *("--metric", "mean_price_landed_ndpr", "--metric", "public_cost_musd"),
            *("--out", str(out)),
        ]
    )
    capsys.readouterr()
    assert cmd_compare(args) == 0
    printed = capsys.readouterr().out
    assert "mean_price_landed_ndpr" in printed
    assert "undefined" in printed
    assert "report.md" in printed
    table = pd.read_csv(out / "differences.csv")
    assert list(table["metric"]) == ["mean_price_landed_ndpr", "public_cost_musd"]
    assert (table["n_seeds"] == 1).all()
    assert (table["distinguishable"] == "undefined").all()
    assert table["ci_low"].isna().all()
    assert "no confidence interval" in (out / "report.md").read_text()
    with pytest.raises(CompareError, match="exists and is not empty"):
        cmd_compare(args)


# ----------------------------------------------------------------------------- refusals
def test_refuses_a_folder_without_manifest(folders, tmp_path):
    bare = _copy(folders["tariff"], tmp_path)
    (bare / "manifest.json").unlink()
    with pytest.raises(CompareError, match=r"manifest\.json") as err:
        compare([folders["base"], bare], None, tmp_path / "out")
    assert str(bare) in str(err.value)
    assert not (tmp_path / "out").exists()


def test_refuses_a_missing_folder(folders, tmp_path):
    with pytest.raises(CompareError, match="no such folder") as err:
        compare([folders["base"], tmp_path / "nowhere"], None, tmp_path / "out")
    assert str(tmp_path / "nowhere") in str(err.value)


def test_refuses_another_format_version(folders, tmp_path):
    other = _copy(folders["tariff"], tmp_path)
    _edit_manifest(other, lambda m: m.update(format_version=2))
    with pytest.raises(CompareError, match="format_version") as err:
        compare([folders["base"], other], None, tmp_path / "out")
    assert str(other) in str(err.value)
    assert not (tmp_path / "out").exists()


def test_refuses_another_model_version(folders, tmp_path):
    other = _copy(folders["tariff"], tmp_path)
    _edit_manifest(other, lambda m: m["versions"].update(resim="99.0"))
    with pytest.raises(CompareError, match=r"99\.0") as err:
        compare([folders["base"], other], None, tmp_path / "out")
    assert str(other) in str(err.value)


def test_refuses_other_timeseries_columns(folders, tmp_path):
    other = _copy(folders["tariff"], tmp_path)
    frame = pd.read_parquet(other / "timeseries.parquet").drop(columns=["magnet_exports_t"])
    frame.to_parquet(other / "timeseries.parquet", index=False)
    with pytest.raises(CompareError, match="magnet_exports_t") as err:
        compare([folders["base"], other], None, tmp_path / "out")
    assert str(other) in str(err.value)


def test_refuses_folders_without_shared_seeds(folders, tmp_path):
    with pytest.raises(CompareError, match="no seed is shared") as err:
        compare([folders["base"], folders["later_seeds"]], None, tmp_path / "out")
    assert str(folders["later_seeds"]) in str(err.value)
    assert "10, 11, 12" in str(err.value)


def test_refuses_an_unknown_metric_and_lists_the_allowed(folders, tmp_path):
    with pytest.raises(CompareError, match="unknown metric") as err:
        compare([folders["base"], folders["tariff"]], ["peak_price"], tmp_path / "out")
    assert str(folders["base"]) in str(err.value)
    assert "peak_price_landed_ndpr" in str(err.value)


def test_refuses_a_single_run_folder(folders, tmp_path):
    with pytest.raises(CompareError, match="only one setting") as err:
        compare([folders["base"]], None, tmp_path / "out")
    assert str(folders["base"]) in str(err.value)


def test_refuses_a_truncated_parquet_file(folders, tmp_path):
    broken = _copy(folders["tariff"], tmp_path)
    path = broken / "summary.parquet"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CompareError, match="unreadable parquet") as err:
        compare([folders["base"], broken], None, tmp_path / "out")
    assert str(path) in str(err.value)


def test_refuses_a_manifest_that_lists_a_run_it_does_not_have(folders, tmp_path):
    lying = _copy(folders["tariff"], tmp_path)
    _edit_manifest(
        lying,
        lambda m: m["runs"].append({"run_id": "feedfacefeedface", "seed": 4, "status": "done"}),
    )
    with pytest.raises(CompareError, match="feedfacefeedface") as err:
        compare([folders["base"], lying], None, tmp_path / "out")
    assert str(lying) in str(err.value)


def test_refuses_to_write_over_an_input_folder(folders):
    with pytest.raises(CompareError, match="input folder"):
        compare([folders["base"], folders["tariff"]], None, folders["tariff"], overwrite=True)
    with pytest.raises(CompareError, match="would delete it"):
        compare([folders["base"], folders["tariff"]], None, folders["base"].parent, overwrite=True)
    assert (folders["tariff"] / "manifest.json").is_file()


def test_refuses_a_sweep_folder_mixed_with_run_folders(folders, tmp_path):
    sweep = _copy(folders["tariff"], tmp_path)
    _edit_manifest(sweep, lambda m: m.update(kind="sweep"))
    with pytest.raises(CompareError, match="compared on its own") as err:
        compare([folders["base"], sweep], None, tmp_path / "out")
    assert str(sweep) in str(err.value)


def test_cli_turns_a_refusal_into_exit_status_2_via_scenario_error(folders, tmp_path):
    from sim.scenario import ScenarioError

    assert issubclass(CompareError, ScenarioError)
    assert issubclass(CompareError, ValueError)


# ----------------------------------------------------------------------------- sweep folders
PARAMETERS = [
    {"keys": ["policy.tariff.ndpr"], "low": 0.0, "high": 1.5},
    {"keys": ["policy.tariff.dytb"], "low": 0.0, "high": 1.5},
]


def _sweep_folder(path: Path, design: str, samples: int, seeds: list[int], months: int) -> Path:
    """A sweep results folder in the format ``resim sweep`` writes, built run by run."""
    pytest.importorskip("SALib")
    from SALib.sample import morris, sobol

    problem = {
        "num_vars": 2,
        "names": [p["keys"][0] for p in PARAMETERS],
        "bounds": [[p["low"], p["high"]] for p in PARAMETERS],
    }
    if design == "sobol":
        matrix = sobol.sample(problem, samples, calc_second_order=False, seed=5)
    else:
        matrix = morris.sample(problem, samples, seed=5)
    points, runs, rows = [], [], []
    for i, values in enumerate(matrix):
        overrides = {name: float(v) for name, v in zip(problem["names"], values, strict=True)}
        label = ", ".join(f"{k}={v:.4g}" for k, v in overrides.items())
        points.append({"index": i, "overrides": overrides, "label": label})
        scenario = load_scenario(
            "baseline",
            {**overrides, "population.manufacturers": 40, "scenario.months": months},
        )
        for seed in seeds:
            rid = run_id(scenario, seed)
            frame, _ = simulate_with_events(scenario, seed)
            write_parquet(frame, path / "runs" / f"{rid}.parquet")
            rows.append({"point": i, "label": label, **summarize(frame).iloc[0].to_dict()})
            runs.append({"run_id": rid, "point": i, "seed": seed, "status": "done"})
    sweep = {
        "name": f"tiny_{design}",
        "base": "baseline",
        "design": design,
        "parameters": PARAMETERS,
        "seeds": seeds,
        "samples": samples,
        "sample_seed": 5,
        "calc_second_order": False,
    }
    write_parquet(pd.DataFrame(rows), path / "summary.parquet")
    write_parquet(events_frame([]), path / "events.parquet")
    write_json(
        {
            "format_version": 1,
            "kind": "sweep",
            "sweep": sweep,
            "spec_hash": "0" * 16,
            "scenario": "baseline",
            "points": points,
            "seeds": seeds,
            "months": months,
            "versions": versions(),
            "runs": runs,
        },
        path / "manifest.json",
    )
    return path


def test_sweep_folder_compares_its_points_with_morris_indices(tmp_path):
    folder = _sweep_folder(tmp_path / "morris", "morris", samples=2, seeds=[1], months=3)
    result = compare([folder], ["mean_price_landed_ndpr"], tmp_path / "out")
    assert len(result.settings) == 6  # N (D + 1) points
    assert result.settings[0].startswith("point 0: policy.tariff.ndpr=")
    assert len(result.differences) == 5
    assert (result.differences["distinguishable"] == "undefined").all()  # one seed
    assert result.sensitivity is not None
    assert set(result.sensitivity["index"]) == {"mu_star", "sigma", "mu"}
    mu_star = result.sensitivity[result.sensitivity["index"] == "mu_star"]["value"].to_numpy()
    assert np.isfinite(mu_star).all()
    assert (mu_star >= 0).all()
    names = {p.name for p in result.out.iterdir()}
    assert {"sensitivity.csv", "sensitivity.png", "fan_price_landed_ndpr.png"} <= names
    assert "Sensitivity (morris)" in (result.out / "report.md").read_text()


def test_sobol_indices_are_salibs_on_the_seed_means_in_design_order(tmp_path):
    folder = _sweep_folder(tmp_path / "sobol", "sobol", samples=2, seeds=[1, 2], months=2)
    read = read_folder(folder)
    settings = sweep_settings(read)
    assert len(settings) == 8  # N (D + 2) points
    table, notes = sensitivity_table(read, settings, [1, 2], ["mean_price_landed_ndpr"])
    assert notes == []
    assert table is not None
    assert set(table["index"]) == {"S1", "ST"}
    assert set(table["parameter"]) == {"policy.tariff.ndpr", "policy.tariff.dytb"}
    from SALib.analyze import sobol

    summary = pd.read_parquet(folder / "summary.parquet")
    y = summary.groupby("point", sort=True)["mean_price_landed_ndpr"].mean().to_numpy()
    problem = {
        "num_vars": 2,
        "names": ["policy.tariff.ndpr", "policy.tariff.dytb"],
        "bounds": [[0.0, 1.5], [0.0, 1.5]],
    }
    expected = sobol.analyze(problem, y, calc_second_order=False, seed=5, print_to_console=False)
    for index in ("S1", "ST"):
        got = table[table["index"] == index]["value"].to_numpy()
        assert got == pytest.approx(expected[index], rel=1e-6)


def test_refuses_a_sweep_whose_run_file_is_missing(tmp_path):
    folder = _sweep_folder(tmp_path / "sweep", "morris", samples=2, seeds=[1], months=3)
    manifest = json.loads((folder / "manifest.json").read_text())
    missing = manifest["runs"][2]["run_id"]
    (folder / "runs" / f"{missing}.parquet").unlink()
    with pytest.raises(CompareError, match=f"runs/{missing}.parquet is missing") as err:
        compare([folder], None, tmp_path / "out")
    assert str(folder) in str(err.value)
