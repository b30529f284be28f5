"""Faults outside the model: a full disk, a read-only output folder, a Dask worker killed in the
middle of a sweep, a Dask scheduler that vanishes.

Each gives a clear error (exit status 2 for an output that cannot be written, naming ``--out``
and the reason; 1 for a lost cluster, saying how to resume) and leaves earlier results intact.
The full disk and the read-only folder are real where the machine allows it: a small tmpfs and
a read-only bind mount, made in a user and mount namespace (``unshare -rm``, no root needed);
the same failures are also injected in-process, so they are tested everywhere.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import sim.cli
from sim.cli import main
from sim.sweep import FAULT_KILL_ONCE, plan_sweep, run_sweep

ROOT = Path(__file__).resolve().parent.parent
TINY = '[scenario]\nbase = "baseline"\nname = "tiny"\nmonths = 6\n[population]\nmanufacturers = 30\nminers = 12\n'
SWEEP = (
    '[sweep]\nname = "sw"\nbase = "{base}"\ndesign = "grid"\nseeds = {seeds}\n'
    '[[sweep.parameters]]\nkeys = ["policy.tariff.ndpr"]\nvalues = [0.0, 0.5, 1.0]\n'
)
RUN = ["--months", "6", "--set", "population.manufacturers=30"]


def snapshot(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def write_sweep(folder: Path, seeds: int = 2) -> Path:
    (folder / "tiny.toml").write_text(TINY)
    sweep = folder / "sw.toml"
    sweep.write_text(SWEEP.format(base=folder / "tiny.toml", seeds=seeds))
    return sweep


def assert_same_runs(a: Path, b: Path) -> None:
    names = sorted(p.name for p in (a / "runs").glob("*.parquet"))
    assert names == sorted(p.name for p in (b / "runs").glob("*.parquet"))
    for name in names:
        pd.testing.assert_frame_equal(
            pd.read_parquet(a / "runs" / name), pd.read_parquet(b / "runs" / name), check_exact=True
        )
    pd.testing.assert_frame_equal(
        pd.read_parquet(a / "summary.parquet"),
        pd.read_parquet(b / "summary.parquet"),
        check_exact=True,
    )


# ------------------------------------------------------------------ injected write failures
@pytest.mark.parametrize(
    ("code", "reason"),
    [(errno.ENOSPC, "No space left on device"), (errno.EROFS, "Read-only file system")],
)
def test_run_that_cannot_write_leaves_earlier_results_intact(
    tmp_path, monkeypatch, capsys, code, reason
):
    out = tmp_path / "results"
    assert main(["run", "baseline", *RUN, "--out", str(out)]) == 0
    before = snapshot(out)
    real = sim.cli.write_parquet
    calls = []

    def failing(frame: pd.DataFrame, path: Path) -> None:
        calls.append(path)
        if len(calls) == 2:  # the first file is written, the second meets the fault
            path.write_bytes(b"PAR1 half a file")
            raise OSError(code, os.strerror(code), str(path))
        real(frame, path)

    monkeypatch.setattr(sim.cli, "write_parquet", failing)
    status = main(["run", "baseline", *RUN, "--seeds", "2", "--out", str(out), "--overwrite"])
    err = " ".join(capsys.readouterr().err.split())
    assert status == 2
    assert "Traceback" not in err
    assert f"--out {out}" in err
    assert reason in err
    assert "as they were" in err
    assert snapshot(out) == before  # the earlier results, byte for byte
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]  # no staging folder left


def test_sweep_that_cannot_write_says_how_to_resume(tmp_path, monkeypatch, capsys):
    sweep = write_sweep(tmp_path)
    out = tmp_path / "out"
    import sim.sweep

    def no_space(data: dict[str, Any], path: Path) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(sim.sweep, "write_json", no_space)
    assert main(["sweep", str(sweep), "--out", str(out), "--workers", "1"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "Traceback" not in err
    assert "No space left on device" in err
    assert f"resim sweep {sweep} --out {out} --resume" in err


# --------------------------------------------------------- real ones, in a mount namespace
def _namespaces() -> bool:
    if sys.platform != "linux" or shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /tmp && true"],
        capture_output=True,
        check=False,
    )
    return probe.returncode == 0


needs_namespaces = pytest.mark.skipif(
    not _namespaces(), reason="needs unshare -rm (user and mount namespaces) to mount a tmpfs"
)

INSIDE = textwrap.dedent(
    """
    import contextlib, hashlib, io, json, subprocess, sys, traceback
    from pathlib import Path
    from sim.cli import main

    def resim(*args):  # the command line, in this process (imports once)
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                code = main(list(args))
            except Exception:
                code = None
                err.write(traceback.format_exc())
        return {"code": code, "err": " ".join(err.getvalue().split())}

    def snapshot(folder):
        return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(Path(folder).rglob("*")) if p.is_file()}

    def count(folder):
        return len(list(Path(folder, "runs").glob("*.parquet")))

    def go():
        mode, disk, sweep = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
        run = ["--months", "6", "--set", "population.manufacturers=30"]
        out = {}
        if mode == "full":
            out["first"] = resim("run", "baseline", *run, "--out", str(disk / "a"))
            out["before"] = snapshot(disk / "a")
            out["overwrite"] = resim("run", "baseline", "--months", "132", "--seeds", "2",
                                     "--set", "population.manufacturers=30",
                                     "--out", str(disk / "a"), "--overwrite")
            out["after"] = snapshot(disk / "a")
            out["left"] = sorted(p.name for p in disk.iterdir())
            import shutil
            shutil.rmtree(disk / "a")  # room for two or three run files of the sweep
            out["sweep"] = resim("sweep", sweep, "--out", str(disk / "s"), "--workers", "1")
            out["runs_kept"] = count(disk / "s")
            import pyarrow.parquet as pq
            for p in Path(disk, "s", "runs").glob("*.parquet"):
                pq.read_table(p)  # raises on a half-written run file
            out["readable"] = True
            subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)
            out["resume"] = resim("sweep", sweep, "--out", str(disk / "s"), "--resume", "--workers", "2")
            out["runs_after_resume"] = count(disk / "s")
            shutil.copytree(disk / "s", sys.argv[4])
        else:  # read-only: results written first, then the folder is made read-only
            out["first"] = resim("run", "baseline", *run, "--out", str(disk / "a"))
            out["sweep_first"] = resim("sweep", sweep, "--out", str(disk / "s"), "--workers", "1")
            out["before"] = snapshot(disk)
            for cmd in (["mount", "--bind", str(disk), str(disk)],
                        ["mount", "-o", "remount,bind,ro", str(disk)]):
                subprocess.run(cmd, check=True)
            out["new"] = resim("run", "baseline", *run, "--out", str(disk / "b"))
            out["overwrite"] = resim("run", "baseline", *run, "--out", str(disk / "a"), "--overwrite")
            out["resume"] = resim("sweep", sweep, "--out", str(disk / "s"), "--resume", "--workers", "1")
            out["sweep_new"] = resim("sweep", sweep, "--out", str(disk / "t"), "--workers", "1")
            out["after"] = snapshot(disk)
        print(json.dumps(out))

    if __name__ == "__main__":  # the sweep's worker processes import this file
        go()
    """
)


def _inside(tmp_path: Path, mode: str, size: str, seeds: int) -> dict[str, Any]:
    disk = tmp_path / "disk"
    disk.mkdir()
    script = tmp_path / "inside.py"
    script.write_text(INSIDE)
    sweep = write_sweep(tmp_path, seeds=seeds)
    copy_back = tmp_path / "copied"
    mount = f"mount -t tmpfs -o size={size} tmpfs {disk} && " if mode == "full" else ""
    shell = f'{mount}exec "{sys.executable}" "{script}" {mode} "{disk}" "{sweep}" "{copy_back}"'
    proc = subprocess.run(
        ["unshare", "-rm", "sh", "-c", shell],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@needs_namespaces
def test_a_real_full_disk(tmp_path):
    result = _inside(tmp_path, "full", "160k", seeds=4)
    assert result["first"]["code"] == 0
    over = result["overwrite"]
    assert over["code"] == 2, over
    assert "No space left on device" in over["err"]
    assert "Traceback" not in over["err"]
    assert result["after"] == result["before"]  # the earlier results, byte for byte
    assert result["left"] == ["a"]  # no half-written staging folder
    sweep = result["sweep"]
    assert sweep["code"] in (1, 2), sweep  # 2: cannot write; 1: runs recorded as failed
    assert "Traceback" not in sweep["err"]
    assert "No space left on device" in sweep["err"]
    assert "--resume" in sweep["err"]
    assert result["readable"]  # every run file kept is complete
    assert result["resume"]["code"] == 0, result["resume"]
    assert result["runs_after_resume"] == 12
    reference = tmp_path / "reference"
    run_sweep(plan_sweep(tmp_path / "sw.toml"), reference, workers=1)
    assert_same_runs(reference, tmp_path / "copied")


@needs_namespaces
def test_a_real_read_only_output_folder(tmp_path):
    result = _inside(tmp_path, "ro", "", seeds=1)
    assert result["first"]["code"] == 0
    assert result["sweep_first"]["code"] == 0
    for step in ("new", "overwrite", "resume", "sweep_new"):
        outcome = result[step]
        assert outcome["code"] == 2, (step, outcome)
        assert "Read-only file system" in outcome["err"], (step, outcome)
        assert "--out" in outcome["err"]
        assert "Traceback" not in outcome["err"]
    assert result["after"] == result["before"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a folder without write permission")
def test_a_folder_without_write_permission(tmp_path, capsys):
    out = tmp_path / "locked" / "results"
    assert main(["run", "baseline", *RUN, "--out", str(out)]) == 0
    before = snapshot(out)
    (tmp_path / "locked").chmod(0o555)
    try:
        code = main(["run", "baseline", *RUN, "--out", str(out), "--overwrite"])
    finally:
        (tmp_path / "locked").chmod(0o755)
    err = capsys.readouterr().err
    assert code == 2
    assert "Permission denied" in err
    assert snapshot(out) == before


# ------------------------------------------------------------------------------- Dask
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_dask_worker_killed_mid_sweep_costs_only_a_rerun(tmp_path, monkeypatch):
    distributed = pytest.importorskip("distributed")
    plan = plan_sweep(write_sweep(tmp_path, seeds=3))
    run_sweep(plan, tmp_path / "local", workers=1)
    monkeypatch.setenv(FAULT_KILL_ONCE, "2")  # the first run of seed 2 kills its worker process
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        outcome = run_sweep(plan, tmp_path / "dask", scheduler=cluster.scheduler_address)
    assert (tmp_path / "dask" / ".fault_killed").exists()  # the fault did fire
    assert outcome.done == len(plan.runs)
    assert outcome.failed == 0
    assert_same_runs(tmp_path / "local", tmp_path / "dask")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stop(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


@pytest.mark.slow
def test_a_vanishing_scheduler_is_a_clear_error_and_the_folder_resumes(tmp_path, capsys):
    pytest.importorskip("distributed")
    dask = Path(sys.executable).parent / "dask"
    if not dask.exists():
        pytest.skip("the dask command is not installed")
    sweep = write_sweep(tmp_path, seeds=12)
    address = f"tcp://127.0.0.1:{_free_port()}"
    started = {
        "start_new_session": True,
        "stdout": subprocess.DEVNULL,
        "stderr": subprocess.DEVNULL,
    }
    scheduler = subprocess.Popen(
        [str(dask), "scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":", 1)[1],
         "--no-dashboard"],
        **started,
    )  # fmt: skip
    worker = subprocess.Popen(
        [str(dask), "worker", address, "--nworkers", "1", "--nthreads", "1", "--no-dashboard"],
        cwd=tmp_path,
        **started,
    )
    out = tmp_path / "out"
    try:
        cli = subprocess.Popen(
            [sys.executable, "-m", "sim.cli", "sweep", str(sweep), "--out", str(out),
             "--scheduler", address],
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and cli.poll() is None:
            if len(list((out / "runs").glob("*.parquet"))) >= 3:
                break
            time.sleep(0.02)
        assert cli.poll() is None, (
            f"the sweep ended before the scheduler could vanish: {cli.stderr.read() if cli.stderr else ''}"
        )
        _stop(scheduler)  # SIGKILL: the scheduler is gone, its worker and the client are not told
        try:
            _, err = cli.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            _stop(cli)
            pytest.fail("the sweep hung after its scheduler vanished")
    finally:
        _stop(scheduler)
        _stop(worker)
        if "cli" in locals():
            _stop(cli)
    message = " ".join(err.split())
    assert cli.returncode == 1, message[-2000:]
    assert "Traceback" not in message, message
    assert "lost its Dask cluster" in message
    assert f"--out {out} --resume" in message
    kept = len(list((out / "runs").glob("*.parquet")))
    assert kept >= 3
    # The folder resumes (locally) to the same results as an uninterrupted sweep.
    assert main(["sweep", str(sweep), "--out", str(out), "--resume", "--workers", "2"]) == 0
    capsys.readouterr()
    reference = tmp_path / "reference"
    run_sweep(plan_sweep(sweep), reference, workers=1)
    assert_same_runs(reference, out)
