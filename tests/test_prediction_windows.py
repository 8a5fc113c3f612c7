"""The time split, hand-computed window features and targets, and the leakage test."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cp_toolkit.errors import DataError, ParameterError
from cp_toolkit.features import orders_from_lines
from cp_toolkit.predict.windows import (
    WINDOW_FEATURES,
    features_at,
    history_cutoffs,
    labelled_windows,
    profile_spec,
    targets,
    time_split,
    window_features,
)

from .conftest import orders_frame

CUTOFF = pd.Timestamp("2020-06-30")


def tiny() -> pd.DataFrame:
    return orders_frame(
        [
            ("a", "2020-01-01 10:00", 10.0),
            ("a", "2020-03-01 10:00", 20.0),
            ("a", "2020-06-20 10:00", 30.0),
            ("a", "2020-06-30 23:00", 40.0),  # the cutoff day counts
            ("a", "2020-07-01 00:00", 99.0),  # the next day does not
            ("b", "2020-05-01 12:00", 5.0),
            ("b", "2020-09-30 12:00", 7.0),  # after the 90-day window
            ("c", "2020-07-05 00:00", 1.0),  # first order after the cutoff
        ]
    )


def test_time_split_cutoffs() -> None:
    split = time_split(tiny(), "2020-10-31 15:00", 60)
    assert (split.train_cutoff, split.test_cutoff, split.score_cutoff) == (
        pd.Timestamp("2020-07-03"),
        pd.Timestamp("2020-09-01"),
        pd.Timestamp("2020-10-31"),
    )
    # an as_of after the data: nobody can have ordered in the test window, and the message says by how much
    with pytest.raises(DataError, match=r"ordered in the test window .* lies 92 days \(0.3 years\) after the last"):
        time_split(tiny(), "2020-12-31", 90)
    with pytest.raises(DataError, match="training cutoff is 2018-07-01"):
        time_split(tiny(), "2020-06-30", 365)
    with pytest.raises(ParameterError):
        time_split(tiny(), "2020-12-31", 0)


def test_hand_computed_features() -> None:
    f = window_features(tiny(), CUTOFF)
    assert list(f.columns) == WINDOW_FEATURES and list(f.index) == ["a", "b"]
    a, b = f.loc["a"], f.loc["b"]
    end = pd.Timestamp("2020-07-01")
    assert a["recency_days"] == pytest.approx((end - pd.Timestamp("2020-06-30 23:00")) / pd.Timedelta(days=1))
    assert a["tenure_days"] == pytest.approx(181 + 14 / 24)  # from 2020-01-01 10:00
    assert (a["frequency"], a["monetary"], a["avg_order_value"]) == (4, 100.0, 25.0)
    # last 30 days: [2020-06-01, 2020-07-01) -> two orders; 90 days from 2020-04-02 -> two; 180 from 2020-01-03 -> three
    assert (a["orders_last_30d"], a["orders_last_90d"], a["orders_last_180d"]) == (2, 2, 3)
    assert (a["spend_last_30d"], a["spend_last_90d"], a["spend_last_180d"]) == (70.0, 70.0, 90.0)
    gaps = [60.0, 111.0, 10 + 13 / 24]  # Jan 1 -> Mar 1 -> Jun 20 -> Jun 30 23:00
    assert max(gaps) == a["longest_gap_days"] == pytest.approx(111.0)
    assert a["days_per_order"] == pytest.approx((181 + 14 / 24) / 4)
    assert b["recency_days"] == pytest.approx(60.5) and b["frequency"] == 1
    assert b["longest_gap_days"] == b["recency_days"] == b["tenure_days"] == b["days_per_order"]  # the open gap
    assert not f.isna().any().any()


def test_targets() -> None:
    y = targets(tiny(), CUTOFF, 90)
    assert y["churn"].to_dict() == {"a": 0, "b": 1}
    assert y["next_spend"].to_dict() == {"a": 99.0, "b": 0.0}
    assert targets(tiny(), CUTOFF, 92)["churn"].to_dict() == {"a": 0, "b": 0}  # 2020-09-30 is day 92


def random_orders(rng: np.random.Generator, n: int = 400) -> pd.DataFrame:
    days = rng.integers(0, 365, n)
    rows = [
        (f"c{rng.integers(0, 40)}", str(pd.Timestamp("2020-01-01") + pd.Timedelta(days=int(d), hours=int(h))), float(a))
        for d, h, a in zip(days, rng.integers(0, 24, n), rng.gamma(2.0, 20.0, n), strict=True)
    ]
    return orders_frame(rows)


@pytest.mark.parametrize("seed", range(20))
def test_rows_after_the_cutoff_change_no_feature(seed: int) -> None:
    rng = np.random.default_rng(seed)
    orders = random_orders(rng)
    base = window_features(orders, CUTOFF)
    after = np.flatnonzero(orders["ts"] >= CUTOFF + pd.Timedelta(days=1))
    before = np.flatnonzero(orders["ts"] < CUTOFF + pd.Timedelta(days=1))
    rows = rng.choice(after, size=min(10, len(after)), replace=False)

    changed = orders.copy()
    changed.loc[rows, "amount"] = rng.gamma(2.0, 500.0, len(rows))
    changed.loc[rows, "ts"] += pd.to_timedelta(rng.integers(0, 60, len(rows)), unit="D")
    changed.loc[rows[:3], "customer_id"] = "new"
    pd.testing.assert_frame_equal(window_features(changed, CUTOFF), base)
    pd.testing.assert_frame_equal(window_features(orders.drop(index=rows), CUTOFF), base)

    row = rng.choice(before)
    moved = orders.copy()
    moved.loc[row, "amount"] += 1.0
    assert not window_features(moved, CUTOFF).equals(base)
    moved = orders.copy()
    moved.loc[row, "ts"] = CUTOFF - pd.Timedelta(days=400)  # earlier than every order: tenure changes
    assert not window_features(moved, CUTOFF).equals(base)
    assert not window_features(orders.drop(index=[row]), CUTOFF).equals(base)


def random_lines(rng: np.random.Generator, n: int = 600) -> pd.DataFrame:
    """Lines of 40 customers over 2020: two lines per order, with category, store, channel and discounts."""
    orders = rng.integers(0, n // 2, n)
    start = pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 365 * 24, n // 2), unit="h")
    return pd.DataFrame(
        {
            "customer_id": [f"c{o % 40}" for o in orders],
            "order_id": [f"o{o}" for o in orders],
            "ts": start[orders] + pd.to_timedelta(rng.integers(0, 60, n), unit="s"),
            "amount": rng.gamma(2.0, 10.0, n),
            "category": rng.choice(["MILK", "BREAD", "BEER", "unknown"], n),
            "store_id": rng.choice(["s1", "s2", "s3"], n),
            "channel": np.asarray(["store", "online"])[orders % 2],
            "discount": rng.choice([0.0, 0.5, 1.0], n),
            "coupon_discount": rng.choice([0.0, 0.0, 2.0], n),
        }
    )


@pytest.mark.parametrize("seed", range(10))
def test_rows_after_the_cutoff_change_no_profile_column(seed: int) -> None:
    """The leakage test for every column the models see: lines after the cutoff (their amount,
    time, category, store, channel, discounts or customer) changed or deleted change nothing."""
    rng = np.random.default_rng(seed)
    lines = random_lines(rng)
    spec = profile_spec(lines, CUTOFF)

    def features(tx: pd.DataFrame) -> pd.DataFrame:
        return features_at(orders_from_lines(tx), CUTOFF, tx, spec, last_days=45)

    base = features(lines)
    assert {"interpurchase_cv", "stores", "channel_share_online", "category_share_milk", "savings_rate",
            "spend_last_window"} <= set(base.columns)  # fmt: skip
    after = lines.index[lines["ts"] >= CUTOFF + pd.Timedelta(days=1)]
    rows = rng.choice(after, size=min(20, len(after)), replace=False)
    changed = lines.copy()
    changed.loc[rows, "amount"] *= 7
    changed.loc[rows, "ts"] += pd.Timedelta(days=3)
    changed.loc[rows, ["category", "store_id", "channel"]] = ["BEER", "s9", "online"]
    changed.loc[rows, ["discount", "coupon_discount"]] = 5.0
    changed.loc[rows[:5], "customer_id"] = "c0"
    pd.testing.assert_frame_equal(features(changed), base)
    pd.testing.assert_frame_equal(features(lines.drop(index=after)), base)
    before = lines.index[lines["ts"] < CUTOFF]
    moved = lines.copy()
    moved.loc[before[:10], "category"] = "BEER"
    assert not features(moved).equals(base)


def test_history_cutoffs_and_stacked_windows() -> None:
    orders = random_orders(np.random.default_rng(0))
    split = time_split(orders, "2020-12-31", 90)
    cutoffs = history_cutoffs(split, 30, orders["ts"].min(), 60)
    assert cutoffs[-1] == split.train_cutoff and all(np.diff(cutoffs) == pd.Timedelta(days=30))
    assert cutoffs[0] >= orders["ts"].min().normalize() + pd.Timedelta(days=60) > cutoffs[0] - pd.Timedelta(days=30)
    x, y = labelled_windows(orders, cutoffs, 90)
    last = x.xs(split.train_cutoff)
    pd.testing.assert_frame_equal(last, window_features(orders, split.train_cutoff))
    pd.testing.assert_frame_equal(y.xs(split.train_cutoff), targets(orders, split.train_cutoff, 90))


def test_channel_shares_at_a_cutoff_that_saw_one_channel() -> None:
    """A channel that starts later has share 0 before it, and the one channel seen has share 1."""
    lines = random_lines(np.random.default_rng(3))
    lines["channel"] = np.where(lines["ts"] < pd.Timestamp("2020-05-01"), "store", lines["channel"])
    spec = profile_spec(lines, CUTOFF)
    assert spec.channels == ("online", "store")
    early = features_at(orders_from_lines(lines), "2020-04-01", lines, spec)
    assert (early["channel_share_store"] == 1).all() and (early["channel_share_online"] == 0).all()
