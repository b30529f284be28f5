"""ECharts options for the live time charts, built from the model's own arrays.

Each function takes the finished months of ``model.records`` (``RunSession.records()``), the
horizon's dates and the policy changes so far, and returns a plain dict for
``solara.FigureEcharts``. The x axis always spans the whole horizon, so a chart fills from the
left as the run goes instead of rescaling; every chart carries a vertical mark at each policy
change (red for changes made in the browser, grey for scheduled or government ones).

The browser draws the charts: the server only builds these small dicts (a few thousand numbers),
which keeps the page well above ten simulated months per second.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from sim.model import COL
from sim.params import GOODS, PRODUCTS
from viz.levers import GOOD_LABELS

Marks = Sequence[tuple[int, str]]
Option = dict[str, Any]

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#7f7f7f")
GOOD_COLORS = dict(zip(GOODS, PALETTE, strict=False))
USER_MARK = "#d62728"
OTHER_MARK = "#9e9e9e"
WEEKS_PER_MONTH = 52.0 / 12.0


def values(array: NDArray[np.float64]) -> list[float | None]:
    """JSON-ready numbers (NaN and infinity as gaps), rounded to keep the messages small."""
    finite = np.isfinite(array)
    rounded = np.where(finite, array, 0.0)
    big = np.abs(rounded) >= 100
    rounded = np.where(big, np.round(rounded, 1), np.round(rounded, 4))
    return [
        float(x) if ok else None for x, ok in zip(rounded.tolist(), finite.tolist(), strict=True)
    ]


def column(records: NDArray[np.float64], name: str) -> NDArray[np.float64]:
    """One timeseries column of the records (a view)."""
    return records[:, COL[name]]


def short_mark(detail: str) -> str:
    """``tariff.ndpr = 1.0`` from ``policy.tariff.ndpr = 1.0 (browser)``."""
    text = detail.split(" (", 1)[0]
    key, sep, value = text.partition(" = ")
    if not sep:
        return text[:40]
    parts = key.split(".")
    return f"{'.'.join(parts[-2:])} = {value}"


def mark_line(marks: Marks, dates: Sequence[str]) -> Option:
    """A markLine with one vertical line per policy change."""
    data = []
    for month, detail in marks:
        if not 0 <= month < len(dates):
            continue
        user = detail.endswith("(browser)")
        data.append(
            {
                "xAxis": dates[month],
                "name": detail,
                "lineStyle": {
                    "color": USER_MARK if user else OTHER_MARK,
                    "type": "solid" if user else "dashed",
                    "width": 1.5 if user else 1,
                },
                "label": {
                    "show": user,
                    "formatter": short_mark(detail),
                    "position": "insideEndTop",
                    "fontSize": 10,
                    "color": USER_MARK,
                },
            }
        )
    return {"symbol": ["none", "none"], "silent": False, "animation": False, "data": data}


def base_option(
    title: str,
    dates: Sequence[str],
    y_name: str,
    *,
    log: bool = False,
    right_axis: str | None = None,
) -> Option:
    """Common layout: title, legend, tooltip, a category axis of every month of the horizon."""
    y_axes: list[Option] = [
        {
            "type": "log" if log else "value",
            "name": y_name,
            "nameLocation": "middle",
            "nameGap": 52,
            "nameTextStyle": {"fontSize": 11},
            "scale": not log,
            "splitLine": {"lineStyle": {"color": "#eee"}},
        }
    ]
    if right_axis:
        y_axes.append(
            {
                "type": "value",
                "name": right_axis,
                "nameLocation": "middle",
                "nameGap": 36,
                "nameTextStyle": {"fontSize": 11},
                "splitLine": {"show": False},
                "scale": False,
            }
        )
    return {
        "animation": False,
        "title": {"text": title, "left": 0, "textStyle": {"fontSize": 13}},
        "tooltip": {"trigger": "axis"},
        "legend": {"top": 22, "left": 0, "itemWidth": 14, "textStyle": {"fontSize": 10}},
        "grid": {"left": 72, "right": 56 if right_axis else 16, "top": 72, "bottom": 28},
        "xAxis": {"type": "category", "data": list(dates), "boundaryGap": False},
        "yAxis": y_axes,
        "series": [],
    }


def line(name: str, data: list[float | None], color: str | None = None, **extra: Any) -> Option:
    """A line series without symbols."""
    series: Option = {
        "name": name,
        "type": "line",
        "data": data,
        "showSymbol": False,
        "connectNulls": False,
        "emphasis": {"disabled": True},  # less work for the browser at every update
    }
    if color:
        series["itemStyle"] = {"color": color}
        series["lineStyle"] = {"color": color, **extra.pop("lineStyle", {})}
    series.update(extra)
    return series


def with_marks(option: Option, marks: Marks, dates: Sequence[str]) -> Option:
    """Attach the policy marks to the first series (an empty one if there is none)."""
    if not option["series"]:
        option["series"].append(line("", []))
    option["series"][0]["markLine"] = mark_line(marks, dates)
    return option


# ------------------------------------------------------------------------------------ charts
def price_chart(
    records: NDArray[np.float64],
    dates: Sequence[str],
    marks: Marks,
    product: str,
    freight: float,
) -> Option:
    """Prices of one oxide in both layers, with the tariff wedge shaded.

    Landed = FOB x (1 + tariff) + freight, so the band from FOB + freight up to the landed price
    is the tariff paid per kg.
    """
    label = GOOD_LABELS[product]
    option = base_option(f"{label} oxide prices", dates, "US$/kg")
    export = column(records, f"price_export_{product}")
    landed = column(records, f"price_landed_{product}")
    wedge = np.maximum(landed - export - freight, 0.0)
    option["series"] = [
        line("landed (importers)", values(landed), "#d62728", lineStyle={"width": 2}),
        line(
            "FOB + freight",
            values(export + freight),
            "#ff9896",
            stack="wedge",
            lineStyle={"width": 0, "opacity": 0},
        ),
        line(
            "tariff wedge",
            values(wedge),
            "#ff9896",
            stack="wedge",
            areaStyle={"opacity": 0.35},
            lineStyle={"width": 0, "opacity": 0},
        ),
        line("export (FOB)", values(export), "#1f77b4"),
        line(
            "foreign home market",
            values(column(records, f"price_foreign_{product}")),
            "#7f7f7f",
            lineStyle={"type": "dashed"},
        ),
        line(
            "received by domestic miners",
            values(column(records, f"price_received_{product}")),
            "#2ca02c",
        ),
    ]
    floor = column(records, f"price_floor_{product}")
    if np.isfinite(floor).any():
        option["series"].append(
            line("price floor", values(floor), "#9467bd", lineStyle={"type": "dotted"})
        )
    option["legend"]["data"] = [s["name"] for s in option["series"] if s["name"] != "FOB + freight"]
    return with_marks(option, marks, dates)


def magnet_price_chart(records: NDArray[np.float64], dates: Sequence[str], marks: Marks) -> Option:
    """Landed price of NdFeB magnets in the importing market."""
    option = base_option("NdFeB magnet price (landed)", dates, "US$/kg")
    option["series"] = [
        line("landed (importers)", values(column(records, "price_landed_magnet")), "#d62728")
    ]
    return with_marks(option, marks, dates)


LOG_FLOOR = 0.1  # a log axis cannot show zero: zero exports (an embargo) are drawn at 0.1 t


def positive(array: NDArray[np.float64]) -> NDArray[np.float64]:
    """Values for a log axis: zero and below drawn at ``LOG_FLOOR``, gaps kept."""
    return np.where(np.isnan(array), np.nan, np.maximum(array, LOG_FLOOR))


def exports_chart(records: NDArray[np.float64], dates: Sequence[str], marks: Marks) -> Option:
    """The foreign supplier's exports against the quota or licensed volume in force (log axis)."""
    option = base_option(
        "Exports against quota (dashed)", dates, "t per month, log (0 shown at 0.1)", log=True
    )
    option["yAxis"][0]["min"] = LOG_FLOOR
    series = []
    for good in GOODS:
        color = GOOD_COLORS[good]
        if good == "magnet":
            exports = column(records, "magnet_exports_t")
        else:
            exports = column(records, f"exports_{good}") + column(
                records, f"exports_illicit_{good}"
            )
        series.append(line(f"{GOOD_LABELS[good]} exports", values(positive(exports)), color))
        if good != "magnet":
            quota = column(records, f"export_quota_{good}")
            if np.isfinite(quota).any():
                series.append(
                    line(
                        f"{GOOD_LABELS[good]} quota",
                        values(positive(quota)),
                        color,
                        lineStyle={"type": "dashed"},
                        step="end",
                    )
                )
    option["series"] = series
    return with_marks(option, marks, dates)


def capacity_chart(
    records: NDArray[np.float64],
    dates: Sequence[str],
    marks: Marks,
    stage_capacity: NDArray[np.float64],
    stage_names: Sequence[str],
) -> Option:
    """Domestic separation capacity by project stage (stacked) and its utilisation."""
    option = base_option(
        "Domestic capacity by stage", dates, "t REO per year", right_axis="utilisation %"
    )
    colors = ("#c7c7c7", "#ffbb78", "#98df8a", "#2ca02c", "#8c564b")
    series = [
        line(
            name,
            values(stage_capacity[:, i]),
            colors[i % len(colors)],
            stack="stage",
            areaStyle={"opacity": 0.7},
            lineStyle={"width": 0.5},
        )
        for i, name in enumerate(stage_names)
    ]
    nameplate = column(records, "capacity_domestic_nameplate_t")
    operating = column(records, "capacity_domestic_operating_t")
    with np.errstate(divide="ignore", invalid="ignore"):
        utilisation = np.where(nameplate > 0, 100.0 * operating / nameplate, np.nan)
    series.append(
        line("utilisation", values(utilisation), "#000000", yAxisIndex=1, lineStyle={"width": 2})
    )
    option["series"] = series
    option["yAxis"][1]["max"] = 100
    option["yAxis"][1]["min"] = 0
    return with_marks(option, marks, dates)


def stocks_chart(records: NDArray[np.float64], dates: Sequence[str], marks: Marks) -> Option:
    """Importers' stocks as weeks of this month's demand."""
    option = base_option("Importers' stocks", dates, "weeks of cover")
    series = []
    for good in GOODS:
        if good == "magnet":
            stock, demand = (
                column(records, "inventory_magnet_t"),
                column(records, "demand_magnet_t"),
            )
        else:
            stock, demand = column(records, f"inventory_{good}"), column(records, f"demand_{good}")
        with np.errstate(divide="ignore", invalid="ignore"):
            weeks = np.where(demand > 0, stock / demand * WEEKS_PER_MONTH, np.nan)
        series.append(line(GOOD_LABELS[good], values(weeks), GOOD_COLORS[good]))
    option["series"] = series
    return with_marks(option, marks, dates)


def shortage_chart(records: NDArray[np.float64], dates: Sequence[str], marks: Marks) -> Option:
    """Unmet demand as a share of demand by good, and manufacturers stopped."""
    option = base_option(
        "Unmet demand and stoppages", dates, "% of demand unmet", right_axis="plants stopped"
    )
    option["yAxis"][0]["scale"] = False
    option["yAxis"][0]["min"] = 0
    series = []
    for good in GOODS:
        if good == "magnet":
            unmet, demand = (
                column(records, "unmet_demand_magnet_t"),
                column(records, "demand_magnet_t"),
            )
        else:
            unmet, demand = (
                column(records, f"unmet_demand_{good}"),
                column(records, f"demand_{good}"),
            )
        with np.errstate(divide="ignore", invalid="ignore"):
            share = np.where(demand > 0, 100.0 * unmet / demand, np.nan)
        series.append(line(f"{GOOD_LABELS[good]} unmet", values(share), GOOD_COLORS[good]))
    series.append(
        {
            "name": "plants stopped",
            "type": "bar",
            "data": values(column(records, "manufacturers_halted")),
            "yAxisIndex": 1,
            "itemStyle": {"color": "rgba(0,0,0,0.35)"},
            "barMaxWidth": 6,
        }
    )
    option["series"] = series
    return with_marks(option, marks, dates)


def bank_chart(records: NDArray[np.float64], dates: Sequence[str], marks: Marks) -> Option:
    """The bank's book: loans outstanding, equity held and losses to date."""
    option = base_option("The bank's book", dates, "US$ million")
    option["series"] = [
        line("loans outstanding", values(column(records, "bank_loans_musd")), "#1f77b4"),
        line("equity held", values(column(records, "bank_equity_musd")), "#2ca02c"),
        line("losses to date", values(column(records, "bank_losses_cum_musd")), "#d62728"),
    ]
    return with_marks(option, marks, dates)


def government_chart(records: NDArray[np.float64], dates: Sequence[str], marks: Marks) -> Option:
    """The government's costs and revenue to date, and the equity it holds."""
    option = base_option("The government's costs", dates, "US$ million")
    tariffs = np.cumsum(np.nan_to_num(column(records, "tariff_revenue_musd")))
    floors = np.cumsum(np.nan_to_num(column(records, "floor_payments_musd")))
    option["series"] = [
        line("net cost to date", values(column(records, "gov_cost_cum_musd")), "#000000"),
        line("tariff revenue to date", values(tariffs), "#2ca02c"),
        line("price-floor payments to date", values(floors), "#d62728"),
        line("equity held", values(column(records, "gov_equity_musd")), "#9467bd"),
    ]
    return with_marks(option, marks, dates)


def equity_chart(
    records: NDArray[np.float64],
    dates: Sequence[str],
    marks: Marks,
    equity: NDArray[np.float64],
    names: Sequence[str],
    top: int = 6,
) -> Option:
    """Market value of the listed domestic miners: the largest few stacked, the rest together."""
    option = base_option("Miners' equity values", dates, "US$ million")
    month = records.shape[0]
    latest = np.nan_to_num(equity[month - 1]) if month else np.zeros(len(names))
    order = list(np.argsort(-latest, kind="stable")[:top])
    series = [
        line(
            names[i],
            values(equity[:, i]),
            PALETTE[k % len(PALETTE)],
            stack="equity",
            areaStyle={"opacity": 0.6},
            lineStyle={"width": 0.5},
        )
        for k, i in enumerate(order)
    ]
    rest = [i for i in range(len(names)) if i not in set(order)]
    if rest:
        others = np.nansum(equity[:, rest], axis=1)
        others[month:] = np.nan
        series.append(
            line(
                f"{len(rest)} others",
                values(others),
                "#c7c7c7",
                stack="equity",
                areaStyle={"opacity": 0.6},
                lineStyle={"width": 0.5},
            )
        )
    series.append(
        line(
            "all listed miners",
            values(column(records, "miner_equity_value_musd")),
            "#000000",
            lineStyle={"type": "dashed", "width": 1},
        )
    )
    option["series"] = series
    option["legend"]["type"] = "scroll"
    return with_marks(option, marks, dates)


def product_prices(
    records: NDArray[np.float64],
    dates: Sequence[str],
    marks: Marks,
    freight: NDArray[np.float64],
) -> list[Option]:
    """The price chart of every oxide, then the magnet price."""
    charts = [
        price_chart(records, dates, marks, p, float(freight[k])) for k, p in enumerate(PRODUCTS)
    ]
    charts.append(magnet_price_chart(records, dates, marks))
    return charts
