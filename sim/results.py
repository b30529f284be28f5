"""Results folders: timeseries, summary, events and a manifest, each written atomically."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import re
import secrets
import shutil
import socket
import subprocess
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from sim.params import PRODUCTS, Scenario
from sim.scenario import projects_path

EVENT_COLUMNS = ("run_id", "month", "date", "agent", "kind", "detail")
FORMAT_VERSION = 1


def summarize(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per run: the headline figures."""
    rows = []
    for rid, run in frame.groupby("run_id", sort=False):
        row: dict[str, Any] = {"run_id": rid, "seed": int(run["seed"].iloc[0]), "months": len(run)}
        for p in PRODUCTS:
            row[f"peak_price_landed_{p}"] = float(run[f"price_landed_{p}"].max())
            row[f"mean_price_landed_{p}"] = float(run[f"price_landed_{p}"].mean())
            row[f"peak_price_foreign_{p}"] = float(run[f"price_foreign_{p}"].max())
            row[f"unmet_demand_total_{p}"] = float(run[f"unmet_demand_{p}"].sum())
        at_2030 = run[run["date"] == "2030-12"]
        row["capacity_domestic_2030_t"] = (
            float(at_2030["capacity_domestic_nameplate_t"].iloc[0]) if len(at_2030) else np.nan
        )
        row["capacity_domestic_end_t"] = float(run["capacity_domestic_nameplate_t"].iloc[-1])
        row["miners_defaulted"] = int(run["miners_defaulted_cum"].iloc[-1])
        row["manufacturer_halt_months"] = int(run["manufacturers_halted"].sum())
        row["lost_output_share"] = float(
            np.clip(1.0 - run["manufacturer_output_index"] / _demand_path(run), 0.0, None).mean()
        )
        row["tariff_revenue_musd"] = float(run["tariff_revenue_musd"].sum())
        row["floor_payments_musd"] = float(run["floor_payments_musd"].sum())
        row["public_cost_musd"] = float(run["gov_cost_cum_musd"].iloc[-1])
        row["bank_losses_musd"] = float(run["bank_losses_cum_musd"].iloc[-1])
        row["miner_equity_value_end_musd"] = float(run["miner_equity_value_musd"].iloc[-1])
        row["max_balance_error_t"] = float(run["balance_error_t"].max())
        row["max_balance_error_musd"] = float(run["balance_error_musd"].max())
        rows.append(row)
    return pd.DataFrame(rows)


def _demand_path(run: pd.DataFrame) -> pd.Series:
    """Output index the market would reach with no shortage: demand growth of magnets."""
    demand = run["demand_magnet_t"].to_numpy()
    base = demand[0] if len(demand) and demand[0] > 0 else 1.0
    return pd.Series(np.maximum(demand / base, 1e-9), index=run.index)


def _create_new(folder: Path, prefix: str, suffix: str) -> Path:
    """A new, empty file with a random name, created with mode 0666 less the umask.

    ``tempfile.mkstemp`` would make it 0600, and the rename would keep that mode: results must
    be readable like any file the user writes (0644 under the usual umask).
    """
    while True:
        path = folder / f"{prefix}{secrets.token_hex(4)}{suffix}"
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return path


def atomic_write(path: Path, write: Any) -> None:
    """Write through a temporary file in the same folder, then rename over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _create_new(path.parent, f".{path.name}.", ".tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _host_tag() -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", socket.gethostname()).strip("-")[:40] or "host"


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # another user's process (or a number we cannot test): leave its folder
    return True


def staging_folder(out: Path) -> Path:
    """A new empty sibling of ``out`` to write a results folder into before one rename.

    Its name, ``.<out name>.staging-<host>-<pid>-<random>``, says which process owns it, so
    that ``remove_stale_staging`` can remove what a killed process left. The folder gets mode
    0777 less the umask, like ``mkdir`` (``tempfile.mkdtemp`` would make the results 0700).
    """
    prefix = f".{out.name}.staging-{_host_tag()}-{os.getpid()}-"
    while True:
        path = out.parent / f"{prefix}{secrets.token_hex(4)}"
        try:
            path.mkdir(mode=0o777)
        except FileExistsError:
            continue
        return path


def remove_stale_staging(out: Path) -> list[Path]:
    """Remove staging folders of ``out`` whose process has died (a SIGKILL, a power cut).

    Only folders this host's processes made (``staging_folder``'s names) are touched, and
    only when their process no longer exists; the removed folders are returned.
    """
    removed: list[Path] = []
    prefix = f".{out.name}.staging-{_host_tag()}-"
    try:
        siblings = list(out.parent.iterdir())
    except OSError:
        return removed
    for path in siblings:
        rest = path.name.removeprefix(prefix)
        if rest == path.name or not path.is_dir() or path.is_symlink():
            continue
        pid, _, token = rest.partition("-")
        if not pid.isdigit() or len(token) != 8 or _process_alive(int(pid)):
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def _fast_kind(dtype: Any) -> str | None:
    """``"block"`` for numpy numbers and booleans, ``"string"`` for pandas strings, else None."""
    if isinstance(dtype, np.dtype) and dtype.kind in "fiub":
        return "block"
    if isinstance(dtype, pd.StringDtype):
        return "string"
    return None


# Per frame layout (column names and dtypes): the arrow schema with its pandas metadata, and
# the positions of the numeric columns grouped by dtype.
_LAYOUTS: dict[tuple[Any, ...], tuple[pa.Schema, tuple[tuple[int, ...], ...]]] = {}


def _layout(
    frame: pd.DataFrame, key: tuple[Any, ...]
) -> tuple[pa.Schema, tuple[tuple[int, ...], ...]]:
    found = _LAYOUTS.get(key)
    if found is None:
        groups: dict[str, list[int]] = {}
        for i, dtype in enumerate(frame.dtypes):
            if _fast_kind(dtype) == "block":
                groups.setdefault(str(dtype), []).append(i)
        if len(_LAYOUTS) >= 64:
            _LAYOUTS.clear()
        schema = pa.Schema.from_pandas(frame, preserve_index=False)
        found = _LAYOUTS[key] = (schema, tuple(tuple(g) for g in groups.values()))
    return found


def arrow_table(frame: pd.DataFrame) -> pa.Table:
    """The table ``pa.Table.from_pandas(frame, preserve_index=False)`` makes, 3x faster.

    ``from_pandas`` spends most of its time looking at each column and describing it in the
    pandas metadata; for the frames a sweep writes (the same columns every run) that work is
    done once per process: the schema, with its pandas metadata, is cached by column names and
    dtypes, and numeric columns are converted a dtype block at a time. Same arrays, same schema,
    same metadata, so the parquet file is byte for byte the one ``to_parquet`` writes (tested).
    Frames with other dtypes (objects, categories, dates) go through ``from_pandas``.
    """
    dtypes = tuple(frame.dtypes.tolist())
    columns = tuple(frame.columns.tolist())
    if (
        not columns
        or any(_fast_kind(d) is None for d in dtypes)
        or not all(isinstance(c, str) for c in columns)
        or len(set(columns)) != len(columns)
    ):
        return pa.Table.from_pandas(frame, preserve_index=False)
    schema, groups = _layout(frame, (columns, dtypes))
    rows = len(frame)
    arrays: list[pa.Array | None] = [None] * len(columns)
    for positions in groups:
        # One conversion per dtype: the block column by column (Fortran order), then zero-copy
        # slices; from_pandas=True writes NaN as null, as from_pandas does.
        block = frame.take(list(positions), axis=1).to_numpy().ravel(order="F")
        flat = pa.array(block, type=schema.field(positions[0]).type, from_pandas=True)
        for j, i in enumerate(positions):
            arrays[i] = flat.slice(j * rows, rows)
    for i, array in enumerate(arrays):
        if array is None:
            arrays[i] = pa.array(frame.iloc[:, i], type=schema.field(i).type, from_pandas=True)
    return pa.Table.from_arrays(arrays, schema=schema)


def _write_table(table: pa.Table, path: Path) -> None:
    # Into memory, then one write: pq.write_table(path) resolves a file system first (slower).
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    with path.open("wb") as fh:
        fh.write(sink.getvalue())


def write_parquet(frame: pd.DataFrame, path: Path) -> None:
    """Parquet, atomically: the file ``frame.to_parquet(path, index=False)`` writes."""
    table = arrow_table(frame)
    atomic_write(path, lambda tmp: _write_table(table, tmp))


def write_json(data: dict[str, Any], path: Path) -> None:
    """JSON, atomically."""
    atomic_write(
        path, lambda tmp: tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str))
    )


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def git_commit() -> str | None:
    """The source tree's commit, where known."""
    return _git("rev-parse", "HEAD") or None


def git_dirty() -> bool | None:
    """Whether tracked files differ from the commit (then the commit alone cannot rerun a run)."""
    status = _git("status", "--porcelain", "--untracked-files=no")
    return None if status is None else bool(status)


# pyproject's dependencies (and the optional Dask backend), listed even where the installed
# metadata of resim is stale; the walk below adds what they require in turn.
_CORE = (
    "resim",
    "mesa",
    "networkx",
    "numpy",
    "pandas",
    "matplotlib",
    "pyarrow",
    "pydantic",
    "rich",
    "salib",
    "dask",
    "distributed",
)


def _requirement_names(name: str) -> list[str]:
    """Names of the distributions ``name`` requires on this platform (extras left out)."""
    try:
        requires = metadata.requires(name) or []
    except metadata.PackageNotFoundError:
        return []
    try:
        from packaging.requirements import InvalidRequirement, Requirement
    except ImportError:  # pragma: no cover - packaging comes with matplotlib
        Requirement = None  # type: ignore[assignment,misc]
    names = []
    for text in requires:
        if Requirement is not None:
            try:
                req = Requirement(text)
            except InvalidRequirement:
                continue
            if req.marker is not None and not req.marker.evaluate({"extra": ""}):
                continue
            names.append(req.name)
        elif ";" not in text:
            match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", text)
            if match:
                names.append(match.group(0))
    return names


def versions() -> dict[str, str]:
    """Versions of Python, the package and every library it depends on, directly or not."""
    return dict(_versions())


@functools.lru_cache(maxsize=1)
def _versions() -> tuple[tuple[str, str], ...]:
    out = {"python": platform.python_version()}
    seen: set[str] = set()
    todo = list(_CORE)
    while todo:
        name = todo.pop()
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key in seen:
            continue
        seen.add(key)
        try:
            out[key] = metadata.version(name)
        except metadata.PackageNotFoundError:
            if name in _CORE and name not in ("dask", "distributed"):
                out[key] = "unknown"
            continue
        todo.extend(_requirement_names(name))
    return tuple(sorted(out.items()))


def platform_info() -> dict[str, str]:
    """Where the run ran (floating-point results may differ across machines and BLAS builds)."""
    return {
        "system": platform.system(),
        "machine": platform.machine(),
        "python_implementation": platform.python_implementation(),
    }


def file_sha256(path: Path) -> str | None:
    """SHA-256 of a file's bytes, or None when it cannot be read."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def input_files(scenario: Scenario) -> dict[str, dict[str, Any]]:
    """The data files a run reads, with their SHA-256 (a rerun checks them)."""
    path = projects_path(scenario)
    return {
        "population.miners_file": {
            "path": scenario.population.miners_file,
            "sha256": file_sha256(path),
        }
    }


def manifest(
    scenario_name: str,
    params: dict[str, Any],
    seeds: list[int],
    months: int,
    agent_counts: dict[str, int],
    runs: list[dict[str, Any]],
    started: datetime,
    *,
    inputs: dict[str, dict[str, Any]] | None = None,
    reproduces: str | None = None,
) -> dict[str, Any]:
    """The manifest of a results folder: everything needed to rerun it bit for bit.

    ``parameters`` are the resolved parameters (``resim run --from-manifest`` reruns from them),
    ``inputs`` the data files they name with their SHA-256, ``versions`` every library,
    ``git_commit``/``git_dirty`` the source tree, ``command`` the command line.
    """
    return {
        "format_version": FORMAT_VERSION,
        "kind": "run",
        "scenario": scenario_name,
        "parameters": params,
        "design": None,
        "seeds": seeds,
        "months": months,
        "agent_counts": agent_counts,
        "inputs": inputs or {},
        "versions": versions(),
        "platform": platform_info(),
        "git_commit": git_commit(),
        "git_dirty": git_dirty(),
        "command": list(sys.argv),
        "reproduces": reproduces,
        "started": started.isoformat(),
        "finished": datetime.now(UTC).isoformat(),
        "runs": runs,
    }


def events_frame(events: list[dict[str, Any]]) -> pd.DataFrame:
    """Events as a frame with the contract's columns (empty frame keeps the schema)."""
    frame = pd.DataFrame(events, columns=list(EVENT_COLUMNS))
    return frame.astype(
        {
            "run_id": "string",
            "month": "int64",
            "date": "string",
            "agent": "string",
            "kind": "string",
            "detail": "string",
        }
    )
