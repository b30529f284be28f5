"""One browser session's run: the model, its set-up, pending lever changes and a few arrays.

Every browser session builds its own ``RunSession`` (``solara.use_memo`` in ``viz.app``), so
sessions never share a model. The play loop runs in a worker thread while the page renders and
handles clicks in others: the model is touched only under ``lock``, lever changes wait in
``pending`` and are applied at the start of the next month, and what the page draws is either
the model's own arrays up to a finished month or copies made after a step.

Charts read ``model.records[:month]`` directly; the few series the model does not record
(capacity by project stage, each listed miner's equity value) are kept here in preallocated
arrays filled after each month, so no DataFrame is rebuilt per frame.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from sim.agents.miner import State
from sim.model import RareEarthModel, add_months
from sim.results import events_frame
from sim.runner import model_frame, run_id
from sim.scenario import SCENARIO_DIR, ScenarioError, load_scenario, read_toml, set_dotted, validate
from viz.levers import LEVER_BY_KEY, read_value

DEFAULT_SCENARIO = "baseline"
DEFAULT_SEED = 1
SEED_MAX = 2**32 - 1
LEVER_SOURCE = "browser"
# Capacity stages drawn as a stacked area, in the order a project passes them.
STAGES: tuple[tuple[str, State], ...] = (
    ("financing", State.FINANCING),
    ("construction", State.CONSTRUCTION),
    ("ramp-up", State.RAMP_UP),
    ("operating", State.OPERATING),
    ("idle", State.IDLE),
)
SPEEDS: dict[str, float] = {
    "1 month/s": 1.0,
    "3 months/s": 3.0,
    "6 months/s": 6.0,
    "12 months/s": 12.0,
    "24 months/s": 24.0,
    "as fast as possible": float("inf"),
}
DEFAULT_SPEED = "12 months/s"
MAX_SPEED_DUTY = 0.7  # share of a frame spent stepping at unlimited speed
FRAME_SECONDS = 0.25  # at most four chart updates a second: the browser draws eleven charts


def list_scenarios(folder: Path = SCENARIO_DIR) -> list[str]:
    """Scenario stems in ``scenarios/`` (sweep files left out)."""
    names = []
    for path in sorted(folder.glob("*.toml")):
        try:
            if "sweep" in read_toml(path):
                continue
        except ScenarioError:
            continue
        names.append(path.stem)
    return names


def parse_seed(text: str | int) -> int:
    """A seed from a text field: a whole number from 0 to 2**32 - 1; raises ``ValueError``."""
    try:
        seed = int(str(text).strip())
    except ValueError:
        msg = f"seed {text!r}: must be a whole number from 0 to {SEED_MAX}"
        raise ValueError(msg) from None
    if not 0 <= seed <= SEED_MAX:
        msg = f"seed {seed}: must be from 0 to {SEED_MAX}"
        raise ValueError(msg)
    return seed


class RunSession:
    """A model and what the page needs around it; safe to drive from the play thread.

    Attributes:
        scenario_name: stem of the scenario in ``scenarios/``.
        seed: the run's seed.
        setup: set-up overrides (dotted key -> value) applied when the model is built.
        model: the running ``RareEarthModel``.
        pending: lever changes waiting for the next month (dotted key -> value).
        error: the last model error, shown on the page; None when all is well.
        flows: the ledger's tonne flows of the last finished month, (flow, good) -> t.
        rate: simulated months per second over the current or last play.
    """

    def __init__(
        self,
        scenario_name: str = DEFAULT_SCENARIO,
        seed: int = DEFAULT_SEED,
        setup: dict[str, Any] | None = None,
    ) -> None:
        self.lock = threading.RLock()
        self.scenario_name = scenario_name
        self.seed = seed
        self.setup: dict[str, Any] = dict(setup or {})
        self.model_setup: dict[str, Any] = dict(self.setup)  # what the current model was built with
        self.pending: dict[str, Any] = {}
        self.error: str | None = None
        self.rate = 0.0
        self.generation = 0  # bumped by reset: a play loop of an older run stops
        self.model = self._build(scenario_name, seed, self.setup)
        self._prepare()

    # ----------------------------------------------------------------------------- building
    @staticmethod
    def _build(name: str, seed: int, setup: dict[str, Any]) -> RareEarthModel:
        scenario = load_scenario(name, setup)
        return RareEarthModel(scenario, seed=seed, run_id=run_id(scenario, seed))

    def _prepare(self) -> None:
        model = self.model
        months = model.months
        fleet = model.miners
        self.flows: dict[tuple[str, str], float] = {}
        self.stage_capacity = np.full((months, len(STAGES)), np.nan)
        self.listed = np.nonzero(fleet.listed)[0]
        self.miner_names = [fleet.names[i] for i in self.listed]
        self.equity = np.full((months, len(self.listed)), np.nan)
        self.dates = [add_months(model.start, i) for i in range(months)]
        self.version = 0

    def reset(
        self,
        scenario_name: str | None = None,
        seed: int | None = None,
        setup: dict[str, Any] | None = None,
        *,
        keep_pending: bool = False,
    ) -> None:
        """Build a new model; on a bad scenario keep the old one and raise ``ScenarioError``.

        Args:
            scenario_name: scenario stem (default: the current one).
            seed: seed (default: the current one).
            setup: set-up overrides (default: the current ones, including changes made since).
            keep_pending: carry queued lever changes over to the new run (those still valid).
        """
        name = scenario_name or self.scenario_name
        seed = self.seed if seed is None else seed
        setup = dict(self.setup if setup is None else setup)
        model = self._build(name, seed, setup)
        with self.lock:
            pending = dict(self.pending) if keep_pending else {}
            self.model = model
            self.scenario_name, self.seed, self.setup = name, seed, setup
            self.model_setup = dict(setup)
            self.pending = {}
            for key, value in pending.items():
                try:
                    self.request_lever(key, value)
                except ScenarioError:
                    continue
            self.error = None
            self.rate = 0.0
            self.generation += 1
            self._prepare()

    # ------------------------------------------------------------------------------ reading
    @property
    def month(self) -> int:
        """Months finished so far."""
        return self.model.month

    @property
    def months(self) -> int:
        """Months in the run."""
        return self.model.months

    @property
    def done(self) -> bool:
        """The run reached its last month."""
        return self.model.month >= self.model.months

    def date(self) -> str:
        """The month the run will simulate next (``YYYY-MM``), or the last one when done."""
        return self.dates[min(self.month, self.months - 1)]

    def lever_value(self, key: str) -> Any:
        """A lever's value: the pending one if any, else the one in force (or set up)."""
        if key in self.pending:
            return self.pending[key]
        lever = LEVER_BY_KEY.get(key)
        if lever is not None and not lever.live:
            return self.setup[key] if key in self.setup else read_value(self.model.params, key)
        return read_value(self.model.current, key)

    def page_state(self) -> tuple[Any, ...]:
        """What the rest of the page shows besides the live widgets: run, levers, error, end."""
        return (
            self.generation,
            sum(e["kind"] == "policy" for e in list(self.model.events)),
            tuple(self.pending.items()),
            tuple(sorted(self.setup.items())),
            self.error,
            self.done,
        )

    def lever_marks(self) -> list[tuple[int, str]]:
        """Months of policy changes so far, with their text (for the marks on the charts)."""
        return [(e["month"], e["detail"]) for e in list(self.model.events) if e["kind"] == "policy"]

    # ------------------------------------------------------------------------------ changing
    def request_lever(self, key: str, value: Any) -> None:
        """Queue a lever change for the next month; validated now (raises ``ScenarioError``).

        A set-up lever (not live) is stored for the next Reset instead.
        """
        lever = LEVER_BY_KEY.get(key)
        with self.lock:
            if lever is not None and not lever.live:
                data = self.model.params.model_dump()
                set_dotted(data, key, value, f"lever {key}")
                validate(data, f"lever {key}")
                self.setup[key] = value
                return
            if self.done:
                origin = f"lever {key}"
                raise ScenarioError(origin, key, "the run has finished; press Reset to start anew")
            data = self.model.current.model_dump()
            data["schedule"] = []
            for pending_key, pending_value in self.pending.items():
                set_dotted(data, pending_key, pending_value, f"lever {pending_key}")
            set_dotted(data, key, value, f"lever {key}")
            validate(data, f"lever {key}")
            if value == read_value(self.model.current, key):
                self.pending.pop(key, None)
            else:
                self.pending[key] = value

    def step(self, months: int = 1) -> int:
        """Apply pending levers and run up to ``months`` months; return how many ran.

        A model error is caught, stored in ``error`` (shown on the page) and ends the stepping.
        """
        ran = 0
        for _ in range(months):
            with self.lock:
                if self.done or self.error:
                    break
                model = self.model
                try:
                    for key, value in self.pending.items():
                        model.set_lever(key, value, LEVER_SOURCE)
                    self.pending = {}
                    model.step()
                except Exception as exc:
                    self.error = (
                        f"The model stopped in month {model.month} ({self.date()}): "
                        f"{type(exc).__name__}: {exc}"
                    )
                    traceback.print_exc()
                    break
                self._after_step()
                ran += 1
        return ran

    def _after_step(self) -> None:
        model = self.model
        i = model.month - 1
        fleet = model.miners
        for s, (_, state) in enumerate(STAGES):
            self.stage_capacity[i, s] = float(fleet.sep_cap[fleet.state == int(state)].sum())
        self.equity[i] = fleet.equity_value[self.listed]
        self.flows = dict(model.ledger.tonne_flows)
        self.version += 1

    def play(
        self,
        keep_going: Callable[[], bool],
        speed: Callable[[], float],
        on_frame: Callable[[], None],
        frame_seconds: float = FRAME_SECONDS,
    ) -> int:
        """Run months at ``speed()`` months per second until ``keep_going()`` is false or the end.

        Calls ``on_frame`` (which updates the page) at most once per ``frame_seconds``; at
        unlimited speed it steps for most of a frame, then updates. A reset (a new run) stops the
        loop. ``rate`` holds the simulated months per second achieved, page updates included.
        Returns the months run.
        """
        generation = self.generation
        started = last = time.perf_counter()
        ran = 0
        owed = 0.0

        def going() -> bool:
            return (
                keep_going() and generation == self.generation and not self.done and not self.error
            )

        while going():
            months_per_second = speed()
            frame_start = time.perf_counter()
            if np.isfinite(months_per_second):
                owed += months_per_second * (frame_start - last)
                due = int(owed)
                owed -= due
                for _ in range(due):
                    if not going() or self.step(1) == 0:
                        break
                    ran += 1
            else:
                # Leave part of each frame idle, so clicks and the page's messages get through.
                deadline = frame_start + MAX_SPEED_DUTY * frame_seconds
                while time.perf_counter() < deadline and going():
                    if self.step(1) == 0:
                        break
                    ran += 1
            last = frame_start
            if generation != self.generation:
                break
            elapsed = time.perf_counter() - started
            self.rate = ran / elapsed if elapsed > 0 else 0.0
            on_frame()
            if np.isfinite(months_per_second):
                # Sleep until the next month falls due, but update at least once per frame.
                wait = min(max((1.0 - owed) / max(months_per_second, 1e-9), 0.0), frame_seconds)
            else:
                wait = frame_seconds
            time.sleep(max(wait - (time.perf_counter() - frame_start), 0.0))
        return ran

    # ----------------------------------------------------------------------------- exports
    def timeseries(self) -> pd.DataFrame:
        """The months run so far, as the contract's timeseries frame."""
        with self.lock:
            return model_frame(self.model)

    def events(self) -> pd.DataFrame:
        """The run's events so far, with the contract's columns."""
        with self.lock:
            return events_frame(list(self.model.events))

    def records(self) -> NDArray[np.float64]:
        """The model's own array of finished months (a view; rows are final once written)."""
        model = self.model
        return model.records[: model.month]
