"""Checks of a fitted CLV model: holdout tracking, period transactions, frequency/recency
matrices, the spend-frequency correlation, model comparison, bootstrap intervals, whether the
data identify each parameter, and why a holdout forecast missed.

Each function returns a table or a dict; :mod:`cp_toolkit.plots` draws them.
"""

from __future__ import annotations

import calendar
import warnings
from typing import Any

import numpy as np
import pandas as pd

from ..config import CHOICES
from ..errors import DataError, ParameterError
from ..privacy import suppress_small_groups
from ..text import t
from .fitting import ConvergenceError, fit_nbd
from .models import DROPOUT_PARAMETERS, TRANSACTION_MODELS, CLVModel, check_model, log_likelihood, model_label
from .summary import DAYS_PER_MONTH, holdout_metrics, purchase_periods, unique_rows, unit_days

__all__ = [
    "SPEND_CORRELATION_WARNING",
    "bootstrap_intervals",
    "candidates",
    "compare_models",
    "dropout_test",
    "forecast_interval",
    "frequency_recency_matrix",
    "holdout_diagnosis",
    "identification",
    "period_transactions",
    "spend_correlation",
    "tracking",
]

#: |Pearson r| between frequency and spend above which Gamma-Gamma's independence assumption is doubtful.
SPEND_CORRELATION_WARNING = 0.3
#: A parameter is not identified when its standard error exceeds this share of the estimate ...
RELATIVE_SE_LIMIT = 1.0
#: ... or its bootstrap 95% interval spans more than this ratio (exp(2 x 1.96) at a relative SE of 1).
BOOTSTRAP_RATIO_LIMIT = 50.0
#: 95% point of chi-square with 2 degrees of freedom: the likelihood-ratio a model with dropout must
#: beat the same model without it by.
DROPOUT_CRITICAL_VALUE = 5.991
#: P(alive) counts as identified when its bootstrap 95% interval is narrower than this for 90% of repeat buyers.
P_ALIVE_WIDTH_LIMIT = 0.25
#: Repeat buyers whose P(alive) every bootstrap replicate recomputes (its spread is a quantile).
WIDTH_SAMPLE = 20_000
#: P(alive) above this counts as "near 1".
NEAR_ONE = 0.95
#: A calibration shorter than this share of the holdout is too short to forecast it.
SHORT_CALIBRATION = 0.9
SEASONALITY = CHOICES["clv_seasonality"]


def tracking(
    tx: pd.DataFrame,
    cohort: pd.Index,
    calibration_end: pd.Timestamp,
    end: pd.Timestamp,
    model: CLVModel,
    period: str = "day",
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
    periods = purchase_periods(tx[tx["ts"] < end + pd.Timedelta(days=1)], period)
    periods = periods[periods["customer_id"].isin(cohort)]
    first = periods.groupby("customer_id", observed=True)["start"].min()
    repeats = np.sort(periods.loc[periods["start"] > periods["customer_id"].map(first), "start"].to_numpy())
    start = first.min()
    weeks = np.arange(1, ((end - start).days + 1) // 7 + 1)  # whole weeks up to the end of as_of
    week_end = start + pd.to_timedelta(7 * weeks - 1, unit="D")
    starts = first.value_counts()
    begin = np.repeat(starts.index.to_numpy(), len(weeks))
    stop = np.tile(week_end.to_numpy(), len(starts))
    age = model.elapsed(begin, np.maximum(begin, stop)).reshape(len(starts), len(weeks))
    expected = np.where(age > 0, model.expected_purchases_new(age.ravel()).reshape(age.shape), 0.0)
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
    2005, raised to the median frequency, at most 40, for frequent buyers).
    """
    if max_frequency is None:
        max_frequency = int(np.clip(cal["frequency"].median(), 7, 40))
    n = np.arange(max_frequency)
    actual = np.bincount(np.minimum(cal["frequency"].astype(int), max_frequency), minlength=max_frequency + 1)
    out = pd.DataFrame({"actual": actual}, index=pd.Index([*map(str, n), f"{max_frequency}+"], name="repeat"))
    ages = pd.Series(model.history(cal)[2]).value_counts()
    probs = model.purchase_pmf(ages.index.to_numpy()[:, None], n[None, :])
    expected = ages.to_numpy() @ probs
    out["expected"] = [*expected, len(cal) - expected.sum()]
    return out


def frequency_recency_matrix(
    model: CLVModel, T: float, max_frequency: int, horizon: float, bins: int = 25
) -> dict[str, pd.DataFrame]:
    """P(alive) and expected purchases in the next ``horizon`` time units of a customer observed for
    ``T`` up to the end of observation, over a grid of frequency (rows) and recency (columns)."""
    frequency = np.arange(max_frequency + 1, dtype=float)
    recency = np.linspace(0, T, bins)
    x, r = np.meshgrid(frequency, recency, indexing="ij")
    grid = pd.DataFrame({"frequency": x.ravel(), "recency": r.ravel(), "T": T})
    grid.loc[grid["frequency"] == 0, "recency"] = 0.0  # one-time buyers have recency 0
    if model.observation_end_ is not None:  # a seasonal model measures time from calendar dates
        grid["first"] = model.observation_end_ - pd.to_timedelta(T * unit_days(model.time_unit), unit="D")
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
        "warning": t("clv.diagnostics.spend_correlation", r=abs(r), threshold=SPEND_CORRELATION_WARNING)
        if strong
        else "",
    }


def candidates(model: str, seasonality: str) -> list[str]:
    """The candidate purchase models, simplest first: every model for ``auto``, else the requested
    one, each plain and (``seasonality`` monthly or auto) with a monthly index; with ``monthly``
    the seasonal ones come first."""
    if seasonality not in SEASONALITY:
        raise ParameterError(f"clv_seasonality {seasonality!r} is not one of {list(SEASONALITY)}")
    if model != "auto":
        check_model(model)
    models = list(TRANSACTION_MODELS) if model == "auto" else [model]
    plain, seasonal = models, [f"{m}+monthly" for m in models]
    return {"none": plain, "auto": plain + seasonal, "monthly": seasonal + plain}[seasonality]


def compare_models(
    cal: pd.DataFrame, time_unit: str, specs: list[str] | None = None
) -> tuple[pd.DataFrame, dict[str, CLVModel], pd.DataFrame]:
    """Fit every candidate on the calibration period and score its holdout forecast.

    Returns
    -------
    table : DataFrame
        Indexed by candidate (``bgnbd``, ``bgnbd+monthly``, ...): label, log-likelihood, number of
        parameters, the holdout metrics of :func:`.holdout_metrics`, and ``error`` (why a model
        could not be used).
    models : dict
        The models that fitted and predicted finite values.
    predictions : DataFrame
        Their holdout forecasts per customer (columns: candidates).
    """
    specs = specs or list(TRANSACTION_MODELS)
    rows, fitted, predictions = [], {}, {}
    duration = cal["duration_holdout"].iloc[0]
    for spec in specs:
        row: dict[str, Any] = {"model": spec, "label": model_label(spec)}
        try:
            with warnings.catch_warnings():  # a retry of the fitting ladder is reported in fit_settings
                warnings.simplefilter("ignore")
                model = CLVModel.from_spec(spec, time_unit, standard_errors=False).fit(cal, spend=False)
                predicted = model.expected_purchases(duration, cal)
            if not np.isfinite(predicted).all():
                raise DataError(f"{int((~np.isfinite(predicted)).sum())} holdout forecasts are not finite")
        except (ConvergenceError, ValueError, FloatingPointError, np.linalg.LinAlgError) as err:
            rows.append({**row, "error": str(err).splitlines()[0]})
            continue
        fitted[spec], predictions[spec] = model, predicted
        n_params = len(model.params_) + (11 if model.seasonal else 0)
        metrics = holdout_metrics(cal, predicted)
        rows.append({**row, "log_likelihood": model.log_likelihood_, "parameters": n_params, **metrics, "error": ""})
    return pd.DataFrame(rows).set_index("model"), fitted, pd.DataFrame(predictions, index=cal.index)


def mae_difference(errors: pd.DataFrame, a: str, b: str) -> dict[str, float]:
    """Paired difference of per-customer absolute errors, MAE(a) - MAE(b), with its normal 95%
    interval (customers are independent, so the mean difference is close to normal)."""
    d = (errors[a] - errors[b]).to_numpy()
    half = 1.96 * d.std(ddof=1) / np.sqrt(len(d))
    return {"difference": float(d.mean()), "ci_low": float(d.mean() - half), "ci_high": float(d.mean() + half)}


def _percentiles(values: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    tail = 100 * (1 - level) / 2
    lo, hi = np.nanpercentile(values, [tail, 100 - tail], axis=0)
    return lo, hi


def bootstrap_intervals(
    cal: pd.DataFrame,
    summary: pd.DataFrame,
    fits: tuple[CLVModel, CLVModel],
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
    replacement, refits the purchase and spend models of ``fits`` (the calibration and the full
    fit, where each refit starts its optimizer), and recomputes the
    aggregate holdout forecast, every parameter, the P(alive) of (up to :data:`WIDTH_SAMPLE`)
    observed repeat buyers and the mean
    CLV per segment. The intervals are the 2.5th and 97.5th percentiles: they show the parameter
    uncertainty of the forecasts. Replicates whose fit fails or whose forecasts are not finite
    are counted and left out. ``segments`` gives each customer of ``summary`` a segment (one
    value for a single group), and ``observed_clv`` their CLV under the full fit.

    Returns
    -------
    dict
        ``holdout`` (forecast interval and whether the actual total lies in it), ``parameters``
        (bootstrap SE and interval per parameter), ``p_alive_width`` (the 95% interval width of
        P(alive) of the repeat buyers watched), ``segments`` (customers, mean CLV and its interval per
        segment, small segments suppressed) and ``samples`` / ``failed``.
    """
    if samples < 2:
        raise ParameterError(f"clv_bootstrap_samples must be at least 2, not {samples}")
    rng = np.random.default_rng(seed)
    # resample from customers in value order, so that the draws do not depend on their ids (pseudonyms)
    cal_pool, summary_pool = (t.sort_values(list(t.columns), kind="stable") for t in (cal, summary))
    duration = cal["duration_holdout"].iloc[0]
    totals, params, means, alive, failed = [], [], [], [], 0
    repeat = np.flatnonzero(summary_pool["frequency"].to_numpy() > 0)
    watched = summary_pool.iloc[repeat[np.linspace(0, len(repeat) - 1, min(len(repeat), WIDTH_SAMPLE)).astype(int)]]
    for _ in range(samples):
        with warnings.catch_warnings():  # a retry of the ladder is routine in a resample
            warnings.simplefilter("ignore")
            try:
                sample = cal_pool.iloc[rng.integers(0, len(cal), len(cal))]
                refit = CLVModel.from_spec(fits[0].spec, time_unit, standard_errors=False, start=fits[0])
                cal_fit = refit.fit(sample, spend=False)  # only purchases are forecast
                total = cal_fit.expected_purchases(duration, cal).sum()
                resampled = summary_pool.iloc[rng.integers(0, len(summary), len(summary))]
                refit = CLVModel.from_spec(fits[1].spec, time_unit, standard_errors=False, start=fits[1])
                full_fit = refit.fit(resampled)
                clv = full_fit.clv(summary, **clv_args)["clv"]
                p_alive = full_fit.p_alive(watched)
            except (ConvergenceError, ValueError, np.linalg.LinAlgError):
                failed += 1
                continue
        if not (np.isfinite(total) and np.isfinite(clv).all() and np.isfinite(p_alive).all()):
            failed += 1
            continue
        totals.append(total)
        same_spend = full_fit.spend_.name_ == fits[1].spend_.name_  # pool one spend model's parameters only
        spend = {f"spend_{k}": v for k, v in full_fit.spend_.params_.items()} if same_spend else {}
        params.append({**full_fit.params_, **spend})
        means.append(clv.groupby(segments).mean())
        alive.append(p_alive)
    if not totals:
        raise DataError(f"all {samples} bootstrap refits failed; the intervals cannot be computed")
    lo, hi = _percentiles(np.array(totals))
    actual = float(cal["frequency_holdout"].sum())
    table = pd.DataFrame(params)
    p_lo, p_hi = _percentiles(table.to_numpy())
    a_lo, a_hi = _percentiles(np.array(alive))
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
        "holdout": {"actual_total": actual, "parameter_ci_low": float(lo), "parameter_ci_high": float(hi)},
        "parameters": pd.DataFrame(
            {"bootstrap_se": table.std(ddof=1).to_numpy(), "ci_low": p_lo, "ci_high": p_hi}, index=table.columns
        ),
        "p_alive_width": pd.Series(a_hi - a_lo, index=watched.index),
        "segments": suppress_small_groups(segment_table.reset_index(), "customers", min_group_size),
    }


def forecast_interval(cal: pd.DataFrame, parameter_interval: dict[str, float]) -> dict[str, Any]:
    """The 95% interval of the holdout total: the bootstrap's parameter uncertainty widened by the
    customers' own variation (the sum of their squared holdout errors), and whether it holds the
    actual total. Without the second part, any large base "misses" by a fraction of a percent."""
    predicted, actual = cal["predicted_holdout"].sum(), cal["frequency_holdout"].sum()
    spread = 1.96 * float(np.sqrt(((cal["frequency_holdout"] - cal["predicted_holdout"]) ** 2).sum()))
    lo = predicted - np.hypot(predicted - parameter_interval["parameter_ci_low"], spread)
    hi = predicted + np.hypot(parameter_interval["parameter_ci_high"] - predicted, spread)
    return {
        **parameter_interval,
        "customer_variation_95": spread,
        "predicted_ci_low": float(lo),
        "predicted_ci_high": float(hi),
        "actual_in_interval": bool(lo <= actual <= hi),
    }


def _parameter_check(value: float, se: float, boot: dict[str, float] | None) -> dict[str, Any]:
    """Relative SE and bootstrap interval ratio of one parameter, and whether they pin it down."""
    relative = se / value if np.isfinite(se) and value > 0 else float("inf")
    ratio = boot["ci_high"] / boot["ci_low"] if boot and boot.get("ci_low", 0) > 0 else float("nan")
    identified = relative <= RELATIVE_SE_LIMIT and not ratio > BOOTSTRAP_RATIO_LIMIT
    return {"relative_se": relative, "bootstrap_ratio": ratio, "identified": bool(identified)}


def dropout_test(model: CLVModel, summary: pd.DataFrame) -> dict[str, Any]:
    """Likelihood-ratio test of the model against the same data without dropout (the NBD, its
    limit as dropout vanishes): when the model fits no better, the data do not show customers
    leaving. Two parameters on the boundary: the 95% point of chi-square(2) is conservative."""
    x, tx, T = model.history(summary)
    rows = unique_rows(pd.DataFrame({"x": x, "T": T}), ("x", "T"))
    nbd_params, nbd = fit_nbd(*(rows[c].to_numpy(dtype=float) for c in ("x", "T", "weights")))
    full = log_likelihood(model.model, model.params_, x, tx, T)
    statistic = max(2 * (full - nbd), 0.0)
    return {
        "log_likelihood": full,
        "no_dropout_log_likelihood": nbd,
        "no_dropout_params": nbd_params,
        "statistic": statistic,
        "critical_value": DROPOUT_CRITICAL_VALUE,
        "dropout_shown": bool(statistic > DROPOUT_CRITICAL_VALUE),
    }


def identification(
    model: CLVModel,
    summary: pd.DataFrame,
    bootstrap: pd.DataFrame | None,
    p_alive: np.ndarray,
    p_alive_width: np.ndarray | None = None,
) -> dict[str, Any]:
    """Whether the data pin down each parameter and show dropout at all, and whether P(alive) can
    be read as a risk signal.

    A parameter is *not identified* when its Hessian standard error exceeds
    :data:`RELATIVE_SE_LIMIT` times the estimate (or the Hessian is singular there) or its
    bootstrap 95% interval spans more than :data:`BOOTSTRAP_RATIO_LIMIT` times. P(alive) is
    usable when the model fits better than one without dropout (:func:`dropout_test`) and either
    every dropout parameter (a, b; s, beta) is identified or P(alive) itself is: its bootstrap 95%
    interval is narrower than :data:`P_ALIVE_WIDTH_LIMIT` for 90% of repeat buyers (a and b can
    move together along a ridge that leaves P(alive) unchanged).

    Parameters
    ----------
    model : CLVModel
        The fitted model.
    summary : DataFrame
        The customer summary it was fitted on.
    bootstrap : DataFrame or None
        Bootstrap ``ci_low`` / ``ci_high`` per parameter (spend parameters prefixed ``spend_``).
    p_alive : ndarray
        Each customer's P(alive).
    p_alive_width : ndarray, optional
        Bootstrap 95% interval widths of repeat buyers' P(alive) (:func:`bootstrap_intervals`).

    Returns
    -------
    dict
        ``parameters`` (per parameter: estimate, relative SE, bootstrap ratio, identified),
        ``dropout_test``, ``dropout_identified``, ``p_alive_width_p90``, ``p_alive_usable``,
        ``p_alive_near_one_share`` (repeat buyers with P(alive) above 0.95) and ``messages``.
    """
    boot = {} if bootstrap is None else bootstrap.to_dict("index")
    checks = {
        name: {"estimate": value, **_parameter_check(value, model.standard_errors_.get(name, np.nan), boot.get(name))}
        for name, value in model.params_.items()
    }
    for name, value in model.spend_.params_.items():
        check = _parameter_check(value, model.spend_.standard_errors_.get(name, np.nan), boot.get(f"spend_{name}"))
        checks[f"spend_{name}"] = {"estimate": value, **check}
    test = dropout_test(model, summary)
    loose = [p for p in DROPOUT_PARAMETERS[model.model] if not checks[p]["identified"]]
    repeat = (summary["frequency"] > 0).to_numpy()
    near_one = float((p_alive[repeat] > NEAR_ONE).mean()) if repeat.any() else float("nan")
    width = float(np.quantile(p_alive_width, 0.9)) if p_alive_width is not None and len(p_alive_width) else np.nan
    usable = test["dropout_shown"] and (not loose or width <= P_ALIVE_WIDTH_LIMIT)
    messages = _dropout_messages(loose, test, checks, near_one, width, usable) + _other_messages(checks)
    return {
        "parameters": checks,
        "dropout_test": test,
        "dropout_identified": test["dropout_shown"] and not loose,
        "p_alive_width_p90": width,
        "p_alive_usable": bool(usable),
        "p_alive_near_one_share": near_one,
        "messages": messages,
    }


def _loose_parameters(loose: list[str], checks: dict[str, Any]) -> str:
    """'a (standard error 1.2 times the estimate, bootstrap interval spanning a factor 57) and b (...)'."""
    parts = []
    for p in loose:
        c = checks[p]
        se = (
            t("clv.diagnostics.relative_se", relative_se=c["relative_se"])
            if np.isfinite(c["relative_se"])
            else t("clv.diagnostics.no_se")
        )
        spread = t("clv.diagnostics.spread", factor=_factor(c["bootstrap_ratio"])) if c["bootstrap_ratio"] > 1 else ""
        parts.append(t("clv.diagnostics.loose_parameter", parameter=p, se=se, spread=spread))
    return t("clv.diagnostics.and").join(parts)


def _factor(ratio: float) -> str:
    """'a factor 57' below 1,000, else the whole orders of magnitude: 'over 6 orders of magnitude'."""
    if not np.isfinite(ratio):
        return t("clv.diagnostics.factor_unbounded")
    if ratio < 1_000:
        return t("clv.diagnostics.factor", ratio=ratio)
    return t("clv.diagnostics.factor_orders", orders=int(np.floor(np.log10(ratio))))


def _dropout_messages(
    loose: list[str], test: dict[str, Any], checks: dict[str, Any], near_one: float, width: float, usable: bool
) -> list[str]:
    """Whether P(alive) can be read as risk, and why, in plain words."""
    if usable:
        return (
            [t("clv.diagnostics.dropout_loose_but_usable", parameters=_loose_parameters(loose, checks), width=width)]
            if loose
            else []
        )
    if not test["dropout_shown"]:
        why = t("clv.diagnostics.no_dropout", statistic=test["statistic"], critical_value=test["critical_value"])
    else:
        why = t("clv.diagnostics.cannot_pin", parameters=_loose_parameters(loose, checks))
        if np.isfinite(width):
            why += t("clv.diagnostics.p_alive_moves", width=width)
    meaning = t("clv.diagnostics.near_one", share=near_one) if near_one >= 0.5 else t("clv.diagnostics.not_risk_signal")
    return [t("clv.diagnostics.dropout_not_identified", why=why, meaning=meaning)]


def _other_messages(checks: dict[str, Any]) -> list[str]:
    """Sentences on the purchase-rate and spend parameters the data cannot pin down."""
    messages = []
    rate = [p for p in ("r", "alpha") if not checks[p]["identified"]]
    if rate:
        messages.append(t("clv.diagnostics.rate_not_identified", parameters=t("clv.diagnostics.and").join(rate)))
    spend = [k.removeprefix("spend_") for k, v in checks.items() if k.startswith("spend_") and not v["identified"]]
    if spend:
        messages.append(t("clv.diagnostics.spend_not_identified", parameters=", ".join(spend)))
    return messages


def holdout_diagnosis(
    track: pd.DataFrame,
    interval: dict[str, Any],
    calibration: tuple[pd.Timestamp, pd.Timestamp],
    holdout_end: pd.Timestamp,
    seasonal_check: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Whether the 95% interval of the holdout forecast (:func:`forecast_interval`) holds the actual
    total and, when it does not, the likely causes, each with its evidence.

    - *seasonality*: a model with a monthly index misses by less, or (it cannot be ruled out) the
      holdout runs through calendar months the calibration never saw;
    - *trend*: the model already missed in the same direction over the last quarter of the
      calibration weeks, or the miss grows through the holdout;
    - *short calibration*: the calibration is shorter than the holdout.

    Parameters
    ----------
    track : DataFrame
        :func:`tracking` of the calibration model.
    interval : dict
        ``actual_total``, ``predicted_ci_low``, ``predicted_ci_high``.
    calibration : (Timestamp, Timestamp)
        First day of data and end of calibration.
    holdout_end : Timestamp
        Last day of the holdout.
    seasonal_check : dict, optional
        ``label`` and ``aggregate_error_pct`` of a seasonal model and of the model checked.
    """
    actual, lo, hi = interval["actual_total"], interval["predicted_ci_low"], interval["predicted_ci_high"]
    if lo <= actual <= hi:
        return {"actual_in_interval": True, "direction": "", "causes": []}
    direction = "under" if actual > hi else "over"
    start, cal_end = calibration
    causes = []
    unseen = _months_not_seen(start, cal_end, holdout_end)
    if unseen:
        months = ", ".join(unseen[:-1]) + (t("clv.diagnostics.and") if len(unseen) > 1 else "") + unseen[-1]
        causes.append(
            {
                "cause": t("clv.diagnostics.cause.unseen_months"),
                "evidence": t(
                    "clv.diagnostics.evidence.unseen_months", months=months, start=_date(start), end=_date(cal_end)
                ),
            }
        )
    elif seasonal_check and abs(seasonal_check["seasonal_error_pct"]) < abs(seasonal_check["plain_error_pct"]):
        causes.append(
            {
                "cause": t("clv.diagnostics.cause.seasonality"),
                "evidence": t(
                    "clv.diagnostics.evidence.seasonality",
                    model=seasonal_check["label"],
                    seasonal_error_pct=seasonal_check["seasonal_error_pct"],
                    plain_error_pct=seasonal_check["plain_error_pct"],
                ),
            }
        )
    trend = _trend_evidence(track, direction)
    if trend:
        causes.append({"cause": t("clv.diagnostics.cause.trend"), "evidence": trend})
    cal_days, hold_days = (cal_end - start).days, (holdout_end - cal_end).days
    if cal_days < SHORT_CALIBRATION * hold_days:
        causes.append(
            {
                "cause": t("clv.diagnostics.cause.short_calibration"),
                "evidence": t(
                    "clv.diagnostics.evidence.short_calibration", calibration_days=cal_days, holdout_days=hold_days
                ),
            }
        )
    return {"actual_in_interval": False, "direction": direction, "causes": causes}


def _date(day: pd.Timestamp) -> str:
    return f"{day.day} {day:%b %Y}"


def _months_not_seen(start: pd.Timestamp, cal_end: pd.Timestamp, holdout_end: pd.Timestamp) -> list[str]:
    """Calendar months of the holdout that no day of the calibration falls in."""
    seen = set(pd.date_range(start, cal_end, freq="D").month)
    holdout = pd.date_range(cal_end + pd.Timedelta(days=1), holdout_end, freq="D").month.unique()
    return [calendar.month_name[m] for m in holdout if m not in seen]


def _trend_evidence(track: pd.DataFrame, direction: str) -> str:
    """A sentence when the last quarter of the calibration weeks or the holdout's second half
    already shows the miss (actual vs predicted repeat purchases, weekly increments)."""
    weekly = track[["actual", "predicted"]].diff().fillna(track[["actual", "predicted"]])
    cal, hold = weekly[~track["holdout"]], weekly[track["holdout"]]
    tail = cal.iloc[-max(len(cal) // 4, 1) :]
    ratio = tail["actual"].sum() / tail["predicted"].sum() if tail["predicted"].sum() else float("nan")
    sign = 1 if direction == "under" else -1
    if np.isfinite(ratio) and sign * (ratio - 1) > 0.05:
        more = ratio > 1
        return t(
            "clv.diagnostics.evidence.trend_more" if more else "clv.diagnostics.evidence.trend_less",
            weeks=len(tail),
            share=abs(ratio - 1),
        )
    half = len(hold) // 2
    if half >= 2:
        first, second = (h["actual"].sum() / h["predicted"].sum() for h in (hold.iloc[:half], hold.iloc[half:]))
        if sign * (second - first) > 0.1:
            return t("clv.diagnostics.evidence.gap_widens", first=first, second=second)
    return ""


def monthly_horizon(time_unit: str) -> float:
    """One month in ``time_unit`` (the horizon of the expected-purchases matrix)."""
    return DAYS_PER_MONTH / unit_days(time_unit)
