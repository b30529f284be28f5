"""The app's panels as Solara components.

State lives per browser session (``solara.use_memo``/``use_reactive`` in ``viz.app.Page``), never
in module-level reactive variables, which every session would share. The live panels get the
session's ``Controller`` (``viz.live``): its run, its live widgets and its reactive values. The
play loop feeds the charts, the supply-chain diagram and the status line directly
(``LiveView.update``) and bumps ``frame`` only when the rest of the page needs a render; the
components that read ``frame.value`` hand small arguments to their children (the lever state, the
number of events), so a child redraws only when what it shows can have changed.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import reacton.ipyvuetify as rv
import solara
import solara.lab

from sim.scenario import ScenarioError
from viz import charts
from viz.flows import flow_rows
from viz.folders import Comparison, compare_folders, list_folders, results_root, sweep_progress
from viz.levers import GROUPS, LEVERS, Lever, LeverValueError
from viz.live import Controller
from viz.session import SPEEDS, RunSession, list_scenarios, parse_seed

EVENT_KINDS = (
    "policy",
    "licence",
    "predation",
    "default",
    "stoppage",
    "loan",
    "miner_state",
    "closure",
)
SWEEP_REFRESH_SECONDS = 2.0
NOTE = {"font-size": "12px", "color": "#555"}
ERROR_TEXT = {"color": "#b00020", "font-size": "12px"}


def css_name(key: str) -> str:
    """A lever key as a CSS class fragment (``policy-tariff-ndpr``)."""
    return key.replace(".", "-")


# ------------------------------------------------------------------------------- controls
@solara.component
def SetupPanel(ctl: Controller):
    """Scenario and seed; changing either builds a new run at once."""
    session = ctl.session
    scenarios = solara.use_memo(list_scenarios, [])
    message = solara.use_reactive(None)

    def rebuild(name: str | None = None, seed: int | None = None) -> None:
        ctl.stop()
        try:
            session.reset(name, seed)
            message.set(None)
        except ScenarioError as err:
            message.set(str(err))
        ctl.refresh()

    def on_seed(text: str) -> str | None:
        try:
            seed = parse_seed(text)
        except ValueError as err:
            return str(err)
        rebuild(seed=seed)
        return None

    with solara.Column(gap="4px"):
        solara.Select(
            "Scenario",
            values=scenarios,
            value=session.scenario_name,
            on_value=lambda name: rebuild(name=name),
            dense=True,
            classes=["resim-scenario"],
        )
        DraftField("Seed (whole number)", str(session.seed), on_seed, css_class="resim-seed")
        if message.value:
            solara.Error(message.value, dense=True, classes=["resim-setup-error"])


@solara.component
def PlaybackPanel(ctl: Controller):
    """Play, pause, step, reset and speed; the status line is a live widget."""
    _ = ctl.frame.value
    session, playing, view = ctl.session, ctl.playing, ctl.view

    def step(months: int) -> None:
        ctl.stop()
        session.step(months)
        ctl.refresh()

    def reset() -> None:
        ctl.stop()
        try:
            session.reset()
        except ScenarioError as err:
            session.error = str(err)
        ctl.refresh()

    stopped = session.done or bool(session.error)
    with solara.Column(gap="6px"):
        with solara.Row(gap="4px", style={"flex-wrap": "wrap"}):
            if playing.value:
                solara.Button(
                    "Pause",
                    icon_name="mdi-pause",
                    on_click=ctl.stop,
                    color="primary",
                    classes=["resim-pause"],
                )
            else:
                solara.Button(
                    "Play",
                    icon_name="mdi-play",
                    on_click=lambda: playing.set(True),
                    color="primary",
                    disabled=stopped,
                    classes=["resim-play"],
                )
            solara.Button(
                "Step",
                icon_name="mdi-step-forward",
                on_click=lambda: step(1),
                disabled=stopped,
                classes=["resim-step"],
            )
            solara.Button("Reset", icon_name="mdi-restart", on_click=reset, classes=["resim-reset"])
        solara.Select(
            "Speed",
            values=list(SPEEDS),
            value=ctl.speed.value,
            on_value=ctl.speed.set,
            dense=True,
            classes=["resim-speed"],
        )
        solara.Column(
            gap="2px", children=[view.progress, view.status, view.month, view.rate, view.frames]
        )


@solara.component
def DraftField(
    label: str,
    text: str,
    on_commit: Callable[[str], str | None],
    css_class: str = "",
    width: str = "",
):
    """A text field that keeps what is typed on the server until Enter or leaving the field.

    The page is re-rendered while a run plays, and a render sets every widget back to its
    arguments: a plain field would lose text typed but not yet applied. ``on_commit`` returns an
    error message (the draft stays for correcting) or None (applied).
    """
    draft = solara.use_reactive(None)
    error = solara.use_reactive(None)

    def commit(*_: Any) -> None:
        if draft.value is None:
            return
        problem = on_commit(draft.value)
        error.set(problem)
        if problem is None:
            draft.set(None)

    field = rv.TextField(
        label=label,
        v_model=text if draft.value is None else draft.value,
        on_v_model=draft.set,
        dense=True,
        hide_details="auto",
        error_messages=[error.value] if error.value else [],
        class_=css_class,
        style_=f"max-width: {width};" if width else "",
    )
    rv.use_event(field, "keyup.enter", commit)
    rv.use_event(field, "blur", commit)
    return field


@solara.component
def NumberField(lever: Lever, value: float, on_value: Callable[[float], None]):
    """A slider over the lever's range and a field for any allowed value, both in display units.

    The slider applies when released (not on every step of a drag); the field when Enter is
    pressed or it loses focus. Values outside the schema's range are refused with a message.
    """
    low, high = lever.slider_range()
    shown = float(value) * lever.scale
    drag = solara.use_reactive(None)

    def apply(entry: str | float) -> str | None:
        try:
            on_value(lever.parse(entry))
        except (LeverValueError, ScenarioError) as err:
            return str(err)
        return None

    def released(*args: Any) -> None:
        apply(float(args[-1]))
        drag.set(None)

    with (
        solara.Column(gap="0px", classes=["resim-lever"]),
        solara.Row(gap="6px", style={"align-items": "center"}),
    ):
        slider = rv.Slider(
            v_model=min(max(shown, low), high) if drag.value is None else drag.value,
            on_v_model=drag.set,
            min=low,
            max=high,
            step=lever.step,
            label=lever.label,
            thumb_label=True,
            hide_details=True,
            dense=True,
            class_=f"resim-slider-{css_name(lever.key)}",
            style_="flex: 1 1 auto; min-width: 0;",
        )
        rv.use_event(slider, "change", released)
        DraftField(
            lever.unit,
            f"{shown:.6g}",
            apply,
            css_class=f"resim-field-{css_name(lever.key)}",
            width="92px",
        )


@solara.component
def LeverControl(
    lever: Lever,
    value: Any,
    session: RunSession,
    on_change: Callable[[], None],
    default_on: Any,
):
    """One lever (showing ``value``): a switch, a number, or an optional number behind a switch."""
    error = solara.use_reactive(None)

    def request(new: Any) -> None:
        """Queue the change (raises ``ScenarioError`` for a value the schema refuses)."""
        try:
            session.request_lever(lever.key, new)
        finally:
            on_change()

    def switch(new: Any) -> None:
        try:
            request(new)
            error.set(None)
        except ScenarioError as err:
            error.set(str(err))

    if lever.kind == "switch":
        solara.Switch(
            label=lever.label,
            value=bool(value),
            on_value=switch,
            classes=[f"resim-switch-{css_name(lever.key)}"],
        )
    elif lever.kind == "optional":
        solara.Switch(
            label=lever.label,
            value=value is not None,
            on_value=lambda on: switch(default_on if on else None),
            classes=[f"resim-switch-{css_name(lever.key)}"],
        )
        if value is not None:
            NumberField(lever, float(value), request)
    else:
        NumberField(lever, float(value), request)
    if error.value:
        solara.Text(error.value, style=ERROR_TEXT)


def default_on(lever: Lever, session: RunSession) -> float | None:
    """The value an optional lever takes when switched on (None for other levers)."""
    if lever.kind != "optional":
        return None
    if lever.default_on is not None:
        return lever.default_on
    # An export quota starts at last year's exports (annualised), so switching it on changes
    # nothing at once and the slider shows where the market is.
    good = lever.key.rsplit(".", 1)[1]
    records = session.records()
    name = "magnet_exports_t" if good == "magnet" else f"exports_{good}"
    recent = charts.column(records, name)[-12:] if len(records) else np.array([])
    yearly = float(np.nanmean(recent) * 12.0) if recent.size else 0.0
    low, high = lever.slider_range()
    return float(np.clip(round(yearly, -1) if yearly > 0 else high / 2, low, high))


@solara.component
def LeversPanel(ctl: Controller):
    """Policy levers by group; redrawn only when a lever can have moved."""
    _ = ctl.frame.value
    LeverGroups(ctl, ctl.session.page_state())


@solara.component
def LeverGroups(ctl: Controller, state: tuple[Any, ...]):
    """The lever groups; ``state`` (run, levers, pending changes) redraws them when it changes."""
    session = ctl.session
    pending = dict(session.pending)
    if pending:
        text = "; ".join(f"{k} = {v!r}" for k, v in pending.items())
        solara.Info(f"Applies from {session.date()}: {text}", dense=True, classes=["resim-pending"])
    for group in GROUPS:
        LeverGroup(ctl, group, state).key(f"group-{group}")
    solara.Text(
        "The programme size (at Reset) takes effect when the run is built again: at once "
        "before the first month, else on Reset.",
        style=NOTE,
    )


@solara.component
def LeverGroup(ctl: Controller, group: str, state: tuple[Any, ...]):
    """One group of levers in a panel that renders its levers only while open."""
    session = ctl.session
    expanded = solara.use_reactive(group == GROUPS[0])

    def changed() -> None:
        lever_setup = dict(session.setup)
        if session.month == 0 and lever_setup != session.model_setup:
            # Set-up levers apply at once while the run has not started.
            ctl.stop()
            try:
                session.reset(setup=lever_setup, keep_pending=True)
            except ScenarioError as err:
                session.error = str(err)
        ctl.refresh()

    with (
        rv.ExpansionPanels(
            v_model=0 if expanded.value else None,
            on_v_model=lambda model: expanded.set(model == 0),
            class_=f"resim-group-{css_name(group.lower().replace(' ', '-'))}",
        ),
        rv.ExpansionPanel(),
    ):
        rv.ExpansionPanelHeader(children=[group])
        with rv.ExpansionPanelContent():
            if expanded.value:
                with solara.Column(gap="2px"):
                    for lever in LEVERS:
                        if lever.group == group:
                            LeverControl(
                                lever,
                                session.lever_value(lever.key),
                                session,
                                changed,
                                default_on(lever, session),
                            ).key(f"{lever.key}-{state[0]}")


@solara.component
def DownloadPanel(ctl: Controller):
    """The current run as Parquet or CSV (timeseries) and its events as CSV."""
    _ = ctl.frame.value
    Downloads(ctl.session, ctl.session.scenario_name, ctl.session.seed)


@solara.component
def Downloads(session: RunSession, scenario: str, seed: int):
    """Download buttons; the files are made when clicked, from the months run by then."""
    stem = f"{scenario}_seed{seed}"

    def parquet() -> bytes:
        buffer = io.BytesIO()
        session.timeseries().to_parquet(buffer, index=False)
        return buffer.getvalue()

    def csv() -> bytes:
        return session.timeseries().to_csv(index=False).encode()

    def events_csv() -> bytes:
        return session.events().to_csv(index=False).encode()

    with solara.Row(gap="4px", style={"flex-wrap": "wrap"}):
        solara.FileDownload(parquet, filename=f"{stem}.parquet", label="Parquet")
        solara.FileDownload(csv, filename=f"{stem}.csv", label="CSV")
        solara.FileDownload(events_csv, filename=f"{stem}_events.csv", label="Events CSV")


@solara.component
def ModelError(ctl: Controller):
    """The model's error, if it stopped; the server keeps serving and Reset starts afresh."""
    _ = ctl.frame.value
    error = ctl.session.error or ctl.view.error
    if error:
        solara.Error(f"{error}. Press Reset to start the run again.", classes=["resim-model-error"])


# ---------------------------------------------------------------------------- live views
@solara.component
def LiveCharts(ctl: Controller):
    """Every time chart of the running model (live widgets, fed by the play loop)."""
    with solara.Div(classes=["resim-charts"]):
        solara.GridFixed(columns=2, column_gap="12px", row_gap="8px", children=ctl.view.charts)
    solara.Text(
        "Vertical lines mark policy changes: red ones made here, grey ones scheduled by the "
        "scenario or decided by the government. Hover a chart for values.",
        style=NOTE,
    )


@solara.component
def SupplyChainPanel(ctl: Controller):
    """The last month's flows, mines to separation to magnets to manufacturers, by origin."""
    _ = ctl.frame.value
    solara.Div(children=[ctl.view.sankey], classes=["resim-sankey"])
    solara.Text(
        "The ledger's flows in the last month simulated; oxides in t REO, magnets in t. Red: "
        "the foreign supplier; blue: domestic producers. Hover a band for tonnes by good.",
        style=NOTE,
    )
    FlowTable(ctl.session, ctl.session.month, ctl.session.generation)


@solara.component
def FlowTable(session: RunSession, month: int, generation: int):
    """Every flow label of the ledger in month ``month``, tonnes by good."""
    with solara.Details("The ledger's flows this month (t)", expand=False):
        rows = flow_rows(session.flows)
        if rows:
            solara.DataFrame(pd.DataFrame(rows), items_per_page=40)


@solara.component
def EventLog(ctl: Controller):
    """The run's dated events, redrawn when new ones arrive."""
    _ = ctl.frame.value
    session = ctl.session
    EventTable(session, len(session.model.events), session.generation)


@solara.component
def EventTable(session: RunSession, count: int, generation: int):
    """The run's dated events, newest first, filtered by kind and text."""
    kinds = solara.use_reactive(list(EVENT_KINDS))
    text = solara.use_reactive("")
    events = session.events()
    present = sorted(set(events["kind"].astype(str)) | set(EVENT_KINDS))
    with solara.Row(gap="12px", style={"align-items": "center"}):
        solara.SelectMultiple(
            "Kinds shown",
            values=[k for k in kinds.value if k in present],
            all_values=present,
            on_value=kinds.set,
            dense=True,
            classes=["resim-event-kinds"],
        )
        solara.InputText(
            "Search agent or detail",
            value=text,
            continuous_update=True,
            dense=True,
            classes=["resim-event-search"],
        )
    counts = events["kind"].value_counts()
    solara.Text(
        ", ".join(f"{k}: {int(counts.get(k, 0))}" for k in present if counts.get(k, 0))
        or "no events yet",
        style=NOTE,
    )
    shown = events[events["kind"].isin(kinds.value)]
    if text.value:
        needle = text.value.lower()
        shown = shown[
            shown["agent"].str.lower().str.contains(needle, regex=False)
            | shown["detail"].str.lower().str.contains(needle, regex=False)
        ]
    shown = shown.iloc[::-1][["date", "month", "kind", "agent", "detail"]].reset_index(drop=True)
    with solara.Div(classes=["resim-event-log"]):
        if shown.empty:
            solara.Text("No events match.")
        else:
            solara.DataFrame(shown, items_per_page=15)


@solara.component
def LiveRun(ctl: Controller):
    """The live page: controls on the left; charts, flows and events on the right."""
    view = solara.use_reactive(0)
    with solara.Columns([1, 3], gutters_dense=True):
        with solara.Column(gap="8px", style={"min-width": "300px"}):
            with solara.Card("Run", margin=0):
                SetupPanel(ctl)
                PlaybackPanel(ctl)
            ModelError(ctl)
            with solara.Card("Levers", subtitle="apply from the next month", margin=0):
                LeversPanel(ctl)
            with solara.Card("Download this run", margin=0):
                DownloadPanel(ctl)
        with solara.Column(), solara.lab.Tabs(value=view, lazy=True):
            with solara.lab.Tab("Charts", classes=["resim-tab-charts"]):
                LiveCharts(ctl)
            with solara.lab.Tab("Supply chain", classes=["resim-tab-flows"]):
                SupplyChainPanel(ctl)
            with solara.lab.Tab("Event log", classes=["resim-tab-events"]):
                EventLog(ctl)


# ------------------------------------------------------------------------------- results
@solara.component
def ComparisonView(comparison: Comparison):
    """Tables and plots of one comparison, as ``resim compare`` writes them."""
    solara.Markdown(
        f"**Settings:** {', '.join(comparison.settings)}  \n"
        f"**Seeds shared by every setting** ({len(comparison.seeds)}): "
        f"{', '.join(map(str, comparison.seeds))}. Differences are taken seed by seed against "
        f"the first setting, with 95% intervals; fan charts show the median across seeds and "
        f"the 5-95% band."
    )
    for note in comparison.notes:
        solara.Warning(note, dense=True)
    diff = comparison.differences[
        [
            c
            for c in (
                "setting",
                "metric",
                "unit",
                "mean_reference",
                "mean_setting",
                "difference",
                "ci_low",
                "ci_high",
                "distinguishable",
            )
            if c in comparison.differences.columns
        ]
    ]
    with (
        solara.Div(classes=["resim-compare-plots"]),
        solara.GridFixed(columns=2, column_gap="8px", row_gap="8px"),
    ):
        for _, png in comparison.images:  # each plot carries its own title
            solara.Image(png, width="100%")
    with solara.Details("Differences from the reference (95% CI)", expand=True):
        solara.DataFrame(diff.round(4), items_per_page=12)
    with solara.Details("Means per setting", expand=False):
        solara.DataFrame(comparison.means.round(4), items_per_page=12)


@solara.component
def ResultsPage():
    """Pick results folders under results/ and see ``resim compare``'s plots and tables."""
    refresh = solara.use_reactive(0)
    root = results_root()
    folders = solara.use_memo(lambda: list_folders(root), [refresh.value, str(root)])
    by_label = {f.label: f for f in folders}
    chosen = solara.use_reactive([])
    request = solara.use_reactive(0)
    selection = solara.use_reactive([])

    def run_compare() -> Comparison | None:
        if request.value == 0 or not selection.value:
            return None
        return compare_folders([Path(p) for p in selection.value])

    task = solara.lab.use_task(run_compare, dependencies=[request.value], raise_error=False)

    def start() -> None:
        selection.set([str(by_label[label].path) for label in chosen.value if label in by_label])
        request.set(request.value + 1)

    with solara.Column(gap="8px"):
        solara.Markdown(
            f"Results folders in `{root}` (written by `resim run` or `resim sweep`). Pick two or "
            "more run folders, or one sweep folder (its points are compared)."
        )
        with solara.Row(gap="8px", style={"align-items": "center"}):
            solara.SelectMultiple(
                "Results folders",
                values=[c for c in chosen.value if c in by_label],
                all_values=list(by_label),
                on_value=chosen.set,
                classes=["resim-results-select"],
                style={"min-width": "520px"},
            )
            solara.Button(
                "Compare",
                icon_name="mdi-compare-horizontal",
                on_click=start,
                color="primary",
                disabled=not chosen.value,
                classes=["resim-compare"],
            )
            solara.Button(
                "Refresh list",
                icon_name="mdi-refresh",
                on_click=lambda: refresh.set(refresh.value + 1),
            )
        if not folders:
            solara.Info(
                f"No results folders in {root} yet: `resim run baseline --seeds 3` makes one."
            )
        if task.pending:
            solara.ProgressLinear(True)
            solara.Text("Comparing...")
        elif task.error:
            solara.Error(str(task.exception), classes=["resim-compare-error"])
        elif task.finished and task.value is not None:
            ComparisonView(task.value)


@solara.component
def SweepMonitor():
    """A sweep running in another process: progress, failures and seed means so far, live."""
    root = results_root()
    refresh = solara.use_reactive(0)
    folders = solara.use_memo(lambda: list_folders(root, kind="sweep"), [refresh.value, str(root)])
    names = [f.path.name for f in folders]
    chosen = solara.use_reactive(names[0] if names else None)
    live = solara.use_reactive(True)
    tick = solara.use_reactive(0)

    closed = solara.use_memo(threading.Event, [])
    solara.use_effect(lambda: closed.set, [])  # set when the page goes away

    def ticker() -> None:
        while live.value and not closed.wait(SWEEP_REFRESH_SECONDS):
            tick.set(tick.value + 1)

    solara.lab.use_task(ticker, dependencies=[live.value], raise_error=False)
    folder = root / chosen.value if chosen.value else None
    progress = solara.use_memo(
        lambda: sweep_progress(folder) if folder else None, [str(folder), tick.value]
    )
    with solara.Column(gap="8px", classes=["resim-sweep"]):
        with solara.Row(gap="8px", style={"align-items": "center"}):
            solara.Select(
                "Sweep folder",
                values=names,
                value=chosen.value if chosen.value in names else None,
                on_value=chosen.set,
                style={"min-width": "320px"},
            )
            solara.Switch(label="refresh every 2 s", value=live)
            solara.Button(
                "Refresh list",
                icon_name="mdi-refresh",
                on_click=lambda: refresh.set(refresh.value + 1),
            )
        if progress is None:
            solara.Info(f"No sweep folders in {root}. Start one with `resim sweep tariff_sweep`.")
            return
        if progress.problem:
            solara.Warning(progress.problem)
            return
        state = "finished" if progress.finished else "running or stopped"
        solara.ProgressLinear(value=100.0 * progress.fraction)
        solara.Text(
            f"{progress.done} done, {progress.failed} failed, {progress.pending} pending of "
            f"{progress.total} runs ({progress.points} points) · {state} · {progress.backend} · "
            f"manifest updated {progress.updated[:19].replace('T', ' ')}",
            classes=["resim-sweep-status"],
        )
        if not progress.failures.empty:
            with solara.Details(f"Failures ({len(progress.failures)})", expand=True):
                solara.DataFrame(progress.failures, items_per_page=10)
        if progress.aggregates.empty:
            solara.Text("No run finished yet.")
        else:
            solara.Markdown("**Seed means per point so far** (finished runs only)")
            solara.DataFrame(progress.aggregates.round(4), items_per_page=20)
