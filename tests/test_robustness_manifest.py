"""Reproducibility: the manifest records everything needed to rerun, and
``resim run --from-manifest`` reproduces a run bit for bit (a ``resim run`` folder, or one run
of a sweep folder with ``--run``). A manifest that was edited, or whose input data changed, is
refused with exit status 2 naming the manifest and the key.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from sim.cli import main
from sim.scenario import SCENARIO_DIR
from sim.sweep import plan_sweep, run_sweep

TINY = '[scenario]\nbase = "baseline"\nname = "tiny"\nmonths = 6\n[population]\nmanufacturers = 30\nminers = 12\n'
FILES = ("timeseries.parquet", "summary.parquet", "events.parquet")


def assert_identical(a: Path, b: Path) -> None:
    for name in FILES:
        pd.testing.assert_frame_equal(
            pd.read_parquet(a / name), pd.read_parquet(b / name), check_exact=True
        )


@pytest.fixture(scope="module")
def original(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run with a schedule, contracts and overrides: two seeds of the 2025 licensing replay."""
    out = tmp_path_factory.mktemp("original") / "run"
    argv = [
        "run",
        "history_2025_licensing",
        "--seeds",
        "2",
        "--seed",
        "7",
        "--months",
        "18",
        "--set",
        "population.manufacturers=40",
        "--set",
        "policy.tariff.magnet=0.25",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    return out


def test_the_manifest_records_what_a_rerun_needs(original):
    manifest = json.loads((original / "manifest.json").read_text())
    assert manifest["parameters"]["policy"]["tariff"]["magnet"] == 0.25
    assert manifest["parameters"]["scenario"]["months"] == 18
    assert manifest["parameters"]["schedule"]  # the resolved schedule, not the file's name
    assert manifest["parameters"]["government"]["contracts"]
    assert manifest["seeds"] == [7, 8]
    assert [r["seed"] for r in manifest["runs"]] == [7, 8]
    versions = manifest["versions"]
    for name in ("python", "resim", "mesa", "numpy", "pandas", "pyarrow", "pydantic", "scipy"):
        assert versions.get(name) not in (None, "unknown"), name
    assert "git_commit" in manifest
    assert "git_dirty" in manifest
    inputs = manifest["inputs"]["population.miners_file"]
    assert inputs["path"] == "data/miners_2025.csv"
    assert len(inputs["sha256"]) == 64
    assert manifest["platform"]["machine"]
    assert manifest["command"]


def test_from_manifest_reproduces_a_run_bit_for_bit(original, tmp_path, capsys):
    rerun = tmp_path / "rerun"
    assert main(["run", "--from-manifest", str(original), "--out", str(rerun)]) == 0
    capsys.readouterr()
    assert_identical(original, rerun)
    again = json.loads((rerun / "manifest.json").read_text())
    first = json.loads((original / "manifest.json").read_text())
    assert again["parameters"] == first["parameters"]
    assert [r["run_id"] for r in again["runs"]] == [r["run_id"] for r in first["runs"]]
    assert again["reproduces"] == str(original / "manifest.json")


def test_from_manifest_reruns_one_run_of_a_folder(original, tmp_path, capsys):
    first = json.loads((original / "manifest.json").read_text())
    wanted = first["runs"][1]["run_id"]
    rerun = tmp_path / "one"
    code = main(
        [
            "run",
            "--from-manifest",
            str(original / "manifest.json"),
            "--run",
            wanted,
            "--out",
            str(rerun),
        ]
    )
    assert code == 0
    capsys.readouterr()
    expected = pd.read_parquet(original / "timeseries.parquet")
    expected = expected[expected["run_id"] == wanted].reset_index(drop=True)
    pd.testing.assert_frame_equal(
        pd.read_parquet(rerun / "timeseries.parquet"), expected, check_exact=True
    )


def test_from_manifest_reproduces_a_run_of_a_sweep(tmp_path, capsys):
    (tmp_path / "tiny.toml").write_text(TINY)
    sweep = tmp_path / "sw.toml"
    sweep.write_text(
        f'[sweep]\nname = "sw"\nbase = "{tmp_path / "tiny.toml"}"\ndesign = "list"\nseeds = [3, 4]\n'
        '[[sweep.points]]\n"policy.tariff.ndpr" = 0.0\n'
        '[[sweep.points]]\n"policy.tariff.ndpr" = 1.5\n"policy.export_quota.dytb" = 500.0\n'
    )
    folder = tmp_path / "sweep"
    run_sweep(plan_sweep(sweep), folder, workers=1)
    manifest = json.loads((folder / "manifest.json").read_text())
    chosen = next(r for r in manifest["runs"] if r["point"] == 1 and r["seed"] == 4)
    rerun = tmp_path / "rerun"
    assert (
        main(
            ["run", "--from-manifest", str(folder), "--run", chosen["run_id"], "--out", str(rerun)]
        )
        == 0
    )
    capsys.readouterr()
    pd.testing.assert_frame_equal(
        pd.read_parquet(rerun / "timeseries.parquet"),
        pd.read_parquet(folder / "runs" / f"{chosen['run_id']}.parquet"),
        check_exact=True,
    )
    # A sweep manifest names many runs: --run is required.
    assert main(["run", "--from-manifest", str(folder), "--out", str(tmp_path / "x")]) == 2
    assert "--run" in capsys.readouterr().err


def _refused(argv: list[str], capsys: pytest.CaptureFixture[str], *fragments: str) -> None:
    code = main(argv)
    err = " ".join(capsys.readouterr().err.split())
    assert code == 2, err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, err


def test_an_edited_manifest_is_refused(original, tmp_path, capsys):
    edited = tmp_path / "edited"
    shutil.copytree(original, edited)
    data = json.loads((edited / "manifest.json").read_text())
    data["parameters"]["policy"]["tariff"]["ndpr"] = 0.5  # the runs were not made with this
    (edited / "manifest.json").write_text(json.dumps(data))
    _refused(
        ["run", "--from-manifest", str(edited), "--out", str(tmp_path / "r")],
        capsys,
        str(edited / "manifest.json"),
        "parameters",
        "cannot be reproduced",
    )
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    ("damage", "fragments"),
    [
        (lambda p: p.write_bytes(b"\x00\xff junk"), ["unreadable manifest"]),
        (lambda p: p.write_text("[]"), ["not a resim manifest"]),
        (lambda p: p.write_text('{"format_version": 7}'), ["format_version", "7"]),
        (
            lambda p: p.write_text(
                json.dumps({**json.loads(p.read_text()), "parameters": {"policy": {"tarif": 1}}})
            ),
            ["parameters", "policy.tarif", "unknown key"],
        ),
        (
            lambda p: p.write_text(
                json.dumps({**json.loads(p.read_text()), "runs": [{"seed": -1}]})
            ),
            ["runs[0]"],
        ),
    ],
    ids=["binary", "json-array", "other-format", "unknown-key", "bad-run"],
)
def test_a_damaged_manifest_is_refused(original, tmp_path, capsys, damage, fragments):
    copy = tmp_path / "copy"
    shutil.copytree(original, copy)
    damage(copy / "manifest.json")
    _refused(
        ["run", "--from-manifest", str(copy), "--out", str(tmp_path / "r")],
        capsys,
        str(copy / "manifest.json"),
        *fragments,
    )
    assert not (tmp_path / "r").exists()


def test_changed_input_data_is_refused(tmp_path, capsys):
    source = SCENARIO_DIR / "data" / "miners_2025.csv"
    miners = tmp_path / "miners.csv"
    shutil.copyfile(source, miners)
    out = tmp_path / "run"
    assert main(["run", "baseline", "--months", "3", "--set", "population.manufacturers=20",
                 "--set", f"population.miners_file={miners}", "--out", str(out)]) == 0  # fmt: skip
    with miners.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    rows[0]["opex_usd_per_kg"] = "99"
    with miners.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    capsys.readouterr()
    _refused(
        ["run", "--from-manifest", str(out), "--out", str(tmp_path / "r")],
        capsys,
        "inputs.population.miners_file",
        str(miners),
    )


def test_from_manifest_takes_no_other_setting(original, tmp_path, capsys):
    for extra in (
        ["baseline"],
        ["--set", "policy.tariff.ndpr=1"],
        ["--months", "3"],
        ["--seeds", "2"],
    ):
        _refused(
            ["run", *extra, "--from-manifest", str(original), "--out", str(tmp_path / "r")],
            capsys,
            "--from-manifest",
        )
    _refused(["run", "--from-manifest", str(tmp_path / "nowhere")], capsys, "no such manifest")
    _refused(["run"], capsys, "give a scenario")
