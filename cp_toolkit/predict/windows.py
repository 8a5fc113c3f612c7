"""The time split, the window features and the targets of prediction.

With ``h = horizon_days`` and the run's last day ``as_of``::

    train: features up to  as_of - 2h, targets from (as_of - 2h, as_of - h]
    test:  features up to  as_of - h,  targets from (as_of - h,  as_of]
    score: features up to  as_of

A cutoff is a day: features use the orders placed up to the end of it (``ts`` before the next
midnight), targets the orders of the ``h`` days that follow. Model choice looks only at windows
whose targets end by the test cutoff (:func:`history_cutoffs`, :func:`labelled_windows`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import DataError, ParameterError
from ..features import (
    category_share_column,
    category_shares,
    customer_features,
    discount_use,
    interpurchase_days,
    store_use,
)

__all__ = [
    "RECENT_DAYS",
    "WINDOW_FEATURES",
    "ProfileSpec",
    "TimeSplit",
    "features_at",
    "history_cutoffs",
    "in_window",
    "labelled_windows",
    "last_window_column",
    "profile_columns",
    "profile_spec",
    "signed_log1p",
    "targets",
    "time_folds",
    "time_split",
    "window_features",
]

#: Lengths (days) of the recent windows whose orders and spend are counted.
RECENT_DAYS = (30, 90, 180)

#: Columns of :func:`window_features`, in order.
WINDOW_FEATURES = [
    "recency_days",
    "tenure_days",
    "frequency",
    "monetary",
    "avg_order_value",
    "avg_lines_per_order",
    *(f"orders_last_{d}d" for d in RECENT_DAYS),
    *(f"spend_last_{d}d" for d in RECENT_DAYS),
    "days_per_order",
    "longest_gap_days",
]

DAY = pd.Timedelta(days=1)


@dataclass(frozen=True)
class TimeSplit:
    """The three cutoffs of a run (days; each includes its whole day) and the horizon."""

    train_cutoff: pd.Timestamp
    test_cutoff: pd.Timestamp
    score_cutoff: pd.Timestamp
    horizon_days: int


def _end(cutoff: str | pd.Timestamp) -> pd.Timestamp:
    """The first instant after the cutoff day."""
    return pd.Timestamp(cutoff).normalize() + DAY


def time_split(orders: pd.DataFrame, as_of: str | pd.Timestamp, horizon_days: int) -> TimeSplit:
    """The train, test and scoring cutoffs ``as_of - 2h``, ``as_of - h`` and ``as_of``.

    Parameters
    ----------
    orders : DataFrame
        Orders with ``customer_id``, ``ts`` and ``amount`` (:func:`cp_toolkit.features.orders_from_lines`).
    as_of : str or Timestamp
        The run's last day.
    horizon_days : int
        Length ``h`` of every target window, in days.

    Returns
    -------
    TimeSplit

    Raises
    ------
    ParameterError
        When ``horizon_days`` is not a positive whole number.
    DataError
        When there are no orders before the training cutoff (a horizon longer than the history),
        or none after the test cutoff (an ``as_of`` after the data).
    """
    if isinstance(horizon_days, bool) or not isinstance(horizon_days, (int, np.integer)) or horizon_days < 1:
        raise ParameterError(f"horizon_days must be a whole number of days of at least 1, got {horizon_days!r}")
    last = pd.Timestamp(as_of).normalize()
    h = pd.Timedelta(days=int(horizon_days))
    split = TimeSplit(last - 2 * h, last - h, last, int(horizon_days))
    if orders.empty or orders["ts"].min() >= _end(split.train_cutoff):
        start = "there are no orders" if orders.empty else f"the orders start on {orders['ts'].min().date()}"
        raise DataError(
            f"with horizon_days={horizon_days} and as_of {last.date()} the training cutoff is "
            f"{split.train_cutoff.date()}, but {start}: choose a shorter horizon_days or a later as_of"
        )
    _require_recent_orders(orders, split)
    return split


def _require_recent_orders(orders: pd.DataFrame, split: TimeSplit) -> None:
    """Refuse an ``as_of`` after the data: with no order after the test cutoff, every customer
    lapses there and nothing can be learnt; the message says by how much ``as_of`` lies past the
    last order."""
    latest = orders["ts"].max().normalize()
    if latest > split.test_cutoff:
        return
    days = (split.score_cutoff - latest).days
    window = "the training window nor the test window" if latest <= split.train_cutoff else "the test window"
    raise DataError(
        f"no customer ordered in {window} (training outcomes {(split.train_cutoff + DAY).date()} to "
        f"{split.test_cutoff.date()}, test outcomes {(split.test_cutoff + DAY).date()} to "
        f"{split.score_cutoff.date()}): "
        f"as_of {split.score_cutoff.date()} lies {days:,} days ({days / 365.25:.1f} years) after the last transaction "
        f"({latest.date()}); set as_of to {latest.date()} or a day shortly after it"
    )


def in_window(rows: pd.DataFrame, after: str | pd.Timestamp, days: int) -> pd.DataFrame:
    """The rows (orders or lines, by ``ts``) of the ``days`` whole days after day ``after``:
    from the end of ``after`` up to the end of ``after + days``, i.e. (after, after + days]."""
    begin = _end(after)
    return rows[(rows["ts"] >= begin) & (rows["ts"] < begin + pd.Timedelta(days=days))]


def _longest_gap(seen: pd.DataFrame, recency_days: pd.Series) -> pd.Series:
    """Longest time (days) each customer went without an order: between two consecutive orders or
    the open gap from the last order to the end of the cutoff day (``recency_days``)."""
    ordered = seen.sort_values(["customer_id", "ts"], kind="stable")
    gaps = ordered.groupby("customer_id", observed=True)["ts"].diff() / DAY
    closed = gaps.groupby(ordered["customer_id"], observed=True).max().reindex(recency_days.index)
    return np.fmax(closed, recency_days)


def window_features(orders: pd.DataFrame, cutoff: str | pd.Timestamp) -> pd.DataFrame:
    """Behaviour of each customer seen by ``cutoff``, strictly from orders up to the end of that day.

    Parameters
    ----------
    orders : DataFrame
        Orders with ``customer_id``, ``order_id``, ``ts``, ``amount`` and ``n_lines``.
    cutoff : str or Timestamp
        The last day the features may use.

    Returns
    -------
    DataFrame
        Indexed by ``customer_id`` (sorted), the :data:`WINDOW_FEATURES`: recency and tenure
        (days from the last and first order to the end of the cutoff day), orders and revenue
        (frequency, monetary, average order value, lines per order), orders and revenue in the
        last 30, 90 and 180 days, days per order (tenure over orders) and the longest time
        without an order, the open gap since the last order included. Every value is defined
        for every customer; scaling is left to the models.
    """
    end = _end(cutoff)
    seen = orders[orders["ts"] < end]
    f = customer_features(seen, cutoff)
    for days in RECENT_DAYS:
        recent = seen[seen["ts"] >= end - pd.Timedelta(days=days)].groupby("customer_id", observed=True)
        f[f"orders_last_{days}d"] = recent.size().reindex(f.index, fill_value=0).astype("int64")
        f[f"spend_last_{days}d"] = recent["amount"].sum().reindex(f.index, fill_value=0.0)
    f["days_per_order"] = f["tenure_days"] / f["frequency"]
    f["longest_gap_days"] = _longest_gap(seen, f["recency_days"])
    return f[WINDOW_FEATURES]


@dataclass(frozen=True)
class ProfileSpec:
    """The columns of stage 03's customer feature table that every window shares: the product
    categories and channels with a share column of their own (fixed from the data up to the
    training cutoff, so that all windows have the same columns)."""

    categories: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()


def profile_spec(lines: pd.DataFrame, cutoff: str | pd.Timestamp, top_n: int = 10) -> ProfileSpec:
    """The ``top_n`` categories by revenue and the channels (when two or more) of the lines up to ``cutoff``.

    Parameters
    ----------
    lines : DataFrame
        Transaction lines with ``customer_id``, ``ts``, ``amount`` and, where the data have them,
        ``category`` (joined from products; ``unknown`` where a product has none) and ``channel``.
    cutoff : str or Timestamp
        The training cutoff: what comes after it does not choose the columns.
    top_n : int
        Categories with a share column of their own.
    """
    seen = lines[lines["ts"] < _end(cutoff)]
    categories: tuple[str, ...] = ()
    if "category" in seen.columns:
        known = seen[seen["category"] != "unknown"]
        categories = tuple(known.groupby("category", observed=True)["amount"].sum().nlargest(top_n).index.astype(str))
    channels: tuple[str, ...] = ()
    if "channel" in seen.columns and seen["channel"].nunique() >= 2:
        channels = tuple(sorted(seen["channel"].dropna().astype(str).unique()))
    return ProfileSpec(categories, channels)


def profile_columns(
    orders: pd.DataFrame, lines: pd.DataFrame, cutoff: str | pd.Timestamp, spec: ProfileSpec
) -> pd.DataFrame:
    """Stage 03's behaviour columns as of ``cutoff``, strictly from lines and orders up to the end of that day.

    Regularity (``interpurchase_cv``), stores (``stores``, ``main_store_share``), the share of
    orders per channel and of revenue per category of ``spec`` (``category_share_<name>``, the
    rest in ``category_share_other``) and discount use (:func:`cp_toolkit.features.discount_use`),
    each where the data carry it. Campaign columns are left out: the campaigns table has no dates,
    so a response could come from after the cutoff. Customer attributes are left out too (text
    values known for part of the customers only).

    Returns
    -------
    DataFrame
        Indexed by the ``customer_id`` of the orders up to ``cutoff`` (sorted); missing where a
        customer has no value (e.g. a single order has no regularity).
    """
    end = _end(cutoff)
    seen_orders, seen = orders[orders["ts"] < end], lines[lines["ts"] < end]
    index = pd.Index(np.sort(seen_orders["customer_id"].unique()), name="customer_id")
    out = pd.DataFrame(index=index)
    gaps = interpurchase_days(seen_orders).groupby(seen_orders["customer_id"], observed=True)
    out["interpurchase_cv"] = (gaps.std() / gaps.mean()).where(gaps.count() >= 2)
    out = out.join(store_use(seen))
    if spec.channels:  # over the spec's channels, also at cutoffs that saw only one of them
        first_lines = seen.drop_duplicates(["customer_id", "order_id"])
        shares = pd.crosstab(first_lines["customer_id"], first_lines["channel"], normalize="index")
        for channel in spec.channels:
            out[f"channel_share_{channel}"] = shares[channel] if channel in shares else 0.0
    if spec.categories:
        spend = seen.groupby(["customer_id", "category"], observed=True, as_index=False).agg(revenue=("amount", "sum"))
        shares = category_shares(spend).reindex(index)
        for category in spec.categories:  # two names with one column (e.g. "Frozen Food", "frozen-food") add up
            column = category_share_column(category)
            out[column] = out.get(column, 0.0) + (shares[category] if category in shares else 0.0)
        out["category_share_other"] = shares.drop(columns=list(spec.categories), errors="ignore").sum(
            axis=1, min_count=1
        )
    out = out.join(discount_use(seen))
    # a customer whose revenue nets to zero has no shares: missing, never infinite
    return out.reindex(index).astype("float64").replace([np.inf, -np.inf], np.nan)


def last_window_column(horizon_days: int) -> str:
    """The feature column holding the revenue of the last ``horizon_days``: one of the recent
    windows (``spend_last_90d``) when the horizon is one of :data:`RECENT_DAYS`, else ``spend_last_window``."""
    return f"spend_last_{horizon_days}d" if horizon_days in RECENT_DAYS else "spend_last_window"


def features_at(
    orders: pd.DataFrame,
    cutoff: str | pd.Timestamp,
    lines: pd.DataFrame | None = None,
    spec: ProfileSpec | None = None,
    last_days: int | None = None,
) -> pd.DataFrame:
    """:func:`window_features`, with ``last_days`` the revenue of the last window of that length
    (the orders of (cutoff - h, cutoff], the spend baseline: :func:`last_window_column`), and with
    ``lines`` the :func:`profile_columns` of ``spec`` (default: no category or channel share),
    all as of ``cutoff``."""
    x = window_features(orders, cutoff)
    if last_days is not None and last_window_column(last_days) not in x:
        last = in_window(orders, pd.Timestamp(cutoff).normalize() - pd.Timedelta(days=last_days), last_days)
        x["spend_last_window"] = (
            last.groupby("customer_id", observed=True)["amount"].sum().reindex(x.index, fill_value=0.0)
        )
    if lines is None:
        return x
    return x.join(profile_columns(orders, lines, cutoff, spec or ProfileSpec()))


def targets(
    orders: pd.DataFrame, cutoff: str | pd.Timestamp, horizon_days: int, customers: pd.Index | None = None
) -> pd.DataFrame:
    """Churn and next-period spend in the ``horizon_days`` after ``cutoff``.

    Parameters
    ----------
    orders : DataFrame
        Orders with ``customer_id``, ``ts`` and ``amount``.
    cutoff : str or Timestamp
        The last day of the features; the target window is the next ``horizon_days`` days.
    horizon_days : int
        Length of the target window.
    customers : Index, optional
        The customers to label; by default those with an order up to ``cutoff`` (the rows of
        :func:`window_features`).

    Returns
    -------
    DataFrame
        Indexed like ``customers``: ``churn`` (1 = no order in the window) and ``next_spend``
        (revenue in the window).
    """
    end = _end(cutoff)
    if customers is None:
        customers = pd.Index(np.sort(orders.loc[orders["ts"] < end, "customer_id"].unique()), name="customer_id")
    window = in_window(orders, cutoff, horizon_days)
    by = window.groupby("customer_id", observed=True)
    n = by.size().reindex(customers, fill_value=0)
    spend = by["amount"].sum().reindex(customers, fill_value=0.0)
    return pd.DataFrame({"churn": (n == 0).astype("int64"), "next_spend": spend.astype("float64")}, index=customers)


def history_cutoffs(split: TimeSplit, step_days: int, first_day: pd.Timestamp, min_history_days: int) -> list:
    """Cutoffs whose target windows end by the test cutoff: the training cutoff and every
    ``step_days`` before it, while at least ``min_history_days`` of orders precede them.

    Parameters
    ----------
    split : TimeSplit
        The run's split.
    step_days : int
        Days between two cutoffs.
    first_day : Timestamp
        Day of the first order.
    min_history_days : int
        Days of history a cutoff needs after ``first_day``.

    Returns
    -------
    list of Timestamp
        Oldest first; the last is ``split.train_cutoff``.
    """
    earliest = pd.Timestamp(first_day).normalize() + pd.Timedelta(days=min_history_days)
    out, cutoff = [], split.train_cutoff
    while cutoff >= earliest:
        out.append(cutoff)
        cutoff -= pd.Timedelta(days=step_days)
    return out[::-1] or [split.train_cutoff]


def labelled_windows(
    orders: pd.DataFrame,
    cutoffs: Sequence[pd.Timestamp],
    horizon_days: int,
    lines: pd.DataFrame | None = None,
    spec: ProfileSpec | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Window features and targets of several cutoffs, stacked.

    Parameters
    ----------
    orders : DataFrame
        Orders (see :func:`window_features`).
    cutoffs : sequence of Timestamp
        The feature cutoffs.
    horizon_days : int
        Length of each target window.
    lines, spec : optional
        Transaction lines and the profile columns to add (:func:`features_at`).

    Returns
    -------
    (DataFrame, DataFrame)
        Features and targets indexed by (``cutoff``, ``customer_id``).
    """
    xs, ys = [], []
    for cutoff in cutoffs:
        x = features_at(orders, cutoff, lines, spec, horizon_days)
        xs.append(x)
        ys.append(targets(orders, cutoff, horizon_days, x.index))
    keys = [pd.Timestamp(c) for c in cutoffs]
    return pd.concat(xs, keys=keys, names=["cutoff"]), pd.concat(ys, keys=keys, names=["cutoff"])


def signed_log1p(x: np.ndarray) -> np.ndarray:
    """sign(x) log(1 + |x|): the log scale of counts, days and money, defined for refunds too."""
    return np.sign(x) * np.log1p(np.abs(x))


def time_folds(cutoffs: pd.Index, horizon_days: int, n_folds: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Time-ordered folds of stacked windows: each of the latest ``n_folds`` cutoffs validates
    models fitted on the windows whose targets end by it (``cutoff + horizon <= validation``).

    Parameters
    ----------
    cutoffs : Index
        The cutoff of each stacked row.
    horizon_days : int
        Length of the target windows.
    n_folds : int
        Most folds to make.

    Returns
    -------
    list of (train positions, validation positions)
        Latest validation cutoff last; folds with no earlier window are left out.
    """
    values = pd.DatetimeIndex(cutoffs)
    h = pd.Timedelta(days=horizon_days)
    folds = []
    for v in sorted(values.unique())[::-1]:
        train = np.flatnonzero(values + h <= v)
        if len(train):
            folds.append((train, np.flatnonzero(values == v)))
        if len(folds) == n_folds:
            break
    return folds[::-1]
