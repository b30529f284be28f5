"""Kill a sweep with SIGKILL at random moments, resume it, and check that no run is lost.

A tiny sweep (6 months, 30 manufacturers, 3 points x 8 seeds = 24 runs) is first run without
interruption: the reference. Then ``resim sweep --resume`` is started again and again in a
fresh process group and killed with SIGKILL (the parent and its workers, no chance to clean up)
at a random moment, a different one each time: while Python starts and the sweep is planned (a
random delay), while runs are computed and written (a random number of new run files, then a
random few milliseconds more), or after the last run while the summary, events and manifest
are written. Triggers that watch the folder keep the kills spread over the phases however
fast or loaded the machine is. After each kill
the folder is checked (every run file is complete and belongs to the sweep). When a folder is
complete, or after the last kill, a final ``--resume`` runs to the end and the folder is
compared with the reference: every run present exactly once (run files, summary rows, events,
manifest entries) and every file equal to the reference bit for bit. Then a fresh folder starts,
so that kills keep landing mid-sweep.

Usage::

    .venv/bin/python tools/kill_resume_loop.py --kills 20            # ~1 minute
    .venv/bin/python tools/kill_resume_loop.py --kills 200 --seed 7  # a longer hunt

Prints one JSON object (the counts the robustness note quotes); exit status 0 when no run was
lost, duplicated or changed, 1 otherwise. A kill point counts as survived when the folder it
left resumed to a complete folder equal to the reference. After every kill the folder must be
one ``--resume`` accepts (``sim.sweep.check_folder``), whatever the moment: a kill that leaves a
folder it refuses is counted (``kills_leaving_an_unresumable_skeleton``, which must be 0; the
window before the first manifest used to be one) and reported as a problem.
``tests/test_robustness_kill.py`` runs it.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sim.sweep import SweepFolderError, SweepPlan, check_folder, plan_sweep, run_sweep  # noqa: E402

SCENARIO = """[scenario]
base = "baseline"
name = "kill_tiny"
months = 6
[population]
manufacturers = 30
miners = 12
"""
SWEEP = """[sweep]
name = "kill_loop"
base = "{base}"
design = "grid"
seeds = 8
[[sweep.parameters]]
keys = ["policy.tariff.ndpr", "policy.tariff.magnet"]
values = [0.0, 0.5, 1.0]
"""


def write_inputs(work: Path) -> Path:
    """The tiny scenario and its sweep file in ``work``."""
    base = work / "kill_tiny.toml"
    base.write_text(SCENARIO)
    sweep = work / "kill_loop.toml"
    sweep.write_text(SWEEP.format(base=base))
    return sweep


def command(sweep: Path, out: Path, workers: int) -> list[str]:
    """``resim sweep ... --resume`` as a process argument list."""
    return [
        sys.executable,
        "-m",
        "sim.cli",
        "sweep",
        str(sweep),
        "--out",
        str(out),
        "--workers",
        str(workers),
        "--resume",
    ]


def start(sweep: Path, out: Path, workers: int) -> subprocess.Popen[bytes]:
    """Start the sweep in its own process group."""
    return subprocess.Popen(
        command(sweep, out, workers),
        cwd=out.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group: the kill takes the workers too
    )


def run_files(out: Path) -> list[Path]:
    """The finished run files in ``out``."""
    runs = out / "runs"
    return sorted(runs.glob("*.parquet")) if runs.is_dir() else []


def refusal(plan: SweepPlan, out: Path) -> str | None:
    """Why ``--resume`` would refuse the folder a kill left, or None when it accepts it."""
    try:
        check_folder(plan, out, resume=True)
    except SweepFolderError as err:
        return str(err)
    return None


def check_after_kill(plan: SweepPlan, out: Path) -> list[str]:
    """Problems a kill may never cause: a damaged or foreign run file (temp files are allowed)."""
    ids = {r.run_id for r in plan.runs}
    problems = []
    for path in run_files(out):
        if path.stem not in ids:
            problems.append(f"{path.name}: not a run of this sweep")
            continue
        try:
            table = pq.read_table(path)
        except Exception as err:  # any unreadable file is a lost run
            problems.append(f"{path.name}: unreadable after a kill ({err})")
            continue
        if set(table.column("run_id").to_pylist()) != {path.stem}:
            problems.append(f"{path.name}: holds another run's rows")
    return problems


def compare_with_reference(plan: SweepPlan, out: Path, ref: Path) -> dict[str, Any]:
    """Runs lost, duplicated or different from the uninterrupted sweep."""
    planned = [r.run_id for r in plan.runs]
    present = [p.stem for p in run_files(out)]
    lost = sorted(set(planned) - set(present))
    extra = sorted(set(present) - set(planned))
    mismatched = []
    for rid in sorted(set(planned) & set(present)):
        for sub in ("runs", "events"):
            a = pd.read_parquet(out / sub / f"{rid}.parquet")
            b = pd.read_parquet(ref / sub / f"{rid}.parquet")
            if not a.equals(b) or list(a.dtypes) != list(b.dtypes):
                mismatched.append(f"{sub}/{rid}")
    for name in ("summary.parquet", "events.parquet"):
        a, b = pd.read_parquet(out / name), pd.read_parquet(ref / name)
        if not a.equals(b) or list(a.dtypes) != list(b.dtypes):
            mismatched.append(name)
    summary = pd.read_parquet(out / "summary.parquet")
    duplicated = int(summary["run_id"].duplicated().sum())
    manifest = json.loads((out / "manifest.json").read_text())
    listed = [r["run_id"] for r in manifest["runs"]]
    duplicated += len(listed) - len(set(listed))
    not_done = [r["run_id"] for r in manifest["runs"] if r.get("status") != "done"]
    leftovers = sorted(str(p.relative_to(out)) for p in out.rglob(".*.tmp"))
    return {
        "lost": lost,
        "extra": extra,
        "duplicated": duplicated,
        "mismatched": mismatched,
        "not_done": not_done,
        "leftovers": leftovers,
    }


def finish(sweep: Path, out: Path) -> tuple[int, str]:
    """Resume to the end, uninterrupted; the exit status and the end of stderr."""
    proc = subprocess.run(
        command(sweep, out, 2),
        cwd=out.parent,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    return proc.returncode, proc.stderr[-2000:]


def startup_seconds() -> float:
    """Seconds a fresh ``resim`` process takes to import (the window of start-up kills)."""
    began = time.monotonic()
    subprocess.run(
        [sys.executable, "-c", "import sim.cli, sim.sweep"], check=True, cwd=ROOT, timeout=300
    )
    return time.monotonic() - began


def wait_for(proc: subprocess.Popen[bytes], ready: Any, timeout: float = 300.0) -> bool:
    """Poll until ``ready()`` or the process ends; True when ready while it still runs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        if ready():
            return True
        time.sleep(0.002)
    return False


def manifest_written_since(out: Path, since: float) -> bool:
    """Whether this invocation has written the manifest (``since`` is a ``time.time()``)."""
    try:
        return (out / "manifest.json").stat().st_mtime >= since
    except OSError:
        return False


def kill_at_random(
    proc: subprocess.Popen[bytes], out: Path, planned: int, startup: float, rng: random.Random
) -> float:
    """Wait for a random moment; return the seconds waited.

    The moment falls while Python starts, while runs are written, or while the results are
    collected after the last run.
    """
    began = time.monotonic()
    wall = time.time()
    before = len(run_files(out))
    if before >= planned:  # all runs written: kill while this invocation collects them
        wait_for(proc, lambda: manifest_written_since(out, wall))
        time.sleep(rng.uniform(0.0, 0.3))
    elif rng.random() < 0.25:
        time.sleep(rng.uniform(0.0, startup))
    else:
        target = rng.randint(before + 1, planned)
        wait_for(proc, lambda: len(run_files(out)) >= target)
        time.sleep(rng.uniform(0.0, 0.05))
    return time.monotonic() - began


def main(argv: list[str] | None = None) -> int:
    """Kill, check, resume, compare; print the counts as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=20, help="SIGKILLs to survive (default 20)")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the kill moments")
    parser.add_argument("--work", type=Path, default=None, help="work folder (default: a temp)")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    work = args.work or Path(tempfile.mkdtemp(prefix="resim-kill-"))
    work.mkdir(parents=True, exist_ok=True)
    sweep = write_inputs(work)
    plan = plan_sweep(sweep)
    ref = work / "reference"
    run_sweep(plan, ref, workers=1)
    startup = startup_seconds()
    began = time.monotonic()

    kills: list[dict[str, Any]] = []
    folders: list[dict[str, Any]] = []
    problems: list[str] = []
    skeletons: list[int] = []  # kills that left a folder --resume refuses: must stay empty
    folder_no = 0
    out = work / f"out{folder_no}"
    while len(kills) - len(skeletons) < args.kills:
        workers = 1 + len(kills) % 2
        before = len(run_files(out))
        wall = time.time()
        proc = start(sweep, out, workers)
        delay = kill_at_random(proc, out, len(plan.runs), startup, rng)
        finished_first = proc.poll() is not None
        if not finished_first:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        after = len(run_files(out))
        if finished_first:
            # It ended before the kill: not a kill point. A failure here is still a problem.
            if proc.returncode != 0:
                err = proc.stderr.read().decode(errors="replace")[-1000:] if proc.stderr else ""
                problems.append(f"uninterrupted resume exited {proc.returncode}: {err}")
                break
        else:
            phase = (
                "starting"
                if not manifest_written_since(out, wall)
                else "collecting"
                if after == len(plan.runs)
                else "running"
            )
            kills.append(
                {
                    "folder": folder_no,
                    "delay_s": round(delay, 3),
                    "workers": workers,
                    "runs_before": before,
                    "runs_after": after,
                    "phase": phase,
                }
            )
            problems += [f"kill {len(kills)}: {p}" for p in check_after_kill(plan, out)]
            refused = refusal(plan, out)
            if refused is not None:
                skeletons.append(len(kills))
                problems.append(f"kill {len(kills)} left a folder --resume refuses: {refused}")
                break
        # One kill while collecting a complete folder is enough: then finish it, start afresh.
        done = before == len(plan.runs)
        if done or len(kills) - len(skeletons) >= args.kills:
            code, err = finish(sweep, out)
            if code != 0:
                problems.append(f"final resume of {out.name} exited {code}: {err}")
                break
            result = compare_with_reference(plan, out, ref)
            folders.append(
                {
                    "folder": out.name,
                    **{k: len(v) if isinstance(v, list) else v for k, v in result.items()},
                }
            )
            problems += [f"{out.name}: {k} {v}" for k, v in result.items() if v]
            folder_no += 1
            out = work / f"out{folder_no}"

    survived = [k for i, k in enumerate(kills, start=1) if i not in skeletons]
    distinct = {(k["folder"], k["delay_s"]) for k in survived}
    report = {
        "kills": len(kills),
        "kill_points_survived": len(distinct) if not problems else 0,
        "distinct_run_counts_at_kill": len({k["runs_after"] for k in kills}),
        "phases": {
            p: sum(1 for k in kills if k["phase"] == p)
            for p in ("starting", "running", "collecting")
        },
        "folders_verified": len(folders),
        "runs_per_folder": len(plan.runs),
        "runs_lost": sum(f["lost"] for f in folders),
        "runs_duplicated": sum(f["duplicated"] for f in folders),
        "runs_mismatched": sum(f["mismatched"] for f in folders),
        "kills_leaving_an_unresumable_skeleton": len(skeletons),
        "startup_s": round(startup, 2),
        "seconds": round(time.monotonic() - began, 1),
        "problems": problems,
        "kill_log": kills,
    }
    print(json.dumps(report, indent=1))
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if not problems and report["runs_lost"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
