"""Morris sensitivity report of a finished ``sensitivity`` sweep: CSV, figures, docs/sensitivity.md.

Reads a results folder written by ``resim sweep sensitivity`` (``manifest.json`` for the design
points and the swept parameters, ``summary.parquet`` for the headline outputs of every run), runs
``SALib.analyze.morris.analyze`` on each headline output and writes:

- ``<sweep folder>/sensitivity_morris.csv``: mu, mu*, its 95% interval and sigma per
  (output, parameter), in output units per full est_range;
- ``docs/figures/sensitivity_*.png``: the overview heat map and one bar chart per output group;
- ``docs/sensitivity.md``: how the sweep was run and which parameters drive each output.

Optionally ``--noise`` names a results folder of several seeds of the base scenario
(``resim run baseline --seeds 10``): its seed-to-seed spread gives the mu* that pure seed noise
would produce, drawn on the figures as the noise floor.

    .venv/bin/resim sweep sensitivity --workers 2 --out /tmp/sens
    .venv/bin/resim run baseline --seeds 10 --out /tmp/sens_noise
    .venv/bin/python tools/sensitivity_report.py /tmp/sens --noise /tmp/sens_noise
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
import textwrap
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import matplotlib as mpl

mpl.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.patches import Patch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sim.params import est_parameters  # noqa: E402

NUM_LEVELS = 4  # SALib's default, which sim.sweep uses for design "morris"
DELTA = NUM_LEVELS / (2 * (NUM_LEVELS - 1))  # step of a Morris move, share of the range
# Expected mu* of pure noise: |difference of two runs with independent noise sd s| / DELTA has
# mean sqrt(2) s sqrt(2/pi) / DELTA. Runs of one step share the seed, so this is an upper bound.
NOISE_FACTOR = 2.0 / math.sqrt(math.pi) / DELTA
TOP_BARS = 10
TOP_DRIVERS = 3
BARELY = 0.05  # a parameter "barely matters" below this share of each output's largest mu*

# Headline outputs: column -> (title, unit)
OUTPUTS: dict[str, tuple[str, str]] = {
    "peak_price_landed_ndpr": ("Peak landed price, NdPr oxide", "US$/kg"),
    "peak_price_landed_dytb": ("Peak landed price, Dy/Tb oxide", "US$/kg"),
    "peak_price_landed_cela": ("Peak landed price, Ce/La oxide", "US$/kg"),
    "mean_price_landed_ndpr": ("Mean landed price, NdPr oxide", "US$/kg"),
    "mean_price_landed_dytb": ("Mean landed price, Dy/Tb oxide", "US$/kg"),
    "mean_price_landed_cela": ("Mean landed price, Ce/La oxide", "US$/kg"),
    "capacity_domestic_2030_t": ("Domestic separation capacity, Dec 2030", "t REO/yr"),
    "miners_defaulted": ("Miners defaulted by 2035", "miners"),
    "public_cost_musd": ("Public cost 2025-2035, net of revenue", "US$ M"),
    "lost_output_share": ("Manufacturers' output lost to shortage, mean", "share of demand"),
}
SHORT: dict[str, str] = {
    "peak_price_landed_ndpr": "peak NdPr",
    "peak_price_landed_dytb": "peak Dy/Tb",
    "peak_price_landed_cela": "peak Ce/La",
    "mean_price_landed_ndpr": "mean NdPr",
    "mean_price_landed_dytb": "mean Dy/Tb",
    "mean_price_landed_cela": "mean Ce/La",
    "capacity_domestic_2030_t": "capacity 2030",
    "miners_defaulted": "miner defaults",
    "public_cost_musd": "public cost",
    "lost_output_share": "lost output",
}
GROUPS: dict[str, tuple[str, list[str]]] = {
    "peak_prices": ("Peak landed prices", [c for c in OUTPUTS if c.startswith("peak_price")]),
    "mean_prices": ("Mean landed prices", [c for c in OUTPUTS if c.startswith("mean_price")]),
    "supply": ("Domestic supply", ["capacity_domestic_2030_t", "miners_defaulted"]),
    "costs": ("Costs to the importing economy", ["public_cost_musd", "lost_output_share"]),
}
AGENT_COLOURS = {
    "foreign": "#c0392b",
    "market": "#7f8c8d",
    "miners": "#b9770e",
    "manufacturers": "#2471a3",
    "bank": "#239b56",
}


# ----------------------------------------------------------------------------- data
def load_sweep(folder: Path) -> tuple[dict[str, Any], dict[str, Any], np.ndarray, pd.DataFrame]:
    """Manifest, SALib problem, design matrix X (points x parameters) and summary rows."""
    manifest = json.loads((folder / "manifest.json").read_text())
    sweep = manifest["sweep"]
    if sweep.get("design") != "morris":
        msg = f"{folder}: design {sweep.get('design')!r}, this report needs a morris sweep"
        raise SystemExit(msg)
    params = sweep["parameters"]
    problem = {
        "num_vars": len(params),
        "names": [p["keys"][0] for p in params],
        "bounds": [[p["low"], p["high"]] for p in params],
    }
    points = sorted(manifest["points"], key=lambda p: p["index"])
    x = np.array([[float(p["overrides"][n]) for n in problem["names"]] for p in points])
    summary = pd.read_parquet(folder / "summary.parquet")
    missing = sorted(set(range(len(points))) - set(summary["point"]))
    if missing:
        msg = (
            f"{folder}: {len(missing)} point(s) have no finished run (first {missing[:5]}); "
            "Morris needs whole trajectories: finish the sweep with --resume"
        )
        raise SystemExit(msg)
    return manifest, problem, x, summary


def noise_sd(folder: Path | None) -> dict[str, float]:
    """Seed-to-seed standard deviation of each output in a multi-seed run of the base."""
    if folder is None:
        return {}
    summary = pd.read_parquet(folder / "summary.parquet")
    if len(summary) < 2:
        return {}
    out = {}
    for c in OUTPUTS:
        if c in summary:
            sd = float(summary[c].std(ddof=1))
            scale = max(1.0, float(summary[c].abs().mean()))
            out[c] = 0.0 if sd < 1e-9 * scale else sd  # floating-point jitter, not noise
    return out


def analyse(problem: dict[str, Any], x: np.ndarray, summary: pd.DataFrame) -> pd.DataFrame:
    """Morris indices per (output, parameter); outputs averaged over seeds at each point."""
    from SALib.analyze import morris

    by_point = summary.groupby("point").mean(numeric_only=True).sort_index()
    rows = []
    for output in OUTPUTS:
        y = by_point[output].to_numpy(dtype=float)
        if np.nanstd(y) == 0:
            res = {k: np.zeros(problem["num_vars"]) for k in ("mu", "mu_star", "sigma")}
            res["mu_star_conf"] = np.zeros(problem["num_vars"])
        else:
            res = morris.analyze(problem, x, y, num_levels=NUM_LEVELS, seed=0)
            # Effects at floating-point rounding level (relative 1e-9) are no effect.
            jitter = np.asarray(res["mu_star"]) < 1e-9 * float(np.nanmax(np.abs(y)))
            res = {
                key: np.where(jitter, 0.0, np.asarray(res[key], dtype=float))
                for key in res
                if key in {"mu", "mu_star", "mu_star_conf", "sigma"}
            }
        for i, name in enumerate(problem["names"]):
            rows.append(
                {
                    "output": output,
                    "parameter": name,
                    "mu": float(res["mu"][i]),
                    "mu_star": float(res["mu_star"][i]),
                    "mu_star_conf": float(res["mu_star_conf"][i]),
                    "sigma": float(res["sigma"][i]),
                }
            )
    table = pd.DataFrame(rows)
    top = table.groupby("output")["mu_star"].transform("max")
    table["mu_star_norm"] = np.where(top > 0, table["mu_star"] / top.where(top > 0, 1.0), 0.0)
    table["rank"] = table.groupby("output")["mu_star"].rank(ascending=False, method="first")
    return table.astype({"rank": int})


def step_changes(
    problem: dict[str, Any], x: np.ndarray, summary: pd.DataFrame
) -> dict[str, list[str]]:
    """For each parameter, the summary columns that change in any Morris step that moves it."""
    by_point = summary.groupby("point").mean(numeric_only=True).sort_index()
    columns = [  # model outputs, not the accounting diagnostics
        c for c in by_point.columns if c not in {"seed", "months"} and "balance_error" not in c
    ]
    values = by_point[columns].to_numpy(dtype=float)
    k = problem["num_vars"]
    moved: dict[str, set[str]] = {n: set() for n in problem["names"]}
    for start in range(0, len(x), k + 1):
        for i in range(start + 1, start + k + 1):
            changed = np.flatnonzero(x[i] != x[i - 1])
            if len(changed) != 1:
                continue
            diff = np.abs(values[i] - values[i - 1])
            scale = np.maximum(1.0, np.abs(values[i - 1]))
            name = problem["names"][int(changed[0])]
            moved[name].update(
                c for c, d, sc in zip(columns, diff, scale, strict=True) if d > 1e-9 * sc
            )
    return {n: sorted(c) for n, c in moved.items()}


# ----------------------------------------------------------------------------- figures
def _agent(key: str) -> str:
    return key.split(".", 1)[0]


def _fmt(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def _range(low: float, high: float) -> str:
    """A parameter range for a label: [6 to 20], [60k to 150k]."""

    def one(v: float) -> str:
        return f"{v / 1000:g}k" if abs(v) >= 10_000 else f"{v:g}"

    return f"[{one(low)} to {one(high)}]"


def _uncertain(row: pd.Series) -> bool:
    """The 95% interval of mu* reaches zero."""
    return bool(row["mu_star"] > 0 and row["mu_star_conf"] >= row["mu_star"])


def _legend_handles(with_floor: bool) -> list[Any]:
    from matplotlib.lines import Line2D

    handles: list[Any] = [Patch(color=c, label=f"{a} parameter") for a, c in AGENT_COLOURS.items()]
    handles.append(
        Patch(facecolor="white", edgecolor="black", hatch="///", label="interval reaches 0")
    )
    if with_floor:
        handles.append(Line2D([], [], color="black", linestyle=":", label="seed-noise \u03bc*"))
    return handles


def bar_panel(
    ax: Any, table: pd.DataFrame, output: str, ranges: dict[str, list[float]], floor: float | None
) -> None:
    """Top parameters of one output: normalised mu* with its 95% interval."""
    title, unit = OUTPUTS[output]
    rows = table[table["output"] == output].sort_values("mu_star", ascending=False)
    top_mu = float(rows["mu_star"].iloc[0])
    if top_mu == 0:
        ax.text(0.5, 0.5, "output does not vary in the sweep", ha="center", transform=ax.transAxes)
        ax.set_title(title, loc="left", fontsize=11, fontweight="bold")
        ax.set_axis_off()
        return
    rows = rows.head(TOP_BARS).iloc[::-1]
    y = np.arange(len(rows))
    width = rows["mu_star_norm"].to_numpy()
    err = (rows["mu_star_conf"] / top_mu).to_numpy()
    # whiskers longer than this are cut at the frame; the column on the right gives them
    right = min(max(1.05, float(np.max(width + err)) * 1.03), 1.6)
    bars = ax.barh(
        y,
        width,
        xerr=err,
        color=[AGENT_COLOURS.get(_agent(p), "grey") for p in rows["parameter"]],
        error_kw={"ecolor": "#222222", "elinewidth": 1, "capsize": 3},
        height=0.7,
    )
    for bar, (_, r) in zip(bars, rows.iterrows(), strict=True):
        if _uncertain(r):
            bar.set_hatch("///")
            bar.set_edgecolor("white")
    labels = [f"{p}  {_range(*ranges[p])}" for p in rows["parameter"]]
    ax.set_yticks(y, labels, fontsize=8.5)
    for tick, key in zip(ax.get_yticklabels(), rows["parameter"], strict=True):
        tick.set_color(AGENT_COLOURS.get(_agent(key), "black"))
    # mu* in output units, with the sign of mu, in a column right of the axes
    ax.text(
        1.01, 1.0, "\u03bc* \u00b1 95%  (sign)", transform=ax.transAxes, fontsize=8, va="bottom"
    )
    for yi, (_, r) in zip(y, rows.iterrows(), strict=True):
        sign = "+" if r["mu"] >= 0 else "\u2212"
        ax.annotate(
            f"{_fmt(r['mu_star'])} \u00b1 {_fmt(r['mu_star_conf'])}  ({sign})",
            xy=(1.01, yi),
            xycoords=("axes fraction", "data"),
            va="center",
            ha="left",
            fontsize=8,
            color="#333333",
        )
    if floor is not None and floor > 0:
        ax.axvline(floor / top_mu, color="black", linestyle=":", linewidth=1.3)
    ax.set_xlim(0, right)
    ax.set_ylim(-0.6, len(rows) - 0.4)
    ax.set_title(
        f"{title} ({unit})",
        loc="left",
        fontsize=10.5,
        fontweight="bold",
    )
    ax.set_xlabel("\u03bc* / largest \u03bc* for this output  (whiskers: 95% bootstrap interval)")
    ax.grid(axis="x", color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)
    ax.spines[["top", "right"]].set_visible(False)


def group_figure(
    name: str,
    table: pd.DataFrame,
    ranges: dict[str, list[float]],
    floors: dict[str, float],
    subtitle: str,
    out: Path,
) -> Path:
    """One figure per output group, one panel per output, stacked."""
    title, outputs = GROUPS[name]
    fig, axes = plt.subplots(
        len(outputs),
        1,
        figsize=(11, 3.6 * len(outputs) + 0.6),
        squeeze=False,
        layout="constrained",
    )
    for ax, output in zip(axes[:, 0], outputs, strict=True):
        bar_panel(ax, table, output, ranges, floors.get(output))
    fig.suptitle(
        f"Sensitivity of {title.lower()}: top {TOP_BARS} of {len(ranges)} EST parameters "
        "(Morris \u03bc*)",
        fontsize=12,
        fontweight="bold",
    )
    fig.legend(
        handles=_legend_handles(bool(floors)),
        loc="upper center",
        bbox_to_anchor=(0.5, 0.0),
        ncol=7,
        fontsize=8,
        frameon=False,
    )
    fig.text(0.0, -0.04, textwrap.fill(subtitle, 175), fontsize=8, va="top", ha="left")
    path = out / f"sensitivity_{name}.png"
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def overview_figure(table: pd.DataFrame, floors: dict[str, float], out: Path) -> Path:
    """Heat map of normalised mu*, parameters x outputs, parameters ordered by mean effect."""
    pivot = table.pivot(index="parameter", columns="output", values="mu_star_norm")[list(OUTPUTS)]
    raw = table.pivot(index="parameter", columns="output", values="mu_star")[list(OUTPUTS)]
    order = (
        pivot.assign(m=pivot.mean(axis=1), x=pivot.max(axis=1))
        .sort_values(["m", "x"], ascending=False)
        .index
    )
    pivot, raw = pivot.loc[order], raw.loc[order]
    floor_row = pd.Series(floors).reindex(raw.columns).fillna(0.0)
    noise = raw.le(floor_row, axis=1) & (raw > 0)
    fig, ax = plt.subplots(figsize=(10, 0.24 * len(pivot) + 2.8), layout="constrained")
    image = ax.imshow(pivot.to_numpy(), aspect="auto", cmap="Blues", vmin=0, vmax=1)
    ax.set_yticks(range(len(pivot)), pivot.index, fontsize=8)
    for tick, key in zip(ax.get_yticklabels(), pivot.index, strict=True):
        tick.set_color(AGENT_COLOURS.get(_agent(key), "black"))
    ax.set_xticks(range(len(OUTPUTS)), [SHORT[c] for c in OUTPUTS], fontsize=9)
    ax.xaxis.tick_top()
    plt.setp(ax.get_xticklabels(), rotation=40, ha="left", rotation_mode="anchor")
    ax.set_xticks(np.arange(-0.5, len(OUTPUTS)), minor=True)
    ax.set_yticks(np.arange(-0.5, len(pivot)), minor=True)
    ax.grid(which="minor", color="white", linewidth=0.8)
    ax.tick_params(which="minor", length=0)
    for i in range(len(pivot)):
        for j in range(len(OUTPUTS)):
            value = pivot.iat[i, j]
            if raw.iat[i, j] == 0:
                ax.text(j, i, "0", ha="center", va="center", fontsize=6.5, color="#aaaaaa")
            elif value >= 0.1:
                ax.text(
                    j,
                    i,
                    f"{value:.2f}",
                    ha="center",
                    va="center",
                    fontsize=6.5,
                    color="white" if value > 0.55 else "black",
                )
            elif bool(noise.iat[i, j]):
                ax.text(j, i, "n", ha="center", va="center", fontsize=6.5, color="#999999")
    bar = fig.colorbar(image, ax=ax, shrink=0.35, location="right", pad=0.02)
    bar.set_label("\u03bc* / largest \u03bc* for the output")
    ax.set_title(
        "Which EST parameter drives which headline output (Morris \u03bc*, normalised per output)",
        fontsize=11,
        fontweight="bold",
        pad=12,
    )
    fig.text(
        0.0,
        -0.005,
        "Rows ordered by mean normalised \u03bc*; label colour = agent (foreign red, market grey, "
        "miners ochre, manufacturers blue, bank green).\n"
        "Printed: values \u2265 0.10;  n = within seed noise;  0 = no effect at all "
        "(both runs of every step identical).",
        fontsize=8,
        va="top",
    )
    path = out / "sensitivity_overview.png"
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


# ----------------------------------------------------------------------------- markdown
def _duration(manifest: dict[str, Any]) -> float:
    return (
        datetime.fromisoformat(manifest["updated"]) - datetime.fromisoformat(manifest["started"])
    ).total_seconds()


def _interval(row: pd.Series, unit: str) -> str:
    return f"{_fmt(row['mu_star'])} \u00b1 {_fmt(row['mu_star_conf'])} {unit}"


def markdown(
    manifest: dict[str, Any],
    table: pd.DataFrame,
    floors: dict[str, float],
    sds: dict[str, float],
    figures: list[Path],
    args: argparse.Namespace,
    csv_path: Path,
    moved: dict[str, list[str]],
) -> str:
    """The text of docs/sensitivity.md."""
    sweep = manifest["sweep"]
    k = len(sweep["parameters"])
    runs = len(manifest["runs"])
    done = sum(r.get("status") == "done" for r in manifest["runs"])
    seconds = _duration(manifest)
    meta = {r["key"]: r for r in est_parameters()}
    salib = metadata.version("SALib")
    commit = manifest.get("git_commit") or "unknown"
    lines = [
        "# Sensitivity of the headline outputs to the EST parameters",
        "",
        (
            "Generated by `tools/sensitivity_report.py` from a run of `scenarios/sensitivity.toml`; "
            "rerun both to refresh (numbers and figures below come from the run described here)."
        ),
        "",
        "## How it was run",
        "",
        "```sh",
        ".venv/bin/python tools/make_sensitivity_sweep.py      # scenarios/sensitivity.toml",
        f".venv/bin/resim sweep sensitivity --workers 2 --out {args.folder}",
    ]
    if args.noise:
        lines.append(f".venv/bin/resim run baseline --seeds 10 --out {args.noise}")
    lines += [
        ".venv/bin/python tools/sensitivity_report.py "
        + " ".join(shlex.quote(a) for a in sys.argv[1:] if a),
        "```",
        "",
        (
            f"- **Design**: Morris elementary effects (SALib {salib}, `morris.sample`, "
            f"{NUM_LEVELS} levels, sample seed {sweep.get('sample_seed', 0)}), "
            f"**{sweep['samples']} trajectories** over **k = {k}** EST parameters, each over its "
            "`est_range` from `sim/params.py`, around `baseline` "
            f"({manifest['months']} months, 2025-2035)."
        ),
        (
            f"- **Runs**: (k + 1) x {sweep['samples']} = {runs} points x seeds "
            f"{manifest['seeds']} = {runs} runs ({done} done, {runs - done} failed), "
            f"{manifest['backend']} (2 worker processes): {seconds / 60:.1f} min from the sweep's "
            f"start to its last manifest write, {seconds / max(runs, 1):.2f} s of wall clock per run. "
            f"Run {manifest['started'][:16].replace('T', ' ')} UTC; commit recorded in the "
            f"manifest `{commit[:10]}` (uncommitted changes, if any, are not recorded)."
        ),
        (
            "- **Analysis**: `SALib.analyze.morris.analyze(problem, X, Y, seed=0)` per output, "
            "95% bootstrap intervals from 100 resamples of the trajectories. "
            f"Full table: `{csv_path}` (columns mu, mu_star, mu_star_conf, sigma, mu_star_norm, "
            "rank per output and parameter)."
        ),
        "",
        (
            "**Reading \u03bc\\***: the mean absolute change of the output when a parameter moves, "
            f"expressed per full `est_range` (a Morris step is {DELTA:.2f} of the range, and SALib "
            "divides by it). So \u03bc\\* = 40 US$/kg means moving that parameter across its range "
            "changes the price by about 40 US$/kg on average over the sampled settings of the other "
            "parameters. The sign (+/\u2212) is that of \u03bc, the mean signed effect: + means a "
            "higher value raises the output; when |\u03bc| is much smaller than \u03bc\\* the effect "
            "changes sign across the space. \u03c3 large against \u03bc\\* flags non-linearity or "
            "interactions."
        ),
        "",
    ]
    if floors:
        lines += [
            (
                f"**Seed noise**: {args.noise} holds 10 seeds of baseline. Pure seed noise with "
                f"standard deviation s would give \u03bc\\* of about {NOISE_FACTOR:.2f} s "
                "(two independent runs per step, divided by the step); both runs of a step share "
                "seed 1, so this floor is conservative. It is the dotted line in the figures."
            ),
            "",
        ]
    lines += ["## What drives each output", ""]
    lines += [
        (
            "| output | unit | spread in the sweep (5-95%) | driver 1: \u03bc\\* \u00b1 95% | "
            "driver 2 | driver 3 | seed-noise \u03bc\\* |"
        ),
        "|---|---|---|---|---|---|---|",
    ]
    summary = pd.read_parquet(Path(args.folder) / "summary.parquet")
    for output, (title, unit) in OUTPUTS.items():
        rows = table[table["output"] == output].sort_values("mu_star", ascending=False)
        q5, q95 = summary[output].quantile([0.05, 0.95])
        cells = []
        for _, r in rows.head(TOP_DRIVERS).iterrows():
            sign = "+" if r["mu"] >= 0 else "\u2212"
            mark = " \u2020" if r["mu_star_conf"] >= r["mu_star"] else ""
            cells.append(f"`{r['parameter']}` ({sign}) {_interval(r, '')}".strip() + mark)
        floor = floors.get(output)
        lines.append(
            f"| {title} | {unit} | {_fmt(q5)} to {_fmt(q95)} | "
            + " | ".join(cells)
            + f" | {_fmt(floor) if floor is not None else 'n/a'} |"
        )
    lines += [
        "",
        (
            "(+/\u2212): sign of \u03bc, the direction of the mean effect of raising the parameter. "
            "\u2020: the 95% interval reaches zero, so the rank rests on a few trajectories "
            "(typically a handful of extreme runs) and is not established."
        ),
        "",
    ]
    lines += ["### Per output: concentration, noise, non-linearity", ""]
    for output, (title, _unit) in OUTPUTS.items():
        rows = table[table["output"] == output].sort_values("mu_star", ascending=False)
        top = rows.iloc[0]
        if top["mu_star"] == 0:
            lines.append(f"- **{title}**: does not vary in the sweep.")
            continue
        floor = floors.get(output, 0.0)
        above = int((rows["mu_star"] > floor).sum())
        share_top3 = rows["mu_star"].head(TOP_DRIVERS).sum() / rows["mu_star"].sum()
        ratio = top["sigma"] / top["mu_star"]
        mixed = [
            f"`{r['parameter']}`"
            for _, r in rows.head(TOP_DRIVERS).iterrows()
            if abs(r["mu"]) < 0.5 * r["mu_star"]
        ]
        lines.append(
            f"- **{title}**: the top {TOP_DRIVERS} hold {share_top3:.0%} of the summed "
            f"\u03bc\\*; {above} of {k} parameters are "
            + ("above the seed-noise floor" if floors else "non-zero")
            + (f" (baseline seed sd {_fmt(sds[output])})" if output in sds else "")
            + f"; \u03c3/\u03bc\\* of the first driver {ratio:.1f}"
            + (" (strongly non-linear or interacting)" if ratio > 1 else "")
            + (f"; effect changes sign across the space for {', '.join(mixed)}" if mixed else "")
            + "."
        )
    lines.append("")

    # parameters that barely matter
    norm = table.pivot(index="parameter", columns="output", values="mu_star_norm")
    raw = table.pivot(index="parameter", columns="output", values="mu_star")
    zero = raw.index[(raw == 0).all(axis=1)].tolist()
    floor_s = pd.Series(floors).reindex(raw.columns).fillna(0.0)
    noise_only = raw.index[(raw.le(floor_s, axis=1)).all(axis=1)].tolist() if floors else []
    barely = norm.index[(norm < BARELY).all(axis=1)].tolist()
    lines += [
        "## EST parameters that barely matter here",
        "",
        (
            "**No effect on any headline output** (\u03bc\\* = 0: in every step that moves the "
            "parameter, both runs give the same headline values to rounding, so seed noise plays no "
            "part). "
            "Either baseline does not use the parameter (its mechanism is off), it never binds, or it "
            "moves only figures that are not headline outputs; the last column says which other "
            "`summary.parquet` columns it moves at all:"
        ),
        "",
        "| parameter | description | moves (other summary columns) |",
        "|---|---|---|",
    ]
    for p in sorted(zero):
        other = [c for c in moved.get(p, []) if c not in OUTPUTS]
        lines.append(
            f"| `{p}` | {meta.get(p, {}).get('description', '')} | "
            + (", ".join(f"`{c}`" for c in other) if other else "nothing")
            + " |"
        )
    lines.append("")
    if floors:
        lines += [
            (
                "Within seed noise on every output (and not in the list above): "
                f"{_keys([p for p in noise_only if p not in zero])}."
            ),
            "",
        ]
    lines += [
        (
            f"Below {BARELY:.0%} of the largest \u03bc\\* on every output (and not above): "
            f"{_keys([p for p in barely if p not in zero and p not in noise_only])}."
        ),
        "",
        (
            "These can stay at their defaults for baseline-like scenarios; pinning them down better "
            "would not change the headline outputs. That does not hold for scenarios that switch on "
            "what baseline leaves off (bank programme, predatory pricing, retaliation against "
            "tariffs, licensing shocks), where the inert ones come into play."
        ),
        "",
        "## Parameters that matter most, across outputs",
        "",
        f"Parameters in the top {TOP_DRIVERS} of at least one output, with the outputs:",
        "",
        "| parameter | description | est_range | top-3 for |",
        "|---|---|---|---|",
    ]
    top3 = table[table["rank"] <= TOP_DRIVERS]
    counts = top3.groupby("parameter")["output"].apply(list)
    order = counts.map(len).sort_values(ascending=False, kind="stable").index
    for p in order:
        m = meta.get(p, {})
        est = m.get("est_range") or ["?", "?"]
        outs = ", ".join(SHORT[o] for o in counts[p])
        lines.append(
            f"| `{p}` | {m.get('description', '')} | {_fmt(est[0])} to {_fmt(est[1])} "
            f"{m.get('unit', '')} | {outs} |"
        )
    lines += ["", "## Figures", ""]
    for path in figures:
        rel = path.relative_to(ROOT / "docs") if path.is_relative_to(ROOT / "docs") else path
        lines += [f"![{path.stem}]({rel})", ""]
    appendix = [
        "## Appendix: \u03bc\\* of every parameter on every output",
        "",
        (
            "In output units per full `est_range` (units in the table above); parameters ordered by "
            "their largest normalised \u03bc\\*. Bold: in the top 3 for that output."
        ),
        "",
        "| parameter | " + " | ".join(SHORT[o] for o in OUTPUTS) + " |",
        "|---|" + "---:|" * len(OUTPUTS),
    ]
    order_all = norm.max(axis=1).sort_values(ascending=False, kind="stable").index
    ranks = table.pivot(index="parameter", columns="output", values="rank")
    for p in order_all:
        cells = []
        for o in OUTPUTS:
            text = _fmt(float(raw.at[p, o]))
            cells.append(f"**{text}**" if ranks.at[p, o] <= TOP_DRIVERS else text)
        appendix.append(f"| `{p}` | " + " | ".join(cells) + " |")
    lines += [
        "## Caveats",
        "",
        (
            f"- **One seed per point.** Every run uses seed 1. Averaging over {sweep['samples']} "
            "trajectories at different places in the parameter space dampens seed noise, but each "
            "elementary effect still carries it: compare \u03bc\\* with the seed-noise column; "
            "drivers near it are not established. The floor is measured at baseline only; noise can "
            "be larger elsewhere in the space (for example where miners are near default)."
        ),
        (
            f"- **Screening, not variance decomposition.** Morris ranks parameters by mean absolute "
            "elementary effect; it does not give the share of output variance each explains (Sobol "
            f"indices would, at far more runs). With {sweep['samples']} trajectories the bootstrap "
            "intervals are wide and ranks within overlapping intervals are not meaningful; the "
            "clear split is between the few drivers and the many parameters near zero."
        ),
        (
            "- **The ranges are EST too.** \u03bc\\* is per full `est_range`: a parameter looks "
            "important partly because its range is wide. The ranges are judgements recorded in "
            "`sim/params.py`, not confidence intervals; a narrower or wider range changes the rank."
        ),
        (
            "- **Around baseline only.** Policy levers are at baseline (MFN tariffs, no bank "
            "programme, no predatory pricing); mechanisms that baseline does not trigger show no "
            "effect. Parameters are sampled independently, also where they are linked in reality "
            "(e.g. commercial and programme interest rates)."
        ),
        (
            "- **Not swept.** EST inputs without an `est_range` (tables such as the sectors, the "
            "supplier's basket and home demand, and a few scalars such as "
            "`miners.financing_patience_months` and the government's reaction triggers) are held at "
            "their defaults; `scenarios/sensitivity.toml` lists them."
        ),
        "",
    ]
    at = lines.index("## How it was run")
    summary_lines = findings(table, zero, noise_only, barely, k)
    return "\n".join([*lines[:at], *summary_lines, *lines[at:], *appendix, ""])


def findings(
    table: pd.DataFrame, zero: list[str], noise_only: list[str], barely: list[str], k: int
) -> list[str]:
    """The short summary at the top: recurring drivers, share by agent, inert parameters."""
    top3 = table[table["rank"] <= TOP_DRIVERS]
    counts = top3.groupby("parameter")["output"].nunique().sort_values(ascending=False)
    recurring = [f"`{p}` ({n} of {len(OUTPUTS)})" for p, n in counts.items() if n >= TOP_DRIVERS]
    single = [
        f"`{p}` ({', '.join(SHORT[o] for o in top3[top3['parameter'] == p]['output'])})"
        for p, n in counts.items()
        if n < TOP_DRIVERS
    ]
    by_agent = (
        table.assign(agent=table["parameter"].map(_agent)).groupby("agent")["mu_star_norm"].sum()
    )
    share = (by_agent / by_agent.sum()).sort_values(ascending=False)
    n_agent = table.drop_duplicates("parameter")["parameter"].map(_agent).value_counts()
    quiet = len(set(noise_only) - set(zero)) + len(set(barely) - set(zero) - set(noise_only))
    return [
        "## Findings",
        "",
        f"- **Recurring drivers** (in the top {TOP_DRIVERS} of at least {TOP_DRIVERS} outputs): "
        + ", ".join(recurring)
        + ". Drivers of one or two outputs only: "
        + ", ".join(single)
        + ".",
        "- **Share of the summed normalised \u03bc\\* by agent**: "
        + ", ".join(
            f"{a} {v:.0%} ({n_agent.get(a, 0)} parameter{'s' if n_agent.get(a, 0) != 1 else ''})"
            for a, v in share.items()
        )
        + ".",
        (
            f"- **Inert here**: {len(zero)} of {k} parameters have no effect at all on the headline "
            f"outputs in baseline, and {quiet} more stay within seed noise or below "
            f"{BARELY:.0%} of the largest \u03bc\\* on every output (list below)."
        ),
        "",
    ]


def _keys(keys: list[str]) -> str:
    return ", ".join(f"`{k}`" for k in sorted(keys)) if keys else "none"


# ----------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    """Analyse the sweep folder and write the CSV, the figures and the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="results folder of `resim sweep sensitivity`")
    parser.add_argument("--noise", type=Path, default=None, help="multi-seed run of baseline")
    parser.add_argument("--csv", type=Path, default=None, help="default <folder>/...csv")
    parser.add_argument("--figures", type=Path, default=ROOT / "docs" / "figures")
    parser.add_argument("--report", type=Path, default=ROOT / "docs" / "sensitivity.md")
    args = parser.parse_args(argv)

    manifest, problem, x, summary = load_sweep(args.folder)
    table = analyse(problem, x, summary)
    sds = noise_sd(args.noise)
    floors = {k: NOISE_FACTOR * v for k, v in sds.items()}
    csv_path = args.csv or args.folder / "sensitivity_morris.csv"
    table.to_csv(csv_path, index=False, float_format="%.6g")

    args.figures.mkdir(parents=True, exist_ok=True)
    ranges = dict(zip(problem["names"], problem["bounds"], strict=True))
    sweep = manifest["sweep"]
    subtitle = (
        f"Morris, {sweep['samples']} trajectories x {len(problem['names'])} EST parameters "
        f"({len(manifest['runs'])} runs, seed 1) around baseline. Bar = mean |effect| of moving "
        "the parameter across its est_range [shown after the name], scaled to the largest. "
        "Right column: \u03bc* \u00b1 95% interval in output units, (+/\u2212) = sign of the mean "
        "effect of raising the parameter. Hatched: the interval reaches 0 (rank not established); "
        "whiskers past the frame are cut."
    )
    figures = [overview_figure(table, floors, args.figures)]
    figures += [
        group_figure(name, table, ranges, floors, subtitle, args.figures) for name in GROUPS
    ]
    moved = step_changes(problem, x, summary)
    text = markdown(manifest, table, floors, sds, figures, args, csv_path, moved)
    args.report.write_text(text)
    print(f"wrote {csv_path}, {len(figures)} figures in {args.figures}, {args.report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
