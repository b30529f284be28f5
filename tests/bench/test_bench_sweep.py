"""Sweep throughput with 1 and 2 workers, parent memory against run count, result writing cost.

Goals (issue 5): >= 1.6x throughput with 2 workers on this 2-core machine, parent memory flat in
the number of runs, result writing <= 5 ms per run. Benchmarks measure; they assert nothing about
time. ``make bench`` prints the figures; ``extra_info`` carries the derived ones.
"""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path

import pytest

from sim import load_scenario, simulate
from sim.results import write_parquet
from sim.sweep import plan_sweep, run_sweep

RUNS = 100


def tiny_sweep(tmp: Path, seeds: int) -> Path:
    (tmp / "tiny.toml").write_text(
        '[scenario]\nbase = "baseline"\nname = "tiny"\nmonths = 24\n[population]\nmanufacturers = 100\n'
    )
    path = tmp / "bench.toml"
    path.write_text(
        f'[sweep]\nname = "bench"\nbase = "{tmp / "tiny.toml"}"\ndesign = "grid"\nseeds = {seeds}\n'
        '[[sweep.parameters]]\nkeys = ["policy.tariff.ndpr"]\nvalues = [0.0, 0.5, 1.0, 1.5]\n'
    )
    return path


@pytest.mark.benchmark(group="sweep-throughput")
@pytest.mark.parametrize("workers", [1, 2])
def test_sweep_throughput(benchmark, tmp_path, workers):
    runs = RUNS if not benchmark.disabled else 8  # plain `pytest`: only show that it works
    plan = plan_sweep(tiny_sweep(tmp_path, runs // 4))
    outs = iter(range(10))

    def sweep() -> None:
        run_sweep(plan, tmp_path / f"out{next(outs)}", workers=workers)

    # The warm-up round starts the workers' forkserver (a one-time import of the model, ~1 s,
    # once per process): otherwise whichever case runs first pays it and the ratio is skewed.
    benchmark.pedantic(sweep, rounds=2, iterations=1, warmup_rounds=1)
    benchmark.extra_info["runs"] = len(plan.runs)
    if benchmark.stats is not None:  # None when benchmarks are disabled (plain `pytest`)
        benchmark.extra_info["runs_per_second"] = len(plan.runs) / benchmark.stats.stats.median
    assert len(list((tmp_path / "out0" / "runs").glob("*.parquet"))) == len(plan.runs)


@pytest.mark.benchmark(group="sweep-parent-memory")
def test_parent_memory_flat_in_runs(benchmark, tmp_path):
    peaks = {}
    runs = RUNS if not benchmark.disabled else 16
    for seeds in (runs // 8, runs // 4):
        folder = tmp_path / f"s{seeds}"
        folder.mkdir()
        plan = plan_sweep(tiny_sweep(folder, seeds))
        tracemalloc.start()
        run_sweep(plan, tmp_path / f"s{seeds}" / "out", workers=2)
        peaks[len(plan.runs)] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    small, large = sorted(peaks)
    benchmark.extra_info["parent_peak_bytes"] = {str(k): v for k, v in peaks.items()}
    benchmark.extra_info["peak_ratio_2x_runs"] = peaks[large] / peaks[small]
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)


@pytest.mark.benchmark(group="result-writing")
def test_result_writing_per_run(benchmark, tmp_path):
    frame = simulate(load_scenario("baseline", overrides={"population.manufacturers": 100}), seed=1)
    counter = iter(range(10_000))

    def write() -> None:
        write_parquet(frame, tmp_path / f"{next(counter)}.parquet")

    started = time.perf_counter()
    benchmark.pedantic(write, rounds=50 if not benchmark.disabled else 1, iterations=1)
    benchmark.extra_info["rows"] = len(frame)
    benchmark.extra_info["seconds_total"] = time.perf_counter() - started
