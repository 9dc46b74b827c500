"""The CI gate's benchmarks, for pytest-benchmark; not part of `make test` (no test_ prefix).

    python -m runners.bench check                   # = make bench-check (runs this file)
    .venv/bin/python -m pytest tests/benchmarks/bench_zoo.py --benchmark-only \\
        --benchmark-json=now.json                   # pytest-benchmark's own table and JSON
    .venv/bin/pytest-benchmark compare results/bench/baseline-cpu.json now.json

What is measured and how a run is judged: runners/bench/gate.py.
"""

from __future__ import annotations

import pytest

from runners.bench import gate as bench


@pytest.mark.parametrize("case", bench.cases_from_environment(), ids=lambda case: case.name)
def test_attention(benchmark, case: bench.Case) -> None:
    info = bench.run_case(benchmark, case)
    assert info["peak_mem_bytes"] > 0 and info["normalised"] > 0
