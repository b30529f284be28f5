"""Fan charts of the history scenarios for ``docs/validation.md``.

Runs each history scenario for seeds 1-10 (``sim.build_model`` stepped to the end, which is what
``sim.simulate`` does, plus the magnet licence allowance and the illicit magnet exports read from
the supplier each month, which the results frame has no columns for) and draws the median and
the 10-90% band across seeds of the main series into
``docs/figures/validation_<scenario>_<series>.png``:

- ``prices_ndpr``, ``prices_dytb``, ``prices_magnet``: landed price in the importing market and
  the supplier's home price (oxides), US$/kg;
- ``exports``: the supplier's licit and illicit exports against the quota or licence allowance;
- ``halted``: manufacturers halted and the unmet share of demand;
- ``capacity``: separation capacity outside the supplier, nameplate and operating;
- ``substitution``: substitution and recycling shares of demand;

and one figure comparing the three 2025 variants, ``validation_history_2025_variants.png``.

Vertical lines mark the policy dates of each scenario. Observed prices and volumes appear only
where ``shared/data/calibration.md`` or ``demand.md`` give them, as markers labelled with how they
relate to the run: black for "not used to set the model", grey for values the scenario used (its
start price or export plan). The 2009-2016 window has no observed price in those files.

The seeds differ only in the initial draws (firm sizes, stock cover, ramp-up ceilings), so the
bands show that variability, not the uncertainty of the EST parameters (docs/sensitivity.md).

    .venv/bin/python tools/validation_plots.py              # figures
    .venv/bin/python tools/validation_plots.py --summary    # figures + numbers for the text
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib as mpl

mpl.use("Agg")
import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import matplotlib.ticker as mticker
import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sim import build_model, load_scenario  # noqa: E402
from sim.runner import model_frame  # noqa: E402

FIGURES = ROOT / "docs" / "figures"
SEEDS = tuple(range(1, 11))
QUANTILES = (0.1, 0.5, 0.9)
MAGNET = 3  # index of magnets in the supplier's arrays (ndpr, dytb, cela, magnet)

# RMB per US$ used to convert the SMM domestic NdPr quotes (EST: 2025 average about 7.2; the rate
# is not in the shared data files) and China's 13% VAT, which the quotes include.
RMB_PER_USD = 7.2
CHINA_VAT = 0.13


@dataclass(frozen=True)
class Marker:
    """A dated policy event drawn as a vertical line."""

    date: str
    label: str
    style: str = "policy"  # policy | trade | deal | end


@dataclass(frozen=True)
class Observed:
    """An observed value from the shared data files, drawn as a reference marker."""

    start: str  # first month the value describes (an annual average spans its year)
    end: str
    value: float
    label: str
    low: float | None = None  # a range, where the source gives one
    high: float | None = None


@dataclass(frozen=True)
class Spec:
    """What to draw for one history scenario."""

    title: str
    markers: tuple[Marker, ...]
    xlim: tuple[str, str]
    observed: dict[str, tuple[Observed, ...]] = field(default_factory=dict)
    note: str = ""
    numbered: bool = False  # dense dates: numbers on the lines, their key in the footnote


OBS_NOT_USED = "observed (not used to set the model)"
OBS_START = "observed; used as the start price"

QUOTA_MARKERS = (
    Marker("2010-01", "2010 quota (H1 rate)"),
    Marker("2010-07", "H2 2010 quota cut"),
    Marker("2011-01", "2011 quota"),
    Marker("2014-03", "WTO panel", "deal"),
    Marker("2014-08", "WTO appeal", "deal"),
    Marker("2015-01", "quotas abolished", "end"),
    Marker("2015-05", "export tax ends", "end"),
)
# US tariff steps on imports from China (weighted, scenario header): unlabelled grey lines.
EVENTS_2025 = (
    Marker("2025-02", "", "trade"),
    Marker("2025-03", "", "trade"),
    Marker("2025-04", "licensing I (Dy/Tb oxide, magnets); US magnet tariff peak"),
    Marker("2025-05", "", "trade"),
    Marker("2025-09", "", "trade"),
    Marker("2025-10", "licensing II; JPMorgan initiative"),
    Marker("2025-11", "licensing II suspended; US tariff cut", "end"),
    Marker("2026-01", "Section 301 on magnets", "trade"),
    Marker("2026-11", "suspension ends (EST reading)"),
)
DEALS_2025 = (
    Marker("2025-07", "DoD-MP equity (loan 2025-08)", "deal"),
    Marker("2025-10", "MP NdPr floor starts", "deal"),
    Marker("2026-01", "USA Rare Earth deal", "deal"),
    Marker("2028-01", "MP magnet offtake", "deal"),
)

# calibration.md Prices table (USGS MCS 2025, Argus): 2024 averages, used as the start prices of
# the 2025 scenarios (Dy/Tb = Dy 260 and Tb 810 mixed 80:20 = 370).
OBS_2024_NDPR = Observed("2024-01", "2024-12", 56.0, f"{OBS_START}: 2024 average Nd oxide, USGS")
OBS_2024_DYTB = Observed(
    "2024-01", "2024-12", 370.0, f"{OBS_START}: 2024 averages Dy 260, Tb 810 at 80:20, USGS"
)
# calibration.md: China's domestic NdPr oxide ran from about RMB 450k/t (Feb 2025) to about
# RMB 605k/t (Dec 2025) including VAT (SMM). Converted at RMB_PER_USD, VAT removed.
OBS_2025_HOME_NDPR = (
    Observed(
        "2025-02",
        "2025-02",
        450.0 / (1 + CHINA_VAT) / RMB_PER_USD,
        f"{OBS_NOT_USED}: China domestic NdPr, SMM, ex-VAT, {RMB_PER_USD} RMB/US$",
    ),
    Observed(
        "2025-12",
        "2025-12",
        605.0 / (1 + CHINA_VAT) / RMB_PER_USD,
        f"{OBS_NOT_USED}: China domestic NdPr, SMM, ex-VAT, {RMB_PER_USD} RMB/US$",
    ),
)
# demand.md 5B: China's magnet export price 2024 US$46-52/kg (its middle, 49, is the start price).
OBS_2024_MAGNET = Observed(
    "2024-01",
    "2024-12",
    49.0,
    f"{OBS_START}: China magnet export price 2024, US$46-52, DEM 5B",
    low=46.0,
    high=52.0,
)
# demand.md 5B: China's monthly magnet exports in 2024 (the annual 58,152 t set the export plan).
OBS_2024_MAGNET_EXPORTS = tuple(
    Observed(d, d, v, "observed 2024 months, DEM 5B (the annual total set the export plan)")
    for d, v in (
        ("2024-02", 3326.0),
        ("2024-07", 5278.0),
        ("2024-08", 5325.0),
        ("2024-09", 4915.0),
        ("2024-10", 4725.0),
    )
)
# calibration.md Prices table: 2017 Nd oxide average, the first observed price after the 2009 run.
OBS_2017_NDPR = Observed(
    "2017-01",
    "2017-12",
    50.0,
    "observed after the run (not used to set the model): 2017 average Nd oxide, USGS",
)
# calibration.md 2009-2015 inputs: pre-shock FOB prices, used to set the 2009 start.
OBS_2009_NDPR = Observed(
    "2009-01", "2009-12", 17.5, f"{OBS_START}: 2009 FOB Nd oxide ~15-20 (EST)", low=15.0, high=20.0
)
OBS_2009_DYTB = Observed(
    "2009-01", "2009-03", 145.6, f"{OBS_START}: Jan 2009 FOB Dy 91, Tb 4x Dy (EST), 80:20"
)

NO_PRICES_2009 = (
    "2012-2014 quotas (30.6-31.0 kt/yr, within 3% of 2011) are not marked. The shared data files "
    "hold no observed price for 2010-2016. Outside them (not used): Nd and Dy oxide prices rose by "
    "an order of magnitude or more into mid-2011 and fell back by 2013-2015."
)

OBS_2025 = {
    "prices_ndpr": (OBS_2024_NDPR, *OBS_2025_HOME_NDPR),
    "prices_dytb": (OBS_2024_DYTB,),
    "prices_magnet": (OBS_2024_MAGNET,),
    "exports": OBS_2024_MAGNET_EXPORTS,
}
SPECS: dict[str, Spec] = {
    "history_2010_quota": Spec(
        "2009-2016 export-quota replay",
        QUOTA_MARKERS,
        ("2009-01", "2017-12"),
        {
            "prices_ndpr": (OBS_2009_NDPR, OBS_2017_NDPR),
            "prices_dytb": (OBS_2009_DYTB,),
        },
        NO_PRICES_2009,
    ),
    "history_2025_events": Spec(
        "2024-2029, 2025 events, no government deals",
        EVENTS_2025,
        ("2024-01", "2029-12"),
        OBS_2025,
        numbered=True,
    ),
    "history_2025_licensing": Spec(
        "2024-2029, 2025 events and the scripted government deals",
        EVENTS_2025 + DEALS_2025,
        ("2024-01", "2029-12"),
        OBS_2025,
        numbered=True,
    ),
    "history_2025_licensing_reaction": Spec(
        "2024-2029, 2025 events and the government's reaction function",
        EVENTS_2025,  # the reaction's month is added from the runs
        ("2024-01", "2029-12"),
        OBS_2025,
        numbered=True,
    ),
}

MARKER_STYLE: dict[str, dict[str, Any]] = {
    "policy": {"color": "#b2182b", "linestyle": "--", "linewidth": 1.0},
    "trade": {"color": "#7f7f7f", "linestyle": ":", "linewidth": 1.0},
    "deal": {"color": "#2166ac", "linestyle": "-.", "linewidth": 1.0},
    "end": {"color": "#1b7837", "linestyle": "--", "linewidth": 1.0},
}
C_LANDED = "#d6604d"
C_HOME = "#4393c3"
C_OTHER = "#8073ac"
C_ILLICIT = "#e08214"
C_OBS = "black"
C_OBS_USED = "#666666"


# ----------------------------------------------------------------------------------- runs
@dataclass
class Run:
    """One seed of one scenario: the results frame and what the frame does not carry."""

    frame: pd.DataFrame
    reference_landed: np.ndarray  # landed reference prices (ndpr, dytb, cela, magnet)
    wtp_multiples: dict[str, float]
    reaction_date: str | None
    manufacturers: int


def run_one(job: tuple[str, int]) -> Run:
    """Run one scenario and seed to the end; record the magnet licence allowance monthly."""
    name, seed = job
    scenario = load_scenario(name)
    model = build_model(scenario, seed)
    allowance, illicit = [], []
    for _ in range(scenario.scenario.months):
        model.step()
        cap = float(model.foreign.caps[MAGNET])
        allowance.append(cap if np.isfinite(cap) else np.nan)
        illicit.append(float(model.foreign.illicit[MAGNET]))
    frame = model_frame(model)
    frame["licence_allowance_magnet"] = allowance
    frame["exports_illicit_magnet"] = illicit
    reaction = next(
        (
            e["date"]
            for e in model.events
            if e["kind"] == "policy" and "government reaction" in e["detail"]
        ),
        None,
    )
    sectors = scenario.manufacturers.sectors
    return Run(
        frame=frame,
        reference_landed=np.asarray(model.reference_import_price, dtype=float),
        wtp_multiples={name: s.wtp_multiple for name, s in sectors.items()},
        reaction_date=reaction,
        manufacturers=scenario.population.manufacturers,
    )


def run_all(names: Sequence[str], seeds: Sequence[int], workers: int) -> dict[str, list[Run]]:
    """Every scenario for every seed, in a process pool."""
    jobs = [(n, s) for n in names for s in seeds]
    with cf.ProcessPoolExecutor(workers) as pool:
        runs = list(pool.map(run_one, jobs))
    out: dict[str, list[Run]] = {n: [] for n in names}
    for (name, _), run in zip(jobs, runs, strict=True):
        out[name].append(run)
    return out


def stacked(runs: Sequence[Run], column: str, scale: float = 1.0) -> pd.DataFrame:
    """One column of every run side by side: rows = month (dated), columns = seed."""
    data = {int(r.frame["seed"].iloc[0]): r.frame[column].to_numpy(dtype=float) for r in runs}
    dates = pd.to_datetime(runs[0].frame["date"], format="%Y-%m")
    return pd.DataFrame(data, index=dates) * scale


def band(runs: Sequence[Run], column: str, scale: float = 1.0) -> pd.DataFrame:
    """10%, 50% and 90% quantiles over seeds, per month."""
    table = stacked(runs, column, scale)
    return pd.DataFrame(
        {q: table.quantile(q, axis=1) for q in QUANTILES},
        index=table.index,
    )


# ------------------------------------------------------------------------------- drawing
def month(date: str) -> pd.Timestamp:
    """'YYYY-MM' as the first day of that month."""
    return pd.Timestamp(f"{date}-01")


def draw_fan(
    ax: plt.Axes,
    runs: Sequence[Run],
    column: str,
    color: str,
    label: str,
    scale: float = 1.0,
    linestyle: str = "-",
) -> None:
    """Median line and 10-90% band of one column."""
    b = band(runs, column, scale)
    ax.fill_between(b.index, b[0.1], b[0.9], color=color, alpha=0.22, linewidth=0)
    ax.plot(
        b.index,
        b[0.5],
        color=color,
        linewidth=1.8,
        linestyle=linestyle,
        label=label,
    )


def labelled(markers: Sequence[Marker]) -> list[Marker]:
    """The markers that carry a label, in date order."""
    return [m for m in markers if m.label]


def draw_markers(
    ax: plt.Axes, markers: Sequence[Marker], labels: bool = True, numbered: bool = False
) -> None:
    """Vertical lines at the policy dates; labels (or their numbers) along the top of the axes."""
    numbers = {id(m): i + 1 for i, m in enumerate(labelled(markers))}
    for m in markers:
        x = month(m.date)
        style = MARKER_STYLE[m.style]
        ax.axvline(x, zorder=1, **style)
        if not (labels and m.label):
            continue
        if numbered:
            ax.text(
                x,
                1.0,
                str(numbers[id(m)]),
                transform=ax.get_xaxis_transform(),
                va="bottom",
                ha="center",
                fontsize=8,
                fontweight="bold",
                color=style["color"],
            )
        else:
            ax.text(
                x,
                0.985,
                f" {m.label}",
                transform=ax.get_xaxis_transform(),
                rotation=90,
                va="top",
                ha="right",
                fontsize=7.5,
                color=style["color"],
            )


def marker_key(markers: Sequence[Marker]) -> str:
    """Footnote text naming the numbered policy dates."""
    items = [f"{i + 1} {m.date} {m.label}" for i, m in enumerate(labelled(markers))]
    unlabelled = [m.date for m in markers if not m.label]
    key = "Policy dates: " + "; ".join(items) + "."
    if unlabelled:
        key += f" Grey dotted without number: US tariff steps ({', '.join(unlabelled)})."
    return key


def draw_observed(ax: plt.Axes, observed: Sequence[Observed]) -> None:
    """Observed values as markers; annual averages as a bar across their year.

    Black: not used to set the model. Grey, dashed: used as the start price (or export plan).
    """
    seen: set[str] = set()
    for o in observed:
        label = None if o.label in seen else o.label
        seen.add(o.label)
        used = o.label.startswith(OBS_START) or "set the export plan" in o.label
        color = C_OBS_USED if used else C_OBS
        x0, x1 = month(o.start), month(o.end) + pd.offsets.MonthEnd(0)
        if o.start == o.end:
            xm = x0 + pd.Timedelta(days=14)
            ax.plot(
                [xm],
                [o.value],
                marker="o" if used else "D",
                color=color,
                markersize=6,
                linestyle="none",
                label=label,
                zorder=5,
            )
        else:
            ax.hlines(
                o.value,
                x0,
                x1,
                color=color,
                linewidth=2.5,
                label=label,
                zorder=5,
                linestyles="--" if used else "-",
            )
        if o.low is not None and o.high is not None:
            ax.fill_between(
                [x0, x1], [o.low] * 2, [o.high] * 2, color=color, alpha=0.15, linewidth=0, zorder=4
            )


def format_axes(ax: plt.Axes, spec: Spec, zero: bool = True) -> None:
    """Date axis, limits and grid; the y axis starts at zero unless ``zero`` is false."""
    ax.set_xlim(month(spec.xlim[0]), month(spec.xlim[1]) + pd.offsets.MonthEnd(0))
    ax.xaxis.set_major_locator(mdates.YearLocator())
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y"))
    ax.xaxis.set_minor_locator(mdates.MonthLocator(bymonth=(4, 7, 10)))
    ax.grid(True, which="major", alpha=0.3)
    if zero and ax.get_yscale() == "linear":
        ax.set_ylim(bottom=0)


def new_figure(rows: int = 1, height: float = 6.2) -> tuple[plt.Figure, list[plt.Axes]]:
    """A figure with ``rows`` stacked axes sharing the date axis."""
    fig, axes = plt.subplots(rows, 1, figsize=(11, height), sharex=True, squeeze=False)
    return fig, list(axes[:, 0])


def finish(
    fig: plt.Figure,
    axes: Sequence[plt.Axes],
    spec: Spec,
    title: str,
    path: Path,
    note: str = "",
    markers: Sequence[Marker] = (),
) -> None:
    """Title, legends (below a single axes, right of stacked axes), footnote, save."""
    single = len(axes) == 1
    for ax in axes:
        format_axes(ax, spec)
        handles, labels = ax.get_legend_handles_labels()
        if not handles:
            continue
        if single:
            ax.legend(
                handles,
                labels,
                loc="upper left",
                bbox_to_anchor=(0.0, -0.07),
                ncol=2,
                fontsize=8.5,
                frameon=False,
            )
        else:
            ax.legend(
                handles,
                labels,
                loc="upper left",
                bbox_to_anchor=(1.01, 1.0),
                fontsize=8.5,
                frameon=False,
            )
    fig.suptitle(title, fontsize=12, x=0.01, ha="left")
    parts = [
        (
            "Lines: median over seeds 1-10; shading: 10-90% band (seeds differ only in initial "
            "draws, so the band is not parameter uncertainty)."
        ),
        note,
        marker_key(markers) if spec.numbered and markers else "",
    ]
    fig.text(
        0.01, 0.005, " ".join(p for p in parts if p), fontsize=8, va="bottom", ha="left", wrap=True
    )
    fig.tight_layout(rect=(0, 0.075 if spec.numbered else 0.045, 1, 0.97))
    fig.savefig(path, dpi=120)
    plt.close(fig)


def markers_for(name: str, runs: Sequence[Run]) -> tuple[Marker, ...]:
    """The scenario's markers, plus the reaction function's month; one marker per date."""
    markers = list(SPECS[name].markers)
    dates = sorted({r.reaction_date for r in runs if r.reaction_date})
    markers += [Marker(d, "reaction: NdPr floor + US$400M equity", "deal") for d in dates]
    merged: dict[str, Marker] = {}
    for m in markers:
        if m.date in merged:
            first = merged[m.date]
            merged[m.date] = Marker(m.date, f"{first.label}; {m.label}", first.style)
        else:
            merged[m.date] = m
    return tuple(sorted(merged.values(), key=lambda m: m.date))


def wtp_line(ax: plt.Axes, value: float, label: str) -> None:
    """A willingness-to-pay cap as a thin horizontal line, labelled at its left end."""
    ax.axhline(value, color="#555555", linewidth=0.8, linestyle=(0, (6, 3)), zorder=1)
    ax.text(
        0.005,
        value,
        f" {label}",
        transform=ax.get_yaxis_transform(),
        ha="left",
        va="bottom",
        fontsize=7.5,
        color="#333333",
        bbox={"facecolor": "white", "alpha": 0.75, "edgecolor": "none", "pad": 0.5},
    )


def plot_oxide_prices(name: str, runs: Sequence[Run], good: str, out: Path) -> Path:
    """Landed and foreign home price of one oxide."""
    spec = SPECS[name]
    full = {"ndpr": "NdPr oxide", "dytb": "Dy/Tb oxide (Dy:Tb 80:20)"}[good]
    fig, (ax,) = new_figure()
    draw_fan(ax, runs, f"price_landed_{good}", C_LANDED, "landed, importing market")
    draw_fan(ax, runs, f"price_foreign_{good}", C_HOME, "supplier's home price")
    received = stacked(runs, f"price_received_{good}")
    landed = stacked(runs, f"price_landed_{good}")
    if float((received - landed).abs().to_numpy().max()) > 0.01 * float(landed.to_numpy().max()):
        draw_fan(
            ax,
            runs,
            f"price_received_{good}",
            C_OTHER,
            "received by domestic producers (incl. floor payments, average)",
            linestyle="--",
        )
    g = {"ndpr": 0, "dytb": 1}[good]
    cap = runs[0].wtp_multiples["magnet_maker"] * runs[0].reference_landed[g]
    top = float(band(runs, f"price_landed_{good}")[0.9].max())
    top = max(top, float(band(runs, f"price_received_{good}")[0.9].max()))
    if top > 0.6 * cap:  # drawn only where prices come near it
        wtp = runs[0].wtp_multiples["magnet_maker"]
        wtp_line(ax, cap, f"magnet makers' base willingness to pay ({wtp:g} x start landed)")
        top = max(top, cap)
    observed = spec.observed.get(f"prices_{good}", ())
    draw_observed(ax, observed)
    top = max([top, *(o.high or o.value for o in observed)])
    draw_markers(ax, markers_for(name, runs), numbered=spec.numbered)
    bottom = float(band(runs, f"price_foreign_{good}")[0.1].min())
    log = top > 8 * bottom  # a spike that would flatten everything else: log scale
    ax.set_ylabel("US$/kg" + (" (log scale)" if log else ""))
    if log:
        ax.set_yscale("log")
        ax.set_ylim(bottom / 1.5, top * 2.0)
        ticks = [
            t
            for t in (10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 2e4, 5e4)
            if bottom / 1.5 <= t <= top * 2.0
        ]
        ax.set_yticks(ticks, [f"{t:,.0f}" for t in ticks])
        ax.yaxis.set_minor_formatter(mticker.NullFormatter())
    else:
        ax.set_ylim(0, top * 1.3)
    path = out / f"validation_{name}_prices_{good}.png"
    finish(
        fig,
        [ax],
        spec,
        f"{full}: landed and home prices, US$/kg ({spec.title})",
        path,
        spec.note,
        markers_for(name, runs),
    )
    return path


def plot_magnet_price(name: str, runs: Sequence[Run], out: Path) -> Path:
    """Landed magnet price with the final-goods makers' willingness-to-pay caps."""
    spec = SPECS[name]
    fig, (ax,) = new_figure()
    draw_fan(ax, runs, "price_landed_magnet", C_LANDED, "landed NdFeB magnet price")
    ref = runs[0].reference_landed[MAGNET]
    caps: dict[float, list[str]] = {}
    for sector in ("ev", "wind", "electronics", "industrial"):
        caps.setdefault(runs[0].wtp_multiples[sector], []).append(sector)
    for mult, sectors in sorted(caps.items()):
        wtp_line(ax, mult * ref, f"willingness to pay, {'/'.join(sectors)} ({mult:g} x start)")
    draw_observed(ax, spec.observed.get("prices_magnet", ()))
    draw_markers(ax, markers_for(name, runs), numbered=spec.numbered)
    ax.set_ylabel("US$/kg magnet")
    ax.set_ylim(0, max(caps) * ref * 1.15)
    path = out / f"validation_{name}_prices_magnet.png"
    finish(
        fig,
        [ax],
        spec,
        f"NdFeB magnets: landed price, US$/kg ({spec.title})",
        path,
        "Defence (20x) not drawn.",
        markers_for(name, runs),
    )
    return path


def plot_exports(name: str, runs: Sequence[Run], out: Path) -> Path:
    """The supplier's exports against the quota or licence allowance."""
    spec = SPECS[name]
    is_2009 = name == "history_2010_quota"
    if is_2009:
        panels = [("ndpr", "NdPr oxide"), ("dytb", "Dy/Tb oxide"), ("cela", "Ce/La oxide")]
    else:
        panels = [("magnet", "NdFeB magnets"), ("dytb", "Dy/Tb oxide"), ("ndpr", "NdPr oxide")]
    fig, axes = new_figure(3, 10.5)
    markers = markers_for(name, runs)
    for i, (ax, (good, label)) in enumerate(zip(axes, panels, strict=True)):
        if good == "magnet":
            draw_fan(ax, runs, "magnet_exports_t", C_OTHER, "licit exports")
            draw_fan(ax, runs, "exports_illicit_magnet", C_ILLICIT, "illicit exports")
            for r in runs:
                r.frame["_magnets_total"] = (
                    r.frame["magnet_exports_t"] + r.frame["exports_illicit_magnet"]
                )
            total = band(runs, "_magnets_total")[0.5]
            ax.plot(total.index, total, color="black", linewidth=1.0, label="licit + illicit")
            cap = band(runs, "licence_allowance_magnet")[0.5]
            ax.step(
                cap.index,
                cap,
                where="post",
                color="black",
                linewidth=1.2,
                linestyle="--",
                label="licence allowance (median)",
            )
            draw_observed(ax, spec.observed.get("exports", ()))
            unit = "t magnet/month"
        else:
            draw_fan(ax, runs, f"exports_{good}", C_OTHER, "licit exports")
            draw_fan(ax, runs, f"exports_illicit_{good}", C_ILLICIT, "illicit exports")
            cap = band(runs, f"export_quota_{good}")[0.5]
            what = "export quota / 12" if is_2009 else "licence allowance"
            ax.step(
                cap.index,
                cap,
                where="post",
                color="black",
                linewidth=1.2,
                linestyle="--",
                label=f"{what} (median)",
            )
            unit = "t REO/month"
        draw_markers(ax, markers, labels=i == 0, numbered=spec.numbered)
        ax.set_ylabel(unit)
        ax.set_title(label, fontsize=10, loc="left")
    for ax in axes:
        ax.set_ylim(bottom=0)
    note = (
        "Quotas are the model's product slices of China's all-REE quota (scenario header). "
        if is_2009
        else "NdPr oxide is not licensed; where no dashed line is drawn, no cap is in force. "
    )
    path = out / f"validation_{name}_exports.png"
    finish(
        fig, axes, spec, f"The supplier's exports, per month ({spec.title})", path, note, markers
    )
    return path


def plot_halted(name: str, runs: Sequence[Run], out: Path) -> Path:
    """Manufacturers halted and unmet shares of demand."""
    spec = SPECS[name]
    fig, axes = new_figure(2, 8.0)
    n = runs[0].manufacturers
    draw_fan(axes[0], runs, "manufacturers_halted", C_LANDED, f"plants halted (of {n})")
    axes[0].set_ylabel("manufacturers")
    colors = {"magnet": C_LANDED, "ndpr": C_OTHER, "dytb": C_HOME, "cela": "#1b7837"}
    for good, color in colors.items():
        dem, unmet = (
            ("demand_magnet_t", "unmet_demand_magnet_t")
            if good == "magnet"
            else (f"demand_{good}", f"unmet_demand_{good}")
        )
        for r in runs:
            d = r.frame[dem].to_numpy(dtype=float)
            r.frame[f"_unmet_share_{good}"] = np.divide(
                r.frame[unmet].to_numpy(dtype=float), d, out=np.zeros_like(d), where=d > 0
            )
        label = {
            "magnet": "magnets (final-goods makers)",
            "ndpr": "NdPr oxide",
            "dytb": "Dy/Tb oxide",
            "cela": "Ce/La oxide",
        }[good]
        draw_fan(axes[1], runs, f"_unmet_share_{good}", color, label, scale=100.0)
    axes[1].set_ylabel("% of demand unmet")
    draw_markers(axes[0], markers_for(name, runs), numbered=spec.numbered)
    draw_markers(axes[1], markers_for(name, runs), labels=False)
    axes[0].set_title(
        "Manufacturers halted (cover below half of this month's need)", fontsize=10, loc="left"
    )
    axes[1].set_title("Unmet demand, % of demand after substitution", fontsize=10, loc="left")
    for ax in axes:
        ax.set_ylim(0, max(ax.get_ylim()[1], 1.0))
    if band(runs, "manufacturers_halted")[0.9].max() == 0:
        axes[0].text(
            0.5,
            0.5,
            "no plant halted in any month of any seed",
            transform=axes[0].transAxes,
            ha="center",
            fontsize=11,
            color="#555555",
        )
    if max(float(band(runs, f"_unmet_share_{g}")[0.9].max()) for g in colors) == 0:
        axes[1].text(
            0.5,
            0.5,
            "no unmet demand in any month of any seed",
            transform=axes[1].transAxes,
            ha="center",
            fontsize=11,
            color="#555555",
        )
    path = out / f"validation_{name}_halted.png"
    finish(
        fig,
        axes,
        spec,
        f"Shortage in the importing market ({spec.title})",
        path,
        markers=markers_for(name, runs),
    )
    return path


def plot_capacity(name: str, runs: Sequence[Run], out: Path) -> Path:
    """Separation capacity outside the supplier."""
    spec = SPECS[name]
    fig, (ax,) = new_figure()
    draw_fan(ax, runs, "capacity_domestic_nameplate_t", C_OTHER, "nameplate (built)", 1e-3)
    draw_fan(ax, runs, "capacity_domestic_operating_t", C_LANDED, "operating", 1e-3, linestyle="--")
    draw_markers(ax, markers_for(name, runs), numbered=spec.numbered)
    ax.set_ylabel("kt REO/yr")
    ax.set_ylim(0, float(band(runs, "capacity_domestic_nameplate_t", 1e-3)[0.9].max()) * 1.3)
    path = out / f"validation_{name}_capacity.png"
    finish(
        fig,
        [ax],
        spec,
        f"Separation capacity outside the supplier, kt REO/yr ({spec.title})",
        path,
        markers=markers_for(name, runs),
    )
    return path


def plot_substitution(name: str, runs: Sequence[Run], out: Path) -> Path:
    """Substitution and recycling shares."""
    spec = SPECS[name]
    fig, (ax,) = new_figure()
    draw_fan(ax, runs, "substitution_share", C_LANDED, "substitution (thrift + redesign)", 100.0)
    draw_fan(ax, runs, "recycling_share", C_HOME, "recycled input", 100.0, linestyle="--")
    draw_markers(ax, markers_for(name, runs), numbered=spec.numbered)
    ax.set_ylabel("% of importers' REE demand")
    ax.set_ylim(0, max(float(band(runs, "substitution_share", 100.0)[0.9].max()) * 1.3, 5.0))
    path = out / f"validation_{name}_substitution.png"
    finish(
        fig,
        [ax],
        spec,
        f"Substitution and recycling, % of demand ({spec.title})",
        path,
        "Shares of importers' REE demand, REO-equivalent (substitution weighted by demand at capacity).",
        markers_for(name, runs),
    )
    return path


def plot_variants(all_runs: dict[str, list[Run]], out: Path) -> Path | None:
    """The three 2025 variants side by side: capacity, price received, public cost, defaults."""
    names = ["history_2025_events", "history_2025_licensing", "history_2025_licensing_reaction"]
    if not all(n in all_runs for n in names):
        return None
    labels = {
        "history_2025_events": "events, no government deals",
        "history_2025_licensing": "scripted deals (DoD-MP, USA Rare Earth)",
        "history_2025_licensing_reaction": "reaction function (floor for all, equity)",
    }
    colors = dict(zip(names, (C_HOME, C_LANDED, "#1b7837"), strict=True))
    fig, axes = plt.subplots(2, 2, figsize=(13, 8.5), sharex=True)
    panels = [
        (
            "capacity_domestic_nameplate_t",
            1e-3,
            "kt REO/yr",
            "Separation capacity outside the supplier, nameplate",
        ),
        ("price_received_ndpr", 1.0, "US$/kg", "NdPr price received by domestic producers"),
        (
            "gov_cost_cum_musd",
            1e-3,
            "US$ bn",
            "Government's cumulative net cost (< 0: net revenue)",
        ),
        ("miners_defaulted_cum", 1.0, "miners", "Miners defaulted, cumulative"),
    ]
    spec = SPECS["history_2025_events"]
    for ax, (col, scale, unit, title) in zip(axes.flat, panels, strict=True):
        for n in names:
            draw_fan(ax, all_runs[n], col, colors[n], labels[n], scale)
        draw_markers(ax, [m for m in EVENTS_2025 if m.date in {"2025-04", "2025-10"}], labels=False)
        format_axes(ax, spec, zero=col != "gov_cost_cum_musd")
        if col == "gov_cost_cum_musd":
            ax.axhline(0, color="black", linewidth=0.6)
        ax.set_ylabel(unit)
        ax.set_title(title, fontsize=10, loc="left")
    handles, lbls = axes[0, 0].get_legend_handles_labels()
    fig.legend(
        handles,
        lbls,
        loc="lower center",
        ncol=3,
        fontsize=9,
        frameon=False,
        bbox_to_anchor=(0.5, 0.04),
    )
    fig.suptitle(
        "The three 2025 variants (same events; the government's deals differ)",
        fontsize=12,
        x=0.01,
        ha="left",
    )
    fig.text(
        0.01,
        0.005,
        "Lines: median over seeds 1-10; shading: 10-90% band. Red dashed lines: licensing I "
        "(2025-04) and licensing II / JPMorgan initiative (2025-10).\nA line that cannot be seen "
        "lies under another: the events and scripted-deals variants have the same capacity and "
        "defaults.",
        fontsize=8,
    )
    fig.tight_layout(rect=(0, 0.09, 1, 0.97))
    path = out / "validation_history_2025_variants.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


# ------------------------------------------------------------------------------- summary
SUMMARY_COLUMNS: tuple[tuple[str, float], ...] = (
    ("price_landed_ndpr", 1.0),
    ("price_foreign_ndpr", 1.0),
    ("price_received_ndpr", 1.0),
    ("price_landed_dytb", 1.0),
    ("price_foreign_dytb", 1.0),
    ("price_landed_magnet", 1.0),
    ("exports_ndpr", 1.0),
    ("exports_illicit_ndpr", 1.0),
    ("export_quota_ndpr", 1.0),
    ("exports_dytb", 1.0),
    ("magnet_exports_t", 1.0),
    ("exports_illicit_magnet", 1.0),
    ("licence_allowance_magnet", 1.0),
    ("manufacturers_halted", 1.0),
    ("unmet_demand_magnet_t", 1.0),
    ("capacity_domestic_nameplate_t", 1.0),
    ("capacity_domestic_operating_t", 1.0),
    ("substitution_share", 100.0),
    ("miners_defaulted_cum", 1.0),
    ("gov_cost_cum_musd", 1.0),
)
SUMMARY_DATES = {
    "history_2010_quota": (
        "2009-01",
        "2009-12",
        "2010-06",
        "2010-12",
        "2011-06",
        "2011-12",
        "2012-12",
        "2013-06",
        "2013-12",
        "2014-12",
        "2015-06",
        "2016-12",
    ),
    "history_2025": (
        "2024-06",
        "2024-12",
        "2025-03",
        "2025-05",
        "2025-06",
        "2025-09",
        "2025-12",
        "2026-06",
        "2026-12",
        "2027-12",
        "2028-12",
        "2029-12",
    ),
}


def fmt(q: pd.Series) -> str:
    """Median [10%-90%] with three significant figures."""
    if q.isna().all():
        return "-"
    return f"{q[0.5]:.3g} [{q[0.1]:.3g}-{q[0.9]:.3g}]"


def summary(name: str, runs: Sequence[Run]) -> str:
    """Median and 10-90% band at the key dates, peaks, and yearly export totals (markdown)."""
    key = "history_2010_quota" if name == "history_2010_quota" else "history_2025"
    dates = [month(d) for d in SUMMARY_DATES[key]]
    lines = [
        f"### {name}",
        "",
        "| series | " + " | ".join(SUMMARY_DATES[key]) + " |",
        "|---" * (len(dates) + 1) + "|",
    ]
    for col, scale in SUMMARY_COLUMNS:
        table = stacked(runs, col, scale)
        cells = [fmt(table.loc[d].quantile(list(QUANTILES))) for d in dates]
        lines.append(f"| {col} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Peaks (median over seeds of each seed's maximum; month of the median seed's peak):",
        "",
    ]
    for col in (
        "price_landed_ndpr",
        "price_foreign_ndpr",
        "price_landed_dytb",
        "price_foreign_dytb",
        "price_landed_magnet",
        "manufacturers_halted",
    ):
        table = stacked(runs, col)
        peaks = table.max()
        when = table.idxmax()
        median_seed = (peaks - peaks.median()).abs().idxmin()
        lines.append(
            f"- {col}: {peaks.median():.3g} [{peaks.quantile(0.1):.3g}-{peaks.quantile(0.9):.3g}]"
            f" in {when[median_seed]:%Y-%m}; start {table.iloc[0].median():.3g}"
        )
    years = runs[0].frame["date"].str[:4]
    lines += [
        "",
        "Yearly totals, t (median over seeds):",
        "",
        "| year | licit oxide | quota slices | illicit oxide | licit magnets | illicit magnets |",
        "|---|---|---|---|---|---|",
    ]
    per_seed = []
    for r in runs:
        f = r.frame.assign(year=years.to_numpy())
        g = f.groupby("year")
        per_seed.append(
            pd.DataFrame(
                {
                    "licit": sum(g[f"exports_{p}"].sum() for p in ("ndpr", "dytb", "cela")),
                    "quota": sum(
                        g[f"export_quota_{p}"].sum(min_count=1) for p in ("ndpr", "dytb", "cela")
                    ),
                    "illicit": sum(
                        g[f"exports_illicit_{p}"].sum() for p in ("ndpr", "dytb", "cela")
                    ),
                    "magnet": g["magnet_exports_t"].sum(),
                    "magnet_illicit": g["exports_illicit_magnet"].sum(),
                }
            )
        )
    med = pd.concat(per_seed).groupby(level=0).median()
    for year, row in med.iterrows():
        lines.append(
            f"| {year} | {row.licit:,.0f} | {row.quota:,.0f} | {row.illicit:,.0f} | "
            f"{row.magnet:,.0f} | {row.magnet_illicit:,.0f} |"
        )
    if runs[0].reaction_date or any(r.reaction_date for r in runs):
        lines += [
            "",
            "Reaction acted in: " + ", ".join(sorted({str(r.reaction_date) for r in runs})),
        ]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------- main
def main(argv: Sequence[str] | None = None) -> int:
    """Run the history scenarios and write the validation figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=len(SEEDS), help="seeds 1..N (default 10)")
    parser.add_argument("--workers", type=int, default=2, help="processes (default 2)")
    parser.add_argument("--out", type=Path, default=FIGURES, help="figure folder")
    parser.add_argument("--summary", action="store_true", help="print numbers for the text")
    parser.add_argument("scenarios", nargs="*", default=list(SPECS), help="scenario names")
    args = parser.parse_args(argv)
    unknown = [n for n in args.scenarios if n not in SPECS]
    if unknown:
        parser.error(f"not a history scenario: {', '.join(unknown)}")
    args.out.mkdir(parents=True, exist_ok=True)
    all_runs = run_all(args.scenarios, range(1, args.seeds + 1), args.workers)
    written: list[Path] = []
    for name, runs in all_runs.items():
        written.append(plot_oxide_prices(name, runs, "ndpr", args.out))
        written.append(plot_oxide_prices(name, runs, "dytb", args.out))
        written.append(plot_magnet_price(name, runs, args.out))
        written.append(plot_exports(name, runs, args.out))
        written.append(plot_halted(name, runs, args.out))
        written.append(plot_capacity(name, runs, args.out))
        written.append(plot_substitution(name, runs, args.out))
        if args.summary:
            print(summary(name, runs))
    variants = plot_variants(all_runs, args.out)
    if variants:
        written.append(variants)
    for path in written:
        print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
