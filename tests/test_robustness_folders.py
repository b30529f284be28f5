"""Results folders that are not ours, from another version, or damaged: refused with a clear
message by ``resim compare`` and ``resim sweep --resume``; ``--resume`` never mixes runs.

Each case damages a copy of a finished tiny sweep (or of a ``resim run`` folder) and calls the
command line: exit status 2, one message naming the file, no traceback, the folder left as it
was. A damaged run file is the exception: ``--resume`` runs it again and says so.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from sim.cli import main
from sim.results import staging_folder
from sim.sweep import plan_sweep, run_sweep

TINY = '[scenario]\nbase = "baseline"\nname = "tiny"\nmonths = 6\n[population]\nmanufacturers = 30\nminers = 12\n'
SWEEP = (
    '[sweep]\nname = "sw"\nbase = "{base}"\ndesign = "grid"\nseeds = 2\n'
    '[[sweep.parameters]]\nkeys = ["policy.tariff.ndpr"]\nvalues = [0.0, 1.0]\n'
)


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A finished tiny sweep (2 points x 2 seeds) and two ``resim run`` folders."""
    root = tmp_path_factory.mktemp("finished")
    (root / "tiny.toml").write_text(TINY)
    sweep = root / "sw.toml"
    sweep.write_text(SWEEP.format(base=root / "tiny.toml"))
    run_sweep(plan_sweep(sweep), root / "sweep", workers=1)
    for name, extra in (("run_a", []), ("run_b", ["--set", "policy.tariff.ndpr=1.0"])):
        argv = ["run", str(root / "tiny.toml"), "--seeds", "2", "--out", str(root / name), *extra]
        assert main(argv) == 0
    return {"root": root, "sweep_file": sweep, "sweep": root / "sweep"}


def snapshot(folder: Path) -> dict[str, str]:
    """Every file of a folder with its hash: to show a refusal changed nothing."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def run_files(folder: Path) -> list[Path]:
    return sorted((folder / "runs").glob("*.parquet"))


def edit_manifest(folder: Path, edit: Callable[[dict[str, Any]], Any]) -> None:
    path = folder / "manifest.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


# What a damaged sweep folder looks like: name -> how to damage a copy.
def _truncated_run(out: Path) -> None:
    truncate(run_files(out)[0])


def _truncated_events(out: Path) -> None:
    truncate(out / "events" / run_files(out)[0].name)


def _swapped_run(out: Path) -> None:
    first, second = run_files(out)[:2]
    shutil.copyfile(first, second)


def _manifest_array(out: Path) -> None:
    (out / "manifest.json").write_text("[1, 2]")


def _manifest_binary(out: Path) -> None:
    (out / "manifest.json").write_bytes(bytes(range(256)))


def _manifest_truncated(out: Path) -> None:
    truncate(out / "manifest.json")


def _other_format(out: Path) -> None:
    edit_manifest(out, lambda m: m.update(format_version=99))


def _other_resim(out: Path) -> None:
    edit_manifest(out, lambda m: m["versions"].update(resim="0.0.1"))


def _runs_is_a_file(out: Path) -> None:
    shutil.rmtree(out / "runs")
    (out / "runs").write_text("not a folder")


def _not_ours(out: Path) -> None:
    (out / "manifest.json").unlink()
    (out / "notes.txt").write_text("someone else's")


def _a_run_folder(out: Path) -> None:
    edit_manifest(out, lambda m: m.update(kind="run"))


RESUME_REFUSALS: list[Any] = [
    ("not-ours", _not_ours, ["no sweep manifest"]),
    ("manifest-truncated", _manifest_truncated, ["manifest.json", "unreadable"]),
    ("manifest-binary", _manifest_binary, ["manifest.json", "unreadable", "not UTF-8"]),
    ("other-format-version", _other_format, ["manifest.json", "format_version"]),
    ("a-run-folder", _a_run_folder, ["different sweep"]),
    ("manifest-json-array", _manifest_array, ["manifest.json", "not a JSON object"]),
    ("other-resim-version", _other_resim, ["manifest.json", "versions.resim", "0.0.1"]),
    ("runs-is-a-file", _runs_is_a_file, ["runs", "not a folder"]),
]


def _id(case: Any) -> str:
    return (case.values[0] if hasattr(case, "values") else case)[0]


@pytest.mark.parametrize("case", RESUME_REFUSALS, ids=_id)
def test_resume_refuses_a_folder_it_cannot_trust(case, finished, tmp_path, capsys):
    _, damage, fragments = case
    out = tmp_path / "out"
    shutil.copytree(finished["sweep"], out)
    damage(out)
    before = snapshot(out)
    code = main(["sweep", str(finished["sweep_file"]), "--out", str(out), "--resume"])
    err = " ".join(capsys.readouterr().err.split())
    assert code == 2, err[-1500:]
    assert "Traceback" not in err
    assert str(out) in err
    for fragment in fragments:
        assert fragment in err, err[-1500:]
    assert snapshot(out) == before  # a refusal leaves the folder as it was


# A damaged run file is not refused but run again: runs are pure functions of their inputs, so
# the rerun restores the file bit for bit, and the user is told which file was damaged.
DAMAGED_RUN_FILES: list[Any] = [
    ("truncated-run-file", _truncated_run, "unreadable"),
    ("truncated-events-file", _truncated_events, "unreadable"),
    ("swapped-run-file", _swapped_run, "holds the rows of run"),
]


@pytest.mark.parametrize("case", DAMAGED_RUN_FILES, ids=_id)
def test_resume_runs_a_damaged_run_file_again(case, finished, tmp_path, capsys):
    _, damage, problem = case
    out = tmp_path / "out"
    shutil.copytree(finished["sweep"], out)
    damage(out)
    code = main(["sweep", str(finished["sweep_file"]), "--out", str(out), "--resume"])
    err = " ".join(capsys.readouterr().err.split())
    assert code == 0, err[-1500:]
    assert "Traceback" not in err
    for fragment in ("1 run(s)", "damaged", problem):
        assert fragment in err, err[-1500:]
    for sub in ("runs", "events"):  # every file as the uninterrupted sweep wrote it
        ours = {p.name: p.read_bytes() for p in (out / sub).glob("*.parquet")}
        reference = {p.name: p.read_bytes() for p in (finished["sweep"] / sub).glob("*.parquet")}
        assert ours == reference
    for name in ("summary.parquet", "events.parquet"):
        pd.testing.assert_frame_equal(
            pd.read_parquet(out / name), pd.read_parquet(finished["sweep"] / name)
        )


def test_resume_after_the_base_scenario_changed_does_not_mix_parameters(tmp_path, capsys):
    (tmp_path / "tiny.toml").write_text(TINY)
    sweep = tmp_path / "sw.toml"
    sweep.write_text(SWEEP.format(base=tmp_path / "tiny.toml"))
    out = tmp_path / "out"
    assert main(["sweep", str(sweep), "--out", str(out), "--workers", "1"]) == 0
    capsys.readouterr()
    before = snapshot(out)
    (tmp_path / "tiny.toml").write_text(TINY.replace("manufacturers = 30", "manufacturers = 31"))
    code = main(["sweep", str(sweep), "--out", str(out), "--resume", "--workers", "1"])
    err = " ".join(capsys.readouterr().err.split())
    assert code == 2  # refused: the folder holds the old parameters' runs
    for fragment in ("different sweep", "base scenario", str(out)):
        assert fragment in err
    assert snapshot(out) == before


def test_a_missing_base_scenario_is_named_as_sweep_base(tmp_path, capsys):
    sweep = tmp_path / "sw.toml"
    sweep.write_text(SWEEP.format(base="no_such_scenario"))
    code = main(["sweep", str(sweep), "--out", str(tmp_path / "out")])
    err = " ".join(capsys.readouterr().err.split())
    assert code == 2
    assert f"{sweep}: sweep.base: got 'no_such_scenario': unknown scenario" in err
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------- compare
def _compare(folders: list[Path], out: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["compare", *map(str, folders), "--out", str(out)])
    return code, " ".join(capsys.readouterr().err.split())


COMPARE_REFUSALS: list[Any] = [
    ("manifest-binary", _manifest_binary, ["manifest.json", "unreadable"]),
    ("manifest-json-array", _manifest_array, ["manifest.json", "not a JSON object"]),
    ("manifest-truncated", _manifest_truncated, ["manifest.json", "unreadable"]),
    ("other-format-version", _other_format, ["format_version"]),
    ("truncated-run-file", _truncated_run, ["unreadable parquet"]),
    ("not-ours", _not_ours, ["manifest.json", "missing"]),
    ("runs-is-a-file", _runs_is_a_file, ["runs/", "missing"]),
    ("swapped-run-file", _swapped_run, ["runs/", "holds the rows of run", "--resume"]),
]


@pytest.mark.parametrize("case", COMPARE_REFUSALS, ids=_id)
def test_compare_refuses_a_damaged_sweep_folder(case, finished, tmp_path, capsys):
    _, damage, fragments = case
    folder = tmp_path / "sweep"
    shutil.copytree(finished["sweep"], folder)
    damage(folder)
    before = snapshot(folder)
    code, err = _compare([folder], tmp_path / "report", capsys)
    assert code == 2, err[-1500:]
    assert "Traceback" not in err
    assert str(folder) in err
    for fragment in fragments:
        assert fragment in err, err[-1500:]
    assert snapshot(folder) == before
    assert not (tmp_path / "report").exists()


def test_compare_refuses_a_run_folder_from_another_model_version(finished, tmp_path, capsys):
    other = tmp_path / "run_b"
    shutil.copytree(finished["root"] / "run_b", other)
    _other_resim(other)
    code, err = _compare([finished["root"] / "run_a", other], tmp_path / "report", capsys)
    assert code == 2
    assert "versions.resim" in err
    assert str(other) in err


def test_compare_refuses_a_run_folder_whose_timeseries_is_truncated(finished, tmp_path, capsys):
    other = tmp_path / "run_b"
    shutil.copytree(finished["root"] / "run_b", other)
    truncate(other / "timeseries.parquet")
    code, err = _compare([finished["root"] / "run_a", other], tmp_path / "report", capsys)
    assert code == 2
    assert "timeseries.parquet" in err
    assert "Traceback" not in err


def test_compare_refuses_an_empty_folder_and_a_file(finished, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "file").write_text("x")
    for bad in (tmp_path / "empty", tmp_path / "file"):
        code, err = _compare([finished["root"] / "run_a", bad], tmp_path / "report", capsys)
        assert code == 2
        assert str(bad) in err


# ------------------------------------------------------------------ modes and staging folders
def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_results_are_readable_like_any_file_the_user_writes(finished):
    """Files and folders honour the umask (mkstemp/mkdtemp would leave them 0600/0700)."""
    mask = _umask()
    for folder in (finished["root"] / "run_a", finished["sweep"]):
        assert folder.stat().st_mode & 0o777 == 0o777 & ~mask
        for path in folder.rglob("*"):
            expected = 0o777 & ~mask if path.is_dir() else 0o666 & ~mask
            assert path.stat().st_mode & 0o777 == expected, path


def test_a_killed_runs_staging_folder_is_removed_by_the_next_run(finished, tmp_path, capsys):
    out = tmp_path / "out"
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    live = staging_folder(out)  # this process's: in use
    dead = live.with_name(live.name.replace(f"-{os.getpid()}-", f"-{gone.pid}-"))
    shutil.copytree(live, dead)
    (dead / "timeseries.parquet").write_text("half written")
    other = tmp_path / f".{out.name}.notes"  # not a staging folder's name: not ours
    other.mkdir()
    argv = ["run", str(finished["root"] / "tiny.toml"), "--out", str(out)]
    assert main(argv) == 0
    capsys.readouterr()
    assert not dead.exists()
    assert live.is_dir()
    assert other.is_dir()
    assert (out / "manifest.json").is_file()
