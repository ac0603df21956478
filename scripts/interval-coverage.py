#!/usr/bin/env python3
"""Do Gauntlet's intervals hold from run to run?

Runs a scenario N times back to back with the release binaries (each run a fresh agent process)
and, for each variant's device-latency ratio to the reference, reports the share of runs whose
95 % interval contains the median ratio over all runs: for the dependence-aware block-pair
interval (`latency_ratio_by_block`, what gates judge) and for the per-sample bootstrap
(`latency_ratio_vs_reference`, the old figure). An interval that describes the figure's
uncertainty should contain it in about 95 % of runs.

    cargo build --release
    scripts/interval-coverage.py [--runs 10] [--repeats R] [SCENARIO]

`--repeats R` replays the dataset R times per run (the scenario's `[run] repeats`), which enters
the block interval as its outer level. Needs only Python 3's standard library.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenario", nargs="?", default=str(ROOT / "scenarios/cwru-quantization.toml"))
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--gauntlet", default=str(ROOT / "target/release/gauntlet"))
    args = parser.parse_args()
    if args.runs < 2:
        parser.error("--runs must be at least 2")

    work = Path(tempfile.mkdtemp(prefix="gauntlet-coverage-"))
    scenario = Path(args.scenario).resolve()
    if args.repeats:
        text = scenario.read_text()
        # Same folder as the original, so its relative dataset and model paths still resolve.
        derived = scenario.with_name(f".coverage-{os.getpid()}-{scenario.name}")
        derived.write_text(text.replace("\nrepeats = 1\n", f"\nrepeats = {args.repeats}\n"))
        scenario = derived
    ratios: dict[str, list[tuple[float, tuple, tuple]]] = {}
    try:
        for i in range(args.runs):
            out = work / f"run{i}"
            env = dict(os.environ, GAUNTLET_DB=str(work / "g.db"))
            done = subprocess.run(
                [args.gauntlet, "run", str(scenario), "--out", str(out)],
                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            )
            results_path = out / "results.json"
            if not results_path.exists():
                print(f"run {i}: no results ({done.stderr.strip()[-300:]})", file=sys.stderr)
                return 3
            results = json.loads(results_path.read_text())
            for e in results["entries"]:
                m = e.get("metrics") or {}
                block, sample = m.get("latency_ratio_by_block"), m.get("latency_ratio_vs_reference")
                if not block or not sample:
                    continue
                bci = block["ci"] and (block["ci"]["lo"], block["ci"]["hi"])
                sci = (sample["ci"]["lo"], sample["ci"]["hi"])
                ratios.setdefault(e["variant"], []).append((block["ratio"], sample["ratio"], bci, sci))
            print(f"run {i + 1}/{args.runs} done", file=sys.stderr)
    finally:
        if args.repeats:
            scenario.unlink(missing_ok=True)

    print(f"{'variant':<14} {'runs':>4}  {'median ratio':>12}  {'block-pair CI covers':>20}  "
          f"{'per-sample CI covers':>20}  {'median width block / sample':>28}")
    for variant, rows in ratios.items():
        block_centre = statistics.median(r[0] for r in rows)
        sample_centre = statistics.median(r[1] for r in rows)
        block_hits = sum(1 for r in rows if r[2] and r[2][0] <= block_centre <= r[2][1])
        no_ci = sum(1 for r in rows if not r[2])
        sample_hits = sum(1 for r in rows if r[3][0] <= sample_centre <= r[3][1])
        n = len(rows)
        bw = statistics.median((r[2][1] - r[2][0]) / r[0] for r in rows if r[2]) if n > no_ci else float("nan")
        sw = statistics.median((r[3][1] - r[3][0]) / r[1] for r in rows)
        note = f" ({no_ci} runs: too few blocks)" if no_ci else ""
        print(f"{variant:<14} {n:>4}  {block_centre:>12.3f}  {block_hits:>3}/{n:<3} = {100 * block_hits / n:5.1f} %  "
              f"{sample_hits:>3}/{n:<3} = {100 * sample_hits / n:5.1f} %  {100 * bw:>12.1f} % / {100 * sw:.1f} %{note}")
        for r in rows:
            b = f"[{r[2][0]:.3f}, {r[2][1]:.3f}]" if r[2] else "none"
            print(f"    block {r[0]:.3f} {b:<18} per-sample {r[1]:.3f} [{r[3][0]:.3f}, {r[3][1]:.3f}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
