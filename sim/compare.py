"""``resim compare``: seed-paired comparison of results folders, with confidence intervals and plots.

A *setting* is one results folder written by ``resim run``, or one point of a single sweep folder
written by ``resim sweep``. Runs are aligned by seed: every setting is read on the seeds all of
them share, so a difference between two settings is taken seed by seed (common random numbers)
and its spread reflects only how the settings' effect varies across seeds.

For each headline metric (a column of ``summary.parquet``) the comparison reports the mean per
setting and, for every setting after the first, the paired difference against the first: its
mean over seeds, standard error and 95% confidence interval from the t distribution with n - 1
degrees of freedom. A difference is *distinguishable* from zero when that interval excludes zero.
For Sobol and Morris sweeps it also reports SALib's sensitivity indices of each metric's seed mean.

Folders that cannot be compared are refused with ``CompareError`` (a ``ScenarioError``, so the CLI
turns it into exit status 2) naming the folder or file and what is wrong. Output goes to a new
folder, written under a temporary name and renamed into place in one step.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import shutil
import textwrap
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from sim.results import FORMAT_VERSION, atomic_write, remove_stale_staging, staging_folder
from sim.scenario import ScenarioError

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

# matplotlib (Agg canvas, no pyplot) is imported inside the plotting functions: `resim` loads this
# module for its argument parser, and the other commands should not pay for matplotlib.

console = Console(stderr=False)

KEY_SUMMARY_COLUMNS = frozenset({"run_id", "seed", "months", "point"})
# Stock-flow residuals are diagnostics of the model, not outcomes of a setting: allowed with
# --metric, left out of the default headline list.
DIAGNOSTIC_PREFIX = "max_balance_error_"
CONFIDENCE = 0.95
BAND = (0.05, 0.95)  # fan-chart band: the 90% band across seeds
MAX_BANDS = 10  # more settings than this: median lines only, bands would hide each other
MAX_CHANGES = 8  # parameter changes listed per setting in the report
SENSITIVITY_DESIGNS = ("sobol", "morris")

GOOD_NAMES = {
    "ndpr": "NdPr oxide",
    "dytb": "Dy/Tb oxide",
    "cela": "Ce/La oxide",
    "magnet": "NdFeB magnets",
}

# Timeseries drawn as fan charts: column -> (title, unit for the y axis).
FAN_SERIES: dict[str, tuple[str, str]] = {
    "price_landed_ndpr": ("Landed price of NdPr oxide", "US$/kg"),
    "price_landed_dytb": ("Landed price of Dy/Tb oxide", "US$/kg"),
    "price_landed_magnet": ("Landed price of NdFeB magnets", "US$/kg"),
    "capacity_domestic_nameplate_t": (
        "Domestic separation capacity, nameplate",
        "t REO per year",
    ),
    "unmet_demand_ndpr": ("Shortage: unmet demand for NdPr oxide", "t REO per month"),
    "unmet_demand_dytb": ("Shortage: unmet demand for Dy/Tb oxide", "t REO per month"),
    "manufacturer_output_index": ("Manufacturers' final-goods output", "index, month 0 = 1.0"),
    "gov_cost_cum_musd": ("Public cost to date, net of revenue", "US$ million"),
}
# A line under the title where a series needs one to be read right.
FAN_NOTES: dict[str, str] = {
    "gov_cost_cum_musd": "below 0: tariffs and other revenue exceed public spending so far",
}

_METRIC_LABELS: dict[str, tuple[str, str]] = {
    "capacity_domestic_2030_t": ("Domestic separation capacity, Dec 2030", "t REO/yr"),
    "capacity_domestic_end_t": ("Domestic separation capacity at the end", "t REO/yr"),
    "miners_defaulted": ("Miners defaulted", "miners"),
    "manufacturer_halt_months": ("Manufacturer halts", "manufacturer-months"),
    "lost_output_share": ("Final-goods output short of demand, mean", "share 0-1"),
    "tariff_revenue_musd": ("Tariff revenue, total", "US$ million"),
    "floor_payments_musd": ("Price-floor payments, total", "US$ million"),
    "public_cost_musd": ("Public cost at the end, net of revenue", "US$ million"),
    "bank_losses_musd": ("Bank losses at the end", "US$ million"),
    "miner_equity_value_end_musd": ("Domestic miners' market value at the end", "US$ million"),
    "max_balance_error_t": ("Largest tonnes stock-flow residual", "t"),
    "max_balance_error_musd": ("Largest money stock-flow residual", "US$ million"),
}
_METRIC_PATTERNS: tuple[tuple[str, str, str], ...] = (
    ("peak_price_landed_", "Peak landed price, {good}", "US$/kg"),
    ("mean_price_landed_", "Mean landed price, {good}", "US$/kg"),
    ("peak_price_foreign_", "Peak price in the foreign home market, {good}", "US$/kg"),
    ("unmet_demand_total_", "Unmet demand over the horizon, {good}", "t REO"),
)


class CompareError(ScenarioError):
    """Folders that cannot be compared: names the folder or file, the key and what is wrong."""


def metric_label(name: str) -> tuple[str, str]:
    """A readable label and unit of a summary metric (the name itself where none is known)."""
    if name in _METRIC_LABELS:
        return _METRIC_LABELS[name]
    for prefix, label, unit in _METRIC_PATTERNS:
        if name.startswith(prefix):
            good = name.removeprefix(prefix)
            return label.format(good=GOOD_NAMES.get(good, good)), unit
    if name.endswith("_musd"):
        return name, "US$ million"
    if name.endswith("_t"):
        return name, "t"
    if "price" in name:
        return name, "US$/kg"
    if "share" in name:
        return name, "share 0-1"
    return name, ""


# ----------------------------------------------------------------------------- reading folders
@dataclass
class Folder:
    """A results folder as read from disk, checked against its own manifest."""

    path: Path
    manifest: dict[str, Any]
    summary: pd.DataFrame  # finished runs only
    columns: list[str]  # timeseries columns

    @property
    def kind(self) -> str:
        """``run`` or ``sweep``."""
        return str(self.manifest["kind"])

    @property
    def resim_version(self) -> str:
        """The package version that wrote the folder."""
        return str(self.manifest["versions"]["resim"])


@dataclass
class Setting:
    """One compared setting: a run folder or a sweep point, its runs keyed by seed."""

    name: str
    source: str
    scenario: str
    changes: str
    summary: pd.DataFrame  # indexed by seed
    timeseries: Callable[[list[int], list[str]], pd.DataFrame]
    start: str = ""
    months: int = 0
    overrides: dict[str, Any] = field(default_factory=dict)


@dataclass
class CompareResult:
    """What ``compare`` computed and where it wrote it."""

    out: Path
    settings: list[str]
    seeds: list[int]
    metrics: list[str]
    means: pd.DataFrame
    differences: pd.DataFrame
    sensitivity: pd.DataFrame | None
    files: list[Path]
    notes: list[str] = field(default_factory=list)


@contextmanager
def _reading_parquet(path: Path) -> Iterator[None]:
    """Turn a missing or unreadable parquet file into a CompareError naming it."""
    try:
        yield
    except FileNotFoundError:
        raise CompareError(
            str(path), "", "file missing; the results folder is incomplete"
        ) from None
    except (pa.ArrowException, OSError, ValueError) as err:
        raise CompareError(
            str(path),
            "",
            f"unreadable parquet file ({err}); the folder is truncated or damaged, "
            "re-run it or compare other folders",
        ) from None


def _read_parquet(path: Path, columns: list[str] | None = None) -> pd.DataFrame:
    with _reading_parquet(path):
        return pd.read_parquet(path, columns=columns)


def _parquet_columns(path: Path) -> list[str]:
    with _reading_parquet(path):
        return list(pq.read_schema(path).names)


def _read_manifest(folder: Path) -> dict[str, Any]:
    if not folder.exists():
        raise CompareError(str(folder), "", "no such folder")
    if not folder.is_dir():
        raise CompareError(str(folder), "", "not a folder; give results folders of resim run/sweep")
    path = folder / "manifest.json"
    if not path.is_file():
        raise CompareError(
            str(folder),
            "manifest.json",
            "missing: not a results folder (resim run and resim sweep write one)",
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CompareError(str(path), "", f"unreadable manifest ({err})") from None
    if not isinstance(data, dict):
        raise CompareError(str(path), "", "the manifest is not a JSON object")
    version = data.get("format_version")
    if version != FORMAT_VERSION:
        raise CompareError(
            str(folder),
            "manifest.json: format_version",
            f"{version!r}, but this resim reads format_version {FORMAT_VERSION} only",
        )
    if data.get("kind") not in ("run", "sweep"):
        raise CompareError(
            str(folder), "manifest.json: kind", f"{data.get('kind')!r}; allowed: 'run', 'sweep'"
        )
    resim = (data.get("versions") or {}).get("resim")
    if not resim:
        raise CompareError(
            str(folder),
            "manifest.json: versions.resim",
            "missing; cannot tell which model version wrote the folder",
        )
    for key in ("seeds", "runs"):
        if not isinstance(data.get(key), list):
            raise CompareError(str(folder), f"manifest.json: {key}", "missing or not a list")
    return data


def _done_runs(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in manifest["runs"] if isinstance(r, dict) and r.get("status") == "done"]


def _check_run_entries(folder: Path, manifest: dict[str, Any]) -> None:
    keys = ("run_id", "seed", "point") if manifest["kind"] == "sweep" else ("run_id", "seed")
    for i, run in enumerate(manifest["runs"]):
        if not isinstance(run, dict) or any(k not in run for k in keys):
            raise CompareError(
                str(folder),
                f"manifest.json: runs[{i}]",
                f"each run needs {', '.join(keys)} and status; got {run!r}",
            )


def _run_file(folder: Path, run_id: str) -> Path:
    return folder / "runs" / f"{run_id}.parquet"


def _check_run_rows(folder: Path, path: Path, run_id: str, columns: list[str]) -> None:
    """A sweep's ``runs/<id>.parquet`` must hold run ``<id>``'s rows, not a copy of another's."""
    if "run_id" not in columns:
        raise CompareError(str(path), "", "has no run_id column; not a resim run file")
    held = sorted(set(_read_parquet(path, ["run_id"])["run_id"].astype(str)) - {run_id})
    if held:
        raise CompareError(
            str(path),
            "run_id",
            f"holds the rows of run {held[0]}, not of run {run_id} (the file was copied over or "
            f"renamed); resume the sweep with `resim sweep SWEEP --out {folder} --resume` to "
            "run it again, or compare other folders",
        )


def read_folder(folder: Path, manifest: dict[str, Any] | None = None) -> Folder:
    """Read a results folder and check that its files agree with its manifest."""
    manifest = manifest if manifest is not None else _read_manifest(folder)
    _check_run_entries(folder, manifest)
    done = _done_runs(manifest)
    done_ids = {str(r["run_id"]) for r in done}
    summary = _read_parquet(folder / "summary.parquet")
    if "run_id" not in summary.columns or "seed" not in summary.columns:
        raise CompareError(
            str(folder / "summary.parquet"), "", "has no run_id/seed columns; not a resim summary"
        )
    listed = set(summary["run_id"].astype(str))
    missing = sorted(done_ids - listed)
    if missing:
        raise CompareError(
            str(folder),
            "manifest.json: runs",
            f"lists run {missing[0]} as done but summary.parquet has no row for it "
            f"({len(missing)} such run(s)); the folder is incomplete",
        )
    extra = sorted(listed - done_ids)
    if extra:
        raise CompareError(
            str(folder),
            "summary.parquet",
            f"has run {extra[0]} that the manifest does not list as done "
            f"({len(extra)} such run(s)); the files and the manifest disagree",
        )
    if manifest["kind"] == "run":
        path = folder / "timeseries.parquet"
        columns = _parquet_columns(path)
        if "run_id" not in columns:
            raise CompareError(str(path), "", "has no run_id column; not a resim timeseries")
        in_file = set(_read_parquet(path, ["run_id"])["run_id"].astype(str))
        absent = sorted(done_ids - in_file)
        if absent:
            raise CompareError(
                str(folder),
                "manifest.json: runs",
                f"lists run {absent[0]} as done but timeseries.parquet has no rows for it",
            )
    else:
        columns = []
        for run in done:
            path = _run_file(folder, str(run["run_id"]))
            if not path.is_file():
                raise CompareError(
                    str(folder),
                    "manifest.json: runs",
                    f"lists run {run['run_id']} (point {run.get('point')}, seed {run.get('seed')})"
                    f" as done but runs/{run['run_id']}.parquet is missing",
                )
            these = _parquet_columns(path)
            if columns and these != columns:
                raise CompareError(str(path), "", "its columns differ from the folder's other runs")
            columns = these
            _check_run_rows(folder, path, str(run["run_id"]), these)
    return Folder(folder, manifest, summary[summary["run_id"].astype(str).isin(done_ids)], columns)


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): data}


def _changes(params: dict[str, Any], reference: dict[str, Any]) -> str:
    flat, ref = _flatten(params), _flatten(reference)
    diffs = [
        f"{key}: {ref.get(key, 'absent')} → {flat.get(key, 'absent')}"
        for key in sorted(set(flat) | set(ref))
        if flat.get(key) != ref.get(key)
    ]
    if len(diffs) > MAX_CHANGES:
        more = len(diffs) - MAX_CHANGES
        diffs = [*diffs[:MAX_CHANGES], f"and {more} more (see the manifests)"]
    return "; ".join(diffs) if diffs else "none"


def _by_seed(summary: pd.DataFrame, where: str) -> pd.DataFrame:
    seeds = summary["seed"].astype("int64")
    if seeds.duplicated().any():
        dup = int(seeds[seeds.duplicated()].iloc[0])
        raise CompareError(where, "summary.parquet", f"two finished runs with seed {dup}")
    return summary.assign(seed=seeds).set_index("seed").sort_index()


def _run_timeseries(folder: Folder) -> Callable[[list[int], list[str]], pd.DataFrame]:
    def read(seeds: list[int], columns: list[str]) -> pd.DataFrame:
        frame = _read_parquet(
            folder.path / "timeseries.parquet", ["seed", "month", "date", *columns]
        )
        return frame[frame["seed"].isin(seeds)]

    return read


def _sweep_timeseries(
    folder: Folder, run_ids: dict[int, str]
) -> Callable[[list[int], list[str]], pd.DataFrame]:
    def read(seeds: list[int], columns: list[str]) -> pd.DataFrame:
        frames = [
            _read_parquet(_run_file(folder.path, run_ids[s]), ["seed", "month", "date", *columns])
            for s in seeds
        ]
        return pd.concat(frames, ignore_index=True)

    return read


def _start(manifest: dict[str, Any]) -> str:
    return str(((manifest.get("parameters") or {}).get("scenario") or {}).get("start", ""))


def _unique_names(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name} ({seen[name]})")
    return out


def run_settings(folders: list[Folder]) -> list[Setting]:
    """One setting per ``resim run`` folder."""
    reference = folders[0].manifest.get("parameters") or {}
    names = _unique_names([f.path.name or str(f.path) for f in folders])
    return [
        Setting(
            name=name,
            source=str(f.path),
            scenario=str(f.manifest.get("scenario", "")),
            changes="reference"
            if i == 0
            else _changes(f.manifest.get("parameters") or {}, reference),
            summary=_by_seed(f.summary, str(f.path)),
            timeseries=_run_timeseries(f),
            start=_start(f.manifest),
            months=int(f.manifest.get("months", 0)),
        )
        for i, (name, f) in enumerate(zip(names, folders, strict=True))
    ]


def _tied_key(keys: list[str]) -> str:
    """``policy.tariff.{ndpr,dytb}`` for keys a sweep ties to one value."""
    if len(keys) == 1:
        return keys[0]
    common = keys[0]
    for key in keys[1:]:
        while not key.startswith(common):
            common = common[:-1]
    prefix = common[: common.rfind(".") + 1]
    if not prefix:
        return " & ".join(keys)
    return prefix + "{" + ",".join(k.removeprefix(prefix) for k in keys) + "}"


def _point_name(point: dict[str, Any], sweep: dict[str, Any]) -> str:
    """``point i: key=value, ...``, tied keys written together."""
    index = int(point["index"])
    overrides = point.get("overrides") or {}
    parameters = sweep.get("parameters") or []
    if parameters and all(p.get("keys") and p["keys"][0] in overrides for p in parameters):
        parts = []
        for p in parameters:
            value = overrides[p["keys"][0]]
            shown = f"{value:.4g}" if isinstance(value, float) else str(value)
            parts.append(f"{_tied_key(list(p['keys']))}={shown}")
        return f"point {index}: " + ", ".join(parts)
    return f"point {index}: {point.get('label') or 'base'}"


def point_label(overrides: dict[str, Any]) -> str:
    """Every override of a point, ``key=value`` (``none`` for the base itself)."""
    if not overrides:
        return "none"
    return "; ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in overrides.items()
    )


def sweep_settings(folder: Folder) -> list[Setting]:
    """One setting per point of a ``resim sweep`` folder."""
    manifest = folder.manifest
    points = manifest.get("points")
    if not isinstance(points, list) or not points:
        raise CompareError(str(folder.path), "manifest.json: points", "missing or empty")
    if "point" not in folder.summary.columns:
        raise CompareError(
            str(folder.path / "summary.parquet"), "", "has no point column; not a sweep summary"
        )
    sweep = manifest.get("sweep") or {}
    run_ids: dict[int, dict[int, str]] = {}
    for run in _done_runs(manifest):
        run_ids.setdefault(int(run["point"]), {})[int(run["seed"])] = str(run["run_id"])
    settings = []
    for point in sorted(points, key=lambda p: int(p["index"])):
        index = int(point["index"])
        rows = folder.summary[folder.summary["point"].astype("int64") == index]
        where = f"{folder.path} (point {index})"
        settings.append(
            Setting(
                name=_point_name(point, sweep),
                source=f"{folder.path}, point {index}",
                scenario=str(manifest.get("scenario", "")),
                changes=point_label(point.get("overrides") or {}),
                summary=_by_seed(rows, where),
                timeseries=_sweep_timeseries(folder, run_ids.get(index, {})),
                start=_start(manifest),
                months=int(manifest.get("months", 0)),
                overrides=dict(point.get("overrides") or {}),
            )
        )
    return settings


# ----------------------------------------------------------------------------- statistics
def t_central(t: float, df: int) -> float:
    """P(|T| < t) for Student's t with ``df`` degrees of freedom (Abramowitz & Stegun 26.7.3-4).

    Finite sums for integer ``df``; exact to rounding, so no statistics library is needed.
    """
    theta = math.atan(t / math.sqrt(df))
    c2 = math.cos(theta) ** 2
    total, term = 1.0, 1.0
    if df % 2:
        for k in range(1, (df - 1) // 2):
            term *= 2 * k / (2 * k + 1) * c2
            total += term
        series = 0.0 if df == 1 else math.sin(theta) * math.cos(theta) * total
        return 2 / math.pi * (theta + series)
    for k in range(1, df // 2):
        term *= (2 * k - 1) / (2 * k) * c2
        total += term
    return math.sin(theta) * total


@functools.lru_cache(maxsize=256)
def t_quantile(df: int, confidence: float = CONFIDENCE) -> float:
    """Two-sided quantile of Student's t: the t with P(|T| < t) = ``confidence``, by bisection."""
    if df < 1:
        msg = f"degrees of freedom must be at least 1, got {df}"
        raise ValueError(msg)
    low, high = 0.0, 2.0
    while t_central(high, df) < confidence:
        low, high = high, 2 * high
    while high - low > 1e-12 * high:
        mid = (low + high) / 2
        if t_central(mid, df) < confidence:
            low = mid
        else:
            high = mid
    return (low + high) / 2


def paired_difference(setting: np.ndarray, reference: np.ndarray) -> dict[str, Any]:
    """Mean seed-paired difference, its standard error and t interval (NaN pairs dropped)."""
    diff = setting - reference
    keep = np.isfinite(diff)
    diff = diff[keep]
    n = len(diff)
    out: dict[str, Any] = {
        "n_seeds": n,
        "difference": float(diff.mean()) if n else math.nan,
        "se": math.nan,
        "ci_low": math.nan,
        "ci_high": math.nan,
        "distinguishable": "undefined",
        "note": "",
    }
    if n == 0:
        out["note"] = "no seed has a value in both settings"
        return out
    if n == 1:
        out["note"] = "one shared seed: no interval can be estimated"
        return out
    se = float(diff.std(ddof=1) / math.sqrt(n))
    half = t_quantile(n - 1) * se
    low, high = out["difference"] - half, out["difference"] + half
    # Differences at floating-point rounding level are not a real effect of the setting.
    scale = max(1.0, float(np.abs(reference[keep]).mean()), float(np.abs(setting[keep]).mean()))
    tol = 1e-9 * scale
    out.update(
        se=se,
        ci_low=low,
        ci_high=high,
        distinguishable="yes" if low > tol or high < -tol else "no",
    )
    if se == 0:
        same = "identical" if out["difference"] == 0 else "the same difference"
        out["note"] = f"{same} on every seed"
    return out


def means_table(settings: list[Setting], seeds: list[int], metrics: list[str]) -> pd.DataFrame:
    """Mean, sd, min and max of each metric per setting over the shared seeds."""
    rows = []
    for metric in metrics:
        label, unit = metric_label(metric)
        for s in settings:
            values = s.summary.loc[seeds, metric].to_numpy(dtype=float)
            values = values[np.isfinite(values)]
            rows.append(
                {
                    "metric": metric,
                    "label": label,
                    "unit": unit,
                    "setting": s.name,
                    "n_seeds": len(values),
                    "mean": float(values.mean()) if len(values) else math.nan,
                    "sd": float(values.std(ddof=1)) if len(values) > 1 else math.nan,
                    "min": float(values.min()) if len(values) else math.nan,
                    "max": float(values.max()) if len(values) else math.nan,
                }
            )
    return pd.DataFrame(rows)


def differences_table(
    settings: list[Setting], seeds: list[int], metrics: list[str]
) -> pd.DataFrame:
    """Seed-paired difference of every setting against the first, per metric."""
    reference = settings[0]
    rows = []
    for metric in metrics:
        label, unit = metric_label(metric)
        ref = reference.summary.loc[seeds, metric].to_numpy(dtype=float)
        for s in settings[1:]:
            values = s.summary.loc[seeds, metric].to_numpy(dtype=float)
            rows.append(
                {
                    "metric": metric,
                    "label": label,
                    "unit": unit,
                    "setting": s.name,
                    "reference": reference.name,
                    "mean_reference": float(np.nanmean(ref))
                    if np.isfinite(ref).any()
                    else math.nan,
                    "mean_setting": (
                        float(np.nanmean(values)) if np.isfinite(values).any() else math.nan
                    ),
                    **paired_difference(values, ref),
                }
            )
    columns = [
        "metric",
        "label",
        "unit",
        "setting",
        "reference",
        "n_seeds",
        "mean_reference",
        "mean_setting",
        "difference",
        "se",
        "ci_low",
        "ci_high",
        "distinguishable",
        "note",
    ]
    return pd.DataFrame(rows, columns=columns)


def sensitivity_table(
    folder: Folder, settings: list[Setting], seeds: list[int], metrics: list[str]
) -> tuple[pd.DataFrame | None, list[str]]:
    """SALib indices of each metric's seed mean for a Sobol or Morris sweep, with notes."""
    sweep = folder.manifest.get("sweep") or {}
    design = sweep.get("design")
    if design not in SENSITIVITY_DESIGNS:
        return None, []
    parameters = sweep.get("parameters") or []
    try:
        names = [str(p["keys"][0]) for p in parameters]
        problem = {
            "num_vars": len(parameters),
            "names": names,
            "bounds": [[float(p["low"]), float(p["high"])] for p in parameters],
        }
    except (KeyError, IndexError, TypeError, ValueError):
        return None, [
            (
                "Sensitivity indices not computed: the manifest's sweep.parameters do not give "
                f"keys, low and high for every parameter of the {design} design."
            )
        ]
    n_vars = len(names)
    n_points = len(settings)
    group = n_vars + 2 if design == "sobol" else n_vars + 1
    if n_vars == 0 or n_points % group:
        return None, [
            (
                f"Sensitivity indices not computed: {n_points} points do not form a {design} "
                f"design over {n_vars} parameter(s) (expected a multiple of {group})."
            )
        ]
    seed = int(sweep.get("sample_seed", 0))
    try:
        from SALib.analyze import morris, sobol
    except ImportError:
        return None, ["Sensitivity indices not computed: SALib is not installed."]

    missing: list[str] = []
    constant: list[str] = []
    rows: list[dict[str, Any]] = []
    for metric in metrics:
        y = np.array([s.summary.loc[seeds, metric].to_numpy(dtype=float).mean() for s in settings])
        if not np.isfinite(y).all():
            missing.append(f"`{metric}`")
            continue
        if np.ptp(y) <= 1e-12 * max(1.0, float(np.abs(y).max())):
            constant.append(f"`{metric}`")
            continue
        with np.errstate(divide="ignore", invalid="ignore"):
            if design == "sobol":
                res = sobol.analyze(
                    problem, y, calc_second_order=False, seed=seed, print_to_console=False
                )
                indices: tuple[tuple[str, str], ...] = (("S1", "S1_conf"), ("ST", "ST_conf"))
            else:
                x = np.array([[float(s.overrides[name]) for name in names] for s in settings])
                levels = int(sweep.get("num_levels", 4))
                res = morris.analyze(
                    problem, x, y, num_levels=levels, seed=seed, print_to_console=False
                )
                indices = (("mu_star", "mu_star_conf"), ("sigma", ""), ("mu", ""))
        for i, name in enumerate(names):
            for index, conf_key in indices:
                value = np.ma.filled(np.ma.asarray(res[index], dtype=float), np.nan)[i]
                conf = (
                    np.ma.filled(np.ma.asarray(res[conf_key], dtype=float), np.nan)[i]
                    if conf_key
                    else math.nan
                )
                label, unit = metric_label(metric)
                rows.append(
                    {
                        "metric": metric,
                        "label": label,
                        "unit": "" if design == "sobol" else unit,
                        "parameter": name,
                        "index": index,
                        "value": float(value),
                        "conf_95": float(conf),
                    }
                )
    frame = pd.DataFrame(
        rows, columns=["metric", "label", "unit", "parameter", "index", "value", "conf_95"]
    )
    notes = []
    if constant:
        notes.append(
            f"No sensitivity indices where the metric is the same at every point: {', '.join(constant)}."
        )
    if missing:
        notes.append(
            f"No sensitivity indices where some points lack a value: {', '.join(missing)}."
        )
    return frame, notes


# ----------------------------------------------------------------------------- plots
def _palette(n: int) -> list[Any]:
    from matplotlib import colormaps

    if n <= 10:
        cmap = colormaps["tab10"]
        return [cmap(i) for i in range(n)]
    cmap = colormaps["viridis"]
    return [cmap(i / max(1, n - 1)) for i in range(n)]


def _number(x: float, _pos: Any = None) -> str:
    if not math.isfinite(x):
        return "n/a"
    if x == 0:
        return "0"
    if abs(x) >= 1e4:
        return f"{x:,.0f}"
    if abs(x) >= 1e-3:
        return f"{x:,.4g}"
    return f"{x:.3g}"


def _short(name: str, width: int = 48) -> str:
    return name if len(name) <= width else name[: width - 1] + "…"


def _figure(width: float, height: float, *, constrained: bool = True) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=120, layout="constrained" if constrained else None)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: Path) -> None:
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120))


@dataclass
class Fan:
    """Median and band of one series across seeds, per month, for one setting."""

    dates: np.ndarray
    median: np.ndarray
    low: np.ndarray
    high: np.ndarray


def fan(frame: pd.DataFrame, column: str) -> Fan:
    """Median and 90% band of ``column`` across seeds for each month."""
    by_month = frame.groupby("month", sort=True)
    dates = pd.to_datetime(by_month["date"].first(), format="%Y-%m").to_numpy()
    q = by_month[column].quantile(np.array([BAND[0], 0.5, BAND[1]])).unstack()
    return Fan(
        dates,
        q[0.5].to_numpy(dtype=float),
        q[BAND[0]].to_numpy(dtype=float),
        q[BAND[1]].to_numpy(dtype=float),
    )


def _legend_name(setting: Setting, many: bool) -> str:
    """Legend text; with many settings only the ``point i`` part of a sweep point's name."""
    if many and setting.name.startswith("point "):
        return setting.name.split(":", 1)[0]
    return _short(setting.name, 28 if many else 60)


def plot_fan(
    column: str,
    fans: list[Fan],
    settings: list[Setting],
    n_seeds: int,
    xlim: tuple[float, float],
    path: Path,
) -> None:
    """One series, one band and median line per setting, on one set of axes."""
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    from matplotlib.legend_handler import HandlerTuple
    from matplotlib.patches import Patch
    from matplotlib.ticker import FuncFormatter

    title, unit = FAN_SERIES[column]
    colors = _palette(len(settings))
    many = len(settings) > MAX_BANDS
    # Fixed margins: every fan chart has the same frame, and it draws twice as fast as a
    # constrained layout.
    fig = _figure(9, 5, constrained=False)
    fig.subplots_adjust(left=0.1, right=0.97, top=0.85, bottom=0.11)
    ax = fig.add_subplot()
    handles: list[Any] = []
    # Lines narrow from the first setting to the last, so settings that coincide show as
    # nested stripes instead of the last one hiding the others.
    widths = np.linspace(3.6, 1.4, len(settings)) if len(settings) > 1 else np.array([2.0])
    for f, color, width in zip(fans, colors, widths, strict=True):
        if not many:
            ax.fill_between(f.dates, f.low, f.high, color=color, alpha=0.18, linewidth=0)
        (line,) = ax.plot(f.dates, f.median, color=color, linewidth=1.2 if many else width)
        handles.append(line if many else (Patch(facecolor=color, alpha=0.18), line))
    fig.suptitle(f"{title} ({unit})", fontsize=13, fontweight="bold")
    what = (
        f"median across {n_seeds} seed(s) per setting; {len(settings)} settings coloured in "
        "order (bands left out)"
        if many
        else f"line: median across {n_seeds} seed(s); band: 5th-95th percentile"
    )
    if column in FAN_NOTES:
        what += f"\n{FAN_NOTES[column]}"
    ax.set_title(what, fontsize=10, color="dimgray")
    ax.set_ylabel(unit)
    ax.set_xlabel("date (monthly steps)")
    locator = AutoDateLocator(maxticks=10)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    ax.set_xlim(*xlim)
    ax.yaxis.set_major_formatter(FuncFormatter(_number))
    ax.grid(True, color="0.9")
    ax.set_axisbelow(True)
    if all(np.nanmax(np.abs(np.r_[f.low, f.high, 0.0])) == 0 for f in fans):
        ax.set_ylim(-0.1, 1)
        ax.text(0.5, 0.5, "zero in every run", transform=ax.transAxes, ha="center", color="dimgray")
    if many:
        # A legend entry per point would crowd out the chart: a colour scale of the points instead.
        from matplotlib.cm import ScalarMappable
        from matplotlib.colors import Normalize

        scale = ScalarMappable(Normalize(0, len(settings) - 1), cmap="viridis")
        bar = fig.colorbar(scale, ax=ax, pad=0.01, aspect=30)
        bar.set_label("setting (sweep point) number, see report.md")
    else:
        ax.legend(
            handles,
            [_legend_name(s, many) for s in settings],
            handler_map={tuple: HandlerTuple(ndivide=1)},
            fontsize=9,
            loc="best",
        )
    _save(fig, path)


def _grid(n: int, ncols: int = 3) -> tuple[int, int]:
    ncols = min(ncols, n)
    return math.ceil(n / ncols), ncols


def _signed(x: float) -> str:
    return ("+" if x > 0 else "") + _number(x)


def plot_differences(differences: pd.DataFrame, settings: list[Setting], path: Path) -> list[str]:
    """Bars of each metric's paired difference with 95% intervals; returns metrics left out."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from matplotlib.ticker import FuncFormatter

    palette = _palette(len(settings))
    colors = {s.name: palette[i] for i, s in enumerate(settings)}
    shown, left_out = [], []
    for metric, rows in differences.groupby("metric", sort=False):
        ends = rows[["difference", "ci_low", "ci_high"]].to_numpy(dtype=float)
        if not np.isfinite(ends[:, 0]).any() or np.nanmax(np.abs(ends)) == 0:
            left_out.append(str(metric))
            continue
        shown.append((str(metric), rows))
    if not shown:
        return left_out
    n_bars = len(settings) - 1
    many = n_bars > MAX_BANDS
    nrows, ncols = _grid(len(shown), 4 if many else 3)
    panel_h = 0.17 * n_bars + 1.2 if many else max(1.7, 0.32 * n_bars + 1.1)
    fig = _figure(4.2 * ncols + 0.4, panel_h * nrows + 1.3)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    y = np.arange(n_bars)[::-1]
    for k, (metric, rows) in enumerate(shown):
        ax: Axes = axes[k // ncols][k % ncols]
        diff = rows["difference"].to_numpy(dtype=float)
        low = rows["ci_low"].to_numpy(dtype=float)
        high = rows["ci_high"].to_numpy(dtype=float)
        solid = (rows["distinguishable"] == "yes").to_numpy()
        bar_colors = [colors[name] for name in rows["setting"]]
        bars = ax.barh(y, np.nan_to_num(diff), height=0.7, edgecolor=bar_colors, linewidth=1.2)
        for patch, color, is_solid in zip(bars.patches, bar_colors, solid, strict=True):
            patch.set_facecolor(color if is_solid else "white")
            if not is_solid:
                patch.set_hatch("///")
        has_ci = np.isfinite(low)
        if has_ci.any():
            ax.errorbar(
                diff[has_ci],
                y[has_ci],
                xerr=np.vstack([diff[has_ci] - low[has_ci], high[has_ci] - diff[has_ci]]),
                fmt="none",
                ecolor="black",
                capsize=2 if many else 3,
                linewidth=1,
            )
        ends = np.r_[diff, low, high]
        lo = min(0.0, float(np.nanmin(ends)))
        hi = max(0.0, float(np.nanmax(ends)))
        pad = (0.3 if not many else 0.05) * ((hi - lo) or 1.0)
        ax.set_xlim(lo - (pad if lo < 0 else 0.04 * pad), hi + (pad if hi > 0 else 0.04 * pad))
        if not many:
            for yi, d, lo_i, hi_i in zip(y, diff, low, high, strict=True):
                if not math.isfinite(d):
                    continue
                # The label goes past the bar's outer end; a zero bar's label toward the room.
                rightward = d > 0 or (d == 0 and hi > 0)
                outer = hi_i if rightward else lo_i
                ax.annotate(
                    _signed(d),
                    (outer if math.isfinite(outer) else d, yi),
                    xytext=(4 if rightward else -4, 0),
                    textcoords="offset points",
                    ha="left" if rightward else "right",
                    va="center",
                    fontsize=8.5,
                )
        ax.axvline(0, color="black", linewidth=0.8)
        label, unit = metric_label(metric)
        ax.set_title("\n".join(textwrap.wrap(label, 38)), fontsize=9.5)
        ax.set_xlabel(f"difference ({unit})" if unit else "difference", fontsize=8.5)
        if many:
            ax.set_yticks(y, [_legend_name(s, many) for s in settings[1:]], fontsize=6.5)
        else:
            ax.set_yticks([])
        ax.set_ylim(-0.6, n_bars - 0.4)
        ax.xaxis.set_major_formatter(FuncFormatter(_number))
        ax.tick_params(axis="x", labelsize=8)
        ax.grid(True, axis="x", color="0.9")
        ax.set_axisbelow(True)
    for k in range(len(shown), nrows * ncols):
        axes[k // ncols][k % ncols].set_axis_off()
    handles: list[Any] = (
        []
        if many
        else [
            Patch(facecolor=colors[s.name], edgecolor=colors[s.name], label=_legend_name(s, many))
            for s in settings[1:]
        ]
    )
    handles += [
        Patch(facecolor="white", edgecolor="gray", hatch="///", label="95% CI includes 0"),
        Line2D([], [], color="black", marker="|", markersize=8, label="95% CI"),
    ]
    fig.suptitle(
        f"Difference from {_short(settings[0].name, 60)} (setting minus reference), "
        "seed-paired mean with 95% CI",
        fontsize=13,
        fontweight="bold",
    )
    fig.legend(
        handles=handles,
        loc="outside lower center",
        ncols=min(4, len(handles)),
        fontsize=9,
        frameon=False,
    )
    _save(fig, path)
    return left_out


def plot_sensitivity(table: pd.DataFrame, design: str, path: Path) -> None:
    """Bars of the sensitivity indices per metric, with their 95% intervals."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from matplotlib.ticker import FuncFormatter

    metrics = list(dict.fromkeys(table["metric"]))
    show = ("S1", "ST") if design == "sobol" else ("mu_star", "sigma")
    names = {
        "S1": "first-order S1",
        "ST": "total-order ST",
        "mu_star": "mu* (mean absolute effect)",
        "sigma": "sigma (spread: interactions, nonlinearity)",
    }
    colors = {show[0]: "tab:blue", show[1]: "tab:orange"}
    params = list(dict.fromkeys(table["parameter"]))
    nrows, ncols = _grid(len(metrics))
    panel_h = max(1.8, 0.45 * len(params) + 1.1)
    fig = _figure(4.2 * ncols + 0.4, panel_h * nrows + 1.3)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    y = np.arange(len(params))[::-1]
    for k, metric in enumerate(metrics):
        ax: Axes = axes[k // ncols][k % ncols]
        rows = table[table["metric"] == metric]
        for j, index in enumerate(show):
            part = rows[rows["index"] == index].set_index("parameter").reindex(params)
            conf = part["conf_95"].to_numpy(dtype=float)
            ax.barh(
                y + (0.2 if j == 0 else -0.2),
                part["value"].to_numpy(dtype=float),
                height=0.38,
                color=colors[index],
                xerr=np.where(np.isfinite(conf), conf, 0) if np.isfinite(conf).any() else None,
                error_kw={"capsize": 2, "linewidth": 0.8},
            )
        label, unit = metric_label(metric)
        ax.set_title("\n".join(textwrap.wrap(label, 38)), fontsize=9.5)
        ax.set_yticks(y, [_short(p, 28) for p in params], fontsize=8)
        ax.axvline(0, color="black", linewidth=0.8)
        if design == "sobol":
            ax.axvline(1, color="0.6", linewidth=0.8, linestyle=":")
        ax.set_xlabel(
            "share of variance (0-1)" if design == "sobol" else f"effect over the range ({unit})",
            fontsize=8.5,
        )
        ax.tick_params(axis="x", labelsize=8)
        ax.xaxis.set_major_formatter(FuncFormatter(_number))
        ax.grid(True, axis="x", color="0.9")
        ax.set_axisbelow(True)
    for k in range(len(metrics), nrows * ncols):
        axes[k // ncols][k % ncols].set_axis_off()
    fig.suptitle(
        f"{'Sobol' if design == 'sobol' else 'Morris'} sensitivity of seed-mean metrics, with 95% CI",
        fontsize=13,
        fontweight="bold",
    )
    fig.legend(
        handles=[Patch(color=colors[i], label=names[i]) for i in show]
        + [Line2D([], [], color="black", marker="|", markersize=8, label="95% CI")],
        loc="outside lower center",
        ncols=3,
        fontsize=9,
        frameon=False,
    )
    _save(fig, path)


# ----------------------------------------------------------------------------- report


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return _number(value)
    return str(value).replace("|", "\\|")


def _md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _estimate(value: Any, conf: Any) -> str:
    value, conf = float(value), float(conf)
    return _number(value) + (f" ± {_number(conf)}" if math.isfinite(conf) else "")


def _interval(row: pd.Series) -> str:
    if not math.isfinite(row["ci_low"]):
        return "undefined"
    return f"[{_number(row['ci_low'])}, {_number(row['ci_high'])}]"


def write_report(
    path: Path,
    settings: list[Setting],
    seeds: list[int],
    dropped: dict[int, list[str]],
    means: pd.DataFrame,
    differences: pd.DataFrame,
    sensitivity: pd.DataFrame | None,
    design: str | None,
    pngs: dict[str, str],
    notes: list[str],
    versions: str,
) -> None:
    """The Markdown report: how to read it, settings, tables, plots."""
    ref = settings[0].name
    parts = [
        "# Comparison of results",
        f"Written {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `resim compare` (resim {versions}).",
        "## How to read this",
        textwrap.dedent(
            f"""\
            Each setting ran on the same seeds, so settings are compared **seed by seed**: for
            every shared seed the difference *setting minus reference* (the reference is the
            first setting, **{ref}**) is taken, then averaged. The 95% confidence interval is
            mean +/- t(0.975, n-1) * standard error over the n seeds. A difference is
            **distinguishable** when its interval excludes zero; "no" means these seeds cannot
            tell it from zero, not that there is no effect. With many metrics, about one in twenty
            intervals misses the truth by chance, so read single borderline results with care.
            Fan charts show the median across seeds (line) and the 5th-95th percentile (band).
            Every numeric column of `summary.parquet` can be compared (`--metric NAME`); by
            default all are, except the stock-flow residuals `max_balance_error_*`, which check
            the model rather than describe a setting."""
        ),
        "## Settings",
        _md_table(
            ["setting", "source", "scenario", "start", "months", "changes from the reference"],
            [[s.name, s.source, s.scenario, s.start, s.months, s.changes] for s in settings],
        ),
        f"**Seeds used** ({len(seeds)}, shared by every setting): "
        + ", ".join(str(s) for s in seeds)
        + ".",
    ]
    if dropped:
        parts.append(
            "Seeds left out because some settings did not finish them: "
            + "; ".join(
                f"seed {seed} (missing from {', '.join(names[:3])}"
                + (f" and {len(names) - 3} more" if len(names) > 3 else "")
                + ")"
                for seed, names in dropped.items()
            )
            + "."
        )
    if notes:
        parts += ["## Notes", "\n".join(f"- {n}" for n in notes)]
    parts.append("## Differences from the reference")
    if len(seeds) == 1:
        parts.append(
            "Only one seed is shared, so no confidence interval can be estimated: the "
            "differences below are single-run differences. Run more seeds."
        )
    for name, rows in differences.groupby("setting", sort=False):
        parts += [
            f"### {name} vs {ref}",
            _md_table(
                [
                    "metric",
                    "unit",
                    "reference",
                    "setting",
                    "difference",
                    "95% CI",
                    "distinguishable",
                ],
                [
                    [
                        f"`{r['metric']}`",
                        r["unit"],
                        r["mean_reference"],
                        r["mean_setting"],
                        r["difference"],
                        _interval(r),
                        r["distinguishable"],
                    ]
                    for _, r in rows.iterrows()
                ],
            ),
        ]
    if "differences" in pngs:
        parts.append(f"![Differences with 95% intervals]({pngs['differences']})")
    parts.append("## Means per setting")
    wide = means.pivot_table(
        index="metric", columns="setting", values="mean", sort=False, dropna=False
    )
    names = [s.name for s in settings]
    parts.append(
        _md_table(
            ["metric", "unit", *names],
            [
                [f"`{m}`", metric_label(m)[1], *(float(wide.loc[m, n]) for n in names)]
                for m in wide.index
            ],
        )
    )
    parts.append("Full tables: `means.csv` (with sd, min, max) and `differences.csv`.")
    fans = [(c, p) for c, p in pngs.items() if c in FAN_SERIES]
    if fans:
        parts.append("## Timeseries")
        parts += [f"![{FAN_SERIES[c][0]}]({p})" for c, p in fans]
    if sensitivity is not None and not sensitivity.empty:
        parts.append(f"## Sensitivity ({design})")
        parts.append(
            "First-order (S1) and total-order (ST) Sobol indices: the share of the variance of a "
            "metric's seed mean due to a parameter alone, and including its interactions."
            if design == "sobol"
            else "Morris elementary effects: mu* is the mean absolute effect of moving a parameter across "
            "its whole range (in the metric's unit), sigma their spread (interactions or nonlinearity)."
        )
        indices = list(dict.fromkeys(sensitivity["index"]))
        table_rows: list[list[Any]] = []
        for (metric, parameter), group in sensitivity.groupby(["metric", "parameter"], sort=False):
            by_index = group.set_index("index")
            table_rows.append(
                [
                    f"`{metric}`",
                    parameter,
                    *(
                        _estimate(by_index.loc[i, "value"], by_index.loc[i, "conf_95"])
                        for i in indices
                    ),
                ]
            )
        parts.append(_md_table(["metric", "parameter", *indices], table_rows))
        parts.append(
            "Values are estimate ± half-width of the 95% interval (SALib's bootstrap). Indices from "
            "few samples are rough: Sobol indices can fall outside 0-1; wide intervals mean the "
            "sweep needs more samples."
        )
        if "sensitivity" in pngs:
            parts.append(f"![Sensitivity indices]({pngs['sensitivity']})")
    text = "\n\n".join(parts) + "\n"
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


# ----------------------------------------------------------------------------- compare
def _check_same(folders: list[Folder]) -> None:
    first = folders[0]
    for f in folders[1:]:
        if f.resim_version != first.resim_version:
            raise CompareError(
                str(f.path),
                "manifest.json: versions.resim",
                f"{f.resim_version}, but {first.path} was written by resim "
                f"{first.resim_version}; compare folders from the same model version",
            )
        if f.columns != first.columns:
            ours, theirs = set(f.columns), set(first.columns)
            extra, missing = sorted(ours - theirs), sorted(theirs - ours)
            detail = (
                f"has {', '.join(extra[:5])} that {first.path} lacks"
                if extra
                else f"lacks {', '.join(missing[:5])}"
                if missing
                else "has the same columns in another order"
            )
            raise CompareError(
                str(f.path),
                "timeseries columns",
                f"differ from {first.path}'s: {detail}; compare folders from the same model version",
            )


def _metrics(folders: list[Folder], requested: Sequence[str] | None) -> list[str]:
    allowed = [
        c
        for c in folders[0].summary.columns
        if c not in KEY_SUMMARY_COLUMNS
        and pd.api.types.is_numeric_dtype(folders[0].summary[c])
        and not pd.api.types.is_bool_dtype(folders[0].summary[c])
        and all(c in f.summary.columns for f in folders[1:])
    ]
    if not requested:
        return [c for c in allowed if not c.startswith(DIAGNOSTIC_PREFIX)]
    unknown = [m for m in requested if m not in allowed]
    if unknown:
        where = ", ".join(str(f.path) for f in folders)
        raise CompareError(
            where,
            f"--metric {unknown[0]}",
            f"unknown metric; allowed: {', '.join(allowed)}",
        )
    return list(dict.fromkeys(requested))


def default_out() -> Path:
    """``results/compare_<UTC time>``."""
    return Path("results") / f"compare_{datetime.now(UTC):%Y%m%d-%H%M%S}"


def compare(
    folders: list[Path],
    metrics: list[str] | None,
    out: Path,
    *,
    overwrite: bool = False,
) -> CompareResult:
    """Compare results folders (or the points of one sweep folder) seed by seed; write ``out``.

    Args:
        folders: two or more ``resim run`` folders, or one ``resim sweep`` folder.
        metrics: summary columns to compare; None for every headline metric.
        out: the folder to write (must not exist or be empty unless ``overwrite``).
        overwrite: replace a non-empty ``out``.

    Raises:
        CompareError: the folders cannot be compared, or ``out`` is taken.
    """
    paths = [Path(f) for f in folders]
    if not paths:
        problem = "give two or more results folders, or one sweep folder"
        raise CompareError(str(Path.cwd()), "DIR", problem)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise CompareError(
            str(out), "--out", "exists and is not empty; choose another folder or pass --overwrite"
        )
    target = out.resolve()
    for p in paths:
        source = p.resolve()
        if target == source or source in target.parents:
            raise CompareError(
                str(out), "--out", f"is (or is inside) the input folder {p}; choose another folder"
            )
        if overwrite and target in source.parents:
            raise CompareError(
                str(out), "--out", f"holds the input folder {p}; --overwrite would delete it"
            )
    manifests = [_read_manifest(p) for p in paths]
    sweeps = [p for p, m in zip(paths, manifests, strict=True) if m["kind"] == "sweep"]
    if sweeps and len(paths) > 1:
        raise CompareError(
            str(sweeps[0]),
            "",
            "a sweep folder is compared on its own (its points are the settings); "
            "give it alone, or give resim run folders only",
        )
    if len(paths) == 1 and not sweeps:
        raise CompareError(
            str(paths[0]),
            "",
            "only one setting: give two or more results folders, or one sweep folder",
        )
    read = [read_folder(p, m) for p, m in zip(paths, manifests, strict=True)]
    _check_same(read)
    settings = sweep_settings(read[0]) if sweeps else run_settings(read)
    if len(settings) < 2:
        raise CompareError(
            str(read[0].path), "manifest.json: points", "only one point: nothing to compare"
        )
    chosen = _metrics(read, metrics)
    seed_sets = [set(s.summary.index.astype(int)) for s in settings]
    shared = sorted(set.intersection(*seed_sets))
    if not shared:
        listing = "; ".join(
            f"{s.name}: {', '.join(map(str, sorted(seeds))) or 'none finished'}"
            for s, seeds in zip(settings, seed_sets, strict=True)
        )
        raise CompareError(
            ", ".join(str(p) for p in paths),
            "seeds",
            f"no seed is shared by every setting ({listing}); runs are compared seed by seed",
        )
    # Seeds some settings finished and others did not: which settings lack each of them.
    dropped = {
        seed: [s.name for s, seeds in zip(settings, seed_sets, strict=True) if seed not in seeds]
        for seed in sorted(set.union(*seed_sets) - set(shared))
    }

    notes: list[str] = []
    if len({s.start for s in settings}) > 1 or len({s.months for s in settings}) > 1:
        notes.append(
            "The settings cover different periods (start or months differ): totals over the "
            "horizon are not like for like."
        )
    commits = {str(f.manifest.get("git_commit")) for f in read}
    if len(commits) > 1:
        notes.append(
            "The folders come from different source commits of the same resim version "
            f"({', '.join(sorted(commits))}); the model may have changed between them."
        )
    if len(shared) == 1:
        notes.append("One shared seed: confidence intervals are undefined.")

    means = means_table(settings, shared, chosen)
    differences = differences_table(settings, shared, chosen)
    sensitivity, sens_notes = (
        sensitivity_table(read[0], settings, shared, chosen) if sweeps else (None, [])
    )
    notes += sens_notes
    design = str((read[0].manifest.get("sweep") or {}).get("design")) if sweeps else None

    series = [c for c in FAN_SERIES if c in read[0].columns]
    frames = [s.timeseries(shared, series) for s in settings]

    out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(out)
    staging = staging_folder(out)
    try:
        pngs: dict[str, str] = {}
        fans = {c: [fan(frame, c) for frame in frames] for c in series}
        all_dates = np.concatenate([f.dates for fs in fans.values() for f in fs] or [np.array([])])
        if len(all_dates):
            from matplotlib.dates import date2num

            xlim = (float(date2num(all_dates.min())), float(date2num(all_dates.max())))
            for column, fs in fans.items():
                name = f"fan_{column}.png"
                plot_fan(column, fs, settings, len(shared), xlim, staging / name)
                pngs[column] = name
        left_out = plot_differences(differences, settings, staging / "differences.png")
        if (staging / "differences.png").exists():
            pngs["differences"] = "differences.png"
        report_notes = list(notes)
        if left_out:
            report_notes.append(
                "Left out of `differences.png` (no difference, or no values, in any setting): "
                + ", ".join(f"`{m}`" for m in left_out)
                + "."
            )
        if sensitivity is not None and not sensitivity.empty and design:
            plot_sensitivity(sensitivity, design, staging / "sensitivity.png")
            pngs["sensitivity"] = "sensitivity.png"
        _write_csv(means, staging / "means.csv")
        _write_csv(differences, staging / "differences.csv")
        if sensitivity is not None:
            _write_csv(sensitivity, staging / "sensitivity.csv")
        write_report(
            staging / "report.md",
            settings,
            shared,
            dropped,
            means,
            differences,
            sensitivity,
            design,
            pngs,
            report_notes,
            read[0].resim_version,
        )
        files = sorted(p.name for p in staging.iterdir())
        if out.exists():
            shutil.rmtree(out) if out.is_dir() else out.unlink()
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return CompareResult(
        out=out,
        settings=[s.name for s in settings],
        seeds=shared,
        metrics=chosen,
        means=means,
        differences=differences,
        sensitivity=sensitivity,
        files=[out / name for name in files],
        notes=notes,
    )


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    atomic_write(path, lambda tmp: frame.to_csv(tmp, index=False, float_format="%.6g"))


# ----------------------------------------------------------------------------- command line
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``resim compare``."""
    parser.add_argument(
        "folders",
        nargs="+",
        type=Path,
        metavar="DIR",
        help="two or more results folders of resim run, or one sweep folder (compares its points)",
    )
    parser.add_argument(
        "--metric",
        action="append",
        default=[],
        metavar="NAME",
        help="a summary metric to compare (repeatable; default: every headline metric)",
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="output folder (default results/compare_<time>)"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out folder")


def cmd_compare(args: argparse.Namespace) -> int:
    """Compare results folders; print the differences and where the report went."""
    result = compare(
        list(args.folders), args.metric or None, args.out or default_out(), overwrite=args.overwrite
    )
    shown = result.settings[1:5]
    table = Table(
        title=escape(
            f"Difference from {result.settings[0]} over {len(result.seeds)} shared seed(s): "
            "mean [95% CI], * = distinguishable from 0"
        )
    )
    table.add_column("metric")
    for name in shown:
        table.add_column(escape(_short(name, 32)), justify="right")
    diffs = result.differences
    for metric in result.metrics:
        cells = []
        for name in shown:
            row = diffs[(diffs["metric"] == metric) & (diffs["setting"] == name)].iloc[0]
            mark = "*" if row["distinguishable"] == "yes" else ""
            cells.append(escape(f"{_number(row['difference'])} {_interval(row)}{mark}"))
        table.add_row(metric, *cells)
    console.print(table)
    if len(result.settings) > 5:
        console.print(f"({len(result.settings) - 5} more settings in the report)")
    for note in result.notes:
        console.print(f"note: {escape(note)}", highlight=False)
    console.print(f"Report in [bold]{escape(str(result.out / 'report.md'))}[/bold]")
    return 0
