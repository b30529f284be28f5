"""Scenario sweeps that never lose a run: designs, parallel execution, resume, results folder.

A sweep file (TOML with a ``[sweep]`` table, format in ``scenarios/tariff_sweep.toml``) names a
base scenario, the parameters to vary by the same dotted keys as ``--set``, a design (``grid``,
``list``, or the SALib samplers ``lhs``, ``sobol``, ``morris``) and seeds. Every point runs on the
same seeds (common random numbers; EMA Workbench's scenario x replication).

Each run is a pure function of its resolved parameters and seed, so results do not depend on the
number of workers or the backend. Workers write ``runs/<run_id>.parquet`` and
``events/<run_id>.parquet`` atomically; a run is finished exactly when its file exists, so a sweep
killed at any moment resumes by running what has no file. The parent keeps only summary rows.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import multiprocessing
import os
import time
import traceback
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from sim.results import (
    FORMAT_VERSION,
    atomic_write,
    events_frame,
    git_commit,
    summarize,
    versions,
    write_json,
    write_parquet,
)
from sim.runner import run_id, simulate_with_events
from sim.scenario import SCENARIO_DIR, ScenarioError, load_scenario, read_toml, resolved_dict

SCHEDULER_OPTION = "--scheduler"
# Fault-injection hooks for the test suite (documented in docs/ODD.md and tests/test_sweep.py):
FAULT_KILL_ONCE = "RESIM_FAULT_KILL_ONCE"  # seed whose first run kills its worker process
FAULT_RAISE = "RESIM_FAULT_RAISE"  # seed whose runs raise inside the model run
MAX_ATTEMPTS = 3  # a run whose worker dies this often is recorded as failed


class SweepParameter(BaseModel):
    """One swept dimension: one key or several tied keys, with values or a sampling range."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    keys: list[str] = Field(min_length=1)
    values: list[Any] | None = None
    low: float | None = None
    high: float | None = None


class SweepSpec(BaseModel):
    """A validated sweep file."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    description: str = ""
    base: str = "baseline"
    design: Literal["grid", "list", "lhs", "sobol", "morris"]
    seeds: int | list[int]
    samples: int | None = Field(None, ge=1, le=100_000)
    sample_seed: int = 0
    parameters: list[SweepParameter] = Field(default_factory=list)
    points: list[dict[str, Any]] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> SweepSpec:
        if isinstance(self.seeds, int) and not 1 <= self.seeds <= 100_000:
            msg = f"seeds must be a count between 1 and 100000 or a list of seeds, got {self.seeds}"
            raise ValueError(msg)
        if isinstance(self.seeds, list) and (
            not self.seeds or len(set(self.seeds)) != len(self.seeds)
        ):
            msg = "seeds must be a non-empty list without repeats"
            raise ValueError(msg)
        if self.design == "list":
            if not self.points:
                msg = "design 'list' needs [[sweep.points]] tables"
                raise ValueError(msg)
        elif self.design == "grid":
            if not self.parameters or any(not p.values for p in self.parameters):
                msg = "design 'grid' needs [[sweep.parameters]] each with a non-empty values list"
                raise ValueError(msg)
        else:
            if not self.parameters or any(
                p.low is None or p.high is None or p.low >= p.high for p in self.parameters
            ):
                msg = f"design {self.design!r} needs [[sweep.parameters]] each with low < high"
                raise ValueError(msg)
            if self.samples is None:
                msg = f"design {self.design!r} needs samples"
                raise ValueError(msg)
        return self

    def seed_list(self) -> list[int]:
        """The seeds every point runs."""
        return list(range(1, self.seeds + 1)) if isinstance(self.seeds, int) else list(self.seeds)

    def problem(self) -> dict[str, Any]:
        """SALib problem definition of the sampled parameters."""
        return {
            "num_vars": len(self.parameters),
            "names": [p.keys[0] for p in self.parameters],
            "bounds": [[p.low, p.high] for p in self.parameters],
        }


@dataclass(frozen=True)
class Run:
    """One run of a sweep: a point, a seed and its stable id."""

    point: int
    seed: int
    run_id: str


@dataclass
class SweepPlan:
    """A sweep file turned into points and runs."""

    spec: SweepSpec
    path: Path
    points: list[dict[str, Any]]
    runs: list[Run]
    months: int
    spec_hash: str
    labels: list[str] = field(default_factory=list)


def sweep_path(name_or_path: str | Path) -> Path:
    """Resolve a sweep stem or path."""
    candidate = Path(name_or_path)
    if candidate.suffix == ".toml" or "/" in str(name_or_path):
        if not candidate.is_file():
            raise ScenarioError(str(candidate), "", "no such sweep file")
        return candidate
    stem = SCENARIO_DIR / f"{name_or_path}.toml"
    if not stem.is_file():
        raise ScenarioError(str(name_or_path), "", "unknown sweep; `resim scenarios` lists them")
    return stem


def load_sweep(name_or_path: str | Path) -> SweepSpec:
    """Read and validate a sweep file (not its points; see ``plan_sweep``)."""
    path = sweep_path(name_or_path)
    data = read_toml(path)
    if "sweep" not in data:
        raise ScenarioError(
            str(path),
            "sweep",
            "not a sweep file: it has no [sweep] table (run it with `resim run`)",
        )
    extra = sorted(set(data) - {"sweep"})
    if extra:
        raise ScenarioError(str(path), extra[0], "unknown table; a sweep file holds only [sweep]")
    try:
        return SweepSpec.model_validate(data["sweep"])
    except ValidationError as err:
        first = err.errors()[0]
        key = "sweep." + ".".join(str(p) for p in first["loc"]) if first["loc"] else "sweep"
        problem = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            problem = f"unknown key; allowed: {', '.join(sorted(SweepSpec.model_fields))} (and keys, values, low, high in parameters)"
        raise ScenarioError(str(path), key, problem) from None


def design_points(spec: SweepSpec) -> list[dict[str, Any]]:
    """The override dictionaries of every point, in design order."""
    if spec.design == "list":
        return [dict(p) for p in spec.points]
    if spec.design == "grid":
        combos = itertools.product(*(p.values or [] for p in spec.parameters))
        return [
            {key: value for p, value in zip(spec.parameters, combo, strict=True) for key in p.keys}
            for combo in combos
        ]
    from SALib.sample import latin, morris, sobol

    problem = spec.problem()
    n = int(spec.samples or 1)
    if spec.design == "lhs":
        matrix = latin.sample(problem, n, seed=spec.sample_seed)
    elif spec.design == "sobol":
        matrix = sobol.sample(problem, n, calc_second_order=False, seed=spec.sample_seed)
    else:
        matrix = morris.sample(problem, n, seed=spec.sample_seed)
    return [
        {key: float(value) for p, value in zip(spec.parameters, row, strict=True) for key in p.keys}
        for row in matrix
    ]


def point_label(overrides: dict[str, Any]) -> str:
    """A short readable label of a point: keys that share a value are shown once, tied."""
    if not overrides:
        return "base"
    groups: dict[str, list[str]] = {}
    for key, value in overrides.items():
        shown = f"{value:.4g}" if isinstance(value, float) else str(value)
        groups.setdefault(shown, []).append(key)
    parts = []
    for shown, keys in groups.items():
        if len(keys) > 1:
            prefix = keys[0].rsplit(".", 1)[0]
            same_prefix = all(k.rsplit(".", 1)[0] == prefix for k in keys)
            name = (
                f"{prefix}.{{{','.join(k.rsplit('.', 1)[1] for k in keys)}}}"
                if same_prefix
                else "+".join(keys)
            )
        else:
            name = keys[0]
        parts.append(f"{name}={shown}")
    return ", ".join(parts)


def plan_sweep(name_or_path: str | Path) -> SweepPlan:
    """Validate every point against the scenario schema and list the runs."""
    spec = load_sweep(name_or_path)
    path = sweep_path(name_or_path)
    points = design_points(spec)
    runs: list[Run] = []
    months = 0
    for i, overrides in enumerate(points):
        try:
            scenario = load_scenario(spec.base, overrides)
        except ScenarioError as err:
            where = "parameters" if spec.design != "list" else "points"
            raise ScenarioError(
                str(path), f"sweep.{where} (point {i}: {err.key})", err.problem
            ) from None
        months = scenario.scenario.months
        runs.extend(Run(i, seed, run_id(scenario, seed)) for seed in spec.seed_list())
    payload = json.dumps(spec.model_dump(mode="json"), sort_keys=True)
    spec_hash = hashlib.sha256(payload.encode()).hexdigest()[:16]
    return SweepPlan(spec, path, points, runs, months, spec_hash, [point_label(p) for p in points])


# ----------------------------------------------------------------------------- execution
@functools.lru_cache(maxsize=256)
def _scenario(base: str, overrides_json: str) -> Any:
    return load_scenario(base, json.loads(overrides_json))


def run_one(
    base: str,
    overrides_json: str,
    seed: int,
    rid: str,
    out: str,
    faults: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Run one point x seed in a worker; write its files atomically; never raise."""
    started = time.perf_counter()
    faults = faults or {}
    _inject_faults(seed, out, faults)
    try:
        if faults.get(FAULT_RAISE) == str(seed):
            msg = f"fault injected by {FAULT_RAISE}={seed}"
            raise RuntimeError(msg)
        frame, events = simulate_with_events(_scenario(base, overrides_json), seed)
        frame["run_id"] = rid
        events_df = events_frame([{**e, "run_id": rid} for e in events])
        root = Path(out)
        write_parquet(events_df, root / "events" / f"{rid}.parquet")
        write_parquet(frame, root / "runs" / f"{rid}.parquet")  # last: its presence means done
        return {"run_id": rid, "status": "done", "seconds": time.perf_counter() - started}
    except Exception as exc:
        return {
            "run_id": rid,
            "status": "failed",
            "error": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc(),
        }


def _inject_faults(seed: int, out: str, faults: dict[str, str]) -> None:
    """Fault injection for tests: kill this worker once, at a run of the given seed."""
    target = faults.get(FAULT_KILL_ONCE)
    if target and target == str(seed):
        flag = Path(out) / ".fault_killed"
        if not flag.exists():
            flag.touch()
            os._exit(137)


def run_batch(
    base: str, tasks: list[tuple[str, int, str]], out: str, faults: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """Run several (overrides_json, seed, run_id) tasks in one worker call."""
    return [
        run_one(base, overrides_json, seed, rid, out, faults) for overrides_json, seed, rid in tasks
    ]


def fault_settings() -> dict[str, str]:
    """Fault-injection hooks set in the parent's environment.

    They are passed to workers explicitly: worker processes may have started before they were set.
    """
    return {name: os.environ[name] for name in (FAULT_KILL_ONCE, FAULT_RAISE) if name in os.environ}


class SweepFolderError(ScenarioError):
    """A results folder that cannot be resumed or written."""


def _write_text(tmp: Path, text: str) -> None:
    tmp.write_text(text)


def _manifest_path(out: Path) -> Path:
    return out / "manifest.json"


def check_folder(plan: SweepPlan, out: Path, resume: bool) -> None:
    """Refuse an out folder that holds something else, or a finished folder without --resume."""
    manifest = _manifest_path(out)
    if not out.exists() or not any(out.iterdir()):
        return
    if not manifest.is_file():
        raise SweepFolderError(
            str(out),
            "--out",
            "folder is not empty and holds no sweep manifest; choose another folder",
        )
    try:
        data = json.loads(manifest.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise SweepFolderError(
            str(manifest), "manifest", f"unreadable ({err}); choose another folder"
        ) from None
    if data.get("format_version") != FORMAT_VERSION:
        raise SweepFolderError(
            str(manifest),
            "format_version",
            f"written by another version of resim ({data.get('format_version')!r}, this one writes {FORMAT_VERSION}); choose another folder",
        )
    if data.get("kind") != "sweep" or data.get("spec_hash") != plan.spec_hash:
        raise SweepFolderError(
            str(out),
            "--out",
            "folder holds a different sweep; choose another folder (--resume never mixes sweeps)",
        )
    if not resume:
        raise SweepFolderError(
            str(out),
            "--out",
            "folder already holds this sweep; pass --resume to finish it, or choose another folder",
        )


def finished_runs(plan: SweepPlan, out: Path) -> set[str]:
    """Runs whose result file exists (written atomically, so present = complete)."""
    runs_dir = out / "runs"
    if not runs_dir.is_dir():
        return set()
    present = {p.stem for p in runs_dir.glob("*.parquet")}
    return {r.run_id for r in plan.runs if r.run_id in present}


@dataclass
class SweepState:
    """Progress of a sweep, as the manifest records it."""

    plan: SweepPlan
    out: Path
    status: dict[str, dict[str, Any]]
    started: datetime
    backend: str

    def manifest(self) -> dict[str, Any]:
        """The manifest: the sweep, its points, seeds, versions and every run's status."""
        spec = self.plan.spec
        return {
            "format_version": FORMAT_VERSION,
            "kind": "sweep",
            "sweep": {**spec.model_dump(mode="json"), "calc_second_order": False},
            "sweep_file": str(self.plan.path),
            "spec_hash": self.plan.spec_hash,
            "scenario": spec.base,
            "points": [
                {"index": i, "overrides": p, "label": self.plan.labels[i]}
                for i, p in enumerate(self.plan.points)
            ],
            "seeds": spec.seed_list(),
            "months": self.plan.months,
            "parameters": resolved_dict(load_scenario(spec.base)),
            "versions": versions(),
            "git_commit": git_commit(),
            "backend": self.backend,
            "started": self.started.isoformat(),
            "updated": datetime.now(UTC).isoformat(),
            "runs": [
                {"run_id": r.run_id, "point": r.point, "seed": r.seed, **self.status[r.run_id]}
                for r in self.plan.runs
            ],
        }

    def write(self) -> None:
        """Write the manifest atomically."""
        write_json(self.manifest(), _manifest_path(self.out))


Executor = Callable[
    [list[list[tuple[str, int, str]]], Callable[[list[dict[str, Any]]], None]], None
]


def _batches(plan: SweepPlan, todo: list[Run], workers: int) -> list[list[tuple[str, int, str]]]:
    """Group runs into batches: few enough to keep per-run overhead small, enough to balance."""
    size = max(1, min(8, len(todo) // max(1, workers * 4)))
    tasks = [(json.dumps(plan.points[r.point], sort_keys=True), r.seed, r.run_id) for r in todo]
    return [tasks[i : i + size] for i in range(0, len(tasks), size)]


def execute_local(
    plan: SweepPlan,
    out: Path,
    todo: list[Run],
    workers: int,
    record: Callable[[list[dict[str, Any]]], None],
) -> None:
    """Run batches in one long-lived pool of worker processes; survive workers that die."""
    attempts: dict[str, int] = {}
    faults = fault_settings()
    pending = _batches(plan, todo, workers)
    context = multiprocessing.get_context("forkserver")
    while pending:
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            futures: dict[Future[list[dict[str, Any]]], list[tuple[str, int, str]]] = {
                pool.submit(run_batch, plan.spec.base, batch, str(out), faults): batch
                for batch in pending
            }
            pending = []
            while futures:
                done, _ = wait(futures, return_when=FIRST_COMPLETED)
                for future in done:
                    batch = futures.pop(future)
                    try:
                        record(future.result())
                    except BrokenProcessPool:
                        retry = []
                        for task in batch:
                            if (out / "runs" / f"{task[2]}.parquet").is_file():
                                record(
                                    [{"run_id": task[2], "status": "done"}]
                                )  # finished before the crash
                                continue
                            attempts[task[2]] = attempts.get(task[2], 0) + 1
                            if attempts[task[2]] >= MAX_ATTEMPTS:
                                record(
                                    [
                                        {
                                            "run_id": task[2],
                                            "status": "failed",
                                            "error": "worker process died",
                                            "traceback": "",
                                        }
                                    ]
                                )
                            else:
                                retry.append(task)
                        # Rerun singly: a batch that killed its worker should not take others down.
                        pending.extend([t] for t in retry)


def execute_dask(
    plan: SweepPlan,
    out: Path,
    todo: list[Run],
    scheduler: str,
    record: Callable[[list[dict[str, Any]]], None],
) -> None:
    """Run batches on an existing Dask cluster (workers must see the out folder)."""
    try:
        from distributed import Client, as_completed
    except ImportError:
        problem = "dask.distributed is not installed; pip install 'resim[distributed]'"
        raise SweepFolderError(SCHEDULER_OPTION, scheduler, problem) from None
    try:
        client = Client(scheduler, timeout="10s")
    except (OSError, TimeoutError) as err:
        problem = f"cannot reach the Dask scheduler ({err})"
        raise SweepFolderError(SCHEDULER_OPTION, scheduler, problem) from None
    try:
        workers = max(1, len(client.scheduler_info().get("workers", {})))
        batches = _batches(plan, todo, workers)
        futures = [
            client.submit(
                run_batch,
                plan.spec.base,
                batch,
                str(out),
                fault_settings(),
                pure=False,
                retries=MAX_ATTEMPTS - 1,
            )
            for batch in batches
        ]
        for future in as_completed(futures):
            record(future.result())
    finally:
        client.close()


@dataclass
class SweepOutcome:
    """What a finished (or interrupted) sweep left behind."""

    out: Path
    done: int
    failed: int
    total: int
    summary: pd.DataFrame


def run_sweep(
    plan: SweepPlan,
    out: Path,
    *,
    workers: int = 1,
    scheduler: str | None = None,
    resume: bool = False,
    progress: Callable[[int, int, int], None] | None = None,
) -> SweepOutcome:
    """Run every point x seed not yet finished, then write summary, events and manifest."""
    check_folder(plan, out, resume)
    out.mkdir(parents=True, exist_ok=True)
    (out / "runs").mkdir(exist_ok=True)
    (out / "events").mkdir(exist_ok=True)
    # A kill during an atomic write leaves its temporary file: never read as a result, removed here.
    for leftover in [*out.glob("runs/.*.tmp"), *out.glob("events/.*.tmp"), *out.glob(".*.tmp")]:
        leftover.unlink(missing_ok=True)
    finished = finished_runs(plan, out)
    status: dict[str, dict[str, Any]] = {
        r.run_id: {"status": "done" if r.run_id in finished else "pending"} for r in plan.runs
    }
    state = SweepState(
        plan,
        out,
        status,
        datetime.now(UTC),
        f"dask {scheduler}" if scheduler else f"local x{workers}",
    )
    state.write()
    todo = [r for r in plan.runs if r.run_id not in finished]
    counts = {"done": len(finished), "failed": 0}
    last_write = time.monotonic()

    def record(results: list[dict[str, Any]]) -> None:
        nonlocal last_write
        for result in results:
            rid = result["run_id"]
            if result["status"] == "done":
                status[rid] = {"status": "done"}
                counts["done"] += 1
            else:
                error_file = out / "errors" / f"{rid}.txt"
                text = str(result.get("traceback", ""))
                atomic_write(error_file, functools.partial(_write_text, text=text))
                status[rid] = {
                    "status": "failed",
                    "error": result.get("error", ""),
                    "traceback_file": str(error_file.relative_to(out)),
                }
                counts["failed"] += 1
        if progress:
            progress(counts["done"], counts["failed"], len(plan.runs))
        if time.monotonic() - last_write > 2.0:
            state.write()
            last_write = time.monotonic()

    if progress:
        progress(counts["done"], counts["failed"], len(plan.runs))
    try:
        if todo:
            if scheduler:
                execute_dask(plan, out, todo, scheduler, record)
            else:
                execute_local(plan, out, todo, workers, record)
    finally:
        state.write()
    summary = collect(plan, out)
    return SweepOutcome(out, counts["done"], counts["failed"], len(plan.runs), summary)


def collect(plan: SweepPlan, out: Path) -> pd.DataFrame:
    """Summary and events of every finished run, in design order (not completion order)."""
    rows = []
    events = []
    for r in plan.runs:
        path = out / "runs" / f"{r.run_id}.parquet"
        if not path.is_file():
            continue
        row = summarize(pd.read_parquet(path)).iloc[0].to_dict()
        rows.append(
            {
                "run_id": r.run_id,
                "seed": r.seed,
                "point": r.point,
                "label": plan.labels[r.point],
                **{k: v for k, v in row.items() if k not in {"run_id", "seed"}},
            }
        )
        event_path = out / "events" / f"{r.run_id}.parquet"
        if event_path.is_file():
            events.append(pd.read_parquet(event_path))
    summary = pd.DataFrame(rows)
    write_parquet(summary, out / "summary.parquet")
    write_parquet(
        pd.concat(events, ignore_index=True) if events else events_frame([]), out / "events.parquet"
    )
    return summary


def headline(summary: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """Seed means of headline metrics per point."""
    if summary.empty:
        return summary
    cols = [m for m in metrics if m in summary.columns]
    table = summary.groupby(["point", "label"], sort=True)[cols].mean()
    table.insert(0, "seeds", summary.groupby(["point", "label"], sort=True).size())
    return table.reset_index()
