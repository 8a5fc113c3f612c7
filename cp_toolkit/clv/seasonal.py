"""Monthly seasonality of the purchase rate: the purchase models in operational time.

A customer's purchase rate is lambda x s(month), where s is a month-of-year index that averages 1
over a year. Under that model every purchase model (BG/NBD, MBG/NBD, Pareto/NBD with dropout per
operational time) holds in *operational time*, tau(t) = int s(u) du: a day of a month with index
1.3 counts as 1.3 days. The likelihood of a customer's purchase times is the model's likelihood
of (x, tau(t_x), tau(T)) times prod_j s(t_j) over the repeat purchases, so the index and the
model parameters are estimated together by maximum likelihood (:func:`fit_seasonal`); forecasts
turn calendar horizons into operational ones. This is the month-of-year special case of the
time-varying covariates of CLVTools' extended Pareto/NBD (a calendar covariate that shifts the
purchase rate), and it needs a calibration that has seen every calendar month in two years.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from ..errors import DataError
from ..text import DEFAULT_LANGUAGE, parse, t
from .summary import REPEAT_MONTH_COLUMNS

__all__ = ["MONTHS", "SeasonalIndex", "check_coverage", "fit_seasonal", "months_covered"]

MONTHS = np.arange(1, 13)
MONTH_ABBR = tuple(calendar.month_abbr)[1:]  # "Jan", ..., "Dec"
#: Mean days of each calendar month (February 28.25), to average the index over a year.
MONTH_DAYS = np.array([31, 28.25, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])
#: Fewest repeat purchases, and days observed, a calendar month needs in calibration for its index:
#: days in two different years, so that a month's effect is not the trend of the one year it was seen in.
MIN_MONTH_PURCHASES = 20
MIN_MONTH_DAYS = 56


def month_days(start: pd.DatetimeIndex | pd.Series, end: pd.DatetimeIndex | pd.Series) -> np.ndarray:
    """Days of each calendar month in [start, end), row by row: an (n, 12) array (fractions of
    a day count as fractions)."""
    start, end = pd.DatetimeIndex(start), pd.DatetimeIndex(end)
    origin = min(start.min(), end.min()).normalize()
    days = pd.date_range(origin, max(start.max(), end.max()).normalize() + pd.Timedelta(days=1), freq="D")
    one_hot = (days.month.to_numpy()[:, None] == MONTHS[None, :]).astype(float)
    cumulative = np.vstack([np.zeros((1, 12)), np.cumsum(one_hot, axis=0)])

    def position(dates: pd.DatetimeIndex) -> np.ndarray:
        offset = np.asarray((dates - origin) / pd.Timedelta(days=1), dtype=float)
        whole = np.floor(offset).astype(int)
        return cumulative[whole] + (offset - whole)[:, None] * one_hot[whole]

    return position(end) - position(start)


@dataclass
class SeasonalIndex:
    """Month-of-year multipliers of the purchase rate (``index[m-1]`` for month m), averaging 1
    over a year, and the time unit they turn days into."""

    index: np.ndarray
    unit_days: float

    def elapsed(self, start: pd.Series | pd.DatetimeIndex, end: pd.Series | pd.DatetimeIndex) -> np.ndarray:
        """Operational time from ``start`` to ``end``, in the time unit."""
        return month_days(start, end) @ self.index / self.unit_days

    def as_dict(self) -> dict[str, float]:
        return {name: float(v) for name, v in zip(MONTH_ABBR, self.index, strict=True)}


def months_covered(summary: pd.DataFrame) -> np.ndarray:
    """Repeat purchases per calendar month in ``summary`` (12 values): the data behind each index."""
    return summary[REPEAT_MONTH_COLUMNS].sum().to_numpy()


def _normalized(eta: np.ndarray) -> np.ndarray:
    """The index from free log values, January fixed: exp(eta) scaled to average 1 over a year."""
    raw = np.exp(np.concatenate([[0.0], eta]))
    return raw * 365.25 / (MONTH_DAYS @ raw)


def history(summary: pd.DataFrame, unit_days: float) -> tuple[pd.Series, pd.Series, pd.Series]:
    """First purchase, last purchase and end of observation of each customer, as dates."""
    unit = pd.to_timedelta(unit_days, unit="D")
    first = summary["first"]
    return first, first + summary["recency"] * unit, first + summary["T"] * unit


def _months_that_fail(thin: list[str], language: str = DEFAULT_LANGUAGE) -> str:
    """'no month does', 'only Jan does', 'Oct, Nov do not': whichever names fewer months (texts
    ``clv.seasonal.months.*``, in English for the model card)."""
    passing = [m for m in MONTH_ABBR if m not in thin]
    if not passing:
        return t("clv.seasonal.months.none", language=language)
    if len(passing) < len(thin):
        one = len(passing) == 1
        return t("clv.seasonal.months.only_one" if one else "clv.seasonal.months.only", months=", ".join(passing),
                 language=language)  # fmt: skip
    one = len(thin) == 1
    return t("clv.seasonal.months.not_this" if one else "clv.seasonal.months.not_these", months=", ".join(thin),
             language=language)  # fmt: skip


def coverage_reason(reason: str) -> str:
    """A coverage reason of the model card (written in English) in the report's language; as it is
    when it is not one (:func:`cp_toolkit.text.parse`)."""
    found = parse("clv.seasonal", reason)
    if found is None or found[0] != "clv.seasonal.coverage":
        return reason
    fields = found[1]
    tail = parse("clv.seasonal.months", fields["months"])
    months = t(tail[0], **tail[1]) if tail else fields["months"]
    return t("clv.seasonal.coverage", days=fields["days"], purchases=fields["purchases"], months=months)


def check_coverage(summary: pd.DataFrame, unit_days: float) -> None:
    """Refuse a monthly index the calibration cannot estimate.

    Raises
    ------
    DataError
        When a calendar month was observed on fewer than :data:`MIN_MONTH_DAYS` days or holds
        fewer than :data:`MIN_MONTH_PURCHASES` repeat purchases, naming the months.
    """
    counts = months_covered(summary)
    first, _, end = history(summary, unit_days)
    days = month_days(pd.DatetimeIndex([first.min()]), pd.DatetimeIndex([end.max()]))[0]
    thin = [MONTH_ABBR[m - 1] for m in MONTHS[(counts < MIN_MONTH_PURCHASES) | (days < MIN_MONTH_DAYS)]]
    if thin:
        raise DataError(
            t("clv.seasonal.coverage", days=MIN_MONTH_DAYS, purchases=MIN_MONTH_PURCHASES,
              months=_months_that_fail(thin), language=DEFAULT_LANGUAGE)
        )  # fmt: skip


def fit_seasonal(
    summary: pd.DataFrame,
    log_likelihood: Callable[[Mapping[str, float], np.ndarray, np.ndarray, np.ndarray], np.ndarray],
    start: Mapping[str, float],
    unit_days: float,
) -> tuple[dict[str, float], SeasonalIndex, float, str]:
    """Joint maximum likelihood of a purchase model's parameters and the monthly index.

    Parameters
    ----------
    summary : DataFrame
        The customer summary with ``first`` and the monthly repeat counts (:func:`rfm_summary`).
    log_likelihood : callable
        ``(params, x, t_x, T) -> per-customer log-likelihood`` of the purchase model.
    start : mapping
        The parameters of the model fitted without seasonality (the starting point; the index
        starts at 1 in every month).
    unit_days : float
        Days per time unit.

    Returns
    -------
    params, index, log_likelihood, message
        The fitted parameters, the :class:`SeasonalIndex`, the maximized total log-likelihood and
        the optimizer's closing message (kept in the fit settings).

    Raises
    ------
    DataError
        When the calibration cannot estimate the index (:func:`check_coverage`).
    """
    check_coverage(summary, unit_days)
    counts = months_covered(summary)
    # customers with the same purchases, first and last purchase share one row (and its weight)
    rows = summary.groupby(["frequency", "first", "recency", "T"], sort=False).size().rename("weight").reset_index()
    first, last, end = history(rows, unit_days)
    d_tx, d_T = month_days(first, last), month_days(first, end)
    x, weight = rows["frequency"].to_numpy(), rows["weight"].to_numpy()
    names = list(start)
    theta0 = np.log([start[k] for k in names])

    def negative(v: np.ndarray) -> float:
        params = dict(zip(names, np.exp(v[: len(names)]), strict=True))
        index = _normalized(v[len(names) :])
        ll = weight @ log_likelihood(params, x, d_tx @ index / unit_days, d_T @ index / unit_days)
        value = -(ll + counts @ np.log(index))
        return float(value) if np.isfinite(value) else 1e300

    v0 = np.concatenate([theta0, np.zeros(11)])
    result = minimize(negative, v0, method="L-BFGS-B", options={"maxiter": 2_000, "ftol": 1e-13, "gtol": 1e-7})
    if not np.isfinite(result.fun) or result.fun >= 1e299:
        raise DataError(f"the seasonal model did not converge ({result.message})")
    params = dict(zip(names, np.exp(result.x[: len(names)]).tolist(), strict=True))
    index = SeasonalIndex(_normalized(result.x[len(names) :]), unit_days)
    return params, index, -float(result.fun), f"{'converged' if result.success else 'stopped'}: {result.message}"
