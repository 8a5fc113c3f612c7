"""CLV benchmark: cp_toolkit against lifetimes' own functions on the same simulated customers.

Usage::

    python bench/clv_bench.py --customers 100000 1000000

For each size it times, in one process and on the same data:

- the customer summary: ``cp_toolkit.clv.rfm_summary`` vs ``lifetimes.utils.summary_data_from_transaction_data``;
- the fit: ``CLVModel("bgnbd")`` (BG/NBD and Gamma-Gamma on weighted unique rows) vs
  ``BetaGeoFitter`` and ``GammaGammaFitter`` on every customer;
- 12-month discounted CLV: ``CLVModel.clv`` (all months at once, with the stable expressions of
  ``cp_toolkit.clv.btyd``: a quadrature instead of lifetimes' closed form with ``hyp2f1``) vs
  ``GammaGammaFitter.customer_lifetime_value`` (a loop over months);

checks that both give the same result (summary equal, parameters within 1e-4, CLV within 1e-8
relative) and prints the times and the ratio lifetimes / cp_toolkit.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import time
import warnings

import numpy as np
import pandas as pd
from lifetimes import BetaGeoFitter, GammaGammaFitter
from lifetimes.utils import ConvergenceError, summary_data_from_transaction_data

from cp_toolkit.clv import CLVModel, rfm_summary, simulate_bgnbd

PARAMS = {"r": 0.25, "alpha": 10.0, "a": 0.8, "b": 2.5}
END = "2021-06-24"  # the last simulated day (540 days after 2020-01-01)


def timed(fn, *args, **kwargs):
    """(result, seconds) of one call."""
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def first_fit(fitter: type, *data: pd.Series):
    """lifetimes' own fit at the tightest tolerance that converges (its BFGS can stop with
    "precision loss" at 1e-7 on large data)."""
    for tol in (1e-7, 1e-6, 1e-5, 1e-4):
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                return fitter().fit(*data, tol=tol)
        except ConvergenceError:
            continue
    raise ConvergenceError(f"{fitter.__name__} did not converge")


def lifetimes_fit(summary: pd.DataFrame) -> tuple[BetaGeoFitter, GammaGammaFitter]:
    """lifetimes' own fit on every customer."""
    bgf = first_fit(BetaGeoFitter, summary["frequency"], summary["recency"], summary["T"])
    repeat = summary[(summary["frequency"] > 0) & (summary["monetary"] > 0)]
    return bgf, first_fit(GammaGammaFitter, repeat["frequency"], repeat["monetary"])


def lifetimes_clv(bgf: BetaGeoFitter, ggf: GammaGammaFitter, summary: pd.DataFrame) -> pd.Series:
    """lifetimes' month-by-month CLV (months of 30 days, monthly discount 1%)."""
    return ggf.customer_lifetime_value(
        bgf,
        summary["frequency"],
        summary["recency"],
        summary["T"],
        summary["monetary"].where(summary["frequency"] > 0, 0.0),
        time=12,
        discount_rate=0.01,
        freq="D",
    )


def run(customers: int) -> list[tuple[str, float, float]]:
    """Time the three steps on ``customers`` simulated customers; returns (step, ours, lifetimes)."""
    tx = simulate_bgnbd(customers, PARAMS, seed=42)
    summary, t_ours = timed(rfm_summary, tx, END, "days")
    ours_summary = summary[["frequency", "recency", "T", "monetary"]]
    ref_summary, t_ref = timed(
        summary_data_from_transaction_data, tx, "customer_id", "ts", monetary_value_col="amount",
        observation_period_end=END, freq="D",
    )  # fmt: skip
    ref_summary = ref_summary.rename(columns={"monetary_value": "monetary"})
    pd.testing.assert_frame_equal(ours_summary.loc[ref_summary.index], ref_summary, check_names=False)
    rows = [(f"summary ({len(tx):,} lines)", t_ours, t_ref)]

    model, t_ours = timed(CLVModel("bgnbd", "days").fit, summary)
    (bgf, ggf), t_ref = timed(lifetimes_fit, ours_summary)
    for name, value in bgf.params_.items():
        assert abs(model.params_[name] / value - 1) < 1e-4, (name, model.params_[name], value)
    for name, value in ggf.params_.items():
        assert abs(model.spend_.params_[name] / value - 1) < 1e-4, (name, model.spend_.params_[name], value)
    unique = model.fit_settings_["purchases"]["rows"]
    rows.append((f"fit BG/NBD + Gamma-Gamma ({unique:,} unique rows)", t_ours, t_ref))

    ours_clv, t_ours = timed(model.clv, ours_summary, 12, 1.01**12 - 1, 1.0, days_per_month=30)
    ref_clv, t_ref = timed(lifetimes_clv, model.purchases_, model.spend_.fitter_, ours_summary)
    np.testing.assert_allclose(ours_clv["clv"].to_numpy(), ref_clv.to_numpy(), rtol=1e-8)
    rows.append(("12-month discounted CLV", t_ours, t_ref))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, nargs="+", default=[100_000])
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    print(f"{'customers':>10} {'step':<52} {'cp_toolkit s':>12} {'lifetimes s':>12} {'speed-up':>9}")
    for customers in args.customers:
        for step, ours, ref in run(customers):
            print(f"{customers:>10,} {step:<52} {ours:>12.2f} {ref:>12.2f} {ref / ours:>8.1f}x", flush=True)


if __name__ == "__main__":
    main()
