"""The customer summary BTYD models are fitted on, and the calibration/holdout split.

lifetimes 0.11.3's data helpers break under pandas 3, so they are written here, with lifetimes'
definitions (``freq='D'`` or ``'W'``, ``freq_multiplier`` = days per time unit):

- a purchase *period* is a calendar day (``purchase_period="day"``) or a calendar week, Monday
  to Sunday (``"week"``), with at least one order; a period whose orders sum to zero counts as
  a purchase (when ingest kept zero-value lines: ``zero_amount: purchase``) but not as spend;
- ``frequency`` = purchase periods - 1 (repeat purchases);
- ``recency`` = start of the last minus start of the first purchase period, ``T`` = start of the
  period holding the end of observation minus start of the first, both in the time unit;
- ``monetary`` = mean revenue of the repeat purchase periods with positive revenue (0 for none),
  ``spend_frequency`` = their number: what Gamma-Gamma is fitted on;
- ``first`` = start of the first purchase period, and ``repeats_<m>`` = repeat purchase periods
  that start in calendar month m (1-12): what a seasonal purchase model needs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..config import CHOICES
from ..errors import ParameterError

__all__ = [
    "DAYS_PER_MONTH",
    "PURCHASE_PERIODS",
    "REPEAT_MONTH_COLUMNS",
    "SUMMARY_COLUMNS",
    "TIME_UNITS",
    "calibration_end",
    "calibration_holdout",
    "holdout_metrics",
    "purchase_periods",
    "rfm_summary",
    "unique_rows",
    "unit_days",
    "with_spend_frequency",
]

#: Time unit name -> days per unit.
TIME_UNITS = {"days": 1.0, "weeks": 7.0}
DAYS_PER_MONTH = 365.25 / 12
#: How purchases are counted: a customer-day, or a customer-week from Monday to Sunday (lifetimes' freq="W").
PURCHASE_PERIODS = CHOICES["purchase_period"]
REPEAT_MONTH_COLUMNS = [f"repeats_{m}" for m in range(1, 13)]
#: The columns of the summary that describe a customer (the rest serve the seasonal model).
SUMMARY_COLUMNS = ["frequency", "recency", "T", "monetary", "spend_frequency"]


def unit_days(time_unit: str) -> float:
    if time_unit not in TIME_UNITS:
        raise ParameterError(f"clv_time_unit {time_unit!r} is not one of {sorted(TIME_UNITS)}")
    return TIME_UNITS[time_unit]


def period_start(ts: pd.Series | pd.Timestamp, period: str = "day") -> pd.Series | pd.Timestamp:
    """The start (midnight) of the purchase period holding each timestamp (weeks start on Monday)."""
    if period not in PURCHASE_PERIODS:
        raise ParameterError(f"purchase_period {period!r} is not one of {sorted(PURCHASE_PERIODS)}")
    if isinstance(ts, pd.Timestamp):
        day = ts.normalize()
        return day - pd.Timedelta(days=day.dayofweek) if period == "week" else day
    day = ts.dt.normalize()
    return day - pd.to_timedelta(day.dt.dayofweek, unit="D") if period == "week" else day


def purchase_periods(tx: pd.DataFrame, period: str = "day") -> pd.DataFrame:
    """Revenue per customer and purchase period (``start``: the period's first day)."""
    start = period_start(tx["ts"], period)
    return tx.assign(start=start).groupby(["customer_id", "start"], observed=True)["amount"].sum().reset_index()


def _summary_of_periods(periods: pd.DataFrame, end: pd.Timestamp, time_unit: str) -> pd.DataFrame:
    """:func:`rfm_summary` of a table of purchase periods; ``end`` is the start of the last period."""
    codes, customers = pd.factorize(periods["customer_id"])
    start = periods["start"].to_numpy()
    first = pd.Series(start).groupby(codes).transform("min").to_numpy()
    repeat = start > first
    paid = repeat & (periods["amount"].to_numpy() > 0)
    g = pd.DataFrame({"start": start, "spend": np.where(paid, periods["amount"].to_numpy(), np.nan), "paid": paid})
    out = g.groupby(codes).agg(
        first=("start", "min"), last=("start", "max"), periods=("start", "size"), monetary=("spend", "mean"),
        spend_frequency=("paid", "sum"),
    )  # fmt: skip
    months = np.bincount(
        codes[repeat] * 12 + pd.DatetimeIndex(start[repeat]).month.to_numpy() - 1, minlength=12 * len(customers)
    ).reshape(len(customers), 12)
    unit = pd.Timedelta(days=unit_days(time_unit))
    index = pd.Index(customers, name="customer_id")
    summary = pd.DataFrame(
        {
            "frequency": (out["periods"].to_numpy() - 1).astype("float64"),
            "recency": (out["last"] - out["first"]).to_numpy() / unit,
            "T": (end - out["first"]).to_numpy() / unit,
            "monetary": out["monetary"].fillna(0.0).to_numpy(),
            "spend_frequency": out["spend_frequency"].to_numpy(dtype="float64"),
            "first": out["first"].to_numpy(),
        },
        index=index,
    )
    return summary.join(pd.DataFrame(months.astype("float64"), index=index, columns=REPEAT_MONTH_COLUMNS))


def rfm_summary(
    tx: pd.DataFrame, observation_end: str | pd.Timestamp, time_unit: str = "days", period: str = "day"
) -> pd.DataFrame:
    """The per-customer (frequency, recency, T, monetary) summary of lifetimes.

    Parameters
    ----------
    tx : DataFrame
        Transactions or orders with ``customer_id``, ``ts`` and ``amount``.
    observation_end : str or Timestamp
        Last day observed; later purchases are ignored.
    time_unit : {"days", "weeks"}
        Unit of ``recency`` and ``T`` (weeks = days / 7, as in Fader, Hardie & Lee 2005).
    period : {"day", "week"}
        What counts as one purchase: a customer-day or a customer-week with orders.

    Returns
    -------
    DataFrame
        Indexed by ``customer_id``: :data:`SUMMARY_COLUMNS`, ``first`` and the
        :data:`REPEAT_MONTH_COLUMNS` (see the module docstring).
    """
    end = pd.Timestamp(observation_end).normalize()
    periods = purchase_periods(tx[tx["ts"] < end + pd.Timedelta(days=1)], period)
    return _summary_of_periods(periods, period_start(end, period), time_unit)


def calibration_holdout(
    tx: pd.DataFrame,
    calibration_end: str | pd.Timestamp,
    observation_end: str | pd.Timestamp,
    time_unit: str = "days",
    period: str = "day",
) -> pd.DataFrame:
    """Calibration summary plus the repeat purchase periods each customer made in the holdout.

    Returns
    -------
    DataFrame
        :func:`rfm_summary` as of ``calibration_end`` for customers seen by then, with
        ``frequency_holdout`` (purchase periods after the one holding the calibration end, up to the
        one holding the observation end) and ``duration_holdout`` (the time between the starts of
        those two periods, as the summary measures T: whole weeks when periods are weeks).
    """
    cal_end, obs_end = pd.Timestamp(calibration_end).normalize(), pd.Timestamp(observation_end).normalize()
    cal = rfm_summary(tx, cal_end, time_unit, period)
    first, last = period_start(cal_end, period), period_start(obs_end, period)
    periods = purchase_periods(tx[tx["ts"] < obs_end + pd.Timedelta(days=1)], period)
    hold = periods[periods["start"] > first].groupby("customer_id", observed=True).size()
    cal["frequency_holdout"] = hold.reindex(cal.index, fill_value=0).astype("float64")
    cal["duration_holdout"] = (last - first) / pd.Timedelta(days=unit_days(time_unit))
    return cal


def with_spend_frequency(summary: pd.DataFrame) -> pd.DataFrame:
    """A summary made elsewhere (lifetimes') counts every repeat purchase as spend."""
    return summary if "spend_frequency" in summary else summary.assign(spend_frequency=summary["frequency"])


def unique_rows(summary: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    """The distinct rows of ``columns`` with ``weights`` = how many customers share each.

    Fitting on these with weights maximizes the same likelihood as fitting on every customer
    (lifetimes' fitters accept weights), with far fewer rows: the 2,357 CDNOW customers have
    1,016 distinct (frequency, recency, T).
    """
    return summary.groupby(list(columns), sort=True).size().rename("weights").reset_index()


def holdout_metrics(cal: pd.DataFrame, predicted: np.ndarray) -> dict[str, float]:
    """Per-customer and aggregate error of predicted vs actual holdout purchases."""
    actual = cal["frequency_holdout"].to_numpy()
    err = predicted - actual
    return {
        "customers": int(len(cal)),
        "actual_total": float(actual.sum()),
        "predicted_total": float(predicted.sum()),
        "aggregate_error_pct": float(100 * (predicted.sum() - actual.sum()) / actual.sum()) if actual.sum() else np.nan,
        "mae": float(np.abs(err).mean()),
        "rmse": float(np.sqrt((err**2).mean())),
        "correlation": float(np.corrcoef(predicted, actual)[0, 1]),
    }


def calibration_end(first: pd.Timestamp, observation_end: pd.Timestamp, holdout_fraction: float) -> pd.Timestamp:
    """The day that ends calibration: the last ``holdout_fraction`` of the span is held out."""
    if not 0 < holdout_fraction < 1:
        raise ParameterError(f"clv_holdout_fraction must lie strictly between 0 and 1, not {holdout_fraction}")
    span_days = (observation_end - first.normalize()).days
    return observation_end - pd.Timedelta(days=int(round(holdout_fraction * span_days)))
