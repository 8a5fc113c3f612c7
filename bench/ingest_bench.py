"""Ingest benchmark: time and peak memory of stage 01 (``cp_toolkit.ingest.run_stage``: streamed
ingest, quarantine, scorecard and orders written to a run folder) on a generated CSV, as ratios
against the cost of merely reading the same file with ``pandas.read_csv``.

Usage::

    python bench/ingest_bench.py --lines 1000000 2000000

Each measurement runs in a fresh subprocess (peak memory = that process's maximum resident
set size, VmHWM, Linux only). The CSV and the run folder are written to a temporary folder and removed afterwards.
Ingest reads ``CHUNK_ROWS`` lines at a time and lets DuckDB spill past ``DUCKDB_MEMORY_LIMIT``,
so its peak memory should stay flat as the file grows while ``read_csv``'s grows with it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

COLUMNS = {
    "customer_id": "customer",
    "order_id": "invoice",
    "ts": "time",
    "quantity": "qty",
    "price": "price",
    "product_id": "sku",
}

CHILD = r"""
import json, os, sys, tempfile, time
import pandas as pd
what, path = sys.argv[1], sys.argv[2]
os.environ["CP_TOOLKIT_PSEUDONYM_KEY"] = "bench"
t0 = time.perf_counter()
if what == "read_csv":
    rows = len(pd.read_csv(path, dtype=str, keep_default_na=False))
else:
    from cp_toolkit import RunFolder
    from cp_toolkit.ingest import run_stage
    spec = {"transactions": {"path": path, "columns": json.loads(sys.argv[3])}}
    with tempfile.TemporaryDirectory() as run:
        quality = run_stage(RunFolder(run), dataset="custom", sources=spec, as_of="2023-12-31")
    assert quality["rows_kept"] + quality["rows_quarantined"] == quality["rows_in"]
    rows = quality["rows_in"]
seconds = time.perf_counter() - t0
# VmHWM: this process's own peak; ru_maxrss would carry over the parent's peak across fork and exec
peak_kb = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"rows": rows, "seconds": seconds, "peak_mb": peak_kb / 1024}))
"""


def write_csv(path: Path, lines: int, seed: int = 42) -> None:
    """A realistic, slightly dirty transaction file: ~50 lines per customer, 5 per invoice."""
    rng = np.random.default_rng(seed)
    customers = rng.integers(10_000, 10_000 + max(lines // 50, 1), lines).astype(str).astype(object)
    customers[rng.random(lines) < 0.005] = ""  # missing customer
    frame = pd.DataFrame(
        {
            "invoice": (np.arange(lines) // 5).astype(str),
            "sku": rng.integers(1, 5_000, lines).astype(str),
            "time": pd.Timestamp("2023-01-01")
            + pd.to_timedelta(np.sort(rng.integers(0, 365 * 86_400, lines)), unit="s"),
            "qty": rng.integers(1, 6, lines),
            "price": np.round(rng.lognormal(1.5, 0.8, lines), 2),
            "customer": customers,
        }
    )
    frame.loc[rng.random(lines) < 0.005, "price"] = 0.0  # non-positive amount
    dup = frame.sample(frac=0.002, random_state=seed)  # exact duplicates
    pd.concat([frame, dup]).to_csv(path, index=False, date_format="%Y-%m-%d %H:%M:%S")


def measure(what: str, path: Path) -> dict:
    """Run one measurement in a fresh interpreter."""
    out = subprocess.run(
        [sys.executable, "-c", CHILD, what, str(path), json.dumps(COLUMNS)], check=True, capture_output=True, text=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, nargs="+", default=[1_000_000])
    args = parser.parse_args()
    print(
        f"{'lines':>11} {'file MB':>8} {'read_csv s':>10} {'ingest s':>9} {'time x':>7} "
        f"{'read_csv MB':>11} {'ingest MB':>10} {'memory x':>9}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for lines in args.lines:
            path = Path(tmp) / f"tx_{lines}.csv"
            t0 = time.perf_counter()
            write_csv(path, lines)
            print(f"# generated {path.name} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
            ref, ours = measure("read_csv", path), measure("ingest", path)
            assert ref["rows"] == ours["rows"], (ref, ours)
            print(
                f"{ref['rows']:>11,} {path.stat().st_size / 2**20:>8.0f} {ref['seconds']:>10.1f} "
                f"{ours['seconds']:>9.1f} {ours['seconds'] / ref['seconds']:>7.1f} {ref['peak_mb']:>11.0f} "
                f"{ours['peak_mb']:>10.0f} {ours['peak_mb'] / ref['peak_mb']:>9.1f}"
            )


if __name__ == "__main__":
    main()
