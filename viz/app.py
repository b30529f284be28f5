"""The live browser app: ``resim viz`` serves this page (``solara run viz/app.py``).

A plain Solara page rather than Mesa's ``SolaraViz``. SolaraViz renders every component from its
model each step and redraws its plots from a DataCollector frame; this page needs one model per
browser session, lever changes applied between months and logged, and charts that keep up with
more than ten simulated months per second. So each session builds its own ``RunSession``, the play
loop runs in a worker thread, and the charts are drawn by the browser (ECharts) from small options
built from the model's own arrays and sent straight to their widgets (``viz.live``).

Pages (tabs): the live run (controls, levers, charts, supply chain, event log, downloads), the
results page (``resim compare`` on folders under ``results/``) and the sweep monitor.
"""

from __future__ import annotations

import threading

import solara
import solara.lab

from viz.live import Controller
from viz.panels import LiveRun, ResultsPage, SweepMonitor
from viz.session import DEFAULT_SPEED, SPEEDS, RunSession

TITLE = "Rare-earth supply chain"
CSS = """
.resim-lever .v-label { font-size: 13px; }
.v-expansion-panel-content__wrap { padding: 0 8px 8px; }
.resim-status { font-size: 14px; }
"""


@solara.component
def Page():
    """The whole app for one browser session."""
    # Everything below is per session: hooks keep their state in this session's component tree.
    frame = solara.use_reactive(0)
    playing = solara.use_reactive(False)
    speed = solara.use_reactive(DEFAULT_SPEED)
    page = solara.use_reactive(0)
    ctl = solara.use_memo(lambda: Controller(RunSession(), frame, playing, speed), [])
    closed = solara.use_memo(threading.Event, [])
    solara.use_effect(lambda: closed.set, [])  # set when the session ends: the loop stops

    def play_loop() -> None:
        if not playing.value:
            return
        ctl.session.play(
            keep_going=lambda: playing.value and not closed.is_set(),
            speed=lambda: SPEEDS.get(speed.value, SPEEDS[DEFAULT_SPEED]),
            on_frame=lambda: ctl.refresh(force=False),
        )
        if closed.is_set():
            return
        playing.set(False)
        ctl.refresh()

    solara.lab.use_task(play_loop, dependencies=[playing.value], raise_error=False)

    solara.Title(TITLE)
    solara.Style(CSS)
    with solara.Column(style={"padding": "8px 12px"}, gap="4px"):
        solara.Text(TITLE, style={"font-size": "20px", "font-weight": "500"})
        with solara.lab.Tabs(value=page, lazy=True):
            with solara.lab.Tab("Live run", classes=["resim-page-live"]):
                LiveRun(ctl)
            with solara.lab.Tab("Results", classes=["resim-page-results"]):
                ResultsPage()
            with solara.lab.Tab("Sweep monitor", classes=["resim-page-sweep"]):
                SweepMonitor()
