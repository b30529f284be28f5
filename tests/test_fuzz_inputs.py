"""Bad input at every entry point: each input either runs or is refused with one clear message.

Property-based fuzzing (hypothesis) through the Python API, which is fast: random TOML documents,
random bytes, random mutations of the real scenario and sweep files (wrong types, missing and
unknown keys, NaN and infinity, negative and huge numbers, dates out of order, empty files, very
long strings) and random ``--set`` overrides. Each must load (or plan) or raise ``ScenarioError``
naming the file and the key; any other exception is a bug. Inputs that load are also run for
three months with the books checked. ``RESIM_FUZZ_SCALE=20`` multiplies the examples.

Then the command line itself: a table of nasty inputs (14 in subprocesses, the rest through
``main()`` in this process), each of which must exit with status 2, print one message naming
the file and the key (no traceback) and leave nothing behind. Then the Python API. No case is
marked xfail: every fault these tests found has been fixed. A fault found later and not yet fixed
gets ``xfail(strict=True)`` (``_xfail``) with the file and line at fault, so that fixing it turns
its test into an error to update.

The number of inputs tried is printed at the end of the module (``fuzz inputs tried: ...``).
"""

from __future__ import annotations

import collections
import contextlib
import copy
import datetime as dt
import io
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import tomllib
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim import ScenarioError, load_scenario, simulate
from sim.cli import main
from sim.params import Scenario
from sim.runner import with_months
from sim.scenario import SCENARIO_DIR
from sim.sweep import SweepPlan, plan_sweep

# RESIM_FUZZ_SCALE=20 tries twenty times as many inputs (a deeper search outside make test).
SCALE = float(os.environ.get("RESIM_FUZZ_SCALE", "1"))
FUZZ = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
SCENARIO_FILES = sorted(
    p for p in SCENARIO_DIR.glob("*.toml") if "sweep" not in tomllib.loads(p.read_text())
)
# Small sweeps only: planning validates every point (sensitivity.toml has 424).
SWEEP_FILES = [SCENARIO_DIR / "tariff_sweep.toml", SCENARIO_DIR / "price_floor_vs_predation.toml"]

# Outcomes per property: how many inputs were tried, loaded, refused.
TRIED: collections.Counter[str] = collections.Counter()


@pytest.fixture(scope="module", autouse=True)
def _report_counts(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    reporter = request.config.pluginmanager.getplugin("terminalreporter")
    capture = request.config.pluginmanager.getplugin("capturemanager")
    total = sum(v for k, v in TRIED.items() if k.endswith(":tried") and not k.startswith("ran:"))
    lines = ", ".join(f"{k}={v}" for k, v in sorted(TRIED.items()))
    if reporter is not None and capture is not None and total:
        with capture.global_and_fixture_disabled():
            reporter.write_line(f"\nfuzz inputs tried: {total} ({lines})")


# ------------------------------------------------------------------------ a TOML writer
BARE = re.compile(r"^[A-Za-z0-9_-]+$")


def toml_key(key: str) -> str:
    return key if BARE.match(key) else toml_string(key)


def toml_string(text: str) -> str:
    out = []
    for ch in text:
        code = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\u{code:04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dict):
        return (
            "{" + ", ".join(f"{toml_key(str(k))} = {toml_value(v)}" for k, v in value.items()) + "}"
        )
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    msg = f"cannot write {value!r} as TOML"
    raise TypeError(msg)


def is_table_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def toml_dumps(data: dict[str, Any], prefix: str = "") -> str:
    """TOML text of nested dicts: values, then [tables], then [[arrays of tables]]."""
    lines = []
    for key, value in data.items():
        if not isinstance(value, dict) and not is_table_list(value):
            lines.append(f"{toml_key(str(key))} = {toml_value(value)}")
    text = "\n".join(lines) + ("\n" if lines else "")
    for key, value in data.items():
        name = f"{prefix}{toml_key(str(key))}"
        if isinstance(value, dict):
            text += f"\n[{name}]\n" + toml_dumps(value, f"{name}.")
        elif is_table_list(value):
            for item in value:
                text += f"\n[[{name}]]\n" + toml_dumps(item, f"{name}.")
    return text


def test_the_toml_writer_round_trips():
    for path in [*SCENARIO_FILES, *SWEEP_FILES]:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        assert tomllib.loads(toml_dumps(data)) == data, path.name


# --------------------------------------------------------------------------- strategies
no_surrogates = st.characters(blacklist_categories=("Cs",))
junk_text = st.one_of(
    st.text(no_surrogates, max_size=30),
    st.sampled_from(
        [
            "",
            "none",
            "None",
            "nan",
            "inf",
            "-1",
            "true",
            "2025-13",
            "2025-00",
            "1899-12",
            "2201-01",
            "9999-99",
            "2025-1-1",
            "x" * 10_000,
            "é" * 500,
            "\x00",
            "../../../etc/passwd",
            "/",
            "baseline",
            "tariff_sweep",
            "data/miners_2025.csv",
            "policy.tariff.ndpr",
            "population.miners",
        ]
    ),
)
junk_number = st.one_of(
    st.integers(-(2**70), 2**70),
    st.sampled_from([0, -1, 1, 2, -(2**63), 2**63 - 1, 2**64, 10**30, 10**400]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1e308, -1e308, 5e-324, -0.0, 1e-300, 1e7 + 1, 100.0000001]),
)
junk_date = st.one_of(
    st.dates(), st.datetimes(), st.times(), st.dates(dt.date(1, 1, 1), dt.date(1899, 12, 31))
)
junk_scalar = st.one_of(st.booleans(), junk_number, junk_text, junk_date)
junk_key = st.one_of(
    st.text(no_surrogates, min_size=0, max_size=20),
    st.sampled_from(["tarif", "ndpx", "months ", "Months", "", ".", "a.b", "x" * 5000, "sweep"]),
)
junk_value = st.recursive(
    junk_scalar,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(junk_key, inner, max_size=3)
    ),
    max_leaves=6,
)


def _real_keys() -> list[str]:
    from sim.params import field_rows

    return [row["key"] for row in field_rows()]


REAL_KEYS = _real_keys()
any_key = st.one_of(
    st.sampled_from(REAL_KEYS),
    st.sampled_from(REAL_KEYS).map(lambda k: k + ".x"),
    st.sampled_from(REAL_KEYS).map(lambda k: k.rsplit(".", 1)[0]),
    st.sampled_from(REAL_KEYS).map(lambda k: k.replace("a", "e", 1)),
    junk_key,
)


@st.composite
def random_documents(draw: st.DrawFn) -> dict[str, Any]:
    """A TOML document of real and made-up keys with values of every type."""
    doc: dict[str, Any] = {}
    for _ in range(draw(st.integers(0, 6))):
        key = draw(any_key)
        value = draw(junk_value)
        node = doc
        parts = [p for p in key.split(".") if p] or ["k"]
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[parts[-1]] = value
    return doc


# Paths into a document: keys of tables, and indices of lists.
Path_ = tuple[Any, ...]


def paths(data: Any, prefix: Path_ = ()) -> list[Path_]:
    out: list[Path_] = []
    if isinstance(data, dict):
        for key, value in data.items():
            out.append((*prefix, key))
            out.extend(paths(value, (*prefix, key)))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            out.append((*prefix, i))
            out.extend(paths(value, (*prefix, i)))
    return out


def parent_of(data: Any, path: Path_) -> Any:
    node = data
    for part in path[:-1]:
        node = node[part]
    return node


@st.composite
def mutated(draw: st.DrawFn, data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with one to three mutations: a value replaced, a key removed or added, a table
    replaced by a value, a list emptied or reversed (dates out of order), a date moved."""
    doc = copy.deepcopy(data)
    for _ in range(draw(st.integers(1, 3))):
        where = paths(doc)
        kind = draw(
            st.sampled_from(["replace", "delete", "add", "reverse", "date", "extreme"])
            if where
            else st.just("add")
        )
        if kind == "add":
            tables = [p for p in where if isinstance(parent_of(doc, (*p, None)), dict)]
            target = (
                doc
                if not tables or draw(st.booleans())
                else parent_of(doc, (*draw(st.sampled_from(tables)), None))
            )
            target[draw(junk_key)] = draw(junk_value)
            continue
        path = draw(st.sampled_from(where))
        parent = parent_of(doc, path)
        if kind == "replace":
            parent[path[-1]] = draw(junk_value)
        elif kind == "extreme":
            parent[path[-1]] = draw(junk_number)
        elif kind == "delete":
            del parent[path[-1]]
        elif kind == "reverse":
            lists = [p for p in where if isinstance(parent_of(doc, (*p, None)), list)]
            if lists:
                target = parent_of(doc, (*draw(st.sampled_from(lists)), None))
                target.reverse()
                if target and draw(st.booleans()):
                    target.pop()
        elif kind == "date":
            dated = [p for p in where if p[-1] in ("date", "start")]
            if dated:
                p = draw(st.sampled_from(dated))
                parent_of(doc, p)[p[-1]] = draw(
                    st.sampled_from(["1900-01", "2024-12", "2200-12", "2025-01", "2030-06"])
                    | junk_text
                )
    return doc


# ----------------------------------------------------------------------------- outcomes
def refusal(load: Callable[[], Any]) -> ScenarioError | None:
    """The ``ScenarioError`` ``load`` raises, or None when it loads (any other error propagates)."""
    try:
        load()
    except ScenarioError as err:
        return err
    return None


def outcome(name: str, path: Path, load: Callable[[], Any]) -> ScenarioError | None:
    """Load; a refusal must be a ``ScenarioError`` naming the file and (where there is one) the key."""
    TRIED[f"{name}:tried"] += 1
    err = refusal(load)
    if err is None:
        TRIED[f"{name}:loaded"] += 1
        return None
    TRIED[f"{name}:refused"] += 1
    text = str(err)
    assert str(path) in err.file, f"message does not name the file {path}: {text}"
    assert text.startswith(err.file)
    assert err.problem, text
    if err.key:
        shown = err.key if len(err.key) <= 160 else err.key[:100]
        assert shown in text
    else:  # problems of the file as a whole: its syntax, encoding, or the file itself
        assert re.search(
            r"TOML|UTF-8|nested|cannot read|no such|not a sweep|unknown", err.problem
        ), text
    assert "Traceback" not in text
    return err


# Model faults reported and not yet fixed: valid settings that crash the run, each with an
# xfail(strict=True) test in test_robustness_extremes.py. A fuzzed input that meets one listed
# here is counted, not failed; any other exception fails the test. None is listed: the last ones
# (the supplier's negative magnet cost, price_ref = 0, defend_price_ratio = 0) are fixed. An entry
# is name: (exception type, a clue: text of the message or a file in the traceback).
KNOWN_MODEL_FAULTS: dict[str, tuple[str, str]] = {}


def known_model_fault(exc: BaseException) -> str | None:
    frames = traceback.extract_tb(exc.__traceback__)
    where = " ".join(f.filename for f in frames if "/sim/" in f.filename)
    for name, (kind, clue) in KNOWN_MODEL_FAULTS.items():
        if type(exc).__name__ == kind and (clue in str(exc) or clue in where):
            return name
    return None


def runs_briefly(scenario: Scenario) -> None:
    """A scenario that loads must also run: three months, at most 50 manufacturers, books checked.

    A ``ScenarioError`` raised while building the model (a bad projects file, which loading
    reads only to check contracts) must name the key; see the CLI cases for the file it should
    name. Contracts naming unknown projects are refused at load time.
    """
    population = scenario.population.model_copy(
        update={"manufacturers": min(scenario.population.manufacturers, 50)}
    )
    short = scenario.model_copy(update={"population": population})
    short = with_months(short, min(3, short.scenario.months))
    TRIED["ran:tried"] += 1
    try:
        err = refusal(lambda: simulate(short, seed=1, check_balances=True))
    except Exception as exc:
        known = known_model_fault(exc)
        if known is None:
            raise
        TRIED[f"ran:known-fault {known}"] += 1
        return
    if err is not None:
        TRIED["ran:refused-by-model"] += 1
        assert err.key, str(err)
        assert err.key in str(err)


def _write(directory: str, text: str | bytes, name: str = "s.toml") -> Path:
    path = Path(directory) / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


# ------------------------------------------------------------------------- properties
@settings(FUZZ, max_examples=round(60 * SCALE))
@given(doc=random_documents())
def test_random_toml_documents_load_or_are_refused(doc):
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(tmp, toml_dumps(doc))
        outcome("random-toml", path, lambda: load_scenario(path))


@settings(FUZZ, max_examples=round(20 * SCALE))
@given(raw=st.one_of(st.binary(max_size=300), st.just(b""), st.just(b"\xef\xbb\xbf[scenario]\n")))
def test_random_bytes_load_or_are_refused(raw):
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(tmp, raw)
        outcome("random-bytes", path, lambda: load_scenario(path))


@settings(FUZZ, max_examples=round(80 * SCALE))
@given(data=st.data(), source=st.sampled_from(SCENARIO_FILES))
def test_mutated_scenario_files_load_or_are_refused(data, source):
    original = tomllib.loads(source.read_text(encoding="utf-8"))
    doc = data.draw(mutated(original))
    with tempfile.TemporaryDirectory() as tmp:
        # Same folder name relations as the original: a relative base must still resolve.
        text = toml_dumps(doc)
        path = _write(tmp, text, source.name)
        base = (
            doc.get("scenario", {}).get("base") if isinstance(doc.get("scenario"), dict) else None
        )
        if isinstance(base, str) and base.endswith(".toml") and (SCENARIO_DIR / base).is_file():
            _write(tmp, (SCENARIO_DIR / base).read_bytes(), base)
        if outcome("mutated-scenario", path, lambda: load_scenario(path)) is None:
            runs_briefly(load_scenario(path))


override_value = st.one_of(
    junk_text,
    junk_number.map(
        lambda v: toml_value(v) if not isinstance(v, float) or math.isfinite(v) else str(v)
    ),
    st.sampled_from(
        ["true", "false", "[1, 2]", "{a = 1}", '"quoted"', "none", "2025-01-01", "1e999"]
    ),
    junk_value,
)


@settings(FUZZ, max_examples=round(60 * SCALE))
@given(key=any_key, value=override_value)
def test_random_overrides_load_or_are_refused(key, value):
    path = SCENARIO_DIR / "baseline.toml"
    err = outcome("set-override", path, lambda: load_scenario("baseline", {key: value}))
    if err is None:
        runs_briefly(load_scenario("baseline", {key: value}))
    if err is not None and key and "override" in err.file:
        # A malformed key is named as given; otherwise the key or the table it falls in.
        head = re.split(r"[.\[ ]", err.key.removeprefix("'"), maxsplit=1)[0]
        assert key.startswith(head) or head in ("schedule", "(the"), (key, str(err))


def _plan(path: Path) -> SweepPlan:
    return plan_sweep(path)


# Numbers that keep a sweep small when they land on seeds or samples (a mid-size count would
# plan thousands of points and only measure time; the CLI case sweep-10^12-grid covers size).
sweep_number = st.one_of(
    st.sampled_from([0, -1, 1, 2, -(2**63), 2**63, 10**30, 10**400]),
    st.floats(allow_nan=True, allow_infinity=True),
)


@st.composite
def mutated_sweep(draw: st.DrawFn, data: dict[str, Any]) -> dict[str, Any]:
    doc = copy.deepcopy(data)
    for _ in range(draw(st.integers(1, 3))):
        where = paths(doc)
        if not where:
            doc[draw(junk_key)] = draw(st.one_of(junk_text, sweep_number))
            continue
        path = draw(st.sampled_from(where))
        parent = parent_of(doc, path)
        kind = draw(st.sampled_from(["replace", "number", "delete", "add", "reverse"]))
        if kind == "replace":
            parent[path[-1]] = draw(
                st.one_of(junk_text, junk_date, st.booleans(), st.lists(sweep_number, max_size=3))
            )
        elif kind == "number":
            parent[path[-1]] = draw(sweep_number)
        elif kind == "delete":
            del parent[path[-1]]
        elif kind == "add" and isinstance(parent, dict):
            parent[draw(junk_key)] = draw(st.one_of(junk_text, sweep_number))
        elif kind == "reverse" and isinstance(parent[path[-1]], list):
            parent[path[-1]].reverse()
    return doc


@settings(FUZZ, max_examples=round(40 * SCALE))
@given(data=st.data(), source=st.sampled_from(SWEEP_FILES))
def test_mutated_sweep_files_plan_or_are_refused(data, source):
    doc = data.draw(mutated_sweep(tomllib.loads(source.read_text(encoding="utf-8"))))
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(tmp, toml_dumps(doc), source.name)
        outcome("mutated-sweep", path, lambda: _plan(path))


# ------------------------------------------------------------------- the command line
TINY = '[scenario]\nbase = "baseline"\nname = "tiny"\nmonths = 2\n[population]\nmanufacturers = 10\nminers = 6\n'
SWEEP_HEAD = '[sweep]\nname = "sw"\nbase = "tiny.toml"\n'
GRID = '[[sweep.parameters]]\nkeys = ["policy.tariff.ndpr"]\nvalues = [0.0, 1.0]\n'


def _huge_grid() -> str:
    keys = [f"policy.tariff.{g}" for g in ("ndpr", "dytb", "cela", "magnet")]
    keys += [f"foreign.export_tax.{g}" for g in ("ndpr", "dytb", "cela", "magnet")]
    keys += [
        f"miners.{k}" for k in ("idle_margin", "restart_margin", "fixed_cost_share", "sell_ratio")
    ]
    values = ", ".join(str(i / 10) for i in range(10))
    body = "".join(f'[[sweep.parameters]]\nkeys = ["{k}"]\nvalues = [{values}]\n' for k in keys)
    return SWEEP_HEAD + 'design = "grid"\nseeds = 1\n' + body


# For a CLI case whose fault is known and not yet fixed (none at present):
# pytest.param(..., marks=_xfail("sim/x.py:123 ...")).
def _xfail(reason: str) -> pytest.MarkDecorator:
    return pytest.mark.xfail(strict=True, reason=reason)


def _contracts_miner(name: str) -> str:
    return (
        '[scenario]\nbase = "tiny.toml"\n[[government.contracts]]\ndate = "2025-02"\n'
        f'miner = "{name}"\nkind = "grant"\namount_musd = 5.0\n'
    )


# (id, files to write, argv, fragments the one message must contain, timeout in s)
CLI_CASES: list[Any] = [
    ("binary-junk", {"s.toml": bytes(range(256))}, ["run", "s.toml"], ["s.toml", "UTF-8"]),
    (
        "utf-16",
        {"s.toml": "[scenario]\nmonths = 3\n".encode("utf-16")},
        ["check", "s.toml"],
        ["s.toml", "UTF-8"],
    ),
    (
        "table-as-value",
        {"s.toml": 'scenario = "x"\n'},
        ["run", "s.toml"],
        ["s.toml", "scenario", "[scenario]"],
    ),
    (
        "arrays-600-deep",
        {"s.toml": "a = " + "[" * 600 + "]" * 600 + "\n"},
        ["run", "s.toml"],
        ["s.toml", "nested"],
    ),
    (
        "tables-400-deep",
        {"s.toml": "[" + ".".join(["a"] * 400) + "]\n"},
        ["run", "s.toml"],
        ["s.toml", "a.a.a", "nested"],
    ),
    (
        "bool-for-number",
        {"s.toml": "[scenario]\nmonths = true\n"},
        ["run", "s.toml"],
        ["s.toml", "scenario.months", "number"],
    ),
    (
        "nan-in-file",
        {"s.toml": "[policy.tariff]\nndpr = nan\n"},
        ["run", "s.toml"],
        ["s.toml", "policy.tariff.ndpr", "finite"],
    ),
    (
        "minus-inf-set",
        {},
        ["run", "baseline", "--set", "policy.tariff.dytb=-inf"],
        ["baseline.toml", "policy.tariff.dytb", "finite"],
    ),
    (
        "huge-set",
        {},
        ["run", "baseline", "--set", "policy.tariff.ndpr=1e308"],
        ["baseline.toml", "policy.tariff.ndpr", "less than or equal to 100"],
    ),
    (
        "5000-digits-set",
        {},
        ["run", "baseline", "--set", "scenario.months=" + "9" * 5000],
        ["baseline.toml", "scenario.months"],
    ),
    (
        "negative-quota",
        {"s.toml": "[policy.export_quota]\ncela = -1.0\n"},
        ["run", "s.toml"],
        ["s.toml", "policy.export_quota.cela", "greater than or equal to 0"],
    ),
    (
        "typo-key",
        {"s.toml": "[policy.tarif]\nndpr = 1.0\n"},
        ["run", "s.toml"],
        ["s.toml", "policy.tarif", "did you mean 'tariff'"],
    ),
    (
        "schedule-no-key",
        {"s.toml": '[[schedule]]\ndate = "2026-01"\nvalue = 1.0\n'},
        ["run", "s.toml"],
        ["s.toml", "schedule[0].key", "missing"],
    ),
    (
        "schedule-structural",
        {"s.toml": '[[schedule]]\ndate = "2026-01"\nkey = "population.miners"\nvalue = 3\n'},
        ["run", "s.toml"],
        ["s.toml", "schedule[0].key", "cannot change during a run"],
    ),
    (
        "toml-date-start",
        {"s.toml": "[scenario]\nstart = 2025-01-01\n"},
        ["run", "s.toml"],
        ["s.toml", "scenario.start", "quoted"],
    ),
    (
        "month-13",
        {"s.toml": '[scenario]\nstart = "2025-13"\n'},
        ["run", "s.toml"],
        ["s.toml", "scenario.start", "YYYY-MM"],
    ),
    (
        "missing-base",
        {"s.toml": '[scenario]\nbase = "nope"\n'},
        ["run", "s.toml"],
        ["s.toml", "scenario.base", "unknown scenario"],
    ),
    (
        "100k-char-key",
        {"s.toml": "[scenario]\n" + "k" * 100_000 + " = 1\n"},
        ["run", "s.toml"],
        ["s.toml", "scenario.kkkk", "characters", "allowed here"],
    ),
    (
        "set-into-value",
        {},
        ["run", "baseline", "--set", "policy.tariff.ndpr.x=1"],
        ["baseline.toml", "policy.tariff.ndpr", "not a table"],
    ),
    (
        "set-true-for-number",
        {},
        ["run", "baseline", "--set", "policy.tariff.magnet=true"],
        ["baseline.toml", "policy.tariff.magnet", "number"],
    ),
    ("negative-seed", {}, ["run", "baseline", "--seed", "-1"], ["--seed", "0 to"]),
    ("seed-beyond-int64", {}, ["run", "baseline", "--seed", str(2**63)], ["--seed", "0 to"]),
    (
        "out-is-a-file",
        {"taken": "mine"},
        ["run", "baseline", "--months", "1", "--out", "taken"],
        ["--out", "taken", "not a folder"],
    ),
    ("empty-sweep", {"sw.toml": ""}, ["sweep", "sw.toml"], ["sw.toml", "sweep", "[sweep]"]),
    (
        "sweep-zero-seeds",
        {"sw.toml": SWEEP_HEAD + 'design = "grid"\nseeds = 0\n' + GRID},
        ["sweep", "sw.toml"],
        ["sw.toml", "seeds"],
    ),
    (
        "sweep-extra-table",
        {"sw.toml": SWEEP_HEAD + 'design = "grid"\nseeds = 1\n' + GRID + "[other]\nx = 1\n"},
        ["sweep", "sw.toml"],
        ["sw.toml", "other", "[sweep]"],
    ),
    (
        "sweep-bad-point",
        {
            "sw.toml": SWEEP_HEAD
            + 'design = "list"\nseeds = 1\n[[sweep.points]]\n"policy.export_quota.dytb" = -5.0\n'
        },
        ["sweep", "sw.toml"],
        ["sw.toml", "policy.export_quota.dytb", "greater than or equal to 0"],
    ),
    (
        "sweep-nan-bound",
        {
            "sw.toml": SWEEP_HEAD
            + 'design = "lhs"\nseeds = 1\nsamples = 2\n[[sweep.parameters]]\nkeys = ["policy.tariff.ndpr"]\nlow = nan\nhigh = 1.0\n'
        },
        ["sweep", "sw.toml"],
        ["sw.toml", "policy.tariff.ndpr", "finite"],
    ),
    (
        "contract-unknown-miner",
        {"s.toml": _contracts_miner("Nowhere Mine")},
        ["run", "s.toml"],
        ["s.toml", "government.contracts[0].miner", "allowed: ", "Mountain Pass"],
    ),
    (
        "binary-miners-csv",
        {"junk.csv": bytes(range(128, 256))},
        ["run", "baseline", "--set", "population.miners_file=@DIR@/junk.csv"],
        ["junk.csv", "UTF-8"],
    ),
    (
        "sweep-negative-seed",
        {"sw.toml": SWEEP_HEAD + 'design = "grid"\nseeds = [-1]\n' + GRID},
        ["sweep", "sw.toml"],
        ["sw.toml", "sweep.seeds", "from 0 to"],
    ),
    (
        "sweep-seed-beyond-int64",
        {"sw.toml": SWEEP_HEAD + f'design = "grid"\nseeds = [1, {2**63}]\n' + GRID},
        ["sweep", "sw.toml"],
        ["sw.toml", "sweep.seeds", "seeds[1]", "from 0 to"],
    ),
    (
        "sweep-seeds-true",
        {"sw.toml": SWEEP_HEAD + 'design = "grid"\nseeds = true\n' + GRID},
        ["sweep", "sw.toml"],
        ["sw.toml", "sweep.seeds", "got true"],
    ),
    (
        "sweep-seeds-string",
        {"sw.toml": SWEEP_HEAD + 'design = "grid"\nseeds = "2"\n' + GRID},
        ["sweep", "sw.toml"],
        ["sw.toml", "sweep.seeds", "got '2'"],
    ),
    (
        "sweep-negative-sample-seed",
        {
            "sw.toml": SWEEP_HEAD
            + 'design = "lhs"\nseeds = 1\nsamples = 2\nsample_seed = -1\n[[sweep.parameters]]\nkeys = ["policy.tariff.ndpr"]\nlow = 0.0\nhigh = 1.0\n'
        },
        ["sweep", "sw.toml"],
        ["sw.toml", "sweep.sample_seed"],
    ),
    (
        "sweep-10^12-grid",
        {"sw.toml": _huge_grid()},
        ["sweep", "sw.toml"],
        ["sw.toml", "sweep.parameters", "1,000,000,000,000 points", "at most 1,000,000 runs"],
        8,
    ),
]


def _case(case: Any) -> tuple[str, dict[str, Any], list[str], list[str], float]:
    values = case.values[0] if hasattr(case, "values") else case
    name, files, argv, fragments = values[:4]
    timeout = values[4] if len(values) > 4 else 90.0
    return name, files, argv, fragments, timeout


def _ids(case: Any) -> str:
    return _case(case)[0]


def _listing(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


# The CLI under a 1.5 GB address-space limit (a runaway input must not take the machine down).
LIMITED_CLI = (
    "import resource, runpy, sys\n"
    "resource.setrlimit(resource.RLIMIT_AS, (1_500_000_000, 1_500_000_000))\n"
    "sys.argv = ['resim', *sys.argv[1:]]\n"
    "runpy.run_module('sim.cli', run_name='__main__')\n"
)


# Cases run as real processes (a sample of each entry point, and those that need a process of
# their own: the runaway grid is killed by a time and memory limit). The others run in this
# process through ``main()``, which is the same code minus the interpreter start (1.5 s each).
SUBPROCESS = {
    "binary-junk",
    "arrays-600-deep",
    "nan-in-file",
    "minus-inf-set",
    "typo-key",
    "schedule-structural",
    "missing-base",
    "100k-char-key",
    "negative-seed",
    "out-is-a-file",
    "empty-sweep",
    "sweep-bad-point",
    "binary-miners-csv",
    "sweep-10^12-grid",
}


def _prepare(case: Any, root: Path) -> tuple[Path, list[str]]:
    name, files, argv, _, _ = _case(case)
    folder = root / name
    folder.mkdir()
    (folder / "tiny.toml").write_text(TINY)
    for file, content in files.items():
        target = folder / file
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content, encoding="utf-8")
    argv = [a.replace("@DIR@", str(folder)) for a in argv]
    if argv[0] in ("run", "sweep") and "--out" not in argv:
        argv = [*argv, "--out", "out"]
    if argv[0] == "sweep":
        argv = [*argv, "--workers", "1"]
    return folder, argv


def _run_case(case: Any, root: Path) -> dict[str, Any]:
    """Run the CLI in a process of its own; the exit status, its stderr, the files it left."""
    folder, argv = _prepare(case, root)
    before = _listing(folder)
    proc = subprocess.Popen(
        [sys.executable, "-c", LIMITED_CLI, *argv],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env={**os.environ, "COLUMNS": "400"},
    )
    try:
        _, err = proc.communicate(timeout=_case(case)[4])
        code: int | None = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        _, err = proc.communicate()
        code = None
    return {"code": code, "err": err, "left": sorted(_listing(folder) - before), "folder": folder}


def _run_in_process(case: Any, root: Path) -> dict[str, Any]:
    """Run ``main()`` here, in the case's folder; an exception escaping it is a traceback."""
    folder, argv = _prepare(case, root)
    before = _listing(folder)
    stderr = io.StringIO()
    with (
        contextlib.chdir(folder),
        contextlib.redirect_stderr(stderr),
        contextlib.redirect_stdout(io.StringIO()),
    ):
        try:
            code: int | None = main(argv)
        except Exception:
            code = None
            stderr.write(traceback.format_exc())
    return {
        "code": code,
        "err": stderr.getvalue(),
        "left": sorted(_listing(folder) - before),
        "folder": folder,
    }


@pytest.fixture(scope="module")
def cli_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """The subprocess cases, run concurrently, each in its own folder."""
    root = tmp_path_factory.mktemp("cli")
    cases = [c for c in CLI_CASES if _case(c)[0] in SUBPROCESS]
    with ThreadPoolExecutor(max_workers=max(2, (os.cpu_count() or 2))) as pool:
        futures = {_case(c)[0]: pool.submit(_run_case, c, root) for c in cases}
        return {name: f.result() for name, f in futures.items()}


@pytest.mark.parametrize("case", CLI_CASES, ids=_ids)
def test_cli_refuses_bad_input_with_exit_2_one_message_and_nothing_left(
    case, cli_results, tmp_path
):
    name, _, _, fragments, _ = _case(case)
    TRIED["cli-subprocess:tried" if name in SUBPROCESS else "cli-in-process:tried"] += 1
    result = cli_results[name] if name in SUBPROCESS else _run_in_process(case, tmp_path)
    err = result["err"]
    assert result["code"] == 2, f"exit {result['code']}; stderr: {err[-2000:]}"
    assert "Traceback" not in err
    message = " ".join(err.split())
    assert message.startswith("error:"), message[:500]
    assert message.count("error:") == 1, message[:500]
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in: {message[:600]}"
    assert result["left"] == [], f"left behind: {result['left']}"
    assert not (result["folder"] / "results").exists()


def test_cli_messages_keep_bracketed_text(cli_results, tmp_path):
    """Rich must not read ``[sweep]`` or ``[scenario]`` in a message as markup and drop it."""
    assert "[sweep]" in cli_results["empty-sweep"]["err"]
    table = next(c for c in CLI_CASES if _case(c)[0] == "table-as-value")
    assert "[scenario]" in _run_in_process(table, tmp_path)["err"]


# ---------------------------------------------------------------------- the Python API
@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda: load_scenario("baseline", {1: 2}), id="non-string-key"),
        pytest.param(lambda: load_scenario("baseline", {"": 1}), id="empty-key"),
        pytest.param(lambda: load_scenario("x" * 300), id="name-too-long"),
        pytest.param(lambda: load_scenario("bad\x00name"), id="nul-in-name"),
        pytest.param(lambda: load_scenario("baseline", {"scenario": [1]}), id="table-as-list"),
        pytest.param(
            lambda: load_scenario("baseline", {"policy.tariff.ndpr": float("nan")}), id="nan"
        ),
        pytest.param(lambda: simulate("baseline", months=0), id="simulate-months-0"),
        pytest.param(lambda: simulate("baseline", seed=-1, months=1), id="simulate-negative-seed"),
        pytest.param(lambda: simulate("baseline", seed=2**63, months=1), id="simulate-seed-2**63"),
        pytest.param(lambda: simulate("baseline", seed=1.5, months=1), id="simulate-seed-1.5"),
    ],
)
def test_python_api_refuses_bad_input_with_a_scenario_error(call):
    with pytest.raises(ScenarioError) as info:
        call()
    assert info.value.problem
