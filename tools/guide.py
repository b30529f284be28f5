"""Regenerate docs/guide.md: run the commands it shows, splice their real output, draw its figures.

    python tools/guide.py            # full: 10 seeds, 132 months (a few minutes on two cores)
    python tools/guide.py --quick --out DIR --figures DIR --guide FILE

Every command the guide shows is a ``Step`` below; the tool runs them in order (``resim``'s own
``main``, in this process, or the ``resim`` executable with ``--subprocess``), checks each exit
status, and writes the results under ``--out`` (default ``results/guide``, emptied first). It
then computes the guide's tables, draws ``guide_*.png`` into ``--figures`` (default
``docs/figures``) and replaces every marked region of ``--guide`` (default ``docs/guide.md``):

    <!-- guide:KIND NAME -->
    ...generated...
    <!-- /guide -->

KIND is ``commands`` (a block of commands), ``output`` (a step's output), ``file`` (an example
file), ``table`` (a table computed from the results) or ``stamp`` (when and from which commit).
Prose outside the markers is written by hand and is not touched.

``--quick`` runs the same steps with 2 seeds, 30 months and 100 manufacturers (sweeps through reduced copies of
their files written under ``--out``) so that a test can check in about a minute that every
command in the guide still works; its numbers are not the guide's.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from sim.compare import paired_difference  # noqa: E402
from sim.scenario import load_scenario, scenario_path  # noqa: E402

GUIDE = ROOT / "docs" / "guide.md"
FIGURES = ROOT / "docs" / "figures"
OUT = "results/guide"  # as the guide's commands write it
STAMP_FILE = ".resim-guide"  # marks a folder this tool may empty
WIDTH = 120  # terminal width for rich's tables in the captured output
QUICK_SEEDS = 2
QUICK_MONTHS = 30  # the embargo of question 2 runs in months 12-23
QUICK_MANUFACTURERS = 100
FULL_SEEDS = 10
EMBARGO_START = "2026-01"  # scenarios/embargo_heavy.toml
CRISIS_WINDOW_END = "2027-12"  # public cost of the embargo responses counted to here as well

# ------------------------------------------------------------------------- the guide's commands
TARIFF_100 = " ".join(
    f"--set policy.tariff.{good}=1.0" for good in ("ndpr", "dytb", "cela", "magnet")
)


@dataclass(frozen=True)
class Step:
    """One command of the guide.

    ``block`` groups commands shown together; ``cwd`` is ``root`` (the repository) or
    ``examples`` (the folder holding the guide's example files); ``expect`` is the exit status
    the guide promises; ``show`` picks what of the output the guide shows (``stdout``,
    ``stderr``, ``check`` for a valid check's last line, or ``none``).
    """

    id: str
    block: str
    command: str
    cwd: str = "root"
    expect: int = 0
    show: str = "stdout"


STEPS: tuple[Step, ...] = (
    # Question 1: tariffs
    Step("q1_sweep", "q1", f"resim sweep tariff_sweep --workers 2 --out {OUT}/tariff_sweep"),
    Step(
        "q1_compare",
        "q1",
        f"resim compare {OUT}/tariff_sweep --metric capacity_domestic_2030_t"
        " --metric capacity_domestic_end_t --metric manufacturer_halt_months"
        " --metric lost_output_share --metric tariff_revenue_musd --metric bank_losses_musd"
        f" --out {OUT}/tariff_compare",
    ),
    Step(
        "q1_run_100",
        "q1_variants",
        f"resim run baseline --seeds {FULL_SEEDS} {TARIFF_100} --out {OUT}/tariff_100",
        show="none",
    ),
    Step(
        "q1_run_100_from_2026",
        "q1_variants",
        f"resim run tariff_100_from_2026.toml --seeds {FULL_SEEDS} --out {OUT}/tariff_100_from_2026",
        "examples",
        show="none",
    ),
    Step(
        "q1_run_100_retaliation",
        "q1_variants",
        f"resim run baseline --seeds {FULL_SEEDS} {TARIFF_100} --set foreign.retaliation=true"
        f" --out {OUT}/tariff_100_retaliation",
        show="none",
    ),
    Step(
        "q1_compare_variants",
        "q1_variants",
        f"resim compare {OUT}/tariff_100 {OUT}/tariff_100_from_2026 {OUT}/tariff_100_retaliation"
        " --metric capacity_domestic_2030_t --metric capacity_domestic_end_t"
        " --metric manufacturer_halt_months --metric tariff_revenue_musd"
        f" --metric mean_price_landed_ndpr --metric bank_losses_musd --out {OUT}/tariff_variants",
    ),
    # Question 2: a heavy rare-earth embargo and the responses to it
    Step(
        "q2_sweep",
        "q2",
        f"resim sweep guide_heavy_embargo_responses --workers 2 --out {OUT}/heavy_embargo",
        show="none",
    ),
    Step(
        "q2_compare",
        "q2",
        f"resim compare {OUT}/heavy_embargo --metric manufacturer_halt_months"
        " --metric lost_output_share --metric public_cost_musd --metric floor_payments_musd"
        f" --metric capacity_domestic_end_t --out {OUT}/heavy_embargo_compare",
    ),
    # Question 3: the bank's programme, and predation
    Step(
        "q3_run_baseline",
        "q3",
        f"resim run baseline --seeds {FULL_SEEDS} --out {OUT}/baseline",
        show="none",
    ),
    Step(
        "q3_run_bank",
        "q3",
        f"resim run bank_initiative --seeds {FULL_SEEDS} --out {OUT}/bank_initiative",
    ),
    Step(
        "q3_compare",
        "q3",
        f"resim compare {OUT}/baseline {OUT}/bank_initiative"
        " --metric capacity_domestic_2030_t --metric capacity_domestic_end_t"
        " --metric miners_defaulted --metric bank_losses_musd"
        f" --metric miner_equity_value_end_musd --out {OUT}/bank_compare",
    ),
    Step(
        "q3_predation_sweep",
        "q3_predation",
        f"resim sweep guide_bank_vs_predation --workers 2 --out {OUT}/bank_vs_predation",
        show="none",
    ),
    Step(
        "q3_predation_compare",
        "q3_predation",
        f"resim compare {OUT}/bank_vs_predation --metric capacity_domestic_end_t"
        " --metric miners_defaulted --metric bank_losses_musd"
        f" --metric miner_equity_value_end_musd --out {OUT}/bank_vs_predation_compare",
    ),
    Step(
        "q3_floor_sweep",
        "q3_floor",
        f"resim sweep price_floor_vs_predation --workers 2 --out {OUT}/price_floor_vs_predation",
        show="none",
    ),
    Step(
        "q3_floor_compare",
        "q3_floor",
        f"resim compare {OUT}/price_floor_vs_predation --metric capacity_domestic_end_t"
        " --metric miners_defaulted --metric floor_payments_musd --metric public_cost_musd"
        f" --out {OUT}/price_floor_vs_predation_compare",
    ),
    # Writing your own scenario
    Step("ex_check", "ex_check", "resim check my_magnet_tariff.toml", "examples", show="check"),
    Step(
        "ex_run",
        "ex_run",
        f"resim run my_magnet_tariff.toml --seeds 2 --out {OUT}/my_magnet_tariff",
        "examples",
    ),
    *(
        Step(f"ex_{name}", f"ex_{name}", f"resim check {name}.toml", "examples", 2, "stderr")
        for name in (
            "bad_key",
            "bad_quota",
            "bad_number",
            "bad_month",
            "bad_toml_date",
            "bad_schedule_key",
            "bad_contract",
        )
    ),
    Step("ex_bad_miner", "ex_bad_miner", "resim check bad_miner.toml", "examples", 2, "stderr"),
    Step(
        "ex_bad_set",
        "ex_bad_set",
        f"resim run baseline --set policy.tariff.magnet=50% --out {OUT}/never_written",
        "examples",
        2,
        "stderr",
    ),
    # Writing a sweep file
    Step(
        "ex_sweep",
        "ex_sweep",
        f"resim sweep my_sweep.toml --workers 2 --out {OUT}/my_sweep",
        "examples",
    ),
    *(
        Step(
            f"ex_{name}",
            f"ex_{name}",
            f"resim sweep {name}.toml --out {OUT}/never_written",
            "examples",
            2,
            "stderr",
        )
        for name in ("sweep_bad_seeds", "sweep_bad_point", "sweep_bad_grid", "sweep_bad_value")
    ),
)

# The example files of "Writing your own scenario" and "Writing a sweep file".
EXAMPLES: dict[str, str] = {
    "tariff_100_from_2026.toml": """\
# The 100% tariff of tariff_sweep's point 4, but introduced in January 2026 instead of being in
# force from the first month (so that manufacturers see it as a price rise).

[scenario]
base = "baseline"
name = "tariff_100_from_2026"
description = "Baseline plus a 100% tariff on NdPr, Dy/Tb, Ce/La oxide and magnets from January 2026"

[[schedule]]
date = "2026-01"
key = "policy.tariff.ndpr"
value = 1.0
source = "the policy question: a 100% tariff"

[[schedule]]
date = "2026-01"
key = "policy.tariff.dytb"
value = 1.0
source = "the policy question: a 100% tariff"

[[schedule]]
date = "2026-01"
key = "policy.tariff.cela"
value = 1.0
source = "the policy question: a 100% tariff"

[[schedule]]
date = "2026-01"
key = "policy.tariff.magnet"
value = 1.0
source = "the policy question: a 100% tariff"
""",
    "my_magnet_tariff.toml": """\
# A variant of baseline: a 50% tariff on magnets in 2027-2029, an export quota on NdPr oxide in
# 2028, and a Dy/Tb price floor for one named project.

[scenario]
base = "baseline"              # inherit everything else from scenarios/baseline.toml
name = "my_magnet_tariff"
description = "Baseline plus a 50% magnet tariff in 2027-2029, an NdPr export quota in 2028 and a Dy/Tb floor for Eneabba"

[[schedule]]
date = "2027-01"
key = "policy.tariff.magnet"
value = 0.5
source = "my assumption: a 50% tariff on NdFeB magnets"

[[schedule]]
date = "2030-01"
key = "policy.tariff.magnet"
value = 0.021
source = "back to the MFN rate of baseline"

[[schedule]]
date = "2028-01"
key = "policy.export_quota.ndpr"
value = 1500.0
source = "my assumption: the supplier caps NdPr oxide exports at 1,500 t a year"

[[schedule]]
date = "2029-01"
key = "policy.export_quota.ndpr"
value = "none"                 # "none" lifts an optional key (TOML has no null)
source = "quota lifted"

[[government.contracts]]
date = "2026-01"
miner = "Eneabba"              # a name from scenarios/data/miners_2025.csv
kind = "floor"
product = "dytb"
price = 700.0
years = 10.0
upside_share = 0.3
source = "my assumption: terms like the DoD - MP Materials NdPr floor"
""",
    "bad_key.toml": """\
[scenario]
base = "my_magnet_tariff.toml"

[policy.tarif]                 # typo: tariff
magnet = 0.5
""",
    "bad_quota.toml": """\
[scenario]
base = "my_magnet_tariff.toml"

[policy.export_quota]
dytb = -100.0
""",
    "bad_number.toml": """\
[scenario]
base = "my_magnet_tariff.toml"

[policy.tariff]
magnet = "50%"                 # a fraction: 0.5
""",
    "bad_month.toml": """\
[scenario]
base = "my_magnet_tariff.toml"

[[schedule]]
date = "2027-13"
key = "policy.tariff.ndpr"
value = 0.25
""",
    "bad_toml_date.toml": """\
[scenario]
base = "my_magnet_tariff.toml"

[[schedule]]
date = 2027-01-01              # a TOML date, not a quoted "YYYY-MM"
key = "policy.tariff.ndpr"
value = 0.25
""",
    "bad_schedule_key.toml": """\
[scenario]
base = "my_magnet_tariff.toml"

[[schedule]]
date = "2027-01"
key = "population.manufacturers"   # not a key that can change during a run
value = 400
""",
    "bad_contract.toml": """\
[scenario]
base = "my_magnet_tariff.toml"

[[government.contracts]]
date = "2027-01"
miner = "Nolans"
kind = "offtake"
product = "ndpr"               # an offtake needs a price too
""",
    "bad_miner.toml": """\
[scenario]
base = "my_magnet_tariff.toml"

[[government.contracts]]
date = "2027-01"
miner = "Mount Weld"           # the file calls it "Lynas (Mount Weld-Kalgoorlie-LAMP)"
kind = "equity"
amount_musd = 100.0
""",
    "my_sweep.toml": """\
# my_magnet_tariff with tariffs of 0% and 50% on NdPr and Dy/Tb oxide (tied: always the same
# value), crossed with the bank's programme off and on: 2 x 2 points x 3 seeds = 12 runs.

[sweep]
name = "my_sweep"
description = "my_magnet_tariff: oxide tariffs 0% / 50% x the bank's programme off / on"
base = "my_magnet_tariff.toml"     # a stem in scenarios/, or a path from where you run resim
design = "grid"
seeds = 3

[[sweep.parameters]]
keys = ["policy.tariff.ndpr", "policy.tariff.dytb"]
values = [0.0, 0.5]

[[sweep.parameters]]
keys = ["policy.bank_initiative"]
values = [false, true]
""",
    "sweep_bad_seeds.toml": """\
[sweep]
name = "sweep_bad_seeds"
base = "my_magnet_tariff.toml"
design = "grid"
seed = 3                           # typo: seeds

[[sweep.parameters]]
keys = ["policy.tariff.ndpr"]
values = [0.0, 0.5]
""",
    "sweep_bad_point.toml": """\
[sweep]
name = "sweep_bad_point"
base = "my_magnet_tariff.toml"
design = "list"
seeds = 3

[[sweep.points]]
"policy.tariff.ndpr" = 0.5

[[sweep.points]]
"policy.bank_initative" = true     # typo: initiative
""",
    "sweep_bad_grid.toml": """\
[sweep]
name = "sweep_bad_grid"
base = "my_magnet_tariff.toml"
design = "grid"
seeds = 3

[[sweep.parameters]]
keys = ["policy.tariff.ndpr"]
low = 0.0                          # low/high are for lhs, sobol, morris; a grid needs values
high = 1.0
""",
    "sweep_bad_value.toml": """\
[sweep]
name = "sweep_bad_value"
base = "my_magnet_tariff.toml"
design = "grid"
seeds = 3

[[sweep.parameters]]
keys = ["policy.export_quota.dytb"]
values = [300.0, 0.0, -100.0]
""",
}

# Names of the points of the question-2 sweep (scenarios/guide_heavy_embargo_responses.toml).
Q2_NAMES = (
    "no response",
    "floors, in response",
    "floors, from 2025",
    "equity US$400M, in response",
    "stockpile release",
    "bank programme, from 2025",
    "stockpile release, no lag",
)


# ----------------------------------------------------------------------------- running commands
@dataclass
class Outcome:
    """What a step printed and returned."""

    step: Step
    argv: list[str]
    status: int
    stdout: str
    stderr: str


class GuideError(RuntimeError):
    """A command of the guide did not do what the guide says."""


@dataclass
class Setup:
    """Where the run goes and how big it is."""

    out: Path  # absolute
    quick: bool
    subprocess: bool

    @property
    def examples(self) -> Path:
        """The folder holding the example files (the cwd of the example commands)."""
        return self.out / "examples"

    def cwd(self, step: Step) -> Path:
        """Where ``step`` runs."""
        return self.examples if step.cwd == "examples" else ROOT


def argv_of(step: Step, setup: Setup) -> list[str]:
    """The command's arguments as run: output under ``setup.out``, reduced when quick."""
    args = shlex.split(step.command)[1:]
    args = [
        str(setup.out / a.removeprefix(f"{OUT}/")) if a.startswith(f"{OUT}/") else a for a in args
    ]
    if not setup.quick or step.expect != 0:
        return args
    if args[0] == "run":
        args = _replace_option(args, "--seeds", str(QUICK_SEEDS))
        args = _replace_option(args, "--months", str(QUICK_MONTHS))
        args = [*args, "--set", f"population.manufacturers={QUICK_MANUFACTURERS}"]
    elif args[0] == "sweep":
        args[1] = str(quick_sweep(args[1], setup, setup.cwd(step)))
    return args


def _replace_option(args: list[str], option: str, value: str) -> list[str]:
    if option in args:
        i = args.index(option)
        return [*args[: i + 1], value, *args[i + 2 :]]
    return [*args, option, value]


def quick_sweep(name: str, setup: Setup, cwd: Path) -> Path:
    """A copy of a sweep file with fewer seeds, on a copy of its base with a shorter horizon."""
    from sim.sweep import sweep_path

    with contextlib.chdir(cwd):
        path = sweep_path(name).resolve()
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        base = scenario_path(data["sweep"].get("base", "baseline")).resolve()
    folder = setup.out / "quick"
    folder.mkdir(parents=True, exist_ok=True)
    base_copy = folder / f"{path.stem}_base.toml"
    base_copy.write_text(
        f"[scenario]\nbase = {json.dumps(str(base))}\nname = {json.dumps(base.stem)}\n"
        f"months = {QUICK_MONTHS}\n\n[population]\nmanufacturers = {QUICK_MANUFACTURERS}\n",
        encoding="utf-8",
    )
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"(?m)^seeds\s*=.*$", f"seeds = {QUICK_SEEDS}", text)
    text = re.sub(r"(?m)^base\s*=.*$", f"base = {json.dumps(str(base_copy))}", text)
    sweep_copy = folder / path.name
    sweep_copy.write_text(text, encoding="utf-8")
    return sweep_copy


def run_step(step: Step, setup: Setup) -> Outcome:
    """Run one command; raise ``GuideError`` when its exit status is not the one promised."""
    argv = argv_of(step, setup)
    cwd = setup.cwd(step)
    if setup.subprocess:
        exe = Path(sys.executable).with_name("resim")
        command = [str(exe)] if exe.exists() else [sys.executable, "-m", "sim.cli"]
        env = {**os.environ, "COLUMNS": str(WIDTH), "NO_COLOR": "1"}
        done = subprocess.run(
            [*command, *argv], cwd=cwd, capture_output=True, text=True, env=env, check=False
        )
        status, stdout, stderr = done.returncode, done.stdout, done.stderr
    else:
        status, stdout, stderr = _run_in_process(argv, cwd)
    outcome = Outcome(step, argv, status, stdout, stderr)
    if status != step.expect:
        msg = (
            f"{step.id}: `{step.command}` exited {status}, the guide says {step.expect}\n"
            f"--- stdout\n{stdout[-3000:]}\n--- stderr\n{stderr[-3000:]}"
        )
        raise GuideError(msg)
    return outcome


def _run_in_process(argv: list[str], cwd: Path) -> tuple[int, str, str]:
    """``resim``'s ``main`` with its output captured (rich's consoles set to a fixed width)."""
    from sim import cli, compare

    consoles = (cli.console, cli.err_console, compare.console)
    for console in consoles:
        console.width = WIDTH
    out, err = io.StringIO(), io.StringIO()
    with contextlib.chdir(cwd), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = cli.main(argv)
    return status, out.getvalue(), err.getvalue()


def excerpt(outcome: Outcome, setup: Setup) -> str:
    """What the guide shows of a step's output, with this machine's paths written as in the guide."""
    show = outcome.step.show
    if show == "stderr":
        text = outcome.stderr
    elif show == "check":
        lines = outcome.stdout.rstrip("\n").splitlines()
        text = "\n".join(
            [
                *lines[:6],
                f"    ... ({len(lines) - 7} more lines of resolved parameters) ...",
                lines[-1],
            ]
        )
    else:
        text = outcome.stdout
    text = text.replace(str(setup.out), OUT).replace(f"{ROOT}/", "")
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines())


def prepare_out(out: Path) -> None:
    """Empty ``out`` (only a folder this tool made, or an empty one) and write the example files."""
    if out.exists():
        if not (out / STAMP_FILE).exists() and any(out.iterdir()):
            msg = f"--out {out}: not empty and not made by tools/guide.py; choose another folder"
            raise GuideError(msg)
        shutil.rmtree(out)
    (out / "examples").mkdir(parents=True)
    (out / STAMP_FILE).write_text("made by tools/guide.py; emptied on every run\n")
    for name, text in EXAMPLES.items():
        (out / "examples" / name).write_text(text, encoding="utf-8")


# ----------------------------------------------------------------------------- reading results
@dataclass
class Results:
    """One results folder: its manifest, summary, timeseries and events (with point and seed)."""

    manifest: dict[str, Any]
    summary: pd.DataFrame
    series: pd.DataFrame
    events: pd.DataFrame


def read_results(folder: Path) -> Results:
    """Read a ``resim run`` or ``resim sweep`` folder."""
    manifest = json.loads((folder / "manifest.json").read_text())
    runs = {r["run_id"]: r for r in manifest["runs"] if r.get("status", "done") == "done"}
    if manifest["kind"] == "sweep":
        series = pd.concat(
            [pd.read_parquet(folder / "runs" / f"{rid}.parquet") for rid in runs],
            ignore_index=True,
        )
    else:
        series = pd.read_parquet(folder / "timeseries.parquet")
    events = pd.read_parquet(folder / "events.parquet")
    summary = pd.read_parquet(folder / "summary.parquet")
    for frame in (series, events, summary):
        frame["point"] = frame["run_id"].map(lambda r: int(runs[r].get("point", 0)))
        frame["seed"] = frame["run_id"].map(lambda r: int(runs[r]["seed"]))
    return Results(manifest, summary, series, events)


def point_overrides(results: Results) -> list[dict[str, Any]]:
    """The overrides of each point of a sweep."""
    return [p["overrides"] for p in results.manifest["points"]]


def by_seed(frame: pd.DataFrame, point: int, column: str) -> pd.Series:
    """One value per seed (a summary column, or any per-run series), indexed by seed."""
    rows = frame[frame["point"] == point]
    return rows.set_index("seed")[column].sort_index()


def paired(setting: pd.Series, reference: pd.Series) -> dict[str, Any]:
    """Seed-paired difference with its 95% interval (``sim.compare``'s method)."""
    seeds = setting.index.intersection(reference.index)
    return paired_difference(
        setting.loc[seeds].to_numpy(dtype=float), reference.loc[seeds].to_numpy(dtype=float)
    )


def fmt(value: float, digits: int = 3) -> str:
    """A number for a table: thousands separators, ``n/a`` for NaN."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if abs(value) >= 1000 or value == int(value):
        return f"{value:,.0f}"
    return f"{value:,.{digits}g}"


def fmt_diff(d: dict[str, Any], scale: float = 1.0) -> str:
    """``+1,234 [1,000, 1,500]`` with a star when the interval excludes zero."""
    if not math.isfinite(d["difference"]):
        return "n/a"
    if d["note"].startswith("identical"):
        return "0 (identical on every seed)"
    if d["note"].startswith("the same difference"):
        return f"{d['difference'] / scale:+,.0f} (the same on every seed)"
    text = f"{d['difference'] / scale:+,.0f}" if abs(d["difference"] / scale) >= 10 else None
    if text is None:
        text = f"{d['difference'] / scale:+,.2f}"
    if not math.isfinite(d["ci_low"]):
        return text
    low, high = d["ci_low"] / scale, d["ci_high"] / scale
    width = max(abs(low), abs(high))
    pattern = "{:,.0f}" if width >= 10 else "{:,.2f}"
    star = "*" if d["distinguishable"] == "yes" else ""
    return f"{text} [{pattern.format(low)}, {pattern.format(high)}]{star}"


def md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def value_at(series: pd.DataFrame, point: int, column: str, date: str | None) -> pd.Series:
    """Per seed, a column's value at ``date`` (the last month when None; NaN when not simulated)."""
    rows = series[series["point"] == point]
    if date is None:
        rows = rows[rows["month"] == rows["month"].max()]
    else:
        rows = rows[rows["date"] == date]
    values = rows.set_index("seed")[column].sort_index()
    seeds = sorted(series.loc[series["point"] == point, "seed"].unique())
    return values.reindex(seeds)


def first_month(series: pd.DataFrame, point: int, mask: pd.Series) -> pd.Series:
    """Per seed, the first month where ``mask`` holds (NaN when never)."""
    rows = series[(series["point"] == point)]
    hits = rows[mask.loc[rows.index]]
    seeds = sorted(rows["seed"].unique())
    return hits.groupby("seed")["month"].min().reindex(seeds).astype(float)


def month_of(date: str, start: str) -> int:
    """Months from ``start`` to ``date`` (both YYYY-MM)."""
    y0, m0 = map(int, start.split("-"))
    y1, m1 = map(int, date.split("-"))
    return (y1 - y0) * 12 + (m1 - m0)


# ------------------------------------------------------------------------------------- figures
def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=110, layout="constrained")


def _dates(frame: pd.Series | pd.DataFrame) -> Any:
    return pd.to_datetime(frame.index.to_series().astype(str) + "-01")


def _save(fig: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)


def _mean_path(series: pd.DataFrame, point: int, column: str) -> pd.Series:
    rows = series[series["point"] == point]
    return rows.groupby("date")[column].mean()


def _band(series: pd.DataFrame, point: int, column: str) -> tuple[pd.Series, pd.Series]:
    rows = series[series["point"] == point].groupby("date")[column]
    return rows.quantile(0.05), rows.quantile(0.95)


def _thousands(ax: Any) -> None:
    from matplotlib.ticker import FuncFormatter

    ax.yaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:,.0f}"))


# ----------------------------------------------------------------------------- question 1
def question1(out: Path, figures: Path) -> dict[str, str]:
    """Tariffs: capacity, output, revenue; the figure guide_tariff.png."""
    sweep = read_results(out / "tariff_sweep")
    variants = {
        "100%, runs (as point 4)": read_results(out / "tariff_100"),
        "100% from Jan 2026": read_results(out / "tariff_100_from_2026"),
        "100% + retaliation": read_results(out / "tariff_100_retaliation"),
    }
    levels = [float(p["policy.tariff.ndpr"]) for p in point_overrides(sweep)]
    years = (sweep.series["month"].max() + 1) / 12
    ref_cap = value_at(sweep.series, 0, "capacity_domestic_nameplate_t", "2030-12")
    ref_output = value_at(sweep.series, 0, "manufacturer_output_index", None)
    settings = [(f"{level:.0%}", sweep, i) for i, level in enumerate(levels)]
    settings += [(label, res, 0) for label, res in variants.items()]
    rows = []
    for label, res, i in settings:
        cap = value_at(res.series, i, "capacity_domestic_nameplate_t", "2030-12")
        revenue = by_seed(res.summary, i, "tariff_revenue_musd")
        output = value_at(res.series, i, "manufacturer_output_index", None)
        substitution = value_at(res.series, i, "substitution_share", None)
        reference = res is sweep and i == 0
        rows.append(
            [
                label,
                fmt(cap.mean()),
                "reference" if reference else fmt_diff(paired(cap, ref_cap)),
                fmt(by_seed(res.summary, i, "capacity_domestic_end_t").mean()),
                fmt(revenue.mean() / 1000, 3),
                fmt(revenue.mean() / 1000 / years, 3),
                fmt(by_seed(res.summary, i, "manufacturer_halt_months").mean()),
                f"{output.mean():.3f} ({(output - ref_output).abs().max():.1g})",
                f"{substitution.mean():.1%}",
            ]
        )
    table = md_table(
        [
            "tariff",
            "capacity Dec 2030, t/yr",
            "vs 0% [95% CI]",
            "capacity at the end, t/yr",
            "tariff revenue, US$ bn",
            "per year, US$ bn",
            "manufacturer-months halted",
            "output index at the end (largest gap to 0%, any seed)",
            "substitution at the end",
        ],
        rows,
    )
    _figure_tariff(sweep, variants, levels, figures / "guide_tariff.png")
    return {"q1_numbers": table}


VARIANT_STYLE = {  # question 1's variants: colour, line style
    "100% from Jan 2026": ("#8e44ad", "-."),
    "100% + retaliation": ("#c0392b", "--"),
}


def _figure_tariff(
    sweep: Results, variants: dict[str, Results], levels: list[float], path: Path
) -> None:
    from matplotlib import colormaps

    fig = _figure(16, 8.8)
    axes = fig.subplots(2, 3)
    cmap = colormaps["viridis"]
    shown = [i for i, level in enumerate(levels) if level in (0.0, 0.5, 1.0, 1.5)]
    colours = {i: cmap(0.1 + 0.8 * k / max(len(shown) - 1, 1)) for k, i in enumerate(shown)}
    hundred = next((i for i in shown if levels[i] == 1.0), shown[-1])

    def lines(
        ax: Any, column: str, points: list[int], band: bool, cumulative: bool = False
    ) -> None:
        for i in points:
            rows = sweep.series[sweep.series["point"] == i]
            if cumulative:
                mean = (rows.groupby("seed")[column].cumsum() / 1000).groupby(rows["date"]).mean()
            else:
                mean = _mean_path(sweep.series, i, column)
            x = _dates(mean)
            ax.plot(x, mean.to_numpy(), color=colours[i], label=f"tariff {levels[i]:.0%}", lw=1.8)
            if band and not cumulative:
                low, high = _band(sweep.series, i, column)
                ax.fill_between(
                    x, low.to_numpy(), high.to_numpy(), color=colours[i], alpha=0.15, lw=0
                )
        for label, (colour, style) in VARIANT_STYLE.items():
            rows = variants[label].series
            if cumulative:
                mean = (rows.groupby("seed")[column].cumsum() / 1000).groupby(rows["date"]).mean()
            else:
                mean = _mean_path(rows, 0, column)
            ax.plot(_dates(mean), mean.to_numpy(), color=colour, ls=style, label=label, lw=1.6)
        ax.set_xlabel("date")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7.5, loc="upper left")

    ax = axes[0, 0]
    lines(ax, "capacity_domestic_nameplate_t", shown, band=True)
    low, high = ax.get_ylim()
    ax.set_ylim(low - 0.45 * (high - low), high)  # room for the legend under the lines
    ax.legend(fontsize=7.5, loc="lower right", ncol=2)
    ax.set_title("(a) Domestic separation capacity (nameplate)")
    ax.set_ylabel("t REO per year")
    _thousands(ax)
    ax = axes[0, 1]
    lines(ax, "manufacturer_output_index", [shown[0], hundred], band=False)
    ax.set_title("(b) Manufacturers' final-goods output\n(0%, 100% and 100% from 2026 coincide)")
    ax.set_ylabel("index, January 2025 = 1.0")
    ax = axes[0, 2]
    lines(ax, "substitution_share", [shown[0], hundred], band=False)
    ax.set_title("(c) Substitution (thrifting and redesign)")
    ax.set_ylabel("share of importers' REE demand")
    ax = axes[1, 0]
    lines(ax, "tariff_revenue_musd", shown[1:], band=False, cumulative=True)
    ax.set_title("(d) Tariff revenue to date")
    ax.set_ylabel("US$ billion")
    ax = axes[1, 1]
    lines(ax, "price_landed_magnet", [shown[0], hundred], band=False)
    ax.set_title("(e) Landed price of NdFeB magnets")
    ax.set_ylabel("US$/kg")
    # (f) dose-response
    ax = axes[1, 2]
    x = np.array(levels) * 100
    for date, colour, label in (
        ("2030-12", "#2c7fb8", "Dec 2030"),
        (None, "#7fcdbb", "end of run"),
    ):
        column = "capacity_domestic_nameplate_t"
        ref = value_at(sweep.series, 0, column, date)
        diffs = [paired(value_at(sweep.series, i, column, date), ref) for i in range(len(levels))]
        mean = np.array([d["difference"] for d in diffs])
        low = np.array([d["ci_low"] for d in diffs])
        high = np.array([d["ci_high"] for d in diffs])
        yerr = np.vstack([np.nan_to_num(mean - low), np.nan_to_num(high - mean)])
        ax.errorbar(
            x + (-2 if date else 2), mean, yerr=yerr, fmt="o-", color=colour, capsize=3, label=label
        )
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xticks(x)
    ax.set_title("(f) Extra domestic capacity vs 0% (tariff from the start;\nmean and 95% CI)")
    ax.set_xlabel("tariff on the supplier's oxides and magnets, % of value")
    ax.set_ylabel("t REO per year")
    _thousands(ax)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    n = sweep.series["seed"].nunique()
    fig.suptitle(
        f"Question 1: tariffs on the foreign supplier, {n} seeds per setting "
        "(lines: mean of seeds; bands in (a): 5th-95th percentile)",
        fontsize=12,
    )
    _save(fig, path)


# ----------------------------------------------------------------------------- question 2
def question2(out: Path, figures: Path) -> dict[str, str]:
    """The heavy embargo: time to the first stoppage, shortage, cost per response."""
    res = read_results(out / "heavy_embargo")
    series = res.series
    start = str(series["date"].iloc[0])
    embargo = month_of(EMBARGO_START, start)
    series = series.assign(
        short=(series["manufacturers_halted"] > 0)
        | (series["unmet_demand_magnet_t"] > 1e-6)
        | (series[[f"unmet_demand_{p}" for p in ("ndpr", "dytb", "cela")]] > 1e-6).any(axis=1)
    )
    halted = series["manufacturers_halted"] > 0
    base = res.manifest["sweep"]["base"]
    overrides = point_overrides(res)
    ref = 0
    ref_halts = by_seed(res.summary, ref, "manufacturer_halt_months")
    ref_cost = by_seed(res.summary, ref, "public_cost_musd")
    ref_window = value_at(series, ref, "gov_cost_cum_musd", CRISIS_WINDOW_END)
    if ref_window.isna().all():  # a short run: count to its end
        ref_window = value_at(series, ref, "gov_cost_cum_musd", None)
    rows, bars = [], []
    for i, over in enumerate(overrides):
        name = Q2_NAMES[i] if i < len(Q2_NAMES) else f"point {i}"
        stop = first_month(series, i, halted) - embargo
        short = series[series["point"] == i].groupby("seed")["short"].sum()
        halts = by_seed(res.summary, i, "manufacturer_halt_months")
        stockpile = stockpile_value_musd(base, over)
        cost = by_seed(res.summary, i, "public_cost_musd") + stockpile
        window = value_at(series, i, "gov_cost_cum_musd", CRISIS_WINDOW_END)
        if window.isna().all():
            window = value_at(series, i, "gov_cost_cum_musd", None)
        window = window + stockpile
        avoided = paired(ref_halts, halts)
        d_cost = paired(cost, ref_cost)
        d_window = paired(window, ref_window)
        noticed = decision_months(res.events, i, start)
        rows.append(
            [
                f"{i}: {name}",
                _range(stop),
                noticed,
                _range(short),
                fmt(halts.mean()),
                "reference" if i == ref else fmt_diff(avoided),
                "reference" if i == ref else fmt_diff(d_window),
                "reference" if i == ref else fmt_diff(d_cost),
                "" if i == ref else per_dollar(avoided, d_window),
            ]
        )
        bars.append((name, avoided, d_window, d_cost))
    table = md_table(
        [
            "response",
            "first stoppage, months after the embargo starts (median [min-max])",
            "response decided",
            "shortage months (median [min-max])",
            "manufacturer-months halted",
            "halts avoided vs no response [95% CI]",
            f"public cost to {CRISIS_WINDOW_END} vs no response, US$ M",
            "public cost to the end vs no response, US$ M",
            f"halts avoided per US$100M (cost to {CRISIS_WINDOW_END})",
        ],
        rows,
    )
    _figure_embargo(series, res, bars, embargo, figures / "guide_embargo.png")
    return {"q2_numbers": table}


def stockpile_value_musd(base: str, overrides: dict[str, Any]) -> float:
    """What a point's stockpile would cost at the start prices (the model gives it for free)."""
    scenario = load_scenario(base, overrides)
    held = scenario.government.stockpile
    ref = scenario.foreign.price_ref
    kg = (
        held.ndpr * ref.ndpr
        + held.dytb * ref.dytb
        + held.cela * ref.cela
        + held.magnet * scenario.foreign.magnet_price_ref
    )
    return kg * 1000 / 1e6  # t x US$/kg -> US$ M


def decision_months(events: pd.DataFrame, point: int, start: str) -> str:
    """When the reaction function acted (``crisis noticed`` month + lag), across seeds."""
    rows = events[
        (events["point"] == point)
        & (events["agent"] == "government")
        & (events["detail"].str.startswith("crisis noticed"))
    ]
    if rows.empty:
        return "-"
    lag = rows["detail"].str.extract(r"decision in (\d+) months")[0].astype(int)
    months = sorted(set((rows["month"] + lag).astype(int)))
    y0, m0 = map(int, start.split("-"))
    dates = [f"{y0 + (m0 - 1 + m) // 12}-{(m0 - 1 + m) % 12 + 1:02d}" for m in months]
    return " / ".join(dates)


def _range(values: pd.Series) -> str:
    values = values.dropna()
    if values.empty:
        return "never"
    return f"{values.median():g} [{values.min():g}-{values.max():g}]"


def per_dollar(avoided: dict[str, Any], cost: dict[str, Any]) -> str:
    """Halted manufacturer-months avoided per US$100M of extra public cost."""
    a, c = avoided["difference"], cost["difference"]
    if not (math.isfinite(a) and math.isfinite(c)):
        return "n/a"
    if avoided["distinguishable"] != "yes":
        return "none avoided"
    if c <= 0:
        return f"avoids {a:,.0f} and saves US${-c:,.0f}M"
    return f"{a / c * 100:,.1f}"


def _figure_embargo(
    series: pd.DataFrame,
    res: Results,
    bars: list[tuple[str, dict[str, Any], dict[str, Any], dict[str, Any]]],
    embargo: int,
    path: Path,
) -> None:
    from matplotlib import colormaps

    fig = _figure(12.5, 8.6)
    grid = fig.add_gridspec(2, 2, height_ratios=[1.1, 1])
    ax = fig.add_subplot(grid[0, :])
    cmap = colormaps["tab10"]
    n_points = len(bars)
    first = max(embargo - 3, 0)
    last = embargo + 20
    window = series[(series["month"] >= first) & (series["month"] <= last)]
    for i in range(n_points):
        mean = _mean_path(window, i, "manufacturers_halted")
        style = "-" if i in (0, 4, 6) else ":"
        ax.plot(
            _dates(mean),
            mean.to_numpy(),
            style,
            color=cmap(i),
            lw=2.2 if i in (0, 4, 6) else 1.5,
            label=bars[i][0],
        )
    dates = _dates(_mean_path(window, 0, "manufacturers_halted"))
    ax.axvspan(
        dates.iloc[embargo - first], dates.iloc[min(embargo + 12 - first, len(dates) - 1)],
        color="grey", alpha=0.12, lw=0, label="embargo (Dy/Tb oxide and magnets)",
    )  # fmt: skip
    n_mfr = int(res.manifest["parameters"]["population"]["manufacturers"])
    ax.set_title(f"(a) Manufacturers halted for lack of material (of {n_mfr}), mean of seeds")
    ax.text(
        0.01,
        0.97,
        "dotted responses coincide with 'no response' and are hidden under it",
        transform=ax.transAxes,
        fontsize=8,
        va="top",
    )
    ax.set_ylabel("manufacturers halted")
    ax.set_xlabel("date")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2, loc="upper right")
    names = [b[0] for b in bars[1:]]
    y = np.arange(len(names))[::-1]
    panels: list[tuple[str, list[dict[str, Any]], str]] = [
        (
            "(b) Halted manufacturer-months avoided vs no response",
            [b[1] for b in bars[1:]],
            "manufacturer-months",
        ),
        (
            f"(c) Extra public cost to {CRISIS_WINDOW_END} vs no response*",
            [b[2] for b in bars[1:]],
            "US$ million",
        ),
    ]
    for k, (title, d, unit) in enumerate(panels):
        ax = fig.add_subplot(grid[1, k])
        mid = np.array([x["difference"] for x in d])
        low = np.array([x["ci_low"] for x in d])
        high = np.array([x["ci_high"] for x in d])
        colours = [cmap(i + 1) for i in range(len(names))]
        ax.barh(y, mid, color=colours, alpha=0.85)
        ax.errorbar(
            mid,
            y,
            xerr=np.vstack([np.nan_to_num(mid - low), np.nan_to_num(high - mid)]),
            fmt="none",
            color="black",
            capsize=3,
        )
        ax.axvline(0, color="grey", lw=0.8)
        ax.set_yticks(y, names, fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(unit + " (mean, 95% CI)")
        ax.grid(alpha=0.3, axis="x")
        from matplotlib.ticker import FuncFormatter

        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
        span = max(np.nanmax(np.abs(np.concatenate([low, high, mid]))), 1.0)
        for yi, value in zip(y, mid, strict=True):
            ax.text(
                value + (0.02 * span if value >= 0 else -0.02 * span),
                yi,
                f"{value:,.0f}",
                va="center",
                ha="left" if value >= 0 else "right",
                fontsize=8,
            )
        ax.margins(x=0.15)
    n = series["seed"].nunique()
    fig.suptitle(
        f"Question 2: a 12-month embargo on heavy rare earths from {EMBARGO_START}, "
        f"one response at a time, {n} seeds each\n"
        "*public cost net of revenue; stockpiles counted at their 2024 value "
        "(the model hands them over for free)",
        fontsize=10.5,
    )
    _save(fig, path)


# ----------------------------------------------------------------------------- question 3
LOAN = re.compile(r"^(?P<name>.+): US\$(?P<amount>[\d,.]+)M at (?P<rate>[\d.]+)%")


def loans(results: Results, point: int = 0) -> pd.DataFrame:
    """The bank's loans, one row each: seed, month, project, amount, rate."""
    rows = results.events[
        (results.events["point"] == point) & (results.events["kind"] == "loan")
    ].copy()
    parsed = rows["detail"].str.extract(LOAN)
    rows["project"] = parsed["name"]
    rows["amount"] = parsed["amount"].str.replace(",", "").astype(float)
    rows["rate"] = parsed["rate"].astype(float)
    return rows[["seed", "month", "date", "project", "amount", "rate"]]


def question3(out: Path, figures: Path) -> dict[str, str]:
    """The bank's programme: crowding in, and what predation costs it."""
    base = read_results(out / "baseline")
    bank = read_results(out / "bank_initiative")
    bvp = read_results(out / "bank_vs_predation")
    floor = read_results(out / "price_floor_vs_predation")
    seeds = sorted(set(base.summary["seed"]) & set(bank.summary["seed"]))
    base_loans, bank_loans = loans(base), loans(bank)
    counts: dict[str, list[int]] = {"both": [], "only_programme": [], "only_without": []}
    extra: dict[str, list[str]] = {}
    for seed in seeds:
        without = set(base_loans.loc[base_loans["seed"] == seed, "project"])
        with_ = bank_loans[bank_loans["seed"] == seed]
        projects = set(with_["project"])
        counts["both"].append(len(projects & without))
        counts["only_programme"].append(len(projects - without))
        counts["only_without"].append(len(without - projects))
        for name in sorted(projects - without):
            year = with_.loc[with_["project"] == name, "date"].min()[:4]
            extra.setdefault(name, []).append(year)

    def construction(res: Results) -> pd.Series:
        ev = res.events
        started = ev[
            (ev["kind"] == "miner_state") & (ev["detail"] == "financed; construction starts")
        ]
        return started.groupby("seed").size().reindex(seeds, fill_value=0).astype(float)

    def per_seed_count(frame: pd.DataFrame) -> pd.Series:
        return frame.groupby("seed").size().reindex(seeds, fill_value=0).astype(float)

    def per_seed_sum(frame: pd.DataFrame) -> pd.Series:
        return frame.groupby("seed")["amount"].sum().reindex(seeds, fill_value=0.0)

    rows = []
    metrics: list[tuple[str, pd.Series, pd.Series]] = [
        ("bank loans signed", per_seed_count(base_loans), per_seed_count(bank_loans)),
        ("money lent, US$ M", per_seed_sum(base_loans), per_seed_sum(bank_loans)),
        ("construction starts", construction(base), construction(bank)),
        (
            "capacity Dec 2030, t/yr",
            value_at(base.series, 0, "capacity_domestic_nameplate_t", "2030-12"),
            value_at(bank.series, 0, "capacity_domestic_nameplate_t", "2030-12"),
        ),
        (
            "capacity at the end, t/yr",
            value_at(base.series, 0, "capacity_domestic_nameplate_t", None),
            value_at(bank.series, 0, "capacity_domestic_nameplate_t", None),
        ),
        (
            "projects in financing or construction at the end",
            value_at(base.series, 0, "miners_construction", None)
            + value_at(base.series, 0, "miners_financing", None),
            value_at(bank.series, 0, "miners_construction", None)
            + value_at(bank.series, 0, "miners_financing", None),
        ),
    ]
    for label, off, on in metrics:
        rows.append([label, fmt(off.mean()), fmt(on.mean()), fmt_diff(paired(on, off))])
    n = len(seeds)
    crowd = md_table(
        ["per run (mean of seeds)", "baseline", "bank_initiative", "difference [95% CI]"], rows
    )
    crowd += "\n\n" + md_table(
        ["projects with a bank loan, per run", "mean", "min-max"],
        [
            [
                "financed with and without the programme (the programme changes the terms)",
                f"{np.mean(counts['both']):.1f}",
                f"{min(counts['both'])}-{max(counts['both'])}",
            ],
            [
                "financed only with the programme (crowded in)",
                f"{np.mean(counts['only_programme']):.1f}",
                f"{min(counts['only_programme'])}-{max(counts['only_programme'])}",
            ],
            [
                "financed only without the programme (crowded out)",
                f"{np.mean(counts['only_without']):.1f}",
                f"{min(counts['only_without'])}-{max(counts['only_without'])}",
            ],
        ],
    )
    if extra:
        listed = "; ".join(
            f"{name} ({len(years)} of {n} seeds, first loan "
            + (min(years) if min(years) == max(years) else f"{min(years)}-{max(years)}")
            + ")"
            for name, years in sorted(extra.items(), key=lambda kv: -len(kv[1]))
        )
        crowd += f"\n\nCrowded in: {listed}."

    # predation: what it does with and without the programme (grid order of the sweep)
    points = {
        (bool(p["policy.bank_initiative"]), bool(p["foreign.predatory_pricing"])): i
        for i, p in enumerate(point_overrides(bvp))
    }
    pred_rows = []
    pred_metrics: list[tuple[str, Callable[[int], pd.Series]]] = [
        ("bank loans outstanding at the end, US$ M", lambda i: value_at(bvp.series, i, "bank_loans_musd", None)),
        ("bank equity stakes at the end (marked), US$ M", lambda i: value_at(bvp.series, i, "bank_equity_musd", None)),
        ("bank losses to date, US$ M", lambda i: by_seed(bvp.summary, i, "bank_losses_musd")),
        ("bank loans signed", lambda i: per_seed_count(loans(bvp, i))),
        ("domestic capacity at the end, t/yr", lambda i: by_seed(bvp.summary, i, "capacity_domestic_end_t")),
        ("miners defaulted", lambda i: by_seed(bvp.summary, i, "miners_defaulted")),
        ("domestic miners' market value at the end, US$ M", lambda i: by_seed(bvp.summary, i, "miner_equity_value_end_musd")),
        ("mean landed NdPr price, US$/kg", lambda i: by_seed(bvp.summary, i, "mean_price_landed_ndpr")),
    ]  # fmt: skip
    for label, get in pred_metrics:
        cells = [label]
        for programme in (False, True):
            calm, pred = points[(programme, False)], points[(programme, True)]
            cells.append(fmt(get(calm).mean()))
            cells.append(fmt_diff(paired(get(pred), get(calm))))
        pred_rows.append(cells)
    predation = md_table(
        [
            "mean of seeds",
            "programme off, no predation",
            "predation's effect, programme off [95% CI]",
            "programme on, no predation",
            "predation's effect, programme on [95% CI]",
        ],
        pred_rows,
    )
    months_pred = predation_months(bvp, points[(True, True)])
    predation += f"\n\nWith the programme on, predatory pricing was in force {months_pred} of the run's months (median [min-max] across seeds)."
    _figure_bank(base, bank, bvp, floor, points, figures / "guide_bank.png")
    return {"q3_crowding": crowd, "q3_predation": predation}


def predation_months(res: Results, point: int) -> str:
    """Months with predatory pricing in force, per seed (from its start/end events)."""
    ev = res.events[(res.events["point"] == point) & (res.events["kind"] == "predation")]
    last = int(res.series["month"].max()) + 1
    counts = []
    for seed in sorted(res.summary.loc[res.summary["point"] == point, "seed"]):
        rows = ev[ev["seed"] == seed].sort_values("month")
        total, since = 0, None
        for month, detail in zip(rows["month"], rows["detail"], strict=True):
            if detail.endswith("starts"):
                since = int(month)
            elif since is not None:
                total += int(month) - since
                since = None
        if since is not None:
            total += last - since
        counts.append(total)
    return _range(pd.Series(counts, dtype=float))


def _figure_bank(
    base: Results,
    bank: Results,
    bvp: Results,
    floor: Results,
    points: dict[tuple[bool, bool], int],
    path: Path,
) -> None:
    fig = _figure(12, 8.2)
    axes = fig.subplots(2, 2)
    blue, orange = "#1f77b4", "#ff7f0e"
    # (a) capacity and pipeline, baseline vs programme
    ax = axes[0, 0]
    for res, colour, label in ((base, blue, "baseline"), (bank, orange, "bank_initiative")):
        mean = _mean_path(res.series, 0, "capacity_domestic_nameplate_t")
        low, high = _band(res.series, 0, "capacity_domestic_nameplate_t")
        x = _dates(mean)
        ax.plot(x, mean.to_numpy(), color=colour, label=label, lw=2 if res is base else 1.4)
        ax.fill_between(x, low.to_numpy(), high.to_numpy(), color=colour, alpha=0.12, lw=0)
    gap = (
        bank.series.set_index(["seed", "month"])["capacity_domestic_nameplate_t"]
        - base.series.set_index(["seed", "month"])["capacity_domestic_nameplate_t"]
    ).abs()
    ax.text(
        0.98,
        0.04,
        f"largest gap on any seed and month: {gap.max():,.0f} t/yr",
        transform=ax.transAxes,
        ha="right",
        fontsize=8,
    )
    ax.set_title("(a) Domestic separation capacity (nameplate)")
    ax.set_ylabel("t REO per year")
    _thousands(ax)
    ax.legend(fontsize=8, loc="upper left")
    ax = axes[0, 1]
    for res, colour, label in ((base, blue, "baseline"), (bank, orange, "bank_initiative")):
        rows = res.series
        pipe = (rows["miners_financing"] + rows["miners_construction"]).groupby(rows["date"]).mean()
        build = rows.groupby("date")["miners_construction"].mean()
        ax.plot(
            _dates(pipe), pipe.to_numpy(), color=colour, label=f"{label}: financing + construction"
        )
        ax.plot(
            _dates(build), build.to_numpy(), color=colour, ls=":", label=f"{label}: construction"
        )
    ax.set_title("(b) Projects seeking finance or being built (mean of seeds)")
    ax.set_ylabel("projects")
    ax.legend(fontsize=8, loc="upper left")
    # (c) the bank's book with and without predation
    ax = axes[1, 0]
    for (programme, pred), i in sorted(points.items()):
        if not programme:
            continue
        colour = "#d62728" if pred else orange
        label = "predation" if pred else "no predation"
        loans_ = _mean_path(bvp.series, i, "bank_loans_musd")
        equity = _mean_path(bvp.series, i, "bank_equity_musd")
        ax.plot(
            _dates(loans_), loans_.to_numpy(), color=colour, label=f"loans outstanding, {label}"
        )
        ax.plot(
            _dates(equity), equity.to_numpy(), color=colour, ls=":", label=f"equity stakes, {label}"
        )
    ax.set_title("(c) The bank's rare-earth book, programme on")
    ax.set_ylabel("US$ million")
    ax.legend(fontsize=8, loc="upper left")
    # (d) predation against a price floor: capacity and who pays
    ax = axes[1, 1]
    overrides = point_overrides(floor)
    labels, caps, costs = [], [], []
    for i, over in enumerate(overrides):
        floor_on = over.get("policy.price_floor.ndpr") is not None
        pred = bool(over.get("foreign.predatory_pricing"))
        labels.append(("floor" if floor_on else "no floor") + (" +\npredation" if pred else ""))
        caps.append(by_seed(floor.summary, i, "capacity_domestic_end_t").mean())
        costs.append(by_seed(floor.summary, i, "floor_payments_musd").mean())
    x = np.arange(len(labels))
    ax.bar(x - 0.2, caps, 0.4, color="#2c7fb8", label="capacity at the end, t/yr (left)")
    ax.set_ylabel("t REO per year")
    _thousands(ax)
    ax2 = ax.twinx()
    ax2.bar(x + 0.2, costs, 0.4, color="#e6550d", label="floor payments, US$ M (right)")
    ax2.set_ylabel("US$ million")
    ax2.yaxis.set_major_formatter(ax.yaxis.get_major_formatter())
    ax.set_xticks(x, labels, fontsize=8)
    ax.set_title("(d) price_floor_vs_predation: NdPr floor US$110/kg (mean of seeds)")
    handles = ax.get_legend_handles_labels()
    handles2 = ax2.get_legend_handles_labels()
    ax.legend(handles[0] + handles2[0], handles[1] + handles2[1], fontsize=8, loc="upper left")
    ax.set_ylim(0, max(caps) * 1.35)
    ax2.set_ylim(0, max(*costs, 1.0) * 1.35)
    for a in (axes[0, 0], axes[0, 1], axes[1, 0]):
        a.set_xlabel("date")
        a.grid(alpha=0.3)
    n = base.series["seed"].nunique()
    fig.suptitle(
        f"Question 3: the bank's programme, and predatory pricing, {n} seeds per setting "
        "(lines: mean; bands: 5th-95th percentile)",
        fontsize=11,
    )
    _save(fig, path)


# --------------------------------------------------------------------------------- the guide
MARKER = re.compile(
    r"(?P<open><!-- guide:(?P<kind>\w+) (?P<name>[^\s>]+) -->\n)(?P<body>.*?)(?P<close><!-- /guide -->)",
    re.DOTALL,
)


def blocks() -> dict[str, list[Step]]:
    """Steps grouped by the block that shows them, in order."""
    out: dict[str, list[Step]] = {}
    for step in STEPS:
        out.setdefault(step.block, []).append(step)
    return out


def render(
    outcomes: dict[str, Outcome], tables: dict[str, str], setup: Setup, stamp: str
) -> dict[tuple[str, str], str]:
    """Every generated region, keyed by (kind, name)."""
    regions: dict[tuple[str, str], str] = {("stamp", "run"): stamp}
    for name, steps in blocks().items():
        regions[("commands", name)] = "```sh\n" + "\n".join(s.command for s in steps) + "\n```"
    for step in STEPS:
        if step.show != "none" and step.id in outcomes:
            regions[("output", step.id)] = "```text\n" + excerpt(outcomes[step.id], setup) + "\n```"
    for name, text in EXAMPLES.items():
        regions[("file", name)] = f"```toml\n# {name}\n{text.rstrip()}\n```"
    for name, table in tables.items():
        regions[("table", name)] = table
    return regions


def splice(text: str, regions: dict[tuple[str, str], str]) -> tuple[str, list[str]]:
    """Fill the marked regions of the guide; return the text and the names it lacks."""
    seen: set[tuple[str, str]] = set()

    def fill(match: re.Match[str]) -> str:
        key = (match["kind"], match["name"])
        if key not in regions:
            msg = f"docs/guide.md marks <!-- guide:{key[0]} {key[1]} -->, which tools/guide.py does not make"
            raise GuideError(msg)
        seen.add(key)
        return match["open"] + regions[key].rstrip("\n") + "\n" + match["close"]

    new = MARKER.sub(fill, text)
    missing = sorted(f"{k} {n}" for k, n in set(regions) - seen)
    return new, missing


def git_stamp(quick: bool) -> str:
    """When, from which commit, at which size."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "--short=12", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--untracked-files=no")
    size = (
        f"quick check: {QUICK_SEEDS} seeds, {QUICK_MONTHS} months, {QUICK_MANUFACTURERS} manufacturers (not the guide's numbers)"
        if quick
        else f"{FULL_SEEDS} seeds, the scenarios' full horizons"
    )
    return (
        f"*Output and figures below: `python tools/guide.py` run on "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, commit `{commit}`"
        + (" with uncommitted changes" if dirty else "")
        + f", {size}. Run times and folder names will differ on your machine.*"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="2 seeds, 30 months, 100 manufacturers: checks only"
    )
    parser.add_argument("--out", type=Path, default=None, help=f"results folder (default {OUT})")
    parser.add_argument("--figures", type=Path, default=None, help="figures folder")
    parser.add_argument("--guide", type=Path, default=None, help="the guide to update")
    parser.add_argument(
        "--no-run", action="store_true", help="reuse --out's results: redo tables and figures"
    )
    parser.add_argument(
        "--subprocess", action="store_true", help="run the resim executable, not its main()"
    )
    args = parser.parse_args(argv)
    if args.quick and (args.out is None or args.figures is None):
        parser.error("--quick needs --out and --figures (its results are not the guide's)")
    out = (args.out or ROOT / OUT).resolve()
    figures = (args.figures or FIGURES).resolve()
    guide = args.guide if args.guide is not None else (None if args.quick else GUIDE)
    setup = Setup(out, args.quick, args.subprocess)
    outcomes: dict[str, Outcome] = {}
    outputs = out / "outputs.json"
    try:
        if args.no_run:
            saved = json.loads(outputs.read_text())
            stamp = saved.pop("_stamp")
            for step in STEPS:
                if step.id in saved:
                    outcomes[step.id] = Outcome(step, [], *saved[step.id])
        else:
            prepare_out(out)
            stamp = git_stamp(args.quick)
            for step in STEPS:
                print(f"[guide] {step.command}", file=sys.stderr, flush=True)
                outcomes[step.id] = run_step(step, setup)
            outputs.write_text(
                json.dumps(
                    {
                        "_stamp": stamp,
                        **{k: [o.status, o.stdout, o.stderr] for k, o in outcomes.items()},
                    },
                    indent=1,
                )
            )
        tables = {}
        for question in (question1, question2, question3):
            tables.update(question(out, figures))
    except GuideError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    regions = render(outcomes, tables, setup, stamp)
    (out / "tables.md").write_text(
        "\n\n".join(f"## {name}\n\n{table}" for name, table in tables.items()) + "\n"
    )
    if guide is not None:
        text = guide.read_text(encoding="utf-8")
        try:
            new, missing = splice(text, regions)
        except GuideError as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
        if missing:
            print(f"error: {guide} lacks the regions: {', '.join(missing)}", file=sys.stderr)
            return 1
        guide.write_text(new, encoding="utf-8")
        print(f"[guide] updated {guide}", file=sys.stderr)
    print(f"[guide] results in {out}, figures in {figures}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
