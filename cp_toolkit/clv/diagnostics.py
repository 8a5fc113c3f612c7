"""Checks of a fitted CLV model: holdout tracking, period transactions, frequency/recency
matrices, the spend-frequency correlation, model comparison and bootstrap intervals.

Each function returns a table; :mod:`cp_toolkit.plots` draws them.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
from lifetimes.utils import ConvergenceError

from ..privacy import suppress_small_groups
from .models import TRANSACTION_MODELS, CLVModel
from .summary import DAYS_PER_MONTH, holdout_metrics, purchase_days, unit_days

__all__ = [
    "SPEND_CORRELATION_WARNING",
    "bootstrap_intervals",
    "compare_models",
    "frequency_recency_matrix",
    "period_transactions",
    "spend_correlation",
    "tracking",
]

#: |Pearson r| between frequency and spend above which Gamma-Gamma's independence assumption is doubtful.
SPEND_CORRELATION_WARNING = 0.3


def tracking(
    tx: pd.DataFrame, cohort: pd.Index, calibration_end: pd.Timestamp, end: pd.Timestamp, model: CLVModel
) -> pd.DataFrame:
    """Weekly cumulative repeat transactions of the calibration cohort: actual and model.

    The model's figure for week k sums, over the cohort, the expected repeat purchases of a
    new customer within the time from their first purchase to the last day of week k
    (Fader, Hardie & Lee 2005, fig. 4). Weeks start on the cohort's first purchase day.

    Returns
    -------
    DataFrame
        Indexed by ``week`` (1, 2, ...): ``week_end`` (last day), ``actual``, ``predicted`` and
        ``holdout`` (True for weeks after ``calibration_end``).
    """
    days = purchase_days(tx[tx["ts"] < end + pd.Timedelta(days=1)])
    days = days[days["customer_id"].isin(cohort)]
    first = days.groupby("customer_id", observed=True)["day"].min()
    repeats = np.sort(days.loc[days["day"] > days["customer_id"].map(first), "day"].to_numpy())
    start = first.min()
    weeks = np.arange(1, ((end - start).days + 1) // 7 + 1)  # whole weeks up to the end of as_of
    week_end = start + pd.to_timedelta(7 * weeks - 1, unit="D")
    starts = first.value_counts()
    age = (week_end.to_numpy()[None, :] - starts.index.to_numpy()[:, None]) / pd.Timedelta(
        days=unit_days(model.time_unit)
    )
    expected = np.where(age > 0, model.expected_purchases_new(np.clip(age, 0, None).ravel()).reshape(age.shape), 0.0)
    return pd.DataFrame(
        {
            "week_end": week_end,
            "actual": np.searchsorted(repeats, week_end.to_numpy(), side="right"),
            "predicted": starts.to_numpy() @ expected,
            "holdout": week_end > calibration_end,
        },
        index=pd.Index(weeks, name="week"),
    )


def period_transactions(cal: pd.DataFrame, model: CLVModel, max_frequency: int | None = None) -> pd.DataFrame:
    """Customers by number of repeat purchase periods in calibration: actual and expected.

    Expected counts sum each customer's model probability of ``n`` repeat purchases within their
    own ``T``; the last row pools ``max_frequency`` and more (default: 7 as in Fader, Hardie & Lee
    2005, raised to the median frequency, at most 40, for frequent buyers). Pareto/NBD has no such
    function in lifetimes and gets only the actual counts.
    """
    if max_frequency is None:
        max_frequency = int(np.clip(cal["frequency"].median(), 7, 40))
    n = np.arange(max_frequency)
    actual = np.bincount(np.minimum(cal["frequency"].astype(int), max_frequency), minlength=max_frequency + 1)
    out = pd.DataFrame({"actual": actual}, index=pd.Index([*map(str, n), f"{max_frequency}+"], name="repeat"))
    fitter = model.purchases_
    if not hasattr(fitter, "probability_of_n_purchases_up_to_time"):
        out["expected"] = np.nan
        return out
    ages = cal["T"].value_counts()
    probs = np.array([[fitter.probability_of_n_purchases_up_to_time(t, k) for k in n] for t in ages.index])
    expected = ages.to_numpy() @ probs
    out["expected"] = [*expected, len(cal) - expected.sum()]
    return out


def frequency_recency_matrix(
    model: CLVModel, T: float, max_frequency: int, horizon: float, bins: int = 25
) -> dict[str, pd.DataFrame]:
    """P(alive) and expected purchases in the next ``horizon`` time units of a customer observed for
    ``T``, over a grid of frequency (rows) and recency (columns)."""
    frequency = np.arange(max_frequency + 1, dtype=float)
    recency = np.linspace(0, T, bins)
    x, r = np.meshgrid(frequency, recency, indexing="ij")
    grid = pd.DataFrame({"frequency": x.ravel(), "recency": r.ravel(), "T": T})
    grid.loc[grid["frequency"] == 0, "recency"] = 0.0  # one-time buyers have recency 0
    shape = x.shape
    index, columns = pd.Index(frequency.astype(int), name="frequency"), pd.Index(recency.round(1), name="recency")
    return {
        "p_alive": pd.DataFrame(model.p_alive(grid).reshape(shape), index=index, columns=columns),
        "expected_purchases": pd.DataFrame(
            model.expected_purchases(horizon, grid).reshape(shape), index=index, columns=columns
        ),
    }


def spend_correlation(summary: pd.DataFrame) -> dict[str, Any]:
    """Pearson correlation of frequency and mean spend among repeat buyers; Gamma-Gamma assumes none."""
    repeat = summary[(summary["frequency"] > 0) & (summary["monetary"] > 0)]
    r = float(np.corrcoef(repeat["frequency"], repeat["monetary"])[0, 1]) if len(repeat) > 2 else float("nan")
    strong = bool(abs(r) >= SPEND_CORRELATION_WARNING)
    return {
        "repeat_buyers": int(len(repeat)),
        "pearson_r": r,
        "warning": (
            f"|r| = {abs(r):.2f} >= {SPEND_CORRELATION_WARNING}: spend depends on frequency, so Gamma-Gamma's "
            "independence assumption is doubtful and CLV may be biased"
            if strong
            else ""
        ),
    }


def compare_models(cal: pd.DataFrame, time_unit: str) -> tuple[pd.DataFrame, dict[str, CLVModel]]:
    """Fit every transaction model on the calibration period and score its holdout forecast.

    Returns
    -------
    table : DataFrame
        Indexed by model name: label, log-likelihood, number of parameters, the holdout metrics
        of :func:`cp_toolkit.clv.summary.holdout_metrics`, and ``error`` (why a model could not be used).
    models : dict
        The models that fitted and predicted finite values.
    """
    rows, fitted = [], {}
    duration = cal["duration_holdout"].iloc[0]
    for name, (label, _) in TRANSACTION_MODELS.items():
        row: dict[str, Any] = {"model": name, "label": label}
        try:
            with warnings.catch_warnings():  # non-finite results are caught below and reported
                warnings.simplefilter("ignore", RuntimeWarning)
                model = CLVModel(name, time_unit).fit(cal)
                predicted = model.expected_purchases(duration, cal)
            if not np.isfinite(predicted).all():
                raise ValueError(f"{int((~np.isfinite(predicted)).sum())} holdout forecasts are not finite")
        except (ConvergenceError, ValueError, FloatingPointError) as err:
            rows.append({**row, "error": str(err).splitlines()[0]})
            continue
        fitted[name] = model
        rows.append(
            {
                **row,
                "log_likelihood": model.log_likelihood_,
                "parameters": len(model.params_),
                **holdout_metrics(cal, predicted),
                "error": "",
            }
        )
    return pd.DataFrame(rows).set_index("model"), fitted


def _percentiles(values: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    tail = 100 * (1 - level) / 2
    lo, hi = np.nanpercentile(values, [tail, 100 - tail], axis=0)
    return lo, hi


def bootstrap_intervals(
    cal: pd.DataFrame,
    summary: pd.DataFrame,
    model: str,
    time_unit: str,
    clv_args: dict[str, float],
    segments: pd.Series,
    observed_clv: pd.Series,
    min_group_size: int,
    samples: int,
    seed: int,
) -> dict[str, Any]:
    """Bootstrap over customers: refit on resampled customers, then predict for the observed ones.

    Each replicate draws the calibration customers (and, separately, all customers) with
    replacement, refits the transaction and spend models, and recomputes the aggregate holdout
    forecast, every parameter and the mean CLV per segment of the observed customers. The
    intervals are the 2.5th and 97.5th percentiles: they show the parameter uncertainty of the
    forecasts. Replicates whose fit fails or whose forecasts are not finite are counted and left out.
    ``segments`` gives each customer of ``summary`` a segment (one value for a single group), and
    ``observed_clv`` their CLV under the full fit.

    Returns
    -------
    dict
        ``holdout`` (forecast interval and whether the actual total lies in it), ``parameters``
        (bootstrap SE and interval per parameter), ``segments`` (customers, mean CLV and its
        interval per segment, small segments suppressed) and ``samples`` / ``failed``.
    """
    if samples < 2:
        raise ValueError(f"clv_bootstrap_samples must be at least 2, not {samples}")
    rng = np.random.default_rng(seed)
    # resample from customers in value order, so that the draws do not depend on their ids (pseudonyms)
    cal_pool, summary_pool = (t.sort_values(list(t.columns), kind="stable") for t in (cal, summary))
    duration = cal["duration_holdout"].iloc[0]
    totals, params, means, failed = [], [], [], 0
    for _ in range(samples):
        # a retry of the ladder is routine in a resample, and a replicate whose forecasts are not
        # finite (lifetimes warns on the way) is counted as failed below
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            warnings.simplefilter("ignore", RuntimeWarning)
            try:
                sample = cal_pool.iloc[rng.integers(0, len(cal), len(cal))]
                cal_fit = CLVModel(model, time_unit).fit(sample, spend=False)  # only purchases are forecast
                full_fit = CLVModel(model, time_unit).fit(
                    summary_pool.iloc[rng.integers(0, len(summary), len(summary))]
                )
            except (ConvergenceError, ValueError):
                failed += 1
                continue
            total = cal_fit.expected_purchases(duration, cal).sum()
            clv = full_fit.clv(summary, **clv_args)["clv"]
        if not (np.isfinite(total) and np.isfinite(clv).all()):
            failed += 1
            continue
        totals.append(total)
        params.append({**full_fit.params_, **{f"gamma_gamma_{k}": v for k, v in full_fit.spend_params_.items()}})
        means.append(clv.groupby(segments).mean())
    if not totals:
        raise ValueError(f"all {samples} bootstrap refits failed; the intervals cannot be computed")
    lo, hi = _percentiles(np.array(totals))
    actual = float(cal["frequency_holdout"].sum())
    table = pd.DataFrame(params)
    p_lo, p_hi = _percentiles(table.to_numpy())
    seg = pd.DataFrame(means)
    s_lo, s_hi = _percentiles(seg.to_numpy())
    segment_table = pd.DataFrame(
        {
            "customers": segments.value_counts().reindex(seg.columns).to_numpy(),
            "mean_clv": observed_clv.groupby(segments).mean().reindex(seg.columns).to_numpy(),
            "ci_low": s_lo,
            "ci_high": s_hi,
        },
        index=pd.Index(seg.columns, name="segment"),
    )
    return {
        "samples": samples,
        "failed": failed,
        "holdout": {
            "actual_total": actual,
            "predicted_ci_low": float(lo),
            "predicted_ci_high": float(hi),
            "actual_in_interval": bool(lo <= actual <= hi),
        },
        "parameters": pd.DataFrame(
            {"bootstrap_se": table.std(ddof=1).to_numpy(), "ci_low": p_lo, "ci_high": p_hi}, index=table.columns
        ),
        "segments": suppress_small_groups(segment_table.reset_index(), "customers", min_group_size),
    }


def monthly_horizon(time_unit: str) -> float:
    """One month in ``time_unit`` (the horizon of the expected-purchases matrix)."""
    return DAYS_PER_MONTH / unit_days(time_unit)
