"""SIGKILL at random moments: after ``--resume`` every run is present once and bit for bit.

``tools/kill_resume_loop.py`` kills a tiny sweep (6 months, 30 manufacturers, 24 runs) at 20
moments spread over start-up, the runs and the final collection, resumes it, and compares each
finished folder with an uninterrupted sweep. The counts it prints (kill points survived, runs
lost) are the robustness note's; the test prints them too.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from sim.sweep import SweepFolderError, plan_sweep, run_sweep

ROOT = Path(__file__).resolve().parent.parent
KILLS = 20


@pytest.mark.slow
def test_twenty_sigkills_lose_no_run_and_change_no_bit(tmp_path, request):
    seed = int(os.environ.get("RESIM_KILL_SEED", random.randrange(10**6)))
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "tools" / "kill_resume_loop.py"),
            "--kills",
            str(KILLS),
            "--seed",
            str(seed),
            "--work",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
        cwd=ROOT,
    )
    assert proc.stdout, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    summary = {k: v for k, v in report.items() if k != "kill_log"}
    reporter = request.config.pluginmanager.getplugin("terminalreporter")
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():
        reporter.write_line(f"\nkill-resume loop (RESIM_KILL_SEED={seed}): {json.dumps(summary)}")
    assert report["problems"] == [], f"RESIM_KILL_SEED={seed}: {report['problems']}"
    assert proc.returncode == 0
    assert report["kills"] >= KILLS
    assert report["kill_points_survived"] >= KILLS
    assert report["folders_verified"] >= 1
    assert report["runs_lost"] == 0
    assert report["runs_duplicated"] == 0
    assert report["runs_mismatched"] == 0
    assert report["kills_leaving_an_unresumable_skeleton"] == 0


TINY = '[scenario]\nbase = "baseline"\nname = "tiny"\nmonths = 6\n[population]\nmanufacturers = 30\nminers = 12\n'


def _plan(tmp_path: Path):
    (tmp_path / "tiny.toml").write_text(TINY)
    sweep = tmp_path / "sw.toml"
    sweep.write_text(
        f'[sweep]\nname = "sw"\nbase = "{tmp_path / "tiny.toml"}"\ndesign = "grid"\nseeds = 2\n'
        '[[sweep.parameters]]\nkeys = ["policy.tariff.ndpr"]\nvalues = [0.0, 1.0]\n'
    )
    return plan_sweep(sweep)


# run_sweep writes the manifest before anything else; a kill before or during that first write
# leaves a temporary manifest (or, from versions before 0.1.1, empty runs/ and events/).
@pytest.mark.parametrize("left", ["empty runs/ and events/", "a temporary manifest"])
def test_a_kill_before_the_first_manifest_leaves_a_resumable_folder(tmp_path, left):
    plan = _plan(tmp_path)
    out = tmp_path / "out"
    if left == "a temporary manifest":
        out.mkdir()
        (out / ".manifest.json.k1l2m3.tmp").write_text('{"format_version": 1, "ki')
    else:
        (out / "runs").mkdir(parents=True)
        (out / "events").mkdir()
    outcome = run_sweep(plan, out, workers=1, resume=True)
    assert outcome.done == len(plan.runs)
    assert not list(out.rglob("*.tmp"))


def test_a_skeleton_with_anything_else_in_it_is_still_refused(tmp_path):
    plan = _plan(tmp_path)
    out = tmp_path / "out"
    (out / "runs").mkdir(parents=True)
    (out / "runs" / "notes.txt").write_text("someone else's")
    with pytest.raises(SweepFolderError, match="holds no sweep manifest"):
        run_sweep(plan, out, workers=1, resume=True)
    assert (out / "runs" / "notes.txt").read_text() == "someone else's"
