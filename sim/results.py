"""Results folders: timeseries, summary, events and a manifest, each written atomically."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import tempfile
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim.params import PRODUCTS

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


def atomic_write(path: Path, write: Any) -> None:
    """Write through a temporary file in the same folder, then rename over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_parquet(frame: pd.DataFrame, path: Path) -> None:
    """Parquet, atomically."""
    atomic_write(path, lambda tmp: frame.to_parquet(tmp, index=False))


def write_json(data: dict[str, Any], path: Path) -> None:
    """JSON, atomically."""
    atomic_write(
        path, lambda tmp: tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str))
    )


def git_commit() -> str | None:
    """The source tree's commit, where known."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def versions() -> dict[str, str]:
    """Versions of the package and the libraries results depend on."""
    out = {"python": platform.python_version()}
    for name in ("resim", "mesa", "numpy", "pandas", "pyarrow", "pydantic"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "unknown"
    return out


def manifest(
    scenario_name: str,
    params: dict[str, Any],
    seeds: list[int],
    months: int,
    agent_counts: dict[str, int],
    runs: list[dict[str, Any]],
    started: datetime,
) -> dict[str, Any]:
    """The manifest of a results folder."""
    return {
        "format_version": FORMAT_VERSION,
        "kind": "run",
        "scenario": scenario_name,
        "parameters": params,
        "design": None,
        "seeds": seeds,
        "months": months,
        "agent_counts": agent_counts,
        "versions": versions(),
        "git_commit": git_commit(),
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
