"""The customer summary BTYD models are fitted on, and the calibration/holdout split.

lifetimes 0.11.3's data helpers break under pandas 3, so they are written here, with lifetimes'
definitions (``freq='D'``, ``freq_multiplier`` = days per time unit):

- a purchase *period* is a calendar day with at least one order;
- ``frequency`` = purchase periods - 1 (repeat purchases);
- ``recency`` = last minus first purchase day, ``T`` = end of observation minus first
  purchase day, both in the time unit;
- ``monetary`` = mean revenue of the repeat purchase periods (0 for one-time buyers).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = [
    "DAYS_PER_MONTH",
    "TIME_UNITS",
    "calibration_end",
    "calibration_holdout",
    "holdout_metrics",
    "purchase_days",
    "rfm_summary",
    "unique_rows",
    "unit_days",
]

#: Time unit name -> days per unit.
TIME_UNITS = {"days": 1.0, "weeks": 7.0}
DAYS_PER_MONTH = 365.25 / 12


def unit_days(time_unit: str) -> float:
    if time_unit not in TIME_UNITS:
        raise ValueError(f"clv_time_unit {time_unit!r} is not one of {sorted(TIME_UNITS)}")
    return TIME_UNITS[time_unit]


def purchase_days(tx: pd.DataFrame) -> pd.DataFrame:
    """Revenue per customer and purchase day."""
    day = tx["ts"].dt.normalize()
    return tx.assign(day=day).groupby(["customer_id", "day"], observed=True)["amount"].sum().reset_index()


def rfm_summary(tx: pd.DataFrame, observation_end: str | pd.Timestamp, time_unit: str = "days") -> pd.DataFrame:
    """The per-customer (frequency, recency, T, monetary) summary of lifetimes.

    Parameters
    ----------
    tx : DataFrame
        Transactions or orders with ``customer_id``, ``ts`` and ``amount``.
    observation_end : str or Timestamp
        Last day observed; later purchases are ignored.
    time_unit : {"days", "weeks"}
        Unit of ``recency`` and ``T`` (weeks = days / 7, as in Fader, Hardie & Lee 2005).

    Returns
    -------
    DataFrame
        Indexed by ``customer_id``: ``frequency``, ``recency``, ``T``, ``monetary``.
    """
    end = pd.Timestamp(observation_end).normalize()
    days = purchase_days(tx[tx["ts"] < end + pd.Timedelta(days=1)])
    first = days.groupby("customer_id", observed=True)["day"].transform("min")
    g = days.assign(repeat=np.where(days["day"] > first, days["amount"], np.nan)).groupby("customer_id", observed=True)
    out = g.agg(first=("day", "min"), last=("day", "max"), periods=("day", "size"), monetary=("repeat", "mean"))
    unit = pd.Timedelta(days=unit_days(time_unit))
    return pd.DataFrame(
        {
            "frequency": (out["periods"] - 1).astype("float64"),
            "recency": (out["last"] - out["first"]) / unit,
            "T": (end - out["first"]) / unit,
            "monetary": out["monetary"].fillna(0.0),
        }
    )


def calibration_holdout(
    tx: pd.DataFrame, calibration_end: str | pd.Timestamp, observation_end: str | pd.Timestamp, time_unit: str = "days"
) -> pd.DataFrame:
    """Calibration summary plus the repeat purchase periods each customer made in the holdout.

    Returns
    -------
    DataFrame
        :func:`rfm_summary` as of ``calibration_end`` for customers seen by then, with
        ``frequency_holdout`` (purchase days in the holdout) and ``duration_holdout``.
    """
    cal_end, obs_end = pd.Timestamp(calibration_end).normalize(), pd.Timestamp(observation_end).normalize()
    cal = rfm_summary(tx, cal_end, time_unit)
    days = purchase_days(tx)
    hold = days[(days["day"] > cal_end) & (days["day"] <= obs_end)].groupby("customer_id", observed=True).size()
    cal["frequency_holdout"] = hold.reindex(cal.index, fill_value=0).astype("float64")
    cal["duration_holdout"] = (obs_end - cal_end) / pd.Timedelta(days=unit_days(time_unit))
    return cal


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
        raise ValueError(f"clv_holdout_fraction must lie strictly between 0 and 1, not {holdout_fraction}")
    span_days = (observation_end - first.normalize()).days
    return observation_end - pd.Timedelta(days=int(round(holdout_fraction * span_days)))
