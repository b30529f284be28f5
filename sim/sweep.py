"""Scenario sweeps that never lose a run: designs, parallel execution, resume, results folder.

A sweep file (TOML with a ``[sweep]`` table, format in ``scenarios/tariff_sweep.toml``) names a
base scenario, the parameters to vary by the same dotted keys as ``--set``, a design (``grid``,
``list``, or the SALib samplers ``lhs``, ``sobol``, ``morris``) and seeds. Every point runs on the
same seeds (common random numbers; EMA Workbench's scenario x replication).

Each run is a pure function of its resolved parameters and seed, so results do not depend on the
number of workers or the backend. Workers write ``runs/<run_id>.parquet`` and
``events/<run_id>.parquet`` atomically; a run is finished exactly when its file exists, so a sweep
killed at any moment resumes by running what has no file. The manifest is written before anything
else. A run whose files were damaged afterwards (unreadable, or holding another run's rows) is run
again. Workers send back each run's summary row and events, so the parent, whose work is
serial, reads files only of runs finished before a resume.

``--resume`` accepts only a folder whose manifest records this sweep: the same sweep file, the
same run ids (so the same base scenario content), the same data files, the same format and resim
version. A sweep of more than ``MAX_RUNS`` (1,000,000) runs, points x seeds, is refused before its
points are made. Seeds are whole numbers from 0 to 2**63 - 1; types are strict.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import math
import multiprocessing
import multiprocessing.forkserver
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
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from sim.results import (
    FORMAT_VERSION,
    atomic_write,
    events_frame,
    file_sha256,
    git_commit,
    summarize,
    versions,
    write_json,
    write_parquet,
)
from sim.runner import run_id, simulate_with_events
from sim.scenario import (
    MAX_SEED,
    SCENARIO_DIR,
    ScenarioError,
    load_scenario,
    projects_path,
    read_toml,
    resolved_dict,
)

SCHEDULER_OPTION = "--scheduler"
# Fault-injection hooks for the test suite (documented in docs/ODD.md and tests/test_sweep.py):
FAULT_KILL_ONCE = "RESIM_FAULT_KILL_ONCE"  # seed whose first run kills its worker process
FAULT_RAISE = "RESIM_FAULT_RAISE"  # seed whose runs raise inside the model run
MAX_ATTEMPTS = 3  # a run whose worker dies this often is recorded as failed


# A sweep's size is known before its points are made: more runs than this are refused at plan
# time (planning validates every point, ~1.5 ms each; the manifest lists every run).
MAX_RUNS = 1_000_000
MAX_SEED_COUNT = 100_000


def _shown(value: Any) -> str:
    text = "true" if value is True else "false" if value is False else repr(value)
    return text if len(text) <= 60 else f"{text[:60]}..."


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class SweepParameter(BaseModel):
    """One swept dimension: one key or several tied keys, with values or a sampling range."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    keys: list[str] = Field(min_length=1)
    values: list[Any] | None = None
    low: float | None = None
    high: float | None = None


class SweepSpec(BaseModel):
    """A validated sweep file.

    Types are strict: ``seeds = true`` or ``seeds = "2"`` is refused, not read as 1 or 2.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    name: str
    description: str = ""
    base: str = "baseline"
    design: Literal["grid", "list", "lhs", "sobol", "morris"]
    seeds: int | list[int]
    samples: int | None = Field(None, ge=1, le=100_000)
    sample_seed: int = Field(0, ge=0, le=MAX_SEED)
    parameters: list[SweepParameter] = Field(default_factory=list)
    points: list[dict[str, Any]] = Field(default_factory=list)

    @field_validator("seeds", mode="before")
    @classmethod
    def _seeds(cls, seeds: Any) -> Any:
        allowed = (
            f"allowed: a count from 1 to {MAX_SEED_COUNT} (seeds 1..N), or a list of distinct "
            f"seeds, whole numbers from 0 to {MAX_SEED}"
        )
        if _is_int(seeds):
            if not 1 <= seeds <= MAX_SEED_COUNT:
                msg = f"got {seeds}; {allowed}"
                raise ValueError(msg)
            return seeds
        if not isinstance(seeds, list):
            msg = f"got {_shown(seeds)}; {allowed}"
            raise ValueError(msg)
        for i, seed in enumerate(seeds):
            if not _is_int(seed) or not 0 <= seed <= MAX_SEED:
                msg = f"seeds[{i}] is {_shown(seed)}; {allowed}"
                raise ValueError(msg)
        if not seeds or len(set(seeds)) != len(seeds):
            msg = f"got {_shown(seeds)}; {allowed} (non-empty, without repeats)"
            raise ValueError(msg)
        return seeds

    @model_validator(mode="after")
    def _consistent(self) -> SweepSpec:
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

    def point_count(self) -> int:
        """How many points the design makes, computed without making them."""
        if self.design == "list":
            return len(self.points)
        if self.design == "grid":
            return math.prod(len(p.values or []) for p in self.parameters)
        n = int(self.samples or 1)
        dims = len(self.parameters)
        return n * {"lhs": 1, "sobol": dims + 2, "morris": dims + 1}[self.design]

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
    parameters: dict[str, Any] = field(default_factory=dict)  # the base scenario, resolved


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
        spec = SweepSpec.model_validate(data["sweep"])
    except ValidationError as err:
        first = err.errors()[0]
        key = "sweep." + ".".join(str(p) for p in first["loc"]) if first["loc"] else "sweep"
        problem = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            problem = f"unknown key; allowed: {', '.join(sorted(SweepSpec.model_fields))} (and keys, values, low, high in parameters)"
        raise ScenarioError(str(path), key, problem) from None
    _check_size(spec, path)
    return spec


def _check_size(spec: SweepSpec, path: Path) -> None:
    """Refuse a sweep of more than ``MAX_RUNS`` runs before making its points."""
    points = spec.point_count()
    seeds = len(spec.seed_list()) if isinstance(spec.seeds, list) else spec.seeds
    if points * seeds <= MAX_RUNS:
        return
    key, made = {
        "grid": ("parameters", " x ".join(str(len(p.values or [])) for p in spec.parameters)),
        "list": ("points", "[[sweep.points]] tables"),
    }.get(spec.design, ("samples", f"{spec.design} with samples = {spec.samples}"))
    raise ScenarioError(
        str(path),
        f"sweep.{key}",
        f"the design makes {points:,} points ({made}) x {seeds:,} seed(s) = {points * seeds:,} "
        f"runs; at most {MAX_RUNS:,} runs are allowed per sweep: split it into several sweep "
        "files, or sample the space (design lhs, sobol or morris with fewer samples)",
    )


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


def _base_scenario(spec: SweepSpec, path: Path) -> Any:
    """The base scenario a sweep names, or a refusal naming the sweep file and ``sweep.base``."""
    try:
        return load_scenario(spec.base)
    except ScenarioError as err:
        # An unknown name names only itself; a fault inside the base file names that file.
        problem = f"got {spec.base!r}: {err.problem}" if err.file == spec.base else str(err)
        raise ScenarioError(str(path), "sweep.base", problem) from None


def plan_sweep(name_or_path: str | Path) -> SweepPlan:
    """Validate every point against the scenario schema and list the runs.

    ``spec_hash`` identifies what the sweep computes: the sweep file, every run id (a hash of
    the resolved parameters and the seed, so the base scenario's content counts) and the data
    files the points read. ``--resume`` refuses a folder whose hash differs.
    """
    spec = load_sweep(name_or_path)
    path = sweep_path(name_or_path)
    base = _base_scenario(spec, path)
    points = design_points(spec)
    runs: list[Run] = []
    months = 0
    inputs: dict[str, str | None] = {}
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
        miners_file = scenario.population.miners_file
        if miners_file not in inputs:
            inputs[miners_file] = file_sha256(projects_path(scenario))
    payload = json.dumps(
        {
            "sweep": spec.model_dump(mode="json"),
            "runs": [r.run_id for r in runs],
            "inputs": inputs,
        },
        sort_keys=True,
    )
    spec_hash = hashlib.sha256(payload.encode()).hexdigest()[:16]
    labels = [point_label(p) for p in points]
    return SweepPlan(spec, path, points, runs, months, spec_hash, labels, resolved_dict(base))


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
        records = [{**e, "run_id": rid} for e in events]
        root = Path(out)
        write_parquet(events_frame(records), root / "events" / f"{rid}.parquet")
        write_parquet(frame, root / "runs" / f"{rid}.parquet")  # last: its presence means done
        # The summary row and the events go back with the result, so that the parent, whose
        # work is serial, need not read the files again (``collect``).
        return {
            "run_id": rid,
            "status": "done",
            "seconds": time.perf_counter() - started,
            "summary": summarize(frame).iloc[0].to_dict(),
            "events": records,
        }
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


SUBFOLDERS = ("runs", "events", "errors")


def _is_skeleton(out: Path) -> bool:
    """Whether ``out`` holds only what a sweep killed before its first manifest leaves behind.

    That is the temporary file of the first manifest's atomic write, and empty ``runs/`` and
    ``events/`` folders (versions before 0.1.1 made them before the manifest): no run and
    nothing of anyone else's, so the folder is as good as empty.
    """
    for entry in out.iterdir():
        if entry.is_symlink():
            return False
        if entry.name in ("runs", "events") and entry.is_dir():
            if any(entry.iterdir()):
                return False
        elif not (
            entry.is_file()
            and entry.name.startswith(".manifest.json.")
            and entry.name.endswith(".tmp")
        ):
            return False
    return True


_JSON_KINDS = {list: "an array", str: "a string", bool: "true/false", int: "a number"}


def _read_folder_manifest(manifest: Path) -> dict[str, Any]:
    """A sweep folder's manifest as a JSON object, or a refusal naming the file."""
    again = "choose another folder"
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        problem = f"unreadable: not UTF-8 text ({err.reason} at byte {err.start}); {again}"
        raise SweepFolderError(str(manifest), "", problem) from None
    except (OSError, json.JSONDecodeError) as err:
        raise SweepFolderError(str(manifest), "", f"unreadable ({err}); {again}") from None
    if not isinstance(data, dict):
        kind = _JSON_KINDS.get(type(data), "null" if data is None else "a number")
        problem = f"not a JSON object (it holds {kind}), so not a resim manifest; {again}"
        raise SweepFolderError(str(manifest), "", problem)
    return data


def check_folder(plan: SweepPlan, out: Path, resume: bool) -> None:
    """Refuse an out folder that holds something else, or a finished folder without --resume.

    A folder is resumable when its manifest is readable, written by this format and this
    version of resim, and records this very sweep (``spec_hash``). A folder a kill left before
    the first manifest (see ``_is_skeleton``) counts as empty.
    """
    manifest = _manifest_path(out)
    if out.exists() and not out.is_dir():
        raise SweepFolderError(str(out), "--out", "exists and is not a folder; choose a folder")
    if not out.exists() or _is_skeleton(out):
        return
    if not manifest.is_file():
        raise SweepFolderError(
            str(out),
            "--out",
            "folder is not empty and holds no sweep manifest; choose another folder",
        )
    data = _read_folder_manifest(manifest)
    if data.get("format_version") != FORMAT_VERSION:
        raise SweepFolderError(
            str(manifest),
            "format_version",
            f"written by another version of resim ({_shown(data.get('format_version'))}, this one writes {FORMAT_VERSION}); choose another folder",
        )
    if data.get("kind") != "sweep":
        raise SweepFolderError(
            str(out),
            "--out",
            f"folder holds a different sweep (its manifest's kind is {_shown(data.get('kind'))}, "
            "not 'sweep'); choose another folder (--resume never mixes sweeps)",
        )
    recorded = data.get("versions")
    theirs = recorded.get("resim") if isinstance(recorded, dict) else None
    ours = versions().get("resim")
    if theirs != ours:
        raise SweepFolderError(
            str(manifest),
            "versions.resim",
            f"written by resim {_shown(theirs)}, this is resim {ours}: its runs come from "
            "another model version; finish it with that version, or choose another folder "
            "(--resume never mixes model versions)",
        )
    if data.get("spec_hash") != plan.spec_hash:
        raise SweepFolderError(
            str(out),
            "--out",
            f"folder holds a different sweep (spec_hash {_shown(data.get('spec_hash'))}, this "
            f"one {plan.spec_hash}: the sweep file, the base scenario it names, or a data file "
            "they read differs from the folder's); choose another folder (--resume never mixes "
            "sweeps)",
        )
    for name in SUBFOLDERS:
        sub = out / name
        if (sub.exists() or sub.is_symlink()) and not sub.is_dir():
            raise SweepFolderError(
                str(sub),
                "",
                f"exists and is not a folder; a sweep folder keeps its {name} files in {name}/. "
                "Move it away, or choose another folder",
            )
    if not resume:
        raise SweepFolderError(
            str(out),
            "--out",
            "folder already holds this sweep; pass --resume to finish it, or choose another folder",
        )


def _file_problem(path: Path, rid: str, *, rows_needed: bool) -> str | None:
    """Why a run's file cannot be kept (unreadable, or another run's rows), or None."""
    if not path.is_file():
        return "missing"
    try:
        parquet = pq.ParquetFile(path)
        if "run_id" not in parquet.schema_arrow.names:
            return "unreadable (no run_id column)"
        ids = parquet.read(columns=["run_id"]).column(0).unique().to_pylist()
    except (pa.ArrowException, OSError, ValueError) as err:
        return f"unreadable ({err})"
    others = [i for i in ids if i != rid]
    if others:
        return f"holds the rows of run {others[0]}, not of run {rid}"
    if rows_needed and not ids:
        return "holds no rows"
    return None


def finished_runs(plan: SweepPlan, out: Path) -> tuple[set[str], dict[str, str]]:
    """Runs whose files are complete, and the damaged files of other runs with what is wrong.

    A run is finished when ``runs/<id>.parquet`` exists (written atomically, after the events
    file) and both its files are readable and hold its rows only. A file damaged after the
    fact (a truncated copy, another run's file copied over it) makes the run unfinished.
    """
    runs_dir = out / "runs"
    if not runs_dir.is_dir():
        return set(), {}
    present = {p.stem for p in runs_dir.glob("*.parquet")}
    done: set[str] = set()
    damaged: dict[str, str] = {}
    for r in plan.runs:
        if r.run_id not in present or r.run_id in done:
            continue
        for name, rows_needed in (("runs", True), ("events", False)):
            problem = _file_problem(
                out / name / f"{r.run_id}.parquet", r.run_id, rows_needed=rows_needed
            )
            if problem:
                damaged[f"{name}/{r.run_id}.parquet"] = problem
                break
        else:
            done.add(r.run_id)
    return done, damaged


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
            "parameters": self.plan.parameters,
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
    """Group runs into batches, in design order, shrinking towards the end.

    Up to 8 runs while many remain (little per-task overhead), down to single runs at the end
    so that the workers finish together (guided self-scheduling).
    """
    tasks = [(json.dumps(plan.points[r.point], sort_keys=True), r.seed, r.run_id) for r in todo]
    batches = []
    start = 0
    while start < len(tasks):
        size = max(1, min(8, (len(tasks) - start) // max(1, workers * 4)))
        batches.append(tasks[start : start + size])
        start += size
    return batches


def _worker_context() -> multiprocessing.context.BaseContext:
    """The context local workers start in; starts its server now if it is not running.

    Workers fork from a server that has imported the model once (about 1 s of imports)
    rather than each worker of each pool importing it again. Started early, that import
    overlaps the parent's own start-up work.
    """
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    multiprocessing.forkserver.ensure_running()
    return context


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
    context = _worker_context()
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
    rerun: dict[str, str] = field(default_factory=dict)  # damaged files run again, and why


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
    if not scheduler:
        _worker_context()
    out.mkdir(parents=True, exist_ok=True)
    # A kill during an atomic write leaves its temporary file: never read as a result, removed here.
    for leftover in [*out.glob("runs/.*.tmp"), *out.glob("events/.*.tmp"), *out.glob(".*.tmp")]:
        leftover.unlink(missing_ok=True)
    finished, damaged = finished_runs(plan, out)
    for name in damaged:  # run again below; the run file (its mark of done) goes first
        rid = Path(name).stem
        for sub in ("runs", "events"):
            (out / sub / f"{rid}.parquet").unlink(missing_ok=True)
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
    state.write()  # first: from here on the folder is a sweep folder that --resume accepts
    (out / "runs").mkdir(exist_ok=True)
    (out / "events").mkdir(exist_ok=True)
    todo = [r for r in plan.runs if r.run_id not in finished]
    counts = {"done": len(finished), "failed": 0}
    last_write = time.monotonic()
    returned: dict[str, dict[str, Any]] = {}  # summary rows and events the workers sent back

    def record(results: list[dict[str, Any]]) -> None:
        nonlocal last_write
        for result in results:
            rid = result["run_id"]
            if result["status"] == "done":
                status[rid] = {"status": "done"}
                counts["done"] += 1
                if "summary" in result:
                    returned[rid] = {"summary": result["summary"], "events": result["events"]}
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
    summary = collect(plan, out, returned)
    return SweepOutcome(out, counts["done"], counts["failed"], len(plan.runs), summary, damaged)


def _read_result(path: Path) -> pd.DataFrame:
    """A run's file; damage the checks at start-up could not see is refused naming the file."""
    try:
        return pd.read_parquet(path)
    except (pa.ArrowException, OSError, ValueError) as err:
        raise SweepFolderError(
            str(path),
            "",
            f"unreadable parquet file ({err}); delete it and resume with --resume to run it again",
        ) from None


def collect(
    plan: SweepPlan, out: Path, returned: dict[str, dict[str, Any]] | None = None
) -> pd.DataFrame:
    """Summary and events of every finished run, in design order (not completion order).

    ``returned`` holds what workers sent back for the runs of this call (summary row and
    events); runs finished earlier (``--resume``) or whose result was lost with a dead worker
    are read from their files. Both give the same rows: the files hold the worker's frames.
    """
    returned = returned or {}
    rows = []
    events: list[pd.DataFrame] = []
    records: list[dict[str, Any]] = []  # returned events not yet made into a frame
    for r in plan.runs:
        result = returned.get(r.run_id)
        path = out / "runs" / f"{r.run_id}.parquet"
        if result is None and not path.is_file():
            continue
        row = result["summary"] if result else summarize(_read_result(path)).iloc[0].to_dict()
        rows.append(
            {
                "run_id": r.run_id,
                "seed": r.seed,
                "point": r.point,
                "label": plan.labels[r.point],
                **{k: v for k, v in row.items() if k not in {"run_id", "seed"}},
            }
        )
        if result:
            records.extend(result["events"])
            continue
        event_path = out / "events" / f"{r.run_id}.parquet"
        if event_path.is_file():
            if records:
                events.append(events_frame(records))
                records = []
            events.append(_read_result(event_path))
    if records or not events:
        events.append(events_frame(records))
    summary = pd.DataFrame(rows)
    write_parquet(summary, out / "summary.parquet")
    write_parquet(pd.concat(events, ignore_index=True), out / "events.parquet")
    return summary


def headline(summary: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """Seed means of headline metrics per point."""
    if summary.empty:
        return summary
    cols = [m for m in metrics if m in summary.columns]
    table = summary.groupby(["point", "label"], sort=True)[cols].mean()
    table.insert(0, "seeds", summary.groupby(["point", "label"], sort=True).size())
    return table.reset_index()
