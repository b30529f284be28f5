"""The levers the browser app offers, with their allowed ranges read from the parameter schema.

Each lever is one dotted scenario key (the same keys as ``--set`` and the schedule). Its bounds come
from ``sim.params`` (STYLE.md 2: one schema drives validation and the app's controls); a lever
only adds how to show it: a label, a display scale (fractions as percent) and, where the schema's
range is far wider than useful on a slider (a tariff may be up to 10,000%), a narrower slider
range. A number field beside such a slider still accepts every value the schema allows, and
nothing outside it.

``live`` levers apply from the next simulated month through ``RareEarthModel.set_lever`` and are
logged as policy events; set-up levers (``live=False``) are read when the run is built (Reset).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from sim.params import GOODS, PRODUCTS, Scenario
from sim.scenario import is_schedulable

Kind = Literal["number", "optional", "switch", "integer"]

GOOD_LABELS = {"ndpr": "NdPr", "dytb": "Dy/Tb", "cela": "Ce/La", "magnet": "Magnets"}


class LeverValueError(ValueError):
    """A value outside a lever's allowed range, or not a number: says what is allowed."""


@dataclass(frozen=True)
class Bounds:
    """Allowed range of a schema field (None where unbounded)."""

    low: float | None
    high: float | None
    low_exclusive: bool = False
    high_exclusive: bool = False

    def contains(self, value: float) -> bool:
        """Whether ``value`` is allowed."""
        if self.low is not None and (
            value < self.low or (self.low_exclusive and value == self.low)
        ):
            return False
        return not (
            self.high is not None
            and (value > self.high or (self.high_exclusive and value == self.high))
        )

    def describe(self, scale: float = 1.0, unit: str = "") -> str:
        """``between 0 and 10,000 %`` in display units."""

        def show(x: float) -> str:
            return f"{x * scale:,.6g}"

        suffix = f" {unit}" if unit else ""
        if self.low is not None and self.high is not None:
            lo = "above" if self.low_exclusive else "from"
            return f"{lo} {show(self.low)} to {show(self.high)}{suffix}"
        if self.low is not None:
            return f"{'above' if self.low_exclusive else 'at least'} {show(self.low)}{suffix}"
        if self.high is not None:
            return f"at most {show(self.high)}{suffix}"
        return "any number"


@dataclass(frozen=True)
class Lever:
    """One control: a dotted key, how to show it and its allowed range (from the schema).

    Attributes:
        key: dotted scenario key, e.g. ``policy.tariff.ndpr``.
        label: short label on the page.
        group: the panel it sits in.
        kind: ``number`` (a slider and a field), ``optional`` (a switch, then a number),
            ``switch`` (on/off) or ``integer``.
        unit: unit as shown (after ``scale``).
        scale: display value = model value x scale (fractions shown as percent: 100).
        slider_max: upper end of the slider in model units, when narrower than the schema's.
        step: slider step in display units.
        default_on: value an ``optional`` lever takes when switched on (model units); None =
            decided by the page (e.g. last year's exports for a quota).
        live: applies during a run (from the next month) rather than at Reset.
    """

    key: str
    label: str
    group: str
    kind: Kind
    unit: str = ""
    scale: float = 1.0
    slider_max: float | None = None
    step: float = 1.0
    default_on: float | None = None
    live: bool = True

    @property
    def bounds(self) -> Bounds:
        """The allowed range, from the schema."""
        return field_bounds(self.key)

    def slider_range(self) -> tuple[float, float]:
        """Slider ends in display units: the schema's range, narrowed by ``slider_max``."""
        b = self.bounds
        low = b.low if b.low is not None else 0.0
        high = b.high if b.high is not None else (self.slider_max or low + 100.0)
        if self.slider_max is not None:
            high = min(high, self.slider_max)
        if b.low_exclusive:
            low = low + self.step / self.scale
        return low * self.scale, high * self.scale

    def parse(self, text: str | float | int) -> float:
        """A display-unit entry turned into a checked model value; raises ``LeverValueError``."""
        allowed = self.bounds.describe(self.scale, self.unit)
        if isinstance(text, str):
            cleaned = text.strip().replace(",", "").removesuffix("%").strip()
            try:
                shown = float(cleaned)
            except ValueError:
                msg = f"{self.label}: {text!r} is not a number; allowed {allowed}"
                raise LeverValueError(msg) from None
        else:
            shown = float(text)
        if not math.isfinite(shown):
            msg = f"{self.label}: {text!r} is not a finite number; allowed {allowed}"
            raise LeverValueError(msg)
        if self.kind == "integer" and shown != int(shown):
            msg = f"{self.label}: {text!r} is not a whole number; allowed {allowed}"
            raise LeverValueError(msg)
        value = shown / self.scale
        if not self.bounds.contains(value):
            msg = f"{self.label}: {shown:,.6g} is out of range; allowed {allowed}"
            raise LeverValueError(msg)
        return int(value) if self.kind == "integer" else value


def _field(key: str) -> FieldInfo:
    node: type[BaseModel] = Scenario
    parts = key.split(".")
    for i, part in enumerate(parts):
        info = node.model_fields.get(part)
        if info is None:
            msg = f"{key}: no such scenario key (at {part!r})"
            raise KeyError(msg)
        if i == len(parts) - 1:
            return info
        annotation = info.annotation
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            msg = f"{key}: {'.'.join(parts[: i + 1])} is a value, not a table"
            raise KeyError(msg)
        node = annotation
    msg = f"{key}: empty key"
    raise KeyError(msg)


@cache
def field_bounds(key: str) -> Bounds:
    """The schema's allowed range of a numeric key."""
    low = high = None
    low_ex = high_ex = False
    for meta in _field(key).metadata:
        if getattr(meta, "ge", None) is not None:
            low = float(meta.ge)
        if getattr(meta, "gt", None) is not None:
            low, low_ex = float(meta.gt), True
        if getattr(meta, "le", None) is not None:
            high = float(meta.le)
        if getattr(meta, "lt", None) is not None:
            high, high_ex = float(meta.lt), True
    return Bounds(low, high, low_ex, high_ex)


def read_value(scenario: Scenario, key: str) -> Any:
    """The value of a dotted key in a scenario."""
    node: Any = scenario
    for part in key.split("."):
        node = getattr(node, part)
    return node


TARIFF_SLIDER_MAX = 3.0  # 300%: the tariff sweep goes to 150%; the field takes up to the schema's
QUOTA_SLIDER_MAX = {"ndpr": 20_000.0, "dytb": 2_000.0, "cela": 200_000.0, "magnet": 200_000.0}
FLOOR_SLIDER_MAX = {"ndpr": 300.0, "dytb": 2_000.0, "cela": 20.0}
FLOOR_DEFAULT = {"ndpr": 110.0, "dytb": 400.0, "cela": 2.0}  # ndpr: the DoD-MP floor (CAL)


def _levers() -> tuple[Lever, ...]:
    levers: list[Lever] = []
    for good in GOODS:
        levers.append(
            Lever(
                f"policy.tariff.{good}",
                f"Tariff on {GOOD_LABELS[good]}",
                "Tariffs",
                "number",
                "%",
                scale=100.0,
                slider_max=TARIFF_SLIDER_MAX,
                step=5.0,
            )
        )
    for good in GOODS:
        unit = "t/yr" if good == "magnet" else "t REO/yr"
        levers.append(
            Lever(
                f"policy.export_quota.{good}",
                f"Export quota, {GOOD_LABELS[good]}",
                "Export quotas and licences",
                "optional",
                unit,
                slider_max=QUOTA_SLIDER_MAX[good],
                step=QUOTA_SLIDER_MAX[good] / 200.0,
            )
        )
        levers.append(
            Lever(
                f"foreign.licensing.{good}.active",
                f"Export licences, {GOOD_LABELS[good]}",
                "Export quotas and licences",
                "switch",
            )
        )
        levers.append(
            Lever(
                f"foreign.licensing.{good}.approval_share",
                f"Licences approved, {GOOD_LABELS[good]}",
                "Export quotas and licences",
                "number",
                "%",
                scale=100.0,
                step=5.0,
            )
        )
    for product in PRODUCTS:
        levers.append(
            Lever(
                f"policy.price_floor.{product}",
                f"Price floor, {GOOD_LABELS[product]}",
                "Domestic support",
                "optional",
                "US$/kg",
                slider_max=FLOOR_SLIDER_MAX[product],
                step=FLOOR_SLIDER_MAX[product] / 100.0,
                default_on=FLOOR_DEFAULT[product],
            )
        )
    levers += [
        Lever("policy.bank_initiative", "Bank programme on", "Domestic support", "switch"),
        Lever(
            "bank.programme_size_busd",
            "Bank programme size (at Reset)",
            "Domestic support",
            "number",
            "US$ bn",
            slider_max=3_000.0,
            step=50.0,
            live=False,
        ),
        Lever(
            "government.reaction.enabled",
            "Government reacts to a crisis",
            "Domestic support",
            "switch",
        ),
        Lever(
            "foreign.predatory_pricing",
            "Predatory export pricing",
            "Foreign supplier",
            "switch",
        ),
    ]
    return tuple(levers)


LEVERS: tuple[Lever, ...] = _levers()
LEVER_BY_KEY: dict[str, Lever] = {lever.key: lever for lever in LEVERS}
GROUPS: tuple[str, ...] = tuple(dict.fromkeys(lever.group for lever in LEVERS))


def check_levers() -> None:
    """Every live lever is a key the schedule may change; every key exists in the schema."""
    for lever in LEVERS:
        _field(lever.key)
        if lever.live and not is_schedulable(lever.key):
            msg = f"{lever.key}: marked live but not schedulable (sim.params.SCHEDULABLE_PREFIXES)"
            raise ValueError(msg)


check_levers()
