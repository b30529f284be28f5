"""Sweeps: designs, identical results whatever the workers or backend, kill-and-resume, faults."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from sim import ScenarioError
from sim.cli import main
from sim.sweep import (
    FAULT_KILL_ONCE,
    FAULT_RAISE,
    SweepFolderError,
    _batches,
    collect,
    plan_sweep,
    run_batch,
    run_sweep,
)

BASE = """
[scenario]
base = "baseline"
name = "tiny"
months = 8
[population]
manufacturers = 30
miners = 12
"""


def write_sweep(tmp_path: Path, body: str) -> Path:
    (tmp_path / "tiny.toml").write_text(BASE)
    path = tmp_path / "sw.toml"
    path.write_text(f'[sweep]\nname = "sw"\nbase = "{tmp_path / "tiny.toml"}"\n' + body)
    return path


GRID = """design = "grid"
seeds = 3
[[sweep.parameters]]
keys = ["policy.tariff.ndpr", "policy.tariff.magnet"]
values = [0.0, 1.0]
"""


def frames(out: Path) -> dict[str, pd.DataFrame]:
    return {p.stem: pd.read_parquet(p) for p in sorted((out / "runs").glob("*.parquet"))}


def assert_same_results(a: Path, b: Path) -> None:
    fa, fb = frames(a), frames(b)
    assert fa.keys() == fb.keys()
    for rid in fa:
        pd.testing.assert_frame_equal(fa[rid], fb[rid], check_exact=True)
    pd.testing.assert_frame_equal(
        pd.read_parquet(a / "summary.parquet"),
        pd.read_parquet(b / "summary.parquet"),
        check_exact=True,
    )


# ------------------------------------------------------------------------------- designs
def test_repository_sweeps_plan_as_documented():
    tariff = plan_sweep("tariff_sweep")
    assert len(tariff.points) == 7
    assert len(tariff.runs) == 70
    assert tariff.points[4] == dict.fromkeys(
        ("policy.tariff.ndpr", "policy.tariff.dytb", "policy.tariff.cela", "policy.tariff.magnet"),
        1.0,
    )
    floor = plan_sweep("price_floor_vs_predation")
    assert len(floor.points) == 4
    assert {r.run_id for r in floor.runs} == {
        r.run_id for r in plan_sweep("price_floor_vs_predation").runs
    }


def test_common_random_numbers_and_stable_ids(tmp_path):
    plan = plan_sweep(write_sweep(tmp_path, GRID))
    assert [(r.point, r.seed) for r in plan.runs] == [(p, s) for p in range(2) for s in (1, 2, 3)]
    assert len({r.run_id for r in plan.runs}) == 6


@pytest.mark.parametrize("design", ["lhs", "sobol", "morris"])
def test_samplers_respect_bounds(tmp_path, design):
    body = f"""design = "{design}"
seeds = 1
samples = 4
[[sweep.parameters]]
keys = ["policy.tariff.ndpr"]
low = 0.0
high = 1.5
[[sweep.parameters]]
keys = ["miners.discount_rate"]
low = 0.07
high = 0.15
"""
    plan = plan_sweep(write_sweep(tmp_path, body))
    assert len(plan.points) >= 4
    for point in plan.points:
        assert 0.0 <= point["policy.tariff.ndpr"] <= 1.5
        assert 0.07 <= point["miners.discount_rate"] <= 0.15


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ('design = "grid"\nseeds = 2\n', "needs [[sweep.parameters]]"),
        ('design = "magic"\nseeds = 2\n', "sweep.design"),
        (
            'design = "list"\nseeds = 2\n[[sweep.points]]\n"policy.tarif.ndpr" = 1.0\n',
            "policy.tarif",
        ),
        (
            'design = "list"\nseeds = 2\n[[sweep.points]]\n"policy.export_quota.dytb" = -5.0\n',
            "greater than or equal to 0",
        ),
        (
            'design = "lhs"\nseeds = 2\nsamples = 3\n[[sweep.parameters]]\nkeys = ["policy.tariff.ndpr"]\nlow = 2.0\nhigh = 1.0\n',
            "low < high",
        ),
    ],
)
def test_bad_sweep_files_are_refused_with_file_and_key(tmp_path, body, fragment):
    path = write_sweep(tmp_path, body)
    with pytest.raises(ScenarioError) as info:
        plan_sweep(path)
    assert str(path) in str(info.value)
    assert fragment in str(info.value)


def test_cli_bad_sweep_exits_2_and_writes_nothing(tmp_path, capsys):
    path = write_sweep(tmp_path, 'design = "grid"\nseeds = 0\n')
    out = tmp_path / "out"
    assert main(["sweep", str(path), "--out", str(out)]) == 2
    assert "Traceback" not in capsys.readouterr().err
    assert not out.exists()


# -------------------------------------------------------------------------- determinism
def test_same_results_with_one_or_two_workers(tmp_path):
    plan = plan_sweep(write_sweep(tmp_path, GRID))
    one = run_sweep(plan, tmp_path / "one", workers=1)
    two = run_sweep(plan, tmp_path / "two", workers=2)
    assert one.done == two.done == 6
    assert_same_results(tmp_path / "one", tmp_path / "two")
    manifest = json.loads((tmp_path / "two" / "manifest.json").read_text())
    assert manifest["kind"] == "sweep"
    assert [r["status"] for r in manifest["runs"]] == ["done"] * 6
    assert manifest["points"][1]["overrides"] == {
        "policy.tariff.ndpr": 1.0,
        "policy.tariff.magnet": 1.0,
    }


def test_rows_sent_back_by_workers_equal_rows_read_from_the_files(tmp_path):
    """The parent builds summary and events from what workers return; files give the same."""
    plan = plan_sweep(write_sweep(tmp_path, GRID))
    out = tmp_path / "out"
    run_sweep(plan, out, workers=2)
    sent = {name: (out / f"{name}.parquet").read_bytes() for name in ("summary", "events")}
    results = run_batch(
        plan.spec.base,
        [(json.dumps(plan.points[r.point], sort_keys=True), r.seed, r.run_id) for r in plan.runs],
        str(tmp_path / "again"),
    )
    returned = {r["run_id"]: r for r in results}
    # from the files only (runs finished before a --resume), and mixed (half each)
    for known in ({}, {rid: returned[rid] for rid in list(returned)[::2]}):
        collect(plan, out, known)
        for name, data in sent.items():
            assert (out / f"{name}.parquet").read_bytes() == data, name


def test_batches_cover_every_run_once_in_order_and_end_with_single_runs(tmp_path):
    plan = plan_sweep(write_sweep(tmp_path, GRID.replace("seeds = 3", "seeds = 50")))
    for workers in (1, 2, 7):
        batches = _batches(plan, plan.runs, workers)
        assert [t[2] for b in batches for t in b] == [r.run_id for r in plan.runs]
        sizes = [len(b) for b in batches]
        assert max(sizes) <= 8
        assert sizes == sorted(sizes, reverse=True)
        assert sizes[-workers:] == [1] * workers


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_dask_cluster_gives_the_local_result(tmp_path):
    distributed = pytest.importorskip("distributed")
    plan = plan_sweep(write_sweep(tmp_path, GRID))
    run_sweep(plan, tmp_path / "local", workers=1)
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        outcome = run_sweep(plan, tmp_path / "dask", scheduler=cluster.scheduler_address)
    assert outcome.done == 6
    assert_same_results(tmp_path / "local", tmp_path / "dask")


def test_unreachable_scheduler_is_a_clear_error(tmp_path, capsys):
    path = write_sweep(tmp_path, GRID)
    code = main(
        ["sweep", str(path), "--out", str(tmp_path / "o"), "--scheduler", "tcp://127.0.0.1:9"]
    )
    assert code == 2
    assert "cannot reach the Dask scheduler" in capsys.readouterr().err


# ------------------------------------------------------------------------------- faults
def test_sigkill_then_resume_equals_an_uninterrupted_sweep(tmp_path):
    body = GRID.replace("seeds = 3", "seeds = 6")
    path = write_sweep(tmp_path, body)
    reference = tmp_path / "ref"
    run_sweep(plan_sweep(path), reference, workers=1)
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "sim.cli", "sweep", str(path), "--out", str(out), "--workers", "1"]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list((out / "runs").glob("*.parquet"))) < 3:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the parent and its workers, with no chance to clean up
    proc.wait()
    done_before = len(list((out / "runs").glob("*.parquet")))
    assert 3 <= done_before < 12
    assert main(["sweep", str(path), "--out", str(out), "--resume", "--workers", "2"]) == 0
    assert_same_results(reference, out)
    # A kill mid-write leaves a temporary file; resume removes it.
    assert not list((out / "runs").glob(".*"))


def test_a_worker_that_dies_costs_only_a_rerun(tmp_path, monkeypatch):
    monkeypatch.setenv(FAULT_KILL_ONCE, "2")
    plan = plan_sweep(write_sweep(tmp_path, GRID))
    outcome = run_sweep(plan, tmp_path / "out", workers=2)
    assert (tmp_path / "out" / ".fault_killed").exists()  # the fault did fire
    assert outcome.done == 6
    assert outcome.failed == 0
    monkeypatch.delenv(FAULT_KILL_ONCE)
    run_sweep(plan, tmp_path / "ref", workers=1)
    assert_same_results(tmp_path / "ref", tmp_path / "out")


def test_a_failing_run_is_recorded_and_the_sweep_goes_on(tmp_path, monkeypatch, capsys):
    path = write_sweep(tmp_path, GRID)
    out = tmp_path / "out"
    monkeypatch.setenv(FAULT_RAISE, "3")
    assert main(["sweep", str(path), "--out", str(out), "--workers", "1"]) == 1
    manifest = json.loads((out / "manifest.json").read_text())
    failed = [r for r in manifest["runs"] if r["status"] == "failed"]
    assert [r["seed"] for r in failed] == [3, 3]
    assert "fault injected" in failed[0]["error"]
    assert (out / failed[0]["traceback_file"]).read_text().startswith("Traceback")
    assert len(list((out / "runs").glob("*.parquet"))) == 4
    assert "2 run(s) failed" in capsys.readouterr().err
    monkeypatch.delenv(FAULT_RAISE)
    assert main(["sweep", str(path), "--out", str(out), "--resume", "--workers", "1"]) == 0
    assert len(list((out / "runs").glob("*.parquet"))) == 6


def test_resume_refuses_a_folder_of_another_sweep(tmp_path):
    path = write_sweep(tmp_path, GRID)
    run_sweep(plan_sweep(path), tmp_path / "out", workers=1)
    other = write_sweep(tmp_path, GRID.replace("values = [0.0, 1.0]", "values = [0.0, 0.5]"))
    with pytest.raises(SweepFolderError, match="different sweep"):
        run_sweep(plan_sweep(other), tmp_path / "out", workers=1, resume=True)
    with pytest.raises(SweepFolderError, match="--resume"):
        run_sweep(plan_sweep(path), tmp_path / "out", workers=1)


def test_a_foreign_folder_is_refused(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(SweepFolderError, match="no sweep manifest"):
        run_sweep(plan_sweep(write_sweep(tmp_path, GRID)), out, workers=1)


def test_result_files_are_the_bytes_to_parquet_writes(tmp_path):
    """write_parquet's fast path (cached schema, numeric blocks) changes nothing in the file."""
    import numpy as np

    from sim import load_scenario
    from sim.results import events_frame, summarize, write_parquet
    from sim.runner import simulate_with_events

    frame, events = simulate_with_events(
        load_scenario(write_sweep(tmp_path, GRID).parent / "tiny.toml"), 3
    )
    frame["run_id"] = "0123456789abcdef"
    holes = frame.copy()
    holes.loc[::3, "price_landed_ndpr"] = np.nan  # NaN is written as null, as to_parquet does
    frames = {
        "timeseries": frame,
        "with_nan": holes,
        "summary": summarize(frame),
        "events": events_frame([{**e, "run_id": "0123456789abcdef"} for e in events]),
        "no_events": events_frame([]),
        "mixed": pd.DataFrame({"a": [1.5, None], "b": ["x", None], "c": [True, False]}),
        "empty": pd.DataFrame(),
    }
    for name, data in frames.items():
        for _ in range(2):  # the second write uses the cached layout
            write_parquet(data, tmp_path / f"{name}.parquet")
            data.to_parquet(tmp_path / f"{name}.expected.parquet", index=False)
            ours = (tmp_path / f"{name}.parquet").read_bytes()
            assert ours == (tmp_path / f"{name}.expected.parquet").read_bytes(), name
