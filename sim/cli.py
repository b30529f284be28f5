"""The ``resim`` command line: scenarios, check, run.

Exit status: 0 success; 2 bad input (a message naming the file, the key and what is allowed; no
traceback; nothing written) or an output folder that cannot be written (read-only, full disk:
earlier results are left as they were); 1 an internal error, failed runs, or a lost Dask cluster
(finished runs are kept; ``--resume`` goes on).
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import logging
import re
import shutil
import sys
import time
from collections.abc import Sequence
from concurrent.futures import CancelledError
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from sim.params import PRODUCTS, Scenario
from sim.results import (
    events_frame,
    file_sha256,
    git_commit,
    input_files,
    manifest,
    remove_stale_staging,
    staging_folder,
    summarize,
    versions,
    write_json,
    write_parquet,
)
from sim.runner import run_id, simulate_with_events, with_months
from sim.scenario import (
    MAX_SEED,
    SCENARIO_DIR,
    ScenarioError,
    load_scenario,
    projects_path,
    read_toml,
    resolved_dict,
    set_dotted,
    validate,
)

console = Console(stderr=False)
err_console = Console(stderr=True)


# OS errors that mean "this output cannot be written here", not a bug.
WRITE_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG}
)


class InputError(Exception):
    """Bad command-line input that is not a scenario problem."""


def _error(text: str) -> None:
    """Print an error; the text is shown as is (never read as rich markup: ``[sweep]`` stays)."""
    err_console.print(f"[red]error:[/red] {escape(text)}", highlight=False, soft_wrap=True)


def safe_name(name: str) -> str:
    """A scenario or sweep name as one short, harmless path component."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "unnamed"
    return cleaned[:80]


def _check_out(out: Path, flag: str = "--out") -> None:
    """An ``--out`` that exists must be a folder."""
    if out.exists() and not out.is_dir():
        msg = f"{flag} {out}: exists and is not a folder; choose a folder"
        raise InputError(msg)


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
            table.add_row(path.stem, "?", f"[red]unreadable: {escape(err.problem)}[/red]")
            continue
        kind = "sweep" if "sweep" in data else "scenario"
        desc = data.get("scenario", data.get("sweep", {})).get("description", "")
        table.add_row(path.stem, kind, escape(str(desc)))
    console.print(table)
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """Validate a scenario and print its resolved parameters."""
    scenario = load_scenario(args.scenario, parse_sets(args.set))
    print(json.dumps(resolved_dict(scenario), indent=2))
    console.print(
        f"[green]{escape(str(args.scenario))}: valid[/green] ({scenario.scenario.months} months from {scenario.scenario.start})"
    )
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """Run N seeds of a scenario (or the runs a manifest records) into a results folder."""
    if args.from_manifest is not None:
        return _run_from_manifest(args)
    if args.scenario is None:
        msg = "give a scenario (a name in scenarios/ or a .toml path), or --from-manifest"
        raise InputError(msg)
    n_seeds = 1 if args.seeds is None else args.seeds
    first = 1 if args.seed is None else args.seed
    if n_seeds < 1:
        msg = f"--seeds {n_seeds}: must be at least 1"
        raise InputError(msg)
    if not 0 <= first <= MAX_SEED - (n_seeds - 1):
        msg = f"--seed {first}: seeds must be whole numbers from 0 to {MAX_SEED} (with --seeds {n_seeds}, at most {MAX_SEED - n_seeds + 1})"
        raise InputError(msg)
    if args.months is not None and not 1 <= args.months <= 1200:
        msg = f"--months {args.months}: must be between 1 and 1200"
        raise InputError(msg)
    scenario = with_months(load_scenario(args.scenario, parse_sets(args.set)), args.months)
    seeds = [first + i for i in range(n_seeds)]
    return _run_seeds(args, scenario, seeds)


def _run_seeds(
    args: argparse.Namespace,
    scenario: Scenario,
    seeds: list[int],
    *,
    reproduces: str | None = None,
    expected: dict[int, str] | None = None,
) -> int:
    """Run ``seeds`` of ``scenario`` and write the results folder (staged, moved in at once)."""
    name = scenario.scenario.name
    suffix = "_rerun" if reproduces else ""
    out = (
        Path(args.out)
        if args.out
        else Path("results") / f"{safe_name(name)}{suffix}_{datetime.now(UTC):%Y%m%d-%H%M%S}"
    )
    _check_out(out)
    if out.exists() and any(out.iterdir()) and not args.overwrite:
        msg = f"--out {out}: folder exists and is not empty; choose another or pass --overwrite"
        raise InputError(msg)
    for seed in seeds:
        rid = run_id(scenario, seed)
        if expected is not None and expected.get(seed) not in (None, rid):
            raise ScenarioError(
                str(reproduces),
                "parameters",
                f"resolve to run id {rid} for seed {seed}, but the manifest lists {expected[seed]}: "
                "the manifest was edited, or written by a version that resolves parameters "
                "differently; it cannot be reproduced",
            )
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
    created = _missing_parents(out)
    staging: Path | None = None
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_staging(out)  # what a killed run to the same --out left behind
        staging = staging_folder(out)
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
                inputs=input_files(scenario),
                reproduces=reproduces,
            ),
            staging / "manifest.json",
        )
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    except BaseException:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        for folder in created:  # folders this run made for --out, now empty again
            try:
                folder.rmdir()
            except OSError:
                break
        raise
    _headline(summary, name, len(seeds), elapsed)
    console.print(f"Results in [bold]{escape(str(out))}[/bold]")
    return 0


def _missing_parents(out: Path) -> list[Path]:
    """Parents of ``out`` that do not exist yet, deepest first."""
    missing = []
    for parent in out.absolute().parents:
        if parent.exists():
            break
        missing.append(parent)
    return missing


# ------------------------------------------------------------------------- --from-manifest
def _manifest_file(text: str) -> Path:
    path = Path(text)
    return path / "manifest.json" if path.is_dir() else path


def _read_manifest(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ScenarioError(
            str(path), "", "no such manifest (give a results folder or its manifest.json)"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ScenarioError(str(path), "", f"unreadable manifest ({err})") from None
    if not isinstance(data, dict):
        raise ScenarioError(str(path), "", "not a resim manifest (not a JSON object)")
    from sim.results import FORMAT_VERSION

    if data.get("format_version") != FORMAT_VERSION:
        raise ScenarioError(
            str(path),
            "format_version",
            f"got {data.get('format_version')!r}; this resim reads format_version {FORMAT_VERSION}",
        )
    if data.get("kind") not in ("run", "sweep"):
        raise ScenarioError(str(path), "kind", f"got {data.get('kind')!r}; allowed: 'run', 'sweep'")
    for key, kind in (("parameters", dict), ("runs", list)):
        if not isinstance(data.get(key), kind):
            raise ScenarioError(str(path), key, f"missing or not a {kind.__name__}")
    return data


def _manifest_runs(path: Path, data: dict[str, Any]) -> list[dict[str, Any]]:
    runs = []
    for i, run in enumerate(data["runs"]):
        ok = (
            isinstance(run, dict)
            and isinstance(run.get("run_id"), str)
            and isinstance(run.get("seed"), int)
            and not isinstance(run.get("seed"), bool)
            and 0 <= run["seed"] <= MAX_SEED
        )
        if not ok:
            raise ScenarioError(
                str(path), f"runs[{i}]", f"got {str(run)[:80]}; each run needs a run_id and a seed"
            )
        runs.append(run)
    return runs


def _manifest_scenario(path: Path, data: dict[str, Any], run: dict[str, Any]) -> Scenario:
    """The resolved parameters of a manifest (plus a sweep point's overrides), validated."""
    params = json.loads(json.dumps(data["parameters"]))
    origin = f"{path} (parameters)"
    if data["kind"] == "sweep":
        points = data.get("points")
        point = run.get("point")
        if (
            not isinstance(points, list)
            or not isinstance(point, int)
            or not 0 <= point < len(points)
        ):
            raise ScenarioError(
                str(path), "points", f"has no point {point!r} for run {run['run_id']}"
            )
        entry = points[point]
        overrides = entry.get("overrides") if isinstance(entry, dict) else None
        if not isinstance(overrides, dict):
            raise ScenarioError(str(path), f"points[{point}].overrides", "missing or not a table")
        origin = f"{path} (parameters with points[{point}].overrides)"
        for key, value in overrides.items():
            set_dotted(params, key, value, origin)
    return validate(params, origin)


def _run_from_manifest(args: argparse.Namespace) -> int:
    """``resim run --from-manifest``: rerun what a manifest records, bit for bit."""
    given = [
        flag
        for flag, value in (
            ("a scenario", args.scenario),
            ("--set", args.set),
            ("--months", args.months),
            ("--seeds", args.seeds),
            ("--seed", args.seed),
        )
        if value not in (None, [])
    ]
    if given:
        msg = f"--from-manifest reruns exactly what the manifest records; drop {', '.join(given)}"
        raise InputError(msg)
    path = _manifest_file(args.from_manifest)
    data = _read_manifest(path)
    runs = _manifest_runs(path, data)
    if args.run is not None:
        runs = [r for r in runs if r["run_id"] == args.run]
        if not runs:
            raise ScenarioError(str(path), "runs", f"has no run {args.run!r} (--run)")
    elif data["kind"] == "sweep":
        ids = ", ".join(r["run_id"] for r in data["runs"][:3])
        msg = f"--from-manifest {path}: a sweep manifest; choose one of its {len(runs)} runs with --run (e.g. {ids})"
        raise InputError(msg)
    if not runs:
        raise ScenarioError(str(path), "runs", "lists no runs")
    scenario = _manifest_scenario(path, data, runs[0])
    inputs = data.get("inputs") or {}
    recorded = (inputs.get("population.miners_file") or {}).get("sha256")
    now = file_sha256(projects_path(scenario))
    if recorded and recorded != now:
        raise ScenarioError(
            str(path),
            "inputs.population.miners_file",
            f"{projects_path(scenario)} has changed since the run (its SHA-256 was {recorded[:12]}..., "
            f"now {str(now)[:12]}...); restore that file to reproduce the run",
        )
    _version_notes(data)
    seeds = sorted({int(r["seed"]) for r in runs})
    expected = {int(r["seed"]): str(r["run_id"]) for r in runs}
    return _run_seeds(args, scenario, seeds, reproduces=str(path), expected=expected)


def _version_notes(data: dict[str, Any]) -> None:
    """Say where the rerun's code differs from the one that wrote the manifest."""
    recorded = data.get("versions")
    then: dict[str, Any] = recorded if isinstance(recorded, dict) else {}
    now = versions()
    differ = [
        f"{k} {then[k]} -> {now.get(k, 'absent')}"
        for k in sorted(then)
        if then[k] != now.get(k, "absent")
    ]
    commit = git_commit()
    if data.get("git_commit") and commit and data["git_commit"] != commit:
        differ.insert(0, f"git commit {str(data['git_commit'])[:12]} -> {commit[:12]}")
    if data.get("git_dirty"):
        differ.insert(0, "the run was made from a source tree with uncommitted changes")
    if differ:
        err_console.print(
            "note: results may differ from the manifest's: " + escape("; ".join(differ[:6])),
            highlight=False,
            soft_wrap=True,
        )


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
    if args.scheduler:
        # The Dask client logs a traceback for each failed reconnection; a lost cluster is
        # reported once, below, with how to resume. (Importing distributed sets its log levels.)
        with contextlib.suppress(ImportError):
            import distributed  # noqa: F401
        logging.getLogger("distributed.client").setLevel(logging.CRITICAL)
    workers = args.workers or os.cpu_count() or 1
    out = Path(args.out) if args.out else Path("results") / safe_name(plan.spec.name)
    _check_out(out)
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
                escape(
                    f"interrupted. Finished runs are kept in {out}; resume with:\n  resim sweep {args.sweep} --out {out} --resume"
                )
            )
            return 130
        except Exception as exc:
            if not args.scheduler or not _lost_cluster(exc):
                raise
            bar.stop()
            _error(
                f"--scheduler {args.scheduler}: the sweep lost its Dask cluster "
                f"({type(exc).__name__}: {exc}). Finished runs are kept in {out}; "
                f"resume with: resim sweep {args.sweep} --out {out} --resume [--scheduler ADDRESS]"
            )
            return 1
    if outcome.rerun:
        name, problem = next(iter(outcome.rerun.items()))
        err_console.print(
            escape(
                f"note: {len(outcome.rerun)} run(s) in {out} had a damaged file and were run "
                f"again (e.g. {name}: {problem})"
            ),
            highlight=False,
            soft_wrap=True,
        )
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
    console.print(f"Results in [bold]{escape(str(out))}[/bold]")
    if outcome.failed:
        err_console.print(
            f"[red]{outcome.failed} run(s) failed[/red]: "
            + escape(
                f"see the manifest and {out / 'errors'}; rerun them with --resume"
                + _first_error(out)
            ),
            highlight=False,
            soft_wrap=True,
        )
        return 1
    return 0


def _lost_cluster(exc: BaseException) -> bool:
    """Whether ``exc`` is the Dask cluster going away (not a bug in the sweep)."""
    if isinstance(exc, OSError) and exc.errno in WRITE_ERRNOS:
        return False
    module = type(exc).__module__ or ""
    return isinstance(exc, CancelledError | ConnectionError | TimeoutError) or module.startswith(
        ("distributed", "dask")
    )


def _first_error(out: Path) -> str:
    """The first failed run's error from the manifest (e.g. a full disk), if readable."""
    try:
        data = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
        errors = [r.get("error") for r in data.get("runs", []) if r.get("status") == "failed"]
    except (OSError, ValueError, AttributeError, TypeError):
        return ""
    first = next((e for e in errors if e), "")
    return f" (first error: {first})" if first else ""


def cmd_viz(args: argparse.Namespace) -> int:
    """Serve the live browser app (viz/app.py); 127.0.0.1 unless --host says otherwise."""
    from viz.server import serve

    return int(serve(args.port, args.host))


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
    run.add_argument("scenario", nargs="?", default=None)
    run.add_argument("--seeds", type=int, default=None, help="number of seeds (default 1)")
    run.add_argument("--seed", type=int, default=None, help="first seed (default 1)")
    run.add_argument("--months", type=int, default=None, help="override the horizon")
    run.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override a scenario key"
    )
    run.add_argument(
        "--out", default=None, help="results folder (default results/<scenario>_<time>)"
    )
    run.add_argument("--overwrite", action="store_true", help="replace an existing --out folder")
    run.add_argument(
        "--from-manifest",
        default=None,
        metavar="MANIFEST",
        help="rerun what a results folder's manifest.json records (the folder or the file), bit for bit",
    )
    run.add_argument(
        "--run", default=None, metavar="RUN_ID", help="with --from-manifest: only this run"
    )
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
    viz = sub.add_parser("viz", help="serve the live browser app (on 127.0.0.1 by default)")
    viz.add_argument("--port", type=int, default=8765, help="port (default 8765)")
    viz.add_argument("--host", default="127.0.0.1", help="address to bind (warns unless loopback)")
    viz.set_defaults(func=cmd_viz)
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
    except (ScenarioError, InputError) as err:
        _error(str(err))
        return 2
    except OSError as err:
        if err.errno not in WRITE_ERRNOS:
            raise
        _error(_write_failure(args, err))
        return 2
    except KeyboardInterrupt:
        err_console.print("interrupted; nothing was written")
        return 130


def _write_failure(args: argparse.Namespace, err: OSError) -> str:
    """The message for an output that cannot be written: where, why, and what is left as it was."""
    reason = err.strerror or str(err)
    where = f" ({err.filename})" if err.filename else ""
    out = getattr(args, "out", None)
    if args.command == "sweep":
        target = out or "the sweep folder"
        return (
            f"--out {target}: cannot write{where}: {reason}. Runs finished before are kept and "
            f"intact; make room (or make the folder writable) and resume with: "
            f"resim sweep {args.sweep} --out {target} --resume"
        )
    target = out or "the default results folder"
    return (
        f"--out {target}: cannot write{where}: {reason}. Nothing was written or replaced; "
        "results already there are as they were"
    )


if __name__ == "__main__":
    sys.exit(main())
