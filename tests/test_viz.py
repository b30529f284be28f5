"""The browser app without a browser: levers, session, charts, flows, folders and each panel.

Panels are rendered headless with ``solara.render`` and driven through their widgets. The real
browser test is ``tests/test_viz_browser.py``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import ClassVar

import ipyvuetify as v
import ipywidgets
import numpy as np
import pandas as pd
import pytest
import solara
from solara.components.datatable import DataTableWidget

from sim.cli import main as resim
from sim.params import Scenario
from sim.runner import simulate
from sim.scenario import ScenarioError
from viz import charts
from viz.flows import DEPTH, flow_rows, sankey_option, supply_links
from viz.folders import RESULTS_ENV, compare_folders, list_folders, sweep_progress
from viz.levers import LEVER_BY_KEY, LEVERS, LeverValueError, check_levers, field_bounds
from viz.live import LIVE_CHARTS, Controller, LiveView, live_options
from viz.session import SPEEDS, RunSession, list_scenarios, parse_seed

pytestmark = [
    # solara and reacton warn about their own internals: deprecated APIs and components whose
    # source they cannot inspect. Filtered here, narrowly, not for the whole suite.
    pytest.mark.filterwarnings("ignore:Failed to validate hooks:UserWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning:solara"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning:reacton"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning:ipywidgets"),
]

TARIFF_NDPR = "policy.tariff.ndpr"


# ------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A results folder with two small run folders and a sweep half done, one run failed."""
    root = tmp_path_factory.mktemp("results")
    common = ["--seeds", "2", "--months", "12"]
    assert resim(["run", "baseline", *common, "--out", str(root / "base")]) == 0
    assert (
        resim(
            [
                "run",
                "baseline",
                *common,
                "--set",
                "policy.tariff.ndpr=1.0",
                "--out",
                str(root / "tariff"),
            ]
        )
        == 0
    )
    write_partial_sweep(root / "sweep_running")
    return root


def write_partial_sweep(folder: Path) -> None:
    """A sweep folder as another process leaves it mid-run: 2 done, 1 failed, 1 pending."""
    (folder / "runs").mkdir(parents=True)
    points = [
        {"index": 0, "overrides": {TARIFF_NDPR: 0.0}, "label": f"{TARIFF_NDPR}=0"},
        {"index": 1, "overrides": {TARIFF_NDPR: 1.0}, "label": f"{TARIFF_NDPR}=1"},
    ]
    runs = []
    for point in (0, 1):
        for seed in (1, 2):
            rid = f"p{point}s{seed}"
            status = "pending"
            if seed == 1:
                frame = simulate("baseline", seed=seed, months=12)
                frame["run_id"] = rid
                frame.to_parquet(folder / "runs" / f"{rid}.parquet")
                status = "done"
            elif point == 0:
                status = "failed"
            entry = {"run_id": rid, "point": point, "seed": seed, "status": status}
            if status == "failed":
                entry["error"] = "RuntimeError: injected"
            runs.append(entry)
    manifest = {
        "format_version": 1,
        "kind": "sweep",
        "scenario": "baseline",
        "points": points,
        "runs": runs,
        "seeds": [1, 2],
        "backend": "local x2",
        "started": "2025-01-01T00:00:00",
        "updated": "2025-01-01T00:00:05",
        "versions": {"resim": "0.1.0"},
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))


@pytest.fixture
def ctl() -> Controller:
    return Controller(
        RunSession(),
        solara.Reactive(0),
        solara.Reactive(False),
        solara.Reactive("12 months/s"),
    )


@pytest.fixture
def results_env(results: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(RESULTS_ENV, str(results))
    return results


def wait_until(condition, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError
        time.sleep(0.05)


def field(rc, key: str) -> v.TextField:  # type: ignore[no-untyped-def]
    return rc.find(v.TextField, class_=f"resim-field-{key.replace('.', '-')}").widget


def enter(widget: v.TextField, text: str) -> None:
    widget.v_model = text
    widget.fire_event("keyup.enter", None)


# -------------------------------------------------------------------------------- levers
def test_lever_bounds_come_from_the_schema() -> None:
    check_levers()
    tariff = field_bounds(TARIFF_NDPR)
    info = Scenario.model_fields["policy"].annotation.model_fields["tariff"].annotation  # type: ignore[union-attr]
    metadata = info.model_fields["ndpr"].metadata
    assert tariff.high == next(m.le for m in metadata if hasattr(m, "le"))
    floor = field_bounds("policy.price_floor.ndpr")
    assert floor.low == 0
    assert floor.low_exclusive
    for lever in LEVERS:
        if lever.kind in {"number", "optional"}:
            low, high = lever.slider_range()
            b = lever.bounds
            assert b.low is None or low >= b.low * lever.scale
            assert b.high is None or high <= b.high * lever.scale


def test_values_outside_the_allowed_range_are_refused() -> None:
    tariff = LEVER_BY_KEY[TARIFF_NDPR]
    assert tariff.parse("150") == pytest.approx(1.5)  # shown in percent
    assert tariff.parse("2,500%") == pytest.approx(25.0)
    for bad in ("-1", "10001", "abc", "nan", "inf", ""):
        with pytest.raises(LeverValueError, match="Tariff on NdPr"):
            tariff.parse(bad)
    floor = LEVER_BY_KEY["policy.price_floor.ndpr"]
    with pytest.raises(LeverValueError, match="above 0"):
        floor.parse("0")


def test_seeds_are_whole_numbers_in_range() -> None:
    assert parse_seed(" 42 ") == 42
    for bad in ("4.5", "-1", "seed", str(2**32)):
        with pytest.raises(ValueError, match="seed"):
            parse_seed(bad)


def test_scenario_list_leaves_sweep_files_out() -> None:
    names = list_scenarios()
    assert "baseline" in names
    assert "tariff_sweep" not in names
    assert "price_floor_vs_predation" not in names


# ------------------------------------------------------------------------------- session
def test_lever_change_applies_from_the_next_month_and_is_logged() -> None:
    session = RunSession()
    session.step(3)
    session.request_lever(TARIFF_NDPR, 1.0)
    assert session.model.current.policy.tariff.ndpr == 0.0  # waits for the next month
    assert session.lever_value(TARIFF_NDPR) == 1.0
    session.step(1)
    assert session.model.current.policy.tariff.ndpr == 1.0
    policy = [e for e in session.model.events if e["kind"] == "policy"]
    assert policy[-1]["month"] == 3
    assert policy[-1]["detail"] == "policy.tariff.ndpr = 1.0 (browser)"
    assert session.lever_marks()[-1] == (3, "policy.tariff.ndpr = 1.0 (browser)")


def test_invalid_lever_values_are_refused_and_nothing_changes() -> None:
    session = RunSession()
    with pytest.raises(ScenarioError, match="tariff"):
        session.request_lever(TARIFF_NDPR, -0.5)
    with pytest.raises(ScenarioError):
        session.request_lever("policy.price_floor.ndpr", 0.0)
    assert session.pending == {}


def test_a_model_error_is_caught_and_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    session = RunSession()
    session.step(2)

    def broken() -> None:
        msg = "market did not clear"
        raise RuntimeError(msg)

    monkeypatch.setattr(session.model, "step", broken)
    assert session.step(5) == 0
    assert session.error is not None
    assert "month 2" in session.error
    assert "market did not clear" in session.error
    session.reset()
    assert session.error is None
    assert session.month == 0


def test_play_keeps_the_speed_and_stops_on_request() -> None:
    session = RunSession()
    frames: list[int] = []
    session.play(lambda: session.month < 6, lambda: SPEEDS["24 months/s"], lambda: frames.append(1))
    assert 6 <= session.month <= 8
    assert frames
    session.reset()
    session.play(lambda: True, lambda: float("inf"), lambda: None)
    assert session.done
    assert session.rate >= 10.0  # the model alone is far faster; charts are the browser's work


def test_setup_lever_applies_at_reset() -> None:
    session = RunSession()
    session.request_lever("bank.programme_size_busd", 500.0)
    assert session.model.params.bank.programme_size_busd == 1500.0
    assert session.lever_value("bank.programme_size_busd") == 500.0
    session.reset()
    assert session.model.params.bank.programme_size_busd == 500.0


def test_sessions_are_independent() -> None:
    sessions = [RunSession(seed=s) for s in range(1, 6)]
    sessions[0].request_lever(TARIFF_NDPR, 2.0)
    for i, session in enumerate(sessions):
        session.step(i + 1)
    assert [s.month for s in sessions] == [1, 2, 3, 4, 5]
    assert sessions[0].model.current.policy.tariff.ndpr == 2.0
    assert all(s.model.current.policy.tariff.ndpr == 0.0 for s in sessions[1:])
    assert len({id(s.model) for s in sessions}) == 5


def test_downloads_hold_the_months_run() -> None:
    session = RunSession()
    session.step(4)
    frame = session.timeseries()
    assert list(frame["month"]) == [0, 1, 2, 3]
    assert "price_landed_ndpr" in frame.columns
    assert list(session.events().columns) == ["run_id", "month", "date", "agent", "kind", "detail"]


# -------------------------------------------------------------------------------- charts
def test_every_chart_marks_a_lever_change() -> None:
    session = RunSession()
    session.step(5)
    session.request_lever(TARIFF_NDPR, 1.0)
    session.step(5)
    options = live_options(session)
    assert len(options) == LIVE_CHARTS
    for option in options:
        marks = option["series"][0]["markLine"]["data"]
        assert any(m["name"].endswith("(browser)") and m["xAxis"] == "2025-06" for m in marks)
        assert len(option["xAxis"]["data"]) == session.months
        json.dumps(option)  # plain JSON for the browser


def test_chart_values_are_json_numbers_with_gaps() -> None:
    assert charts.values(np.array([1.23456, np.nan, np.inf, 1234.56])) == [
        1.2346,
        None,
        None,
        1234.6,
    ]


def test_price_chart_shades_the_tariff_wedge() -> None:
    session = RunSession()
    session.request_lever(TARIFF_NDPR, 1.0)
    session.step(3)
    option = charts.price_chart(session.records(), session.dates, [], "ndpr", 3.0)
    series = {s["name"]: s for s in option["series"]}
    landed = np.array(series["landed (importers)"]["data"])
    base = np.array(series["FOB + freight"]["data"])
    wedge = np.array(series["tariff wedge"]["data"])
    np.testing.assert_allclose(base + wedge, landed, rtol=1e-3)
    assert (wedge > 0).all()


# --------------------------------------------------------------------------------- flows
def test_supply_chain_follows_the_ledger_and_has_no_cycle() -> None:
    session = RunSession()
    session.step(2)
    links = supply_links(session.flows)
    assert links
    assert all(link["value"] > 0 for link in links)
    assert all(DEPTH[link["source"]] < DEPTH[link["target"]] for link in links)  # a DAG
    flows = session.flows
    mined = sum(t for (label, _), t in flows.items() if label == "production_foreign")
    first = next(link for link in links if link["source"] == "Foreign mines")
    assert first["value"] == pytest.approx(mined)
    option = sankey_option(flows, "t")
    assert option["series"][0]["type"] == "sankey"
    assert {r["flow"] for r in flow_rows(flows)} == {label for label, _ in flows}


# ------------------------------------------------------------------------------- folders
def test_results_folders_are_listed_and_compared(results: Path) -> None:
    folders = {f.path.name: f for f in list_folders(results)}
    assert set(folders) == {"base", "tariff", "sweep_running"}
    assert folders["base"].kind == "run"
    assert list_folders(results, kind="sweep")[0].path.name == "sweep_running"
    comparison = compare_folders([results / "base", results / "tariff"])
    assert comparison.settings == ["base", "tariff"]
    assert comparison.seeds == [1, 2]
    assert len(comparison.images) >= 2
    assert all(png.startswith(b"\x89PNG") for _, png in comparison.images)
    assert not comparison.differences.empty


def test_sweep_progress_of_a_running_sweep(results: Path) -> None:
    progress = sweep_progress(results / "sweep_running")
    assert (progress.done, progress.failed, progress.pending, progress.total) == (2, 1, 1, 4)
    assert not progress.finished
    assert progress.failures["error"].tolist() == ["RuntimeError: injected"]
    assert list(progress.aggregates["point"]) == [0, 1]
    assert list(progress.aggregates["seeds done"]) == [1, 1]
    assert progress.fraction == pytest.approx(0.75)


def test_sweep_progress_of_a_folder_without_manifest(tmp_path: Path) -> None:
    assert sweep_progress(tmp_path).problem is not None


# ------------------------------------------------------------------ panels (solara.render)
def test_page_renders_with_its_own_session() -> None:
    from viz.app import Page

    _box, rc = solara.render(Page(), handle_error=False)
    rc.find(v.Btn, class_="resim-play").assert_single()
    assert rc.find(v.Html, class_="resim-month").widget.children == ["0"]
    rc.close()


def test_five_pages_have_five_models() -> None:
    from viz.app import Page

    renders = [solara.render(Page(), handle_error=False) for _ in range(5)]
    try:
        months = [rc.find(v.Html, class_="resim-month").widget for _, rc in renders]
        assert len({id(m) for m in months}) == 5
        renders[0][1].find(v.Btn, class_="resim-step").widget.click()
        renders[3][1].find(v.Btn, class_="resim-step").widget.click()
        renders[3][1].find(v.Btn, class_="resim-step").widget.click()
        assert [m.children[0] for m in months] == ["1", "0", "0", "2", "0"]
    finally:
        for _, rc in renders:
            rc.close()


def test_playback_panel_steps_and_plays(ctl: Controller) -> None:
    from viz.panels import PlaybackPanel

    _box, rc = solara.render(PlaybackPanel(ctl), handle_error=False)
    rc.find(v.Btn, class_="resim-step").widget.click()
    assert ctl.session.month == 1
    assert ctl.view.month.children == ["1"]
    assert "Month 1 of 132" in ctl.view.status.children[0]
    rc.find(v.Btn, class_="resim-play").widget.click()
    assert ctl.playing.value
    rc.find(v.Btn, class_="resim-pause").assert_single()
    rc.find(v.Btn, class_="resim-pause").widget.click()
    assert not ctl.playing.value
    rc.find(v.Btn, class_="resim-reset").widget.click()
    assert ctl.session.month == 0
    rc.close()


def test_setup_panel_refuses_a_bad_seed_and_takes_a_good_one(ctl: Controller) -> None:
    from viz.panels import SetupPanel

    _box, rc = solara.render(SetupPanel(ctl), handle_error=False)
    seed = rc.find(v.TextField, class_="resim-seed").widget
    enter(seed, "1.5")
    assert seed.error_messages
    assert "whole number" in seed.error_messages[0]
    assert ctl.session.seed == 1
    enter(seed, "7")
    assert ctl.session.seed == 7
    rc.find(v.Select, label="Scenario").widget.v_model = "history_2010_quota"
    assert ctl.session.scenario_name == "history_2010_quota"
    assert ctl.session.model.start == "2009-01"
    rc.close()


def test_levers_panel_queues_a_change_and_refuses_out_of_range(ctl: Controller) -> None:
    from viz.panels import LeversPanel

    _box, rc = solara.render(LeversPanel(ctl), handle_error=False)
    enter(field(rc, TARIFF_NDPR), "100")
    assert ctl.session.pending == {TARIFF_NDPR: 1.0}
    rc.find(v.Alert, class_="resim-pending").assert_single()
    assert field(rc, TARIFF_NDPR).v_model == "100"
    enter(field(rc, TARIFF_NDPR), "-20")
    assert "out of range" in field(rc, TARIFF_NDPR).error_messages[0]
    assert ctl.session.pending == {TARIFF_NDPR: 1.0}
    ctl.session.step(1)
    ctl.refresh()
    assert ctl.session.model.current.policy.tariff.ndpr == 1.0
    rc.close()


def test_levers_panel_switches_and_optional_levers(ctl: Controller) -> None:
    from viz.panels import LeversPanel

    _box, rc = solara.render(LeversPanel(ctl), handle_error=False)
    support = rc.find(v.ExpansionPanels, class_="resim-group-domestic-support").widget
    support.v_model = 0  # open the group
    rc.find(v.Switch, class_="resim-switch-policy-bank_initiative").widget.v_model = True
    rc.find(v.Switch, class_="resim-switch-policy-price_floor-ndpr").widget.v_model = True
    assert ctl.session.pending == {"policy.bank_initiative": True, "policy.price_floor.ndpr": 110.0}
    enter(field(rc, "policy.price_floor.ndpr"), "0")
    assert "above 0" in field(rc, "policy.price_floor.ndpr").error_messages[0]
    enter(field(rc, "bank.programme_size_busd"), "300")
    assert ctl.session.model.params.bank.programme_size_busd == 300.0  # rebuilt: month 0
    assert ctl.session.pending == {"policy.bank_initiative": True, "policy.price_floor.ndpr": 110.0}
    rc.close()


def test_model_error_shows_on_the_page(ctl: Controller, monkeypatch: pytest.MonkeyPatch) -> None:
    from viz.panels import LiveRun

    _box, rc = solara.render(LiveRun(ctl), handle_error=False)

    def broken() -> None:
        msg = "no buyers"
        raise ValueError(msg)

    monkeypatch.setattr(ctl.session.model, "step", broken)
    rc.find(v.Btn, class_="resim-step").widget.click()
    error = rc.find(v.Alert, class_="resim-model-error")
    error.assert_single()
    assert "no buyers" in str(error.widget.children)
    rc.find(v.Btn, class_="resim-reset").widget.click()
    rc.find(v.Alert, class_="resim-model-error").assert_empty()
    rc.close()


def test_live_charts_receive_options(ctl: Controller) -> None:
    from viz.panels import LiveCharts

    _box, rc = solara.render(LiveCharts(ctl), handle_error=False)
    ctl.session.step(3)
    ctl.refresh()
    assert len(ctl.view.charts) == LIVE_CHARTS
    for chart in ctl.view.charts[:-1]:  # the last (miners' equity) spans the horizon
        assert len(chart.option["series"][0]["data"]) == 3
    rc.close()


def test_live_view_sends_charts_only_when_the_run_moved() -> None:
    session = RunSession()
    view = LiveView()
    view.update(session)
    first = view.charts[0].option
    view.update(session)
    assert view.charts[0].option is first
    session.step(1)
    view.update(session)
    assert view.charts[0].option is not first


def test_supply_chain_panel(ctl: Controller) -> None:
    from viz.panels import SupplyChainPanel

    _box, rc = solara.render(SupplyChainPanel(ctl), handle_error=False)
    ctl.session.step(1)
    ctl.refresh()
    assert ctl.view.sankey.option["series"][0]["type"] == "sankey"
    assert "2025-01" in ctl.view.sankey.option["title"]["text"]
    rc.close()


def test_event_log_filters_by_kind_and_text(ctl: Controller) -> None:
    from viz.panels import EventLog

    ctl.session.request_lever(TARIFF_NDPR, 1.0)
    ctl.session.step(12)
    _box, rc = solara.render(EventLog(ctl), handle_error=False)
    frame = rc.find(DataTableWidget).widget
    kinds = set(pd.DataFrame(frame.items)["kind"])
    assert "policy" in kinds
    assert "miner_state" in kinds
    rc.find(v.Select, class_="resim-event-kinds").widget.v_model = ["policy"]
    items = pd.DataFrame(rc.find(DataTableWidget).widget.items)
    assert set(items["kind"]) == {"policy"}
    assert "policy.tariff.ndpr = 1.0 (browser)" in set(items["detail"])
    rc.find(v.TextField, class_="resim-event-search").widget.v_model = "no such text"
    rc.find(v.Html, children=["No events match."]).assert_single()
    rc.close()


def test_download_panel_makes_parquet_and_csv(ctl: Controller) -> None:
    from viz.panels import DownloadPanel

    ctl.session.step(2)
    _box, rc = solara.render(DownloadPanel(ctl), handle_error=False)
    downloads = rc.find(solara.components.file_download.FileDownloadWidget)
    assert len(downloads) == 3
    rc.close()


def test_results_page_compares_two_folders(results_env: Path) -> None:
    from viz.panels import ResultsPage

    _box, rc = solara.render(ResultsPage(), handle_error=False)
    select = rc.find(v.Select, class_="resim-results-select").widget
    labels = [item for item in select.items if item.startswith(("base", "tariff"))]
    select.v_model = labels
    rc.find(v.Btn, class_="resim-compare").widget.click()
    wait_until(lambda: len(rc.find(ipywidgets.Image)) >= 2)
    rc.find(DataTableWidget).assert_not_empty()
    rc.close()


def test_results_page_reports_a_comparison_it_cannot_make(results_env: Path) -> None:
    from viz.panels import ResultsPage

    _box, rc = solara.render(ResultsPage(), handle_error=False)
    select = rc.find(v.Select, class_="resim-results-select").widget
    select.v_model = [item for item in select.items if item.startswith("base")]
    rc.find(v.Btn, class_="resim-compare").widget.click()
    wait_until(lambda: len(rc.find(v.Alert, class_="resim-compare-error")) == 1)
    assert "only one setting" in str(rc.find(v.Alert, class_="resim-compare-error").widget.children)
    rc.close()


def test_sweep_monitor_shows_progress_and_failures(results_env: Path) -> None:
    from viz.panels import SweepMonitor

    _box, rc = solara.render(SweepMonitor(), handle_error=False)
    status = rc.find(v.Html, class_="resim-sweep-status").widget
    assert status.children[0].startswith("2 done, 1 failed, 1 pending of 4 runs")
    tables = rc.find(DataTableWidget)
    assert len(tables) == 2  # failures and seed means so far
    rc.close()


# -------------------------------------------------------------------------------- server
class FakeServer:
    """Stands in for the solara-server process."""

    commands: ClassVar[list[list[str]]] = []

    def __init__(self, command: list[str], env: dict[str, str]) -> None:
        FakeServer.commands.append(command)
        self.env = env

    def wait(self, timeout: float | None = None) -> int:
        return 0


def test_serve_binds_loopback_by_default(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from viz import server

    monkeypatch.setattr(server.subprocess, "Popen", FakeServer)
    FakeServer.commands.clear()
    assert server.serve(8765) == 0
    command = FakeServer.commands[-1]
    assert command[command.index("--host") + 1] == "127.0.0.1"
    assert command[command.index("--port") + 1] == "8765"
    assert "--production" in command
    assert "warning: serving on" not in capsys.readouterr().err


def test_serve_warns_when_asked_to_bind_elsewhere(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from viz import server

    monkeypatch.setattr(server.subprocess, "Popen", FakeServer)
    assert server.serve(8765, "0.0.0.0") == 0
    assert "warning: serving on 0.0.0.0" in capsys.readouterr().err
    assert server.serve(70000) == 2
    assert server.is_loopback("localhost")
    assert server.is_loopback("::1")
    assert not server.is_loopback("192.0.2.1")
