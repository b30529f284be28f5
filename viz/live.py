"""The parts of the live page that change every frame, fed directly rather than re-rendered.

Solara's renderer (reacton) reconciles the whole component tree on every render pass and sets
every widget's properties again: for this page, tens of milliseconds a pass, and about 0.4 s when
the chart options were element arguments it had to walk number by number. So the play loop does
not re-render the page each frame. It sends the new chart options, the supply-chain diagram and
the status line straight to their widgets (``LiveView.update``), and asks for a full render only
when something else on the page can have changed: a lever (a scheduled or government change, a
pending change applied), the end of the run, an error, or at most twice a second for the event
log (``LiveView.render_due``).
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import ipyvuetify as v
import solara.components.echarts
import traitlets

from viz import charts
from viz.flows import sankey_option
from viz.session import STAGES, RunSession

CHART_HEIGHT = "300px"
SANKEY_HEIGHT = "460px"
RENDER_SECONDS = 0.5  # the rest of the page (event log, levers) at most twice a second
DRAW_TIMEOUT = 2.0  # a chart that has not reported drawing for this long is sent updates anyway


def live_options(session: RunSession) -> list[dict[str, Any]]:
    """Every live time chart's option, from the model's arrays and the session's."""
    model = session.model
    records = session.records()
    month = records.shape[0]
    dates = session.dates
    marks = session.lever_marks()
    return [
        *charts.product_prices(records, dates, marks, model.freight),
        charts.exports_chart(records, dates, marks),
        charts.capacity_chart(
            records, dates, marks, session.stage_capacity[:month], [name for name, _ in STAGES]
        ),
        charts.stocks_chart(records, dates, marks),
        charts.shortage_chart(records, dates, marks),
        charts.bank_chart(records, dates, marks),
        charts.government_chart(records, dates, marks),
        charts.equity_chart(records, dates, marks, session.equity, session.miner_names),
    ]


LIVE_CHARTS = 11


def _asset_versions() -> dict[str, str]:
    """The ECharts and RequireJS versions solara's own chart loads (and the CDN cache holds)."""
    source = Path(solara.components.echarts.__file__).with_name("echarts.vue").read_text()
    echarts = re.search(r'const version = "([^"]+)"', source)
    requirejs = re.search(r"requirejs@([0-9][^/]*)/", source)
    return {
        "__ECHARTS_VERSION__": echarts.group(1) if echarts else "5.4.0",
        "__REQUIREJS_VERSION__": requirejs.group(1) if requirejs else "2.3.6",
    }


def _template() -> str:
    text = Path(__file__).with_name("live_chart.vue").read_text()
    for placeholder, version in _asset_versions().items():
        text = text.replace(placeholder, version)
    return text


class LiveChart(v.VuetifyTemplate):  # type: ignore[misc]
    """An ECharts figure updated in place many times a second (see ``live_chart.vue``).

    ``seq`` numbers the updates sent; the browser reports the last one it has drawn
    (``drawn_seq``), so the sender can wait for it instead of queueing frames.
    """

    template = traitlets.Unicode(_template()).tag(sync=True)
    option = traitlets.Any({}).tag(sync=True)
    seq = traitlets.Int(0).tag(sync=True)
    attributes = traitlets.Dict(default_value=None, allow_none=True).tag(sync=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.drawn_seq = 0
        self.sent_at = 0.0
        self.views = 0  # views on the page now (a chart in a hidden tab has none)

    def show(self, option: dict[str, Any]) -> None:
        """Send a new option (numbered) to the browser."""
        with self.hold_sync():
            self.seq += 1
            self.option = option
        self.sent_at = time.monotonic()

    def ready(self) -> bool:
        """Not on the page, or the browser has drawn the last update (or not answered for long)."""
        return (
            self.views <= 0
            or self.drawn_seq >= self.seq
            or time.monotonic() - self.sent_at > DRAW_TIMEOUT
        )

    def vue_shown(self, shown: Any) -> None:
        """Called from the browser when a view of the chart is put on or taken off the page."""
        self.views = max(self.views + (1 if shown else -1), 0)

    def vue_drawn(self, seq: Any) -> None:
        """Called from the browser once update ``seq`` is drawn."""
        try:
            self.drawn_seq = max(self.drawn_seq, int(seq))
        except (TypeError, ValueError):
            return


def _chart_widget(height: str) -> LiveChart:
    return LiveChart(
        option={}, attributes={"style": f"height: {height}; width: 100%; min-width: 0;"}
    )


class LiveView:
    """One session's live widgets: the time charts, the sankey and the status line.

    Attributes:
        charts: ECharts widgets of the time charts, in ``live_options`` order.
        sankey: ECharts widget of the supply-chain diagram.
        status: the status line (month, date, months per second).
        month, rate, frames: hidden copies of the month, the rate and the number of chart
            updates sent, for the browser test.
        progress: progress bar of the run.
    """

    def __init__(self) -> None:
        self.charts = [_chart_widget(CHART_HEIGHT) for _ in range(LIVE_CHARTS)]
        self.sankey = _chart_widget(SANKEY_HEIGHT)
        self.status = v.Html(tag="div", class_="resim-status", children=[""])
        self.month = v.Html(
            tag="span", class_="resim-month", style_="display: none", children=["0"]
        )
        self.rate = v.Html(tag="span", class_="resim-rate", style_="display: none", children=["0"])
        self.frames = v.Html(
            tag="span", class_="resim-frames", style_="display: none", children=["0"]
        )
        self.frames_sent = 0
        self.progress = v.ProgressLinear(value=0.0, height=6)
        self.error: str | None = None
        self._drawn: tuple[Any, ...] | None = None
        self._rendered_at = 0.0
        self._rendered_state: tuple[Any, ...] | None = None

    def update(self, session: RunSession, *, force: bool = True) -> None:
        """Send the status and, when the run moved on, the charts and diagram to the browser.

        While playing (``force`` false) chart updates wait until the browser has drawn the last
        ones; the status line is always sent.
        """
        month = session.month
        self.status.children = [
            f"Month {month} of {session.months}"
            + (" · finished" if session.done else f" · next {session.date()}")
            + (f" · {session.rate:.1f} months/s" if session.rate else "")
        ]
        self.month.children = [str(month)]
        self.rate.children = [f"{session.rate:.3f}"]
        self.progress.value = 100.0 * month / max(session.months, 1)
        drawn = (session.generation, month, len(session.model.events))
        if drawn == self._drawn:
            return
        if not force and not all(chart.ready() for chart in (*self.charts, self.sankey)):
            return  # the browser is still drawing the last update: skip this one
        try:
            options = live_options(session)
            sankey = (
                sankey_option(
                    session.flows, f"Supply chain in {session.dates[month - 1]}, t per month"
                )
                if month
                else {"title": {"text": "Step or play the run to see a month's flows."}}
            )
        except Exception as exc:  # a drawing bug must not take the page down
            self.error = f"Charts could not be drawn: {type(exc).__name__}: {exc}"
            return
        self.error = None
        self._drawn = drawn
        for widget, option in zip(self.charts, options, strict=True):
            widget.show(option)
        self.sankey.show(sankey)
        self.frames_sent += 1
        self.frames.children = [str(self.frames_sent)]

    def render_due(self, session: RunSession) -> bool:
        """Whether the rest of the page should be rendered again now."""
        state = session.page_state()
        now = time.monotonic()
        if state != self._rendered_state or now - self._rendered_at >= RENDER_SECONDS:
            self._rendered_state = state
            self._rendered_at = now
            return True
        return False


class Controller:
    """What the panels of one session share: the run, its live widgets and the page's state.

    Made once per browser session (``solara.use_memo`` in ``viz.app.Page``) around that session's
    reactive values, so panels get one stable argument and sessions share nothing.
    """

    def __init__(
        self,
        session: RunSession,
        frame: Any,
        playing: Any,
        speed: Any,
        view: LiveView | None = None,
    ) -> None:
        self.session = session
        self.view = view or LiveView()
        self.frame = frame
        self.playing = playing
        self.speed = speed
        self.view.update(session)

    def refresh(self, *, force: bool = True) -> None:
        """Send the live widgets' new state; render the rest of the page if due (or forced)."""
        self.view.update(self.session, force=force)
        if force or self.view.render_due(self.session):
            self.frame.set(self.frame.value + 1)

    def stop(self) -> None:
        """Stop playing (the play loop ends after its current month)."""
        if self.playing.value:
            self.playing.set(False)
