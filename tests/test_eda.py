"""EDA tables on hand-computed cases: cohorts, revenue decomposition, weekday and hour."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cp_toolkit.eda import (
    attribute_breakdown,
    cohort_retention,
    monthly_activity,
    revenue_decomposition,
    weekday_hour,
)
from cp_toolkit.features import customer_features
from cp_toolkit.privacy import SUPPRESSED

from .conftest import orders_frame


def test_cohort_retention_hand_computed() -> None:
    # January cohort: a, b, c (a orders again in Feb and Mar, b in Mar); February cohort: d alone
    orders = orders_frame(
        [
            ("a", "2020-01-05", 1.0), ("b", "2020-01-09", 1.0), ("c", "2020-01-20", 1.0),
            ("a", "2020-02-03", 1.0), ("d", "2020-02-10", 1.0), ("a", "2020-03-01", 1.0), ("b", "2020-03-15", 1.0),
        ]
    )  # fmt: skip
    table = cohort_retention(orders, min_group_size=1)
    assert table.loc["2020-01-01", "customers"] == 3 and table.loc["2020-02-01", "customers"] == 1
    assert table.loc["2020-01-01", [0, 1, 2]].tolist() == pytest.approx([1.0, 1 / 3, 2 / 3])
    assert cohort_retention(orders, min_group_size=2).index.tolist() == [pd.Timestamp("2020-01-01")]


def test_revenue_decomposition_adds_up() -> None:
    orders = orders_frame([("a", "2020-01-05", 10.0), ("b", "2020-01-09", 30.0), ("a", "2020-02-03", 50.0)])
    d = revenue_decomposition(monthly_activity(orders))
    jan, feb = d.iloc[0], d.iloc[1]
    assert (jan["active_customers"], jan["orders_per_customer"], jan["average_order_value"]) == (2, 1.0, 20.0)
    assert feb["dlog_revenue"] == pytest.approx(np.log(50 / 40))
    parts = feb[["dlog_active_customers", "dlog_orders_per_customer", "dlog_average_order_value"]].sum()
    assert parts == pytest.approx(feb["dlog_revenue"])


def test_weekday_hour() -> None:
    dates_only = orders_frame([("a", "2020-06-27", 1.0), ("b", "2020-06-29", 1.0)])  # Saturday, Monday
    table = weekday_hour(dates_only)
    assert table.columns.tolist() == ["all day"] and table.index[0] == "Monday"
    assert table.loc["Saturday", "all day"] == 1 and table.to_numpy().sum() == 2
    timed = dates_only.assign(ts=dates_only["ts"] + pd.to_timedelta([9, 17], unit="h"))
    assert weekday_hour(timed).loc["Monday", 17] == 1


def test_attribute_breakdown_hand_computed() -> None:
    orders = orders_frame(
        [
            ("a", "2020-01-01", 10.0), ("a", "2020-01-05", 20.0), ("b", "2020-01-02", 30.0), ("c", "2020-01-03", 40.0),
            ("d", "2020-01-04", 5.0), ("d", "2020-01-06", 5.0), ("d", "2020-01-08", 5.0), ("e", "2020-01-09", 100.0),
        ]
    )  # fmt: skip
    # f never bought; e is not in the customers table; d has no age
    customers = pd.DataFrame(
        {"customer_id": list("abcdf"), "age": ["25-34", "25-34", "18-24", None, "65+"], "region": list("NNNNS")}
    )
    table = attribute_breakdown(customer_features(orders, "2020-01-31"), customers, min_group_size=2)
    rows = table.set_index(["attribute", "value"])
    # all: 5 customers, 8 orders, revenue 215, 2 repeat buyers
    assert rows.loc[("all customers", "all")].tolist() == pytest.approx([5, 1.0, 0.4, 8 / 5, 43, 215 / 8])
    # 25-34 is a and b; 18-24 (c), unknown (d) and not recorded (e) are pooled: 3 customers, 5 orders, 155
    assert rows.loc["age"].index.tolist() == ["25-34", SUPPRESSED]
    assert rows.loc[("age", "25-34")].tolist() == pytest.approx([2, 60 / 215, 0.5, 1.5, 30, 20])
    assert rows.loc[("age", SUPPRESSED)].tolist() == pytest.approx([3, 155 / 215, 1 / 3, 5 / 3, 155 / 3, 31])
    # region: e alone is not recorded; all customers minus N would give e away, so N is pooled too
    assert rows.loc["region"].index.tolist() == [SUPPRESSED] and rows.loc[("region", SUPPRESSED), "customers"] == 5


def test_no_small_group_follows_from_the_total() -> None:
    """Ages 11, 11 and 1 (min 10): pooling 65+ alone would leave it as the total minus the rest."""
    ids = [f"c{i}" for i in range(23)]
    orders = orders_frame([(c, "2020-01-01", 999.0 if c == "c22" else 10.0) for c in ids])
    customers = pd.DataFrame({"customer_id": ids, "age": ["25-34"] * 11 + ["35-44"] * 11 + ["65+"]})
    table = attribute_breakdown(customer_features(orders, "2020-01-31"), customers, min_group_size=10)
    shown = table[table["attribute"] == "age"].set_index("value")
    assert shown.index.tolist() == ["35-44", SUPPRESSED] and shown["customers"].tolist() == [11, 12]
    assert shown.loc[SUPPRESSED, "revenue_per_customer"] == pytest.approx((110 + 999) / 12)


def test_attribute_values_in_natural_order() -> None:
    from cp_toolkit.eda.stage import _natural_key

    values = ["Homeowner", "250K+", "15-24K", "Under 15K", "100-124K", "5+", "1"]
    assert sorted(values, key=_natural_key) == ["1", "5+", "Under 15K", "15-24K", "100-124K", "250K+", "Homeowner"]


def test_log_histograms_say_what_a_log_axis_cannot_show() -> None:
    from cp_toolkit.plots import order_value_hist
    from cp_toolkit.text import labels

    orders = pd.DataFrame({"amount": [0.0, 1.0, 2.0, 3.0, -1.0]})
    ax = order_value_hist(orders, **labels("plots.order_value_hist", currency="USD"))
    assert ax.get_xlabel() == "order value (USD, log scale); 2 at or below 0 not shown"
    assert ax.get_xscale() == "log" and sum(p.get_height() for p in ax.patches) == 3
