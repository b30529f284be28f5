"""Loading and validating scenario files: TOML in, a frozen ``Scenario`` out, or a clear refusal.

A scenario file sets only what differs from the schema's defaults (``sim.params``). Loading merges
the file over the defaults, then ``--set``/``overrides`` over the file, and validates the result
once. Any problem raises ``ScenarioError`` naming the file, the dotted key, the value and what is
allowed; the CLI turns that into exit status 2.
"""

from __future__ import annotations

import copy
import difflib
import math
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from sim.params import SCHEDULABLE_PREFIXES, Scenario

SCENARIO_DIR = Path(__file__).resolve().parent.parent / "scenarios"


class ScenarioError(ValueError):
    """Bad input: names the file, the key, the value and what is allowed."""

    def __init__(self, file: str, key: str, problem: str) -> None:
        self.file = file
        self.key = key
        self.problem = problem
        where = f"{file}: {key}" if key else file
        super().__init__(f"{where}: {problem}")


def scenario_path(name_or_path: str | Path) -> Path:
    """Resolve a scenario stem (``baseline``) or a path to an existing file."""
    candidate = Path(name_or_path)
    if candidate.suffix == ".toml" or candidate.exists() or "/" in str(name_or_path):
        if not candidate.is_file():
            raise ScenarioError(str(candidate), "", "no such scenario file")
        return candidate
    stem_path = SCENARIO_DIR / f"{name_or_path}.toml"
    if not stem_path.is_file():
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
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as err:
        raise ScenarioError(
            str(path), "", f"not a UTF-8 text file ({err.reason} at byte {err.start})"
        ) from None
    except tomllib.TOMLDecodeError as err:
        raise ScenarioError(str(path), "", f"not valid TOML: {err}") from None
    except OSError as err:
        raise ScenarioError(str(path), "", f"cannot read: {err.strerror}") from None


def parse_value(text: str) -> Any:
    """Parse a ``--set`` value as a TOML value (1.0, true, "x", [1, 2]); bare words stay strings."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def set_dotted(data: dict[str, Any], key: str, value: Any, origin: str) -> None:
    """Set ``a.b.c`` in nested dicts, creating tables on the way.

    The string ``"none"`` (any case) unsets an optional key, e.g. lifts an export quota: TOML has no
    null. Validation then accepts it only where a key may be empty.
    """
    if isinstance(value, str) and value.strip().lower() == "none":
        value = None
    parts = key.split(".")
    if not key or any(not part for part in parts):
        raise ScenarioError(origin, key, "a key must be dotted names like policy.tariff.ndpr")
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


def _describe(model: type[BaseModel], error: Any) -> tuple[str, str]:
    loc = tuple(error["loc"])
    key = ".".join(str(p) for p in loc)
    if error["type"] == "extra_forbidden":
        return key, _allowed(model, loc) or "unknown key"
    value = error.get("input")
    shown = repr(value) if not isinstance(value, dict) else "a table"
    if len(shown) > 80:
        shown = shown[:77] + "..."
    message = error["msg"]
    ctx = error.get("ctx") or {}
    if error["type"] in {"greater_than_equal", "less_than_equal", "greater_than", "less_than"}:
        message = f"must be {message.removeprefix('Input should be ')}"
    elif ctx.get("error"):
        message = str(ctx["error"])
    return key, f"got {shown}; {message}"


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
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        key, problem = _describe(Scenario, first)
        more = len(err.errors()) - 1
        if more:
            problem += f" (and {more} more problem{'s' if more > 1 else ''})"
        raise ScenarioError(origin, key, problem) from None
    for i, change in enumerate(scenario.schedule):
        probe = copy.deepcopy(data)
        probe.pop("schedule", None)
        set_dotted(probe, change.key, change.value, origin)
        try:
            Scenario.model_validate(probe)
        except ValidationError as err:
            key, problem = _describe(Scenario, err.errors()[0])
            raise ScenarioError(origin, f"schedule[{i}] ({change.date}) {key}", problem) from None
    return scenario


def inherited_data(path: Path, chain: tuple[Path, ...]) -> dict[str, Any]:
    """A scenario file's data merged over the file it names in ``scenario.base``, recursively.

    Tables merge and values replace; ``schedule`` and ``government.contracts`` lists extend the
    base's; ``sources`` merge. ``base`` is a stem in ``scenarios/`` or a path relative to the file.
    """
    data = read_toml(path)
    base = data.get("scenario", {}).get("base")
    if not base:
        return data
    if not isinstance(base, str):
        raise ScenarioError(
            str(path), "scenario.base", f"got {base!r}; must be a scenario name or path"
        )
    relative = (path.parent / base) if base.endswith(".toml") else None
    base_path = relative if relative is not None and relative.is_file() else scenario_path(base)
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
    own = read_toml(path).get("scenario", {})
    if "name" not in own:
        data["scenario"]["name"] = path.stem
    for key, value in (overrides or {}).items():
        parsed = parse_value(value) if isinstance(value, str) else value
        set_dotted(data, key, parsed, f"{origin} (override {key}={value!r})")
    return validate(data, origin)


def resolved_dict(scenario: Scenario) -> dict[str, Any]:
    """The fully resolved parameters as plain data (for manifests and run ids)."""
    return scenario.model_dump(mode="json")


def is_schedulable(key: str) -> bool:
    """Whether ``key`` may change while a run goes on (schedule, government, browser levers)."""
    return key.startswith(SCHEDULABLE_PREFIXES)
