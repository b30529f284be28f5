"""Results folders for the results page and the sweep monitor: listing, comparing, progress.

The results page runs the same ``sim.compare.compare`` as ``resim compare`` into a temporary
folder and shows its tables and plots. The sweep monitor reads a sweep folder that another process
is filling: its ``manifest.json`` (each run's status, rewritten every couple of seconds) and
``runs/`` (a run is finished exactly when its file exists: written atomically). Partial aggregates
are seed means per point over the runs finished so far; each run's summary is computed once and
kept while its file is unchanged.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from sim.compare import FAN_SERIES, CompareResult, compare
from sim.results import summarize

RESULTS_ENV = "RESIM_RESULTS_DIR"
HEADLINE = (
    "mean_price_landed_ndpr",
    "mean_price_landed_dytb",
    "capacity_domestic_end_t",
    "miners_defaulted",
    "lost_output_share",
    "public_cost_musd",
)


def results_root() -> Path:
    """Where results folders live: ``$RESIM_RESULTS_DIR`` or ``results/`` under the current folder."""
    return Path(os.environ.get(RESULTS_ENV) or Path.cwd() / "results")


def read_manifest(folder: Path) -> dict[str, Any] | None:
    """A folder's manifest, or None if it has none or it cannot be read (e.g. mid-write)."""
    try:
        data = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


@dataclass(frozen=True)
class FolderInfo:
    """One results folder as listed on the page."""

    path: Path
    kind: str  # "run" or "sweep"
    scenario: str
    runs: int
    done: int

    @property
    def label(self) -> str:
        """``name (kind, scenario, done/runs)`` for a picker."""
        return f"{self.path.name}  ({self.kind}: {self.scenario}, {self.done}/{self.runs} runs)"


def list_folders(root: Path | None = None, kind: str | None = None) -> list[FolderInfo]:
    """Results folders (those with a manifest) directly under ``root``, newest first."""
    root = root or results_root()
    if not root.is_dir():
        return []
    found = []
    for path in root.iterdir():
        if not path.is_dir() or path.name.startswith("."):
            continue
        manifest = read_manifest(path)
        if manifest is None or manifest.get("kind") not in ("run", "sweep"):
            continue
        if kind is not None and manifest.get("kind") != kind:
            continue
        runs = [r for r in manifest.get("runs") or [] if isinstance(r, dict)]
        found.append(
            (
                path.stat().st_mtime,
                FolderInfo(
                    path,
                    str(manifest.get("kind")),
                    str(manifest.get("scenario", "")),
                    len(runs),
                    sum(r.get("status") == "done" for r in runs),
                ),
            )
        )
    return [info for _, info in sorted(found, key=lambda item: (-item[0], item[1].path.name))]


@dataclass(frozen=True)
class Comparison:
    """What ``resim compare`` wrote, read back into memory: tables, notes and plots (PNG)."""

    settings: list[str]
    seeds: list[int]
    notes: list[str]
    means: pd.DataFrame
    differences: pd.DataFrame
    images: list[tuple[str, bytes]]


def compare_folders(folders: list[Path]) -> Comparison:
    """``resim compare`` on the folders (raises ``CompareError``), read back from a temporary folder.

    The plots come first as the fan charts (median and 5-95% band across seeds) in the order
    ``resim compare`` draws them, then the differences with their 95% intervals.
    """
    with tempfile.TemporaryDirectory(prefix="resim-viz-compare-") as tmp:
        result: CompareResult = compare(folders, None, Path(tmp) / "compare")
        images = []
        for name in [*(f"fan_{c}.png" for c in FAN_SERIES), "differences.png"]:
            path = result.out / name
            if path.is_file():
                title = FAN_SERIES.get(name.removeprefix("fan_").removesuffix(".png"), (name,))[0]
                images.append((str(title), path.read_bytes()))
        return Comparison(
            list(result.settings),
            list(result.seeds),
            list(result.notes),
            result.means,
            result.differences,
            images,
        )


# -------------------------------------------------------------------------------- sweeps
@dataclass
class SweepProgress:
    """A sweep folder's state as read now."""

    path: Path
    total: int = 0
    done: int = 0
    failed: int = 0
    pending: int = 0
    points: int = 0
    backend: str = ""
    started: str = ""
    updated: str = ""
    failures: pd.DataFrame = field(default_factory=pd.DataFrame)
    aggregates: pd.DataFrame = field(default_factory=pd.DataFrame)
    finished: bool = False
    problem: str | None = None

    @property
    def fraction(self) -> float:
        """Share of runs finished or failed, 0-1."""
        return (self.done + self.failed) / self.total if self.total else 0.0


_summary_cache: dict[Path, tuple[float, dict[str, Any]]] = {}
_cache_lock = threading.Lock()


def run_summary(path: Path) -> dict[str, Any] | None:
    """The headline summary of one finished run file, cached while the file is unchanged.

    The cache holds only what files on disk say, so sessions may share it.
    """
    try:
        mtime = path.stat().st_mtime
    except OSError:
        return None
    with _cache_lock:
        hit = _summary_cache.get(path)
    if hit and hit[0] == mtime:
        return hit[1]
    try:
        row = summarize(pd.read_parquet(path)).iloc[0].to_dict()
    except (OSError, ValueError, IndexError, KeyError):
        return None
    with _cache_lock:
        _summary_cache[path] = (mtime, row)
    return row


def sweep_progress(folder: Path) -> SweepProgress:
    """Progress, failures and seed means per point of a sweep folder, possibly still running."""
    progress = SweepProgress(folder)
    manifest = read_manifest(folder)
    if manifest is None:
        progress.problem = f"{folder}: no readable manifest.json (yet)"
        return progress
    if manifest.get("kind") != "sweep":
        progress.problem = f"{folder}: not a sweep folder (kind {manifest.get('kind')!r})"
        return progress
    runs = [r for r in manifest.get("runs") or [] if isinstance(r, dict) and "run_id" in r]
    points = {int(p["index"]): p for p in manifest.get("points") or [] if "index" in p}
    present = (
        {p.stem for p in (folder / "runs").glob("*.parquet")}
        if (folder / "runs").is_dir()
        else set()
    )
    failures = []
    rows = []
    for run in runs:
        rid = str(run["run_id"])
        status = "done" if rid in present else str(run.get("status", "pending"))
        if status == "done":
            progress.done += 1
            summary = run_summary(folder / "runs" / f"{rid}.parquet")
            if summary is not None:
                rows.append({"point": int(run.get("point", 0)), "seed": run.get("seed"), **summary})
        elif status == "failed":
            progress.failed += 1
            failures.append(
                {
                    "run_id": rid,
                    "point": run.get("point"),
                    "seed": run.get("seed"),
                    "error": run.get("error", ""),
                }
            )
        else:
            progress.pending += 1
    progress.total = len(runs)
    progress.points = len(points)
    progress.backend = str(manifest.get("backend", ""))
    progress.started = str(manifest.get("started", ""))
    progress.updated = str(manifest.get("updated", ""))
    progress.finished = progress.total > 0 and progress.pending == 0
    progress.failures = pd.DataFrame(failures, columns=["run_id", "point", "seed", "error"])
    if rows:
        frame = pd.DataFrame(rows)
        metrics = [m for m in HEADLINE if m in frame.columns]
        table = frame.groupby("point", sort=True)[metrics].mean()
        table.insert(0, "seeds done", frame.groupby("point", sort=True).size())
        table.insert(
            0,
            "setting",
            [str((points.get(int(i)) or {}).get("label", "")) for i in table.index],
        )
        progress.aggregates = table.reset_index()
    return progress
