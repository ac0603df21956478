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
the block interval as its outer level. With R ≥ 2 it also prints, per variant, how far the ratio
moves between the replays of one run (each replay's median block-pair ratio, read back from the
run's stored samples) beside how far it moves between runs: when runs differ by more than their
replays do, part of the variation is fixed for a whole agent session and no interval built from
one session's replays can see it. Needs only Python 3's standard library.
"""

import argparse
import json
import math
import os
import re
import sqlite3
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
        derived.write_text(re.sub(r"\nrepeats = \d+\n", f"\nrepeats = {args.repeats}\n", text))
        scenario = derived
    ratios: dict[str, list[tuple[float, tuple, tuple]]] = {}
    run_ids: list[tuple[str, str]] = []  # (run id, reference variant)
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
            reference = next((e["variant"] for e in results["entries"] if e.get("reference")), None)
            run_ids.append((results["run_id"], reference))
            for e in results["entries"]:
                m = e.get("metrics") or {}
                block, sample = m.get("latency_ratio_by_block"), m.get("latency_ratio_vs_reference")
                if not block or not sample:
                    continue
                bci = block["ci"] and (block["ci"]["lo"], block["ci"]["hi"])
                sci = (sample["ci"]["lo"], sample["ci"]["hi"])
                ratios.setdefault(e["variant"], []).append((block["ratio"], sample["ratio"], bci, sci))
            print(f"run {i + 1}/{args.runs} done", file=sys.stderr)
        block_rule = int((re.search(r"\ninterleave_block = (\d+)", scenario.read_text()) or [0, 64])[1])
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
    if (args.repeats or 1) >= 2:
        replay_spread(work / "g.db", run_ids, args.repeats, block_rule)
    return 0


def replay_medians(a: list[float], b: list[float], repeats: int, block_rule: int) -> list[float]:
    """Each replay's median over its blocks of median(b block) / median(a block), the blocks laid
    out as the runner lays them (never fewer than 6 per pass)."""
    n = len(a) // repeats
    block = max(1, min(block_rule, math.ceil(n / 6)))
    out = []
    for r in range(repeats):
        pairs = []
        for start in range(r * n, (r + 1) * n, block):
            end = min(start + block, (r + 1) * n)
            pairs.append(statistics.median(b[start:end]) / statistics.median(a[start:end]))
        out.append(statistics.median(pairs))
    return out


def replay_spread(db: Path, run_ids: list[tuple[str, str]], repeats: int, block_rule: int) -> None:
    con = sqlite3.connect(db)

    def samples(run_id: str, variant: str) -> list[float]:
        rows = con.execute(
            "SELECT device_us FROM samples WHERE run_id = ? AND variant = ? ORDER BY chunk",
            (run_id, variant),
        ).fetchall()
        blob = b"".join(r[0] for r in rows)
        return [x[0] for x in __import__("struct").iter_unpack("<d", blob)]

    variants = [v for (v,) in con.execute("SELECT DISTINCT variant FROM samples ORDER BY variant")]
    print(f"\n{'variant':<14} {'sd of log ratio: between replays of a run (mean)':>48}  {'between runs':>12}")
    for variant in variants:
        within, run_level = [], []
        for run_id, reference in run_ids:
            if variant == reference:
                continue
            a, b = samples(run_id, reference), samples(run_id, variant)
            if not a or len(a) != len(b) or len(a) % repeats:
                continue
            logs = [math.log(m) for m in replay_medians(a, b, repeats, block_rule)]
            within.append(statistics.stdev(logs))
            run_level.append(statistics.mean(logs))
        if len(run_level) >= 2:
            print(f"{variant:<14} {100 * statistics.mean(within):>47.1f} %  {100 * statistics.stdev(run_level):>10.1f} %")


if __name__ == "__main__":
    sys.exit(main())
