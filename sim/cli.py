"""The ``resim`` command line: scenarios, check, run.

Exit status: 0 success; 2 bad input (a message naming the file, the key and what is allowed; no
traceback; nothing written); 1 an internal error.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table

from sim.params import PRODUCTS
from sim.results import events_frame, manifest, summarize, write_json, write_parquet
from sim.runner import run_id, simulate_with_events, with_months
from sim.scenario import SCENARIO_DIR, ScenarioError, load_scenario, read_toml, resolved_dict

console = Console(stderr=False)
err_console = Console(stderr=True)


class InputError(Exception):
    """Bad command-line input that is not a scenario problem."""


def parse_sets(items: Sequence[str]) -> dict[str, str]:
    """``KEY=VALUE`` pairs from ``--set``."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            msg = f"--set {item!r}: expected KEY=VALUE, e.g. policy.tariff.ndpr=1.0"
            raise InputError(msg)
        out[key.strip()] = value.strip()
    return out


def cmd_scenarios(_: argparse.Namespace) -> int:
    """List scenario files with their descriptions."""
    table = Table(title=f"Scenarios in {SCENARIO_DIR}")
    table.add_column("name")
    table.add_column("kind")
    table.add_column("description")
    for path in sorted(SCENARIO_DIR.glob("*.toml")):
        try:
            data = read_toml(path)
        except ScenarioError as err:
            table.add_row(path.stem, "?", f"[red]unreadable: {err.problem}[/red]")
            continue
        kind = "sweep" if "sweep" in data else "scenario"
        desc = data.get("scenario", data.get("sweep", {})).get("description", "")
        table.add_row(path.stem, kind, str(desc))
    console.print(table)
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """Validate a scenario and print its resolved parameters."""
    scenario = load_scenario(args.scenario, parse_sets(args.set))
    print(json.dumps(resolved_dict(scenario), indent=2))
    console.print(
        f"[green]{args.scenario}: valid[/green] ({scenario.scenario.months} months from {scenario.scenario.start})"
    )
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """Run N seeds of a scenario into a results folder."""
    if args.seeds < 1:
        msg = f"--seeds {args.seeds}: must be at least 1"
        raise InputError(msg)
    if args.months is not None and not 1 <= args.months <= 1200:
        msg = f"--months {args.months}: must be between 1 and 1200"
        raise InputError(msg)
    scenario = with_months(load_scenario(args.scenario, parse_sets(args.set)), args.months)
    name = scenario.scenario.name
    out = (
        Path(args.out)
        if args.out
        else Path("results") / f"{name}_{datetime.now(UTC):%Y%m%d-%H%M%S}"
    )
    if out.exists() and any(out.iterdir()) and not args.overwrite:
        msg = f"--out {out}: folder exists and is not empty; choose another or pass --overwrite"
        raise InputError(msg)
    seeds = [args.seed + i for i in range(args.seeds)]
    started = datetime.now(UTC)
    frames, events, runs = [], [], []
    t0 = time.perf_counter()
    for seed in seeds:
        rid = run_id(scenario, seed)
        frame, run_events = simulate_with_events(scenario, seed)
        frames.append(frame)
        events.extend(run_events)
        runs.append({"run_id": rid, "seed": seed, "status": "done"})
    elapsed = time.perf_counter() - t0
    timeseries = pd.concat(frames, ignore_index=True)
    summary = summarize(timeseries)
    pop = scenario.population
    counts = {
        "foreign_supplier": 1,
        "bank": 1,
        "government": 1,
        "manufacturers": pop.manufacturers,
        "miners": int(timeseries.attrs.get("miners", 0)) or _miner_count(scenario),
    }
    # Write everything into a temporary sibling folder, then move it into place in one rename.
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    try:
        write_parquet(timeseries, staging / "timeseries.parquet")
        write_parquet(summary, staging / "summary.parquet")
        write_parquet(events_frame(events), staging / "events.parquet")
        write_json(
            manifest(
                name,
                resolved_dict(scenario),
                seeds,
                scenario.scenario.months,
                counts,
                runs,
                started,
            ),
            staging / "manifest.json",
        )
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _headline(summary, name, len(seeds), elapsed)
    console.print(f"Results in [bold]{out}[/bold]")
    return 0


def _miner_count(scenario: object) -> int:
    from sim.runner import build_model

    return build_model(with_months(scenario, 1)).miners.n  # type: ignore[arg-type]


def _headline(summary: pd.DataFrame, name: str, n_seeds: int, elapsed: float) -> None:
    table = Table(
        title=f"{name}: {n_seeds} seed(s), {elapsed:.1f} s (mean \\[min-max] across seeds)"
    )
    table.add_column("metric")
    table.add_column("value", justify="right")
    metrics = [
        *(f"peak_price_landed_{p}" for p in PRODUCTS),
        *(f"mean_price_landed_{p}" for p in PRODUCTS),
        "capacity_domestic_2030_t",
        "miners_defaulted",
        "lost_output_share",
        "public_cost_musd",
        "tariff_revenue_musd",
        "bank_losses_musd",
        "max_balance_error_t",
        "max_balance_error_musd",
    ]
    for metric in metrics:
        col = summary[metric]
        table.add_row(metric, f"{col.mean():,.4g} [{col.min():,.4g}-{col.max():,.4g}]")
    console.print(table)


def cmd_sweep(args: argparse.Namespace) -> int:
    """Run every point x seed of a sweep file; resumable; local processes or a Dask cluster."""
    import os

    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from sim.sweep import headline, plan_sweep, run_sweep

    if args.workers is not None and args.workers < 1:
        msg = f"--workers {args.workers}: must be at least 1"
        raise InputError(msg)
    plan = plan_sweep(args.sweep)
    workers = args.workers or os.cpu_count() or 1
    out = Path(args.out) if args.out else Path("results") / plan.spec.name
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("failed {task.fields[failed]}"),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    started = time.perf_counter()
    with Progress(*columns, console=err_console, transient=False) as bar:
        task = bar.add_task(plan.spec.name, total=len(plan.runs), failed=0, rate="")
        first: list[int] = []

        def progress(done: int, failed: int, total: int) -> None:
            if not first:
                first.append(done + failed)
            elapsed = max(time.perf_counter() - started, 1e-9)
            rate = (done + failed - first[0]) / elapsed
            bar.update(
                task, completed=done + failed, total=total, failed=failed, rate=f"{rate:.2f} runs/s"
            )

        try:
            outcome = run_sweep(
                plan,
                out,
                workers=workers,
                scheduler=args.scheduler,
                resume=args.resume,
                progress=progress,
            )
        except KeyboardInterrupt:
            bar.stop()
            err_console.print(
                f"interrupted. Finished runs are kept in {out}; resume with:\n  resim sweep {args.sweep} --out {out} --resume"
            )
            return 130
    short = {
        "mean_price_landed_ndpr": "NdPr $/kg",
        "mean_price_landed_dytb": "DyTb $/kg",
        "capacity_domestic_2030_t": "cap 2030 t/yr",
        "miners_defaulted": "defaults",
        "lost_output_share": "lost output",
        "public_cost_musd": "public cost $M",
    }
    table_data = headline(outcome.summary, list(short))
    title = f"{plan.spec.name}: seed means per point ({outcome.done} of {outcome.total} runs done)"
    table = Table(title=title)
    table.add_column("point", justify="right")
    table.add_column("setting", overflow="fold")
    table.add_column("seeds", justify="right")
    for name in short.values():
        table.add_column(name, justify="right")
    for _, row in table_data.iterrows():
        values = [f"{row[m]:,.4g}" if m in row else "" for m in short]
        table.add_row(str(row["point"]), str(row["label"]), str(row["seeds"]), *values)
    console.print(table)
    console.print(f"Results in [bold]{out}[/bold]")
    if outcome.failed:
        err_console.print(
            f"[red]{outcome.failed} run(s) failed[/red]: see the manifest and {out / 'errors'}; rerun them with --resume"
        )
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser."""
    parser = argparse.ArgumentParser(
        prog="resim", description="Rare-earth supply-chain policy simulator"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("scenarios", help="list scenario files").set_defaults(func=cmd_scenarios)
    check = sub.add_parser("check", help="validate a scenario and print its resolved parameters")
    check.add_argument("scenario")
    check.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    check.set_defaults(func=cmd_check)
    run = sub.add_parser("run", help="run seeds of one scenario into a results folder")
    run.add_argument("scenario")
    run.add_argument("--seeds", type=int, default=1, help="number of seeds (default 1)")
    run.add_argument("--seed", type=int, default=1, help="first seed (default 1)")
    run.add_argument("--months", type=int, default=None, help="override the horizon")
    run.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override a scenario key"
    )
    run.add_argument(
        "--out", default=None, help="results folder (default results/<scenario>_<time>)"
    )
    run.add_argument("--overwrite", action="store_true", help="replace an existing --out folder")
    run.set_defaults(func=cmd_run)
    sweep = sub.add_parser("sweep", help="run every point x seed of a sweep file")
    sweep.add_argument("sweep")
    sweep.add_argument(
        "--workers", type=int, default=None, help="local worker processes (default: cores)"
    )
    sweep.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="Dask scheduler, e.g. tcp://127.0.0.1:8786",
    )
    sweep.add_argument("--out", default=None, help="results folder (default results/<sweep name>)")
    sweep.add_argument("--resume", action="store_true", help="finish an interrupted sweep in --out")
    sweep.set_defaults(func=cmd_sweep)
    from sim import compare

    comp = sub.add_parser(
        "compare", help="compare results folders (or a sweep's points) with confidence intervals"
    )
    compare.add_arguments(comp)
    comp.set_defaults(func=compare.cmd_compare)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``resim``."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on bad usage, 0 on --help
        return int(exc.code or 0)
    try:
        return int(args.func(args))
    except ScenarioError as err:
        err_console.print(f"[red]error:[/red] {err}", highlight=False, soft_wrap=True)
        return 2
    except InputError as err:
        err_console.print(f"[red]error:[/red] {err}", highlight=False, soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        err_console.print("interrupted; nothing was written")
        return 130


if __name__ == "__main__":
    sys.exit(main())
