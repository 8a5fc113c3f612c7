"""Does ``clv_model: auto`` forecast better than a fixed BG/NBD? A nested time split per dataset.

Usage::

    python bench/clv_model_choice.py [--online-retail ../shared/data/online_retail/online_retail.parquet]

For each dataset the last quarter of the observed span is the *evaluation* window. ``auto`` chooses
its model (among BG/NBD, MBG/NBD, Pareto/NBD, each plain and with a monthly index) on an earlier
split of the data before that window only: calibration on the first part, selection on the
quarter before the evaluation window. Then BG/NBD and the chosen model are both fitted on
everything before the evaluation window and scored on it. The reference is BG/NBD (the default
before ``auto``); the table prints each model's per-customer MAE and aggregate error on the
evaluation window, and the ratio MAE(BG/NBD) / MAE(auto): above 1, ``auto`` did better.
"""

from __future__ import annotations

import argparse
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from cp_toolkit import RunFolder, ensure
from cp_toolkit.clv import (
    calibration_end,
    calibration_holdout,
    choose_model,
    compare_models,
    diagnostics,
    simulate_bgnbd,
)
from cp_toolkit.config import load_params

ROOT = Path(__file__).resolve().parent.parent
SEASON = np.array([0.8, 0.75, 0.9, 0.95, 1.0, 0.85, 0.7, 0.8, 1.05, 1.2, 1.5, 1.55])


def orders(params_file: Path | None, **overrides: object) -> pd.DataFrame:
    """The orders a run of these parameters ingests."""
    with tempfile.TemporaryDirectory() as tmp:
        run = RunFolder(tmp)
        run.record_params(load_params(params_file, **overrides))
        return ensure(run, "orders")


def datasets(online_retail: Path | None) -> dict[str, tuple[Callable[[], pd.DataFrame], str, str]]:
    """name -> (orders, as_of, time unit)."""
    out = {
        "Complete Journey": (lambda: orders(ROOT / "params" / "default.yaml"), "2017-12-31", "days"),
        "CDNOW (23,570)": (lambda: orders(ROOT / "params" / "cdnow.yaml"), "1998-06-30", "weeks"),
        "CDNOW sample (2,357)": (
            lambda: orders(ROOT / "params" / "cdnow_paper.yaml", clv_calibration_end=None),
            "1998-06-30",
            "weeks",
        ),
        "simulated, a + b < 1": (
            lambda: simulate_bgnbd(4_000, {"r": 0.5, "alpha": 10.0, "a": 0.2, "b": 0.4}, seed=11, max_repeats=400),
            "2021-06-24",
            "days",
        ),
        "simulated, monthly pattern": (
            lambda: simulate_bgnbd(
                2_500,
                {"r": 0.9, "alpha": 30.0, "a": 0.5, "b": 6.0},
                start="2018-01-01",
                acquisition_days=360,
                horizon_days=1_095,
                max_repeats=300,
                seed=21,
                season=SEASON,
            ),  # fmt: skip
            "2020-12-30",
            "days",
        ),
    }
    if online_retail is not None:
        source = {"transactions": {"path": str(online_retail)}}
        out["UCI Online Retail"] = (
            lambda: orders(None, dataset="online_retail", sources=source, as_of="2011-12-09"),
            "2011-12-09",
            "days",
        )
    return out


def evaluate(tx: pd.DataFrame, as_of: str, unit: str) -> dict[str, object]:
    """Choose with auto before the evaluation window; score BG/NBD and the choice on it."""
    end = pd.Timestamp(as_of)
    cut = calibration_end(tx["ts"].min(), end, 0.25)  # start of the evaluation window
    select = calibration_end(tx["ts"].min(), cut, 0.25 / 0.75)  # a selection window of the same length
    specs = diagnostics.candidates("auto", "auto")
    early = calibration_holdout(tx, select, cut, unit)
    comparison, _, predictions = compare_models(early, unit, specs)
    pick = choose_model(comparison, predictions, early["frequency_holdout"], "auto", "auto")["chosen"]
    late = calibration_holdout(tx, cut, end, unit)
    scores, _, _ = compare_models(late, unit, sorted({"bgnbd", pick}))
    row = {"auto picks": comparison.at[pick, "label"]}
    for name, spec in (("BG/NBD", "bgnbd"), ("auto", pick)):
        row[f"{name} MAE"] = scores.at[spec, "mae"]
        row[f"{name} error %"] = scores.at[spec, "aggregate_error_pct"]
    row["MAE ratio BG/NBD / auto"] = row["BG/NBD MAE"] / row["auto MAE"]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--online-retail", type=Path, default=None, help="UCI Online Retail file (optional)")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    rows = {}
    for name, (load, as_of, unit) in datasets(args.online_retail).items():
        rows[name] = evaluate(load(), as_of, unit)
        print(f"{name}: {rows[name]}", flush=True)
    with pd.option_context("display.width", 200, "display.float_format", "{:,.4f}".format):
        print(pd.DataFrame(rows).T.to_string())


if __name__ == "__main__":
    main()
