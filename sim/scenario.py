"""Loading and validating scenario files: TOML in, a frozen ``Scenario`` out, or a clear refusal.

A scenario file sets only what differs from the schema's defaults (``sim.params``). Loading merges
the file over the defaults, then ``--set``/``overrides`` over the file, and validates the result
once. Any problem raises ``ScenarioError`` naming the file, the dotted key, the value and what is
allowed; the CLI turns that into exit status 2.
"""

from __future__ import annotations

import copy
import datetime as dt
import difflib
import math
import numbers
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from sim.params import SCHEDULABLE_PREFIXES, Scenario

SCENARIO_DIR = Path(__file__).resolve().parent.parent / "scenarios"
MAX_DEPTH = 32  # tables and arrays nested deeper than this are refused (no scenario needs 6)
MAX_SEED = 2**63 - 1  # seeds are stored as int64 and seed numpy's generator (non-negative)
_LONG_KEY = 160  # keys longer than this are shortened in messages


class ScenarioError(ValueError):
    """Bad input: names the file, the key, the value and what is allowed."""

    def __init__(self, file: str, key: str, problem: str) -> None:
        self.file = file
        self.key = key
        self.problem = problem
        shown = (
            key if len(key) <= _LONG_KEY else f"{key[:100]}...{key[-40:]} ({len(key)} characters)"
        )
        where = f"{file}: {shown}" if key else file
        super().__init__(f"{where}: {problem}")


def check_seed(seed: Any, origin: str) -> int:
    """The seed as an ``int``, or a ``ScenarioError``: a whole number from 0 to ``MAX_SEED``."""
    if (
        isinstance(seed, bool)
        or not isinstance(seed, numbers.Integral)
        or not 0 <= int(seed) <= MAX_SEED
    ):
        problem = (
            f"got {_shown(seed)}; must be a whole number from 0 to {MAX_SEED} (2**63 - 1): "
            "seeds are stored as int64 and seed numpy's generator"
        )
        raise ScenarioError(origin, "seed", problem)
    return int(seed)


def projects_path(scenario: Scenario) -> Path:
    """The projects CSV a scenario uses: ``population.miners_file``, absolute or under scenarios/."""
    name = Path(scenario.population.miners_file)
    return name if name.is_absolute() else SCENARIO_DIR / name


def scenario_path(name_or_path: str | Path) -> Path:
    """Resolve a scenario stem (``baseline``) or a path to an existing file."""
    candidate = Path(name_or_path)
    try:
        if candidate.suffix == ".toml" or candidate.exists() or "/" in str(name_or_path):
            if not candidate.is_file():
                raise ScenarioError(str(candidate), "", "no such scenario file")
            return candidate
        stem_path = SCENARIO_DIR / f"{name_or_path}.toml"
        found = stem_path.is_file()
    except (OSError, ValueError) as err:  # a name too long for the file system, a NUL byte
        problem = f"not a usable file name ({getattr(err, 'strerror', None) or err})"
        raise ScenarioError(repr(str(name_or_path))[:200], "", problem) from None
    if not found:
        known = sorted(p.stem for p in SCENARIO_DIR.glob("*.toml"))
        hint = difflib.get_close_matches(str(name_or_path), known, n=1)
        extra = f" (did you mean {hint[0]!r}?)" if hint else ""
        raise ScenarioError(
            str(name_or_path), "", f"unknown scenario{extra}; known: {', '.join(known)}"
        )
    return stem_path


def read_toml(path: Path) -> dict[str, Any]:
    """Read a TOML file, turning syntax and encoding errors into ``ScenarioError``."""
    try:
        raw = path.read_bytes()
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as err:
        raise ScenarioError(
            str(path), "", f"not a UTF-8 text file ({err.reason} at byte {err.start})"
        ) from None
    except tomllib.TOMLDecodeError as err:
        raise ScenarioError(str(path), "", f"not valid TOML: {err}") from None
    except ValueError as err:  # e.g. an integer literal with thousands of digits
        raise ScenarioError(str(path), "", f"not valid TOML: {err}") from None
    except RecursionError:
        problem = f"not valid TOML here: arrays or tables nested too deeply (at most {MAX_DEPTH})"
        raise ScenarioError(str(path), "", problem) from None
    except OSError as err:
        raise ScenarioError(str(path), "", f"cannot read: {err.strerror or err}") from None
    deep = _too_deep(data)
    if deep is not None:
        problem = f"nested more than {MAX_DEPTH} levels deep; scenario and sweep files nest a few"
        raise ScenarioError(str(path), deep, problem)
    return data


def _too_deep(data: Any) -> str | None:
    """The dotted key where ``data`` nests deeper than ``MAX_DEPTH``, if it does."""
    stack: list[tuple[Any, str, int]] = [(data, "", 0)]
    while stack:
        node, key, depth = stack.pop()
        if depth > MAX_DEPTH:
            return key or "(top)"
        if isinstance(node, dict):
            stack.extend((v, f"{key}.{k}" if key else str(k), depth + 1) for k, v in node.items())
        elif isinstance(node, list):
            stack.extend((v, f"{key}[{i}]", depth + 1) for i, v in enumerate(node))
    return None


def parse_value(text: str) -> Any:
    """Parse a ``--set`` value as a TOML value (1.0, true, "x", [1, 2]); bare words stay strings."""
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except (ValueError, RecursionError):  # TOMLDecodeError is a ValueError
        return text
    return text if _too_deep(value) is not None else value


def set_dotted(data: dict[str, Any], key: str, value: Any, origin: str) -> None:
    """Set ``a.b.c`` in nested dicts, creating tables on the way.

    The string ``"none"`` (any case) unsets an optional key, e.g. lifts an export quota: TOML has no
    null. Validation then accepts it only where a key may be empty.
    """
    if isinstance(value, str) and value.strip().lower() == "none":
        value = None
    if not isinstance(key, str):
        raise ScenarioError(origin, repr(key), "a key must be a string like policy.tariff.ndpr")
    parts = key.split(".")
    if not key or any(not part for part in parts):
        raise ScenarioError(
            origin, key or "''", "a key must be dotted names like policy.tariff.ndpr"
        )
    node = data
    for i, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise ScenarioError(
                origin, ".".join(parts[: i + 1]), f"is a value ({child!r}), not a table"
            )
        node = child
    node[parts[-1]] = value


def deep_merge(base: dict[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``top`` into a copy of ``base``; tables merge, values replace."""
    out = copy.deepcopy(base)
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _allowed(model: type[BaseModel], loc: tuple[Any, ...]) -> str:
    """Describe the keys allowed at ``loc`` for an unknown-key message."""
    node: Any = model
    for part in loc[:-1]:
        fields = getattr(node, "model_fields", None)
        if fields is None or part not in fields:
            return ""
        annotation = fields[part].annotation
        node = annotation
    fields = getattr(node, "model_fields", None)
    if not fields:
        return ""
    names = sorted(fields)
    hint = difflib.get_close_matches(str(loc[-1]), names, n=1)
    extra = f" (did you mean {hint[0]!r}?)" if hint else ""
    return f"unknown key{extra}; allowed here: {', '.join(names)}"


def dotted(loc: tuple[Any, ...]) -> str:
    """``("schedule", 0, "key")`` as ``schedule[0].key``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _shown(value: Any) -> str:
    """A value as the user wrote it, briefly."""
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.date | dt.time):  # datetime is a date
        return f"the TOML date/time {value.isoformat()}"
    shown = repr(value)
    return shown if len(shown) <= 80 else shown[:77] + "..."


def _describe(model: type[BaseModel], error: Any) -> tuple[str, str]:
    loc = tuple(error["loc"])
    key = dotted(loc) or "(the whole scenario)"
    if error["type"] == "extra_forbidden":
        return key, _allowed(model, loc) or "unknown key"
    if error["type"] == "missing":
        return key, "missing; this key is required here"
    value = error.get("input")
    message = error["msg"]
    ctx = error.get("ctx") or {}
    if error["type"] in {"greater_than_equal", "less_than_equal", "greater_than", "less_than"}:
        message = f"must be {message.removeprefix('Input should be ')}"
    elif error["type"] == "string_type" and isinstance(value, dt.date | dt.time):
        message = 'write months and dates as quoted strings, e.g. "2025-01"'
    elif ctx.get("error"):
        message = str(ctx["error"])
        if isinstance(value, dict):  # a table-level check: its message says what is wrong
            return key, message
    return key, f"got {_shown(value)}; {message}"


def _bool_as_number(data: Any, value: Any, loc: tuple[Any, ...] = ()) -> tuple[Any, ...] | None:
    """Where ``data`` gives true/false for what validated as a number (pydantic reads it as 1/0)."""
    if isinstance(data, bool):
        return loc if isinstance(value, int | float) and not isinstance(value, bool) else None
    if isinstance(data, dict):
        for k, v in data.items():
            child = value.get(k) if isinstance(value, dict) else getattr(value, str(k), None)
            found = _bool_as_number(v, child, (*loc, k))
            if found is not None:
                return found
    elif isinstance(data, list) and isinstance(value, list | tuple):
        for i, (v, child) in enumerate(zip(data, value, strict=False)):
            found = _bool_as_number(v, child, (*loc, i))
            if found is not None:
                return found
    return None


def _check_schedule_keys(data: dict[str, Any], origin: str) -> None:
    """Schedule entries must name a key that may change during a run."""
    schedule = data.get("schedule")
    if not isinstance(schedule, list):
        return
    for i, change in enumerate(schedule):
        key = change.get("key") if isinstance(change, dict) else None
        if isinstance(key, str) and not key.startswith(SCHEDULABLE_PREFIXES):
            raise ScenarioError(
                origin,
                f"schedule[{i}].key",
                f"got {key!r}, which cannot change during a run; "
                f"allowed: keys starting {', '.join(SCHEDULABLE_PREFIXES)}",
            )


def _reject_non_finite(data: Any, origin: str, prefix: str = "") -> None:
    if isinstance(data, dict):
        for key, value in data.items():
            _reject_non_finite(value, origin, f"{prefix}{key}.")
    elif isinstance(data, list):
        for i, value in enumerate(data):
            _reject_non_finite(value, origin, f"{prefix.rstrip('.')}[{i}].")
    elif isinstance(data, float) and not math.isfinite(data):
        raise ScenarioError(origin, prefix.rstrip("."), f"got {data}; numbers must be finite")


def validate(data: dict[str, Any], origin: str) -> Scenario:
    """Validate merged scenario data; raise ``ScenarioError`` for the first problem found."""
    _reject_non_finite(data, origin)
    _check_schedule_keys(data, origin)
    scenario = _validated(data, origin, "")
    _check_dates(scenario, origin)
    for i, change in enumerate(scenario.schedule):
        probe = copy.deepcopy(data)
        probe.pop("schedule", None)
        where = f"schedule[{i}] ({change.date})"
        try:
            set_dotted(probe, change.key, change.value, origin)
        except ScenarioError as err:
            raise ScenarioError(origin, f"{where} {err.key}", err.problem) from None
        _validated(probe, origin, f"{where} ")
    return scenario


def _check_dates(scenario: Scenario, origin: str) -> None:
    """Schedule entries and contracts must not be dated before the start: they would never apply.

    One dated after the end is allowed: a shorter run of the same scenario simply ends first.
    """
    start = scenario.scenario.start
    dated = [(f"schedule[{i}].date", c.date) for i, c in enumerate(scenario.schedule)]
    dated += [
        (f"government.contracts[{i}].date", c.date)
        for i, c in enumerate(scenario.government.contracts)
    ]
    for key, date in dated:
        if date < start:  # both YYYY-MM, zero-padded by the validators
            what = "scheduled change" if key.startswith("schedule") else "contract"
            problem = (
                f"got {date!r}, before scenario.start {start!r}; allowed: {start} or later. "
                f"A {what} dated before the run would never be carried out"
            )
            if what == "scheduled change":
                problem += "; to have a value in force from the start, set the key itself"
            raise ScenarioError(origin, key, problem)


def _check_contract_miners(scenario: Scenario, origin: str) -> None:
    """Each contract must name a project the run will have, checked when the scenario loads.

    Allowed: the projects among the first ``population.miners`` rows of the projects file
    (synthetic projects beyond the file are drawn with the seed, so no contract can name one).
    """
    if not scenario.government.contracts:
        return
    # Imported here: sim.agents.miner imports this module (for ScenarioError).
    from sim.agents.miner import read_projects

    path = projects_path(scenario)
    try:
        projects = read_projects(path)
    except ScenarioError as err:
        where = f"{err.file} {err.key}" if err.key != "population.miners_file" else err.file
        raise ScenarioError(origin, "population.miners_file", f"{where}: {err.problem}") from None
    count = scenario.population.miners
    names = [p.name for p in (projects if count is None else projects[:count])]
    for i, contract in enumerate(scenario.government.contracts):
        if contract.miner in names:
            continue
        hint = difflib.get_close_matches(contract.miner, names, n=1)
        extra = f" (did you mean {hint[0]!r}?)" if hint else ""
        used = f"first {count} rows" if count is not None and count < len(projects) else "rows"
        problem = (
            f"got {_shown(contract.miner)}{extra}; no such project among the {used} of "
            f"{scenario.population.miners_file}; allowed: {', '.join(sorted(names))}"
        )
        raise ScenarioError(origin, f"government.contracts[{i}].miner", problem)


def _validated(data: dict[str, Any], origin: str, prefix: str) -> Scenario:
    """``Scenario.model_validate`` with its first problem as a ``ScenarioError``."""
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as err:
        key, problem = _describe(Scenario, err.errors()[0])
        more = len(err.errors()) - 1
        if more:
            problem += f" (and {more} more problem{'s' if more > 1 else ''})"
        raise ScenarioError(origin, f"{prefix}{key}", problem) from None
    loc = _bool_as_number(data, scenario)
    if loc is not None:
        raise ScenarioError(
            origin, f"{prefix}{dotted(loc)}", "got true/false; must be a number here"
        )
    return scenario


def inherited_data(path: Path, chain: tuple[Path, ...]) -> dict[str, Any]:
    """A scenario file's data merged over the file it names in ``scenario.base``, recursively.

    Tables merge and values replace; ``schedule`` and ``government.contracts`` lists extend the
    base's; ``sources`` merge. ``base`` is a stem in ``scenarios/`` or a path relative to the file.
    """
    data = read_toml(path)
    _check_shape(data, str(path))
    base = data.get("scenario", {}).get("base")
    if not base:
        return data
    if not isinstance(base, str):
        raise ScenarioError(
            str(path), "scenario.base", f"got {_shown(base)}; must be a scenario name or path"
        )
    try:
        relative = (path.parent / base) if base.endswith(".toml") else None
        found = relative is not None and relative.is_file()
        base_path = relative if found and relative is not None else scenario_path(base)
    except (OSError, ValueError, ScenarioError) as err:
        problem = err.problem if isinstance(err, ScenarioError) else str(err)
        raise ScenarioError(str(path), "scenario.base", f"got {_shown(base)}: {problem}") from None
    if base_path.resolve() in {p.resolve() for p in (*chain, path)}:
        raise ScenarioError(
            str(path), "scenario.base", f"{base!r} leads back to this file (a cycle)"
        )
    parent = inherited_data(base_path, (*chain, path))
    merged = deep_merge(parent, {k: v for k, v in data.items() if k != "schedule"})
    merged["schedule"] = [*parent.get("schedule", []), *data.get("schedule", [])]
    contracts = data.get("government", {}).get("contracts")
    if contracts is not None:
        merged.setdefault("government", {})["contracts"] = [
            *parent.get("government", {}).get("contracts", []),
            *contracts,
        ]
    merged.setdefault("scenario", {}).pop("name", None)
    merged["scenario"].update(dict(data.get("scenario", {})))
    return merged


def _check_shape(data: dict[str, Any], origin: str) -> None:
    """The tables and lists that inheritance merges must be tables and lists."""
    for key in ("scenario", "government"):
        if key in data and not isinstance(data[key], dict):
            raise ScenarioError(origin, key, f"got {_shown(data[key])}; must be a table ([{key}])")
    if "schedule" in data and not isinstance(data["schedule"], list):
        problem = f"got {_shown(data['schedule'])}; must be a list of [[schedule]] tables"
        raise ScenarioError(origin, "schedule", problem)
    contracts = data.get("government", {}).get("contracts")
    if contracts is not None and not isinstance(contracts, list):
        problem = f"got {_shown(contracts)}; must be a list of [[government.contracts]] tables"
        raise ScenarioError(origin, "government.contracts", problem)


def load_scenario(name_or_path: str | Path, overrides: Mapping[str, Any] | None = None) -> Scenario:
    """Load a scenario by stem or path, apply dotted-key overrides, validate.

    Args:
        name_or_path: ``baseline`` (a file in ``scenarios/``) or a path to a TOML file.
        overrides: ``{"policy.tariff.ndpr": 1.0}``; values may be strings as typed on a command line.

    Raises:
        ScenarioError: the file, key and what is allowed, for any problem.
    """
    path = scenario_path(name_or_path)
    origin = str(path)
    file_data = inherited_data(path, ())
    data = deep_merge(Scenario().model_dump(), file_data)
    data.setdefault("scenario", {})
    own = read_toml(path).get("scenario", {})  # a table: inherited_data checked it
    if "name" not in own:
        data["scenario"]["name"] = path.stem
    for key, value in (overrides or {}).items():
        parsed = parse_value(value) if isinstance(value, str) else value
        set_dotted(data, key, parsed, f"{origin} (override {key}={value!r})")
    scenario = validate(data, origin)
    _check_contract_miners(scenario, origin)
    return scenario


def resolved_dict(scenario: Scenario) -> dict[str, Any]:
    """The fully resolved parameters as plain data (for manifests and run ids)."""
    return scenario.model_dump(mode="json")


def is_schedulable(key: str) -> bool:
    """Whether ``key`` may change while a run goes on (schedule, government, browser levers)."""
    return key.startswith(SCHEDULABLE_PREFIXES)
