"""docs/guide.md stays true: its commands still run, its error messages are still resim's.

One reduced run of ``tools/guide.py --quick`` (2 seeds, 30 months, 100 manufacturers; about a
minute) executes every command the guide shows, checks each exit status, draws the figures and
fills a copy of the guide. The checks below then compare the guide with that run and with the
tool that regenerates it.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from sim.cli import build_parser
from sim.scenario import load_scenario
from sim.sweep import plan_sweep

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "guide.md"
FIGURES = ("guide_tariff.png", "guide_embargo.png", "guide_bank.png")


def _load_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("guide_tool", ROOT / "tools" / "guide.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


tool = _load_tool()


def _regions(text: str) -> dict[tuple[str, str], str]:
    return {(m["kind"], m["name"]): m["body"] for m in tool.MARKER.finditer(text)}


def _guide_commands(text: str) -> list[str]:
    """Every line starting ``resim `` inside a fenced ``sh`` block of the guide."""
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.DOTALL):
        commands += [line.strip() for line in block.splitlines() if line.startswith("resim ")]
    return commands


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One quick run of tools/guide.py into a temporary folder, filling a copy of the guide."""
    tmp = tmp_path_factory.mktemp("guide")
    guide = tmp / "guide.md"
    guide.write_text(GUIDE.read_text(encoding="utf-8"), encoding="utf-8")
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "tools" / "guide.py"),
            "--quick",
            "--out",
            str(tmp / "out"),
            "--figures",
            str(tmp / "figures"),
            "--guide",
            str(guide),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    return {"done": done, "tmp": tmp, "guide": guide}


@pytest.mark.slow
def test_quick_run_executes_every_command(quick: dict[str, Any]) -> None:
    done = quick["done"]
    assert done.returncode == 0, done.stderr[-4000:]
    for name in FIGURES:
        figure = quick["tmp"] / "figures" / name
        assert figure.stat().st_size > 20_000, name
    filled = quick["guide"].read_text(encoding="utf-8")
    assert "quick check" in filled
    assert "placeholder" not in filled


@pytest.mark.slow
def test_error_messages_in_the_guide_are_current(quick: dict[str, Any]) -> None:
    """Error examples do not depend on the run's size: the quick run must print the guide's text."""
    assert quick["done"].returncode == 0, quick["done"].stderr[-4000:]
    outputs = json.loads((quick["tmp"] / "out" / "outputs.json").read_text())
    setup = tool.Setup(quick["tmp"] / "out", True, False)
    regions = _regions(GUIDE.read_text(encoding="utf-8"))
    checked = 0
    for step in tool.STEPS:
        if step.show not in ("stderr", "check"):
            continue
        outcome = tool.Outcome(step, [], *outputs[step.id])
        shown = "```text\n" + tool.excerpt(outcome, setup) + "\n```\n"
        assert regions[("output", step.id)] == shown, (
            f"docs/guide.md is stale for {step.id}: run make guide (tools/guide.py)"
        )
        checked += 1
    assert checked >= 10


def test_guide_shows_the_tools_commands_and_files() -> None:
    """Regenerated regions match tools/guide.py: commands and example files as the tool runs them."""
    text = GUIDE.read_text(encoding="utf-8")
    shown = _guide_commands(text)
    assert shown == [step.command for step in tool.STEPS], "run make guide (tools/guide.py)"
    regions = _regions(text)
    for name, content in tool.EXAMPLES.items():
        assert regions[("file", name)] == f"```toml\n# {name}\n{content.rstrip()}\n```\n", name
    for kind in ("stamp", "table"):
        assert any(k == kind for k, _ in regions), kind
    for key, body in regions.items():
        assert body.strip(), f"empty region {key}"


def test_guide_commands_parse() -> None:
    """Every ``resim`` command in the guide is accepted by the argument parser."""
    parser = build_parser()
    commands = _guide_commands(GUIDE.read_text(encoding="utf-8"))
    assert len(commands) >= 25
    for command in commands:
        args = parser.parse_args(shlex.split(command)[1:])
        assert callable(args.func), command


def test_repository_inputs_of_the_guide_validate() -> None:
    """The scenarios and sweeps the guide runs from the repository load (names, keys, values)."""
    for step in tool.STEPS:
        if step.cwd != "root" or step.expect != 0:
            continue
        args = build_parser().parse_args(shlex.split(step.command)[1:])
        if args.command == "run":
            sets = dict(item.split("=", 1) for item in args.set)
            load_scenario(args.scenario, sets)
        elif args.command == "sweep":
            assert plan_sweep(args.sweep).runs


def test_guide_figures_exist() -> None:
    text = GUIDE.read_text(encoding="utf-8")
    linked = re.findall(r"!\[[^\]]*\]\((figures/[^)]+)\)", text)
    assert sorted(Path(p).name for p in linked) == sorted(FIGURES)
    for path in linked:
        assert (GUIDE.parent / path).is_file(), path
