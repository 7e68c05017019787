"""``python -m bench``: run every benchmark and write BENCHMARKS.md from their results.

``python -m bench --report`` only re-renders BENCHMARKS.md from bench/results/*.json.
"""

from __future__ import annotations

import argparse

from bench import e2e, ingress, workers
from bench.common import ROOT
from bench.report import load, render
from bench.report_designs import DESIGN_RUNS


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--report", action="store_true", help="only render BENCHMARKS.md from saved results")
    parser.add_argument("--quick", action="store_true", help="short runs (smoke test, not for the record)")
    args = parser.parse_args()
    if not args.report:
        run_all(quick=args.quick)
    text = render(load("ingress"), load("workers"), load("e2e"), load("e2e-everysec"))
    (ROOT / "BENCHMARKS.md").write_text(text)
    print((ROOT / "BENCHMARKS.md").read_text())
    return 0


def run_all(*, quick: bool) -> None:
    """Every benchmark in turn, each saving its results under bench/results/."""
    ingress.main(seconds=3 if quick else 10, rounds=1 if quick else 3)
    workers.main(count=2_000 if quick else 20_000, stock_count=300 if quick else 2_000)
    e2e.main(seconds=10 if quick else 60)
    e2e.main(seconds=10 if quick else 30, appendfsync="everysec")
    for mode, connections, workers_ in DESIGN_RUNS:
        seconds = 10 if quick else 30
        e2e.main(seconds, connections, ordering=mode, workers=workers_, compare=True)


if __name__ == "__main__":
    raise SystemExit(main())
