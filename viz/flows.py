"""A month's physical flows, mines to separation to magnets to manufacturers, by origin.

Built from the ledger's per-step tonne flows (``model.ledger.tonne_flows``, keyed by flow label and
good), which every transfer in the model goes through. The ledger pools the importing market's
trades in one clearing account, so the diagram follows the ledger's own labels:

- foreign mining and separation (``production_foreign``), domestic mines separated at home
  (``mine_domestic``) or sold abroad as concentrate (``concentrate``), scrap (``recycled``);
- foreign separation to its home market (``home_sales``), to its magnet plants
  (``magnet_input_foreign``) and to importers (``export`` and ``illicit`` oxides);
- domestic separation to the importing market (``domestic_sale``, less what the foreign outlet
  bought back, ``outlet_export``), to the government's stockpile (``offtake``);
- the importing market's oxides to domestic magnet plants (``magnet_input_domestic``) and the rest
  to manufacturers; magnets from foreign plants (``export``/``illicit`` magnets) and domestic
  plants (``magnet_made_domestic``) to manufacturers.

Oxides are t REO and magnets t of magnet; both are shown in tonnes per month.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sim.params import GOODS, PRODUCTS

Flows = Mapping[tuple[str, str], float]

FOREIGN_MINES = "Foreign mines"
DOMESTIC_MINES = "Domestic mines"
SCRAP = "Scrap (recycling)"
FOREIGN_SEPARATION = "Foreign separation"
DOMESTIC_SEPARATION = "Domestic separation"
FOREIGN_HOME = "Foreign home market"
FOREIGN_MAGNETS = "Foreign magnet plants"
OUTLET = "Foreign buyers (outlet)"
STOCKPILE = "Government stockpile"
IMPORT_MARKET = "Importing market (oxides)"
DOMESTIC_MAGNETS = "Domestic magnet plants"
MANUFACTURERS = "Manufacturers"

# Column of each node in the diagram (mines on the left, manufacturers on the right).
DEPTH = {
    FOREIGN_MINES: 0,
    DOMESTIC_MINES: 0,
    FOREIGN_SEPARATION: 1,
    DOMESTIC_SEPARATION: 1,
    FOREIGN_HOME: 2,
    FOREIGN_MAGNETS: 2,
    OUTLET: 2,
    STOCKPILE: 2,
    IMPORT_MARKET: 3,
    DOMESTIC_MAGNETS: 4,
    SCRAP: 4,
    MANUFACTURERS: 5,
}
COLORS = {
    FOREIGN_MINES: "#d62728",
    FOREIGN_SEPARATION: "#d62728",
    FOREIGN_HOME: "#ff9896",
    FOREIGN_MAGNETS: "#d62728",
    OUTLET: "#ff9896",
    DOMESTIC_MINES: "#1f77b4",
    DOMESTIC_SEPARATION: "#1f77b4",
    DOMESTIC_MAGNETS: "#1f77b4",
    STOCKPILE: "#9467bd",
    IMPORT_MARKET: "#7f7f7f",
    SCRAP: "#2ca02c",
    MANUFACTURERS: "#000000",
}


def _sum(flows: Flows, label: str, goods: tuple[str, ...]) -> dict[str, float]:
    return {g: float(flows.get((label, g), 0.0)) for g in goods}


def supply_links(flows: Flows) -> list[dict[str, Any]]:
    """Links (source, target, tonnes by good) of this month's flows; empty links left out."""
    oxides = PRODUCTS
    exported = {
        g: float(flows.get(("export", g), 0.0)) + float(flows.get(("illicit", g), 0.0))
        for g in GOODS
    }
    outlet = _sum(flows, "outlet_export", oxides)
    domestic_sold = _sum(flows, "domestic_sale", oxides)
    release = _sum(flows, "stockpile_release", oxides)
    magnet_input = _sum(flows, "magnet_input_domestic", oxides)
    into_market = {
        g: exported[g] + max(domestic_sold[g] - outlet[g], 0.0) + release[g] for g in oxides
    }
    to_manufacturers = {g: max(into_market[g] - magnet_input[g], 0.0) for g in oxides}
    links = [
        (FOREIGN_MINES, FOREIGN_SEPARATION, _sum(flows, "production_foreign", oxides)),
        (DOMESTIC_MINES, DOMESTIC_SEPARATION, _sum(flows, "mine_domestic", oxides)),
        (DOMESTIC_MINES, FOREIGN_SEPARATION, _sum(flows, "concentrate", oxides)),
        (FOREIGN_SEPARATION, FOREIGN_HOME, _sum(flows, "home_sales", oxides)),
        (FOREIGN_SEPARATION, FOREIGN_MAGNETS, _sum(flows, "magnet_input_foreign", oxides)),
        (FOREIGN_SEPARATION, IMPORT_MARKET, {g: exported[g] for g in oxides}),
        (
            DOMESTIC_SEPARATION,
            IMPORT_MARKET,
            {g: max(domestic_sold[g] - outlet[g], 0.0) for g in oxides},
        ),
        (DOMESTIC_SEPARATION, OUTLET, outlet),
        (DOMESTIC_SEPARATION, STOCKPILE, _sum(flows, "offtake", oxides)),
        (STOCKPILE, IMPORT_MARKET, release),
        (IMPORT_MARKET, DOMESTIC_MAGNETS, magnet_input),
        (IMPORT_MARKET, MANUFACTURERS, to_manufacturers),
        (FOREIGN_MAGNETS, MANUFACTURERS, {"magnet": exported["magnet"]}),
        (
            DOMESTIC_MAGNETS,
            MANUFACTURERS,
            {"magnet": float(flows.get(("magnet_made_domestic", "magnet"), 0.0))},
        ),
        (SCRAP, MANUFACTURERS, _sum(flows, "recycled", GOODS)),
    ]
    out = []
    for source, target, by_good in links:
        total = sum(by_good.values())
        if total > 1e-9:
            out.append(
                {"source": source, "target": target, "value": total, "by_good": dict(by_good)}
            )
    return out


def sankey_option(flows: Flows, title: str) -> dict[str, Any]:
    """An ECharts sankey of this month's flows."""
    links = supply_links(flows)
    used = {n for link in links for n in (link["source"], link["target"])}
    nodes = [
        {"name": name, "depth": depth, "itemStyle": {"color": COLORS[name]}}
        for name, depth in DEPTH.items()
        if name in used
    ]

    def describe(link: dict[str, Any]) -> str:
        parts = [f"{g}: {t:,.0f} t" for g, t in link["by_good"].items() if t > 0.5]
        return f"{link['source']} → {link['target']}<br/>" + "<br/>".join(parts)

    return {
        "animation": False,
        "title": {"text": title, "left": 0, "textStyle": {"fontSize": 13}},
        "tooltip": {"trigger": "item"},
        "series": [
            {
                "type": "sankey",
                "left": 8,
                "right": 170,
                "top": 36,
                "bottom": 8,
                "nodeAlign": "justify",
                "layoutIterations": 0,
                "emphasis": {"focus": "adjacency"},
                "lineStyle": {"color": "gradient", "opacity": 0.45},
                "label": {"fontSize": 11},
                "data": nodes,
                "links": [
                    {
                        "source": link["source"],
                        "target": link["target"],
                        "value": round(link["value"], 1),
                        "tooltip": {"formatter": describe(link)},
                    }
                    for link in links
                ],
            }
        ],
    }


def flow_rows(flows: Flows) -> list[dict[str, Any]]:
    """The ledger's tonne flows of the month as table rows: flow, then tonnes per good."""
    labels = sorted({label for label, _ in flows})
    rows = []
    for label in labels:
        row: dict[str, Any] = {"flow": label}
        for good in GOODS:
            row[good] = round(float(flows.get((label, good), 0.0)), 1)
        rows.append(row)
    return rows
