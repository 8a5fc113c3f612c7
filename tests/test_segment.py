"""Features and RFM segmentation on hand-computed cases and on the default run."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from cp_toolkit.features import customer_features
from cp_toolkit.segment import RFM8_CLASSES, RFM_SEGMENTS, quantile_scores, rfm_segment, segment_map, standard_segments
from cp_toolkit.text import t

from .conftest import orders_frame


def test_quantile_scores_hand_computed() -> None:
    assert quantile_scores(pd.Series([10, 20, 30, 40, 50])).tolist() == [1, 2, 3, 4, 5]
    assert quantile_scores(pd.Series([10, 20, 30, 40, 50]), higher_is_better=False).tolist() == [5, 4, 3, 2, 1]
    # ties share a score: 0, 0, 2, 2 and 4 of 5 customers have a worse value -> floor(5 * worse / 5) + 1
    assert quantile_scores(pd.Series([1, 1, 2, 2, 3])).tolist() == [1, 1, 3, 3, 5]
    assert quantile_scores(pd.Series([3, 3, 2, 2, 1]), higher_is_better=False).tolist() == [1, 1, 3, 3, 5]
    scores = quantile_scores(pd.Series(range(1000)))
    assert scores.value_counts().tolist() == [200] * 5


def test_one_time_buyers_score_one_however_many() -> None:
    """60% one-time buyers all get F = 1; the next values start at the quintile they begin in."""
    freq = pd.Series([1] * 60 + [2] * 20 + [3] * 10 + [4] * 10)
    assert quantile_scores(freq).groupby(freq).first().to_dict() == {1: 1, 2: 4, 3: 5, 4: 5}


def test_every_rf_pair_maps_to_exactly_one_segment() -> None:
    for r in range(1, 6):
        for f in range(1, 6):
            matches = [n for p, n in RFM_SEGMENTS.items() if re.fullmatch(p, f"{r}{f}")]
            assert len(matches) == 1, (r, f, matches)
    grid = segment_map()
    assert grid.loc[5, 5] == "Champions" and grid.loc[1, 1] == "Hibernating" and grid.loc[5, 1] == "New"
    assert set(grid.to_numpy().ravel()) == set(standard_segments().values())


def test_rule_table_without_match_is_an_error() -> None:
    with pytest.raises(ValueError, match="match no rule"):
        rfm_segment(pd.Series([1]), pd.Series([1]), {r"5[1-5]": "Top"})


def test_customer_features_hand_computed() -> None:
    orders = orders_frame(
        [("a", "2020-01-01", 10.0), ("a", "2020-01-11", 30.0), ("b", "2020-01-05", 5.0), ("a", "2020-02-01", 99.0)]
    )  # after as_of: ignored
    f = customer_features(orders, "2020-01-20")
    assert f.loc["a", "frequency"] == 2 and f.loc["a", "monetary"] == 40.0
    assert f.loc["a", "recency_days"] == 10.0  # from 2020-01-11 00:00 to the end of 2020-01-20
    assert f.loc["a", "tenure_days"] == 20.0 and f.loc["a", "mean_interpurchase_days"] == 10.0
    assert f.loc["b", "avg_order_value"] == 5.0 and pd.isna(f.loc["b", "mean_interpurchase_days"])


def test_features_only_use_data_up_to_as_of(cj_run) -> None:
    from cp_toolkit.features import orders_from_lines

    orders = orders_from_lines(cj_run.load("transactions"))
    early = customer_features(orders, "2017-06-30")
    assert early["last_purchase"].max() < pd.Timestamp("2017-07-01")
    truncated = customer_features(orders[orders["ts"] < "2017-07-01"], "2017-06-30")
    pd.testing.assert_frame_equal(early, truncated)


@pytest.mark.parametrize("name", ["transactions", "orders"])
def test_stages_read_rows_up_to_their_as_of_only(cj_run, name: str) -> None:
    from cp_toolkit.run.pipeline import transactions_up_to

    rows = cj_run.load(name)
    early = transactions_up_to(cj_run, "2017-06-30", name)
    assert early["ts"].max() < pd.Timestamp("2017-07-01") <= rows["ts"].max()
    assert len(early) == (rows["ts"] < "2017-07-01").sum() > 0
    assert len(transactions_up_to(cj_run, "2017-12-31", name)) == len(rows)


def test_default_run_segments(cj_run) -> None:
    seg = cj_run.load("segments")
    assert len(seg) == 2_469 and seg["customer_id"].is_unique
    assert set(seg["rfm_segment"]) <= set(standard_segments().values())
    assert seg[["r_score", "f_score", "m_score"]].isin(range(1, 6)).all().all()
    # quintiles: each F and R score holds roughly a fifth of the customers (ties permitting)
    for score in ("r_score", "f_score"):
        assert seg[score].value_counts(normalize=True).between(0.15, 0.25).all(), score


def test_profile_features_hand_computed() -> None:
    from cp_toolkit.features import profile_features

    orders = orders_frame([("a", "2020-01-01", 10.0), ("a", "2020-01-03", 20.0), ("a", "2020-01-09", 30.0),
                           ("b", "2020-01-05", 40.0)])  # fmt: skip
    lines = orders.assign(quantity=[1.0, 2.0, 3.0, 4.0], store_id=["s1", "s1", "s2", "s3"],
                          discount=[1.0, 0, 2, 0], coupon_discount=[0, 0.5, None, 0],
                          channel=["web", "Shop", "web", "web"])  # fmt: skip
    spend = pd.DataFrame({"customer_id": ["a", "a", "b"], "category": ["X", "Y", "Y"], "revenue": [45.0, 15.0, 40]})
    campaigns = pd.DataFrame({"customer_id": ["a", "a"], "campaign_id": ["1", "2"], "response": [True, False]})
    customers = pd.DataFrame({"customer_id": ["a"], "age": ["35-44"]})
    features = customer_features(orders, "2020-01-31")
    table, dictionary = profile_features(features, orders, lines, spend, 1, campaigns, customers)
    a, b = table.loc["a"], table.loc["b"]
    assert a["interpurchase_cv"] == pytest.approx(pd.Series([2.0, 6.0]).std() / 4.0) and pd.isna(b["interpurchase_cv"])
    assert a["items_per_order"] == 2.0 and a["stores"] == 2 and a["main_store_share"] == pytest.approx(2 / 3)
    assert a["category_share_y"] == 0.25 and a["category_share_other"] == 0.75 and b["category_share_y"] == 1.0
    assert a["campaigns_targeted"] == 2 and a["campaign_response_rate"] == 0.5 and b["campaigns_targeted"] == 0
    assert a["attr_age"] == "35-44" and pd.isna(b["attr_age"])
    assert a["channel_share_web"] == pytest.approx(2 / 3) and a["channel_share_Shop"] == pytest.approx(1 / 3)
    assert b["channel_share_web"] == 1.0
    # a saves 1 + 0.5 + 2 on 60 paid; discounts on 2 of 3 lines, a coupon in 1 of the 2 orders where it is known
    assert a["savings_rate"] == pytest.approx(3.5 / 63.5) and b["savings_rate"] == 0
    assert a["discount_line_share"] == pytest.approx(2 / 3) and a["coupon_order_share"] == pytest.approx(1 / 2)
    assert a["campaigns_responded"] == 1 and pd.isna(b["campaigns_responded"])
    assert dictionary["column"].tolist() == table.columns.tolist() and dictionary["meaning"].str.len().gt(0).all()


def test_own_rule_tables_are_checked() -> None:
    from cp_toolkit.segment import check_rules

    check_rules(RFM_SEGMENTS)
    check_rules({r"[4-5][4-5]": "Best", r"[4-5][1-3]|[1-3][1-5]": "Rest"})
    with pytest.raises(ValueError, match=r"'11': \[\]"):
        check_rules({r"[2-5][1-5]": "Some", r"1[2-5]": "Others"})
    with pytest.raises(ValueError, match=r"'55': \['5\[1-5\]', '\[1-5\]5'\]"):
        check_rules({r"5[1-5]": "Recent", r"[1-5]5": "Frequent", r"[1-4][1-4]": "Rest"})


def test_an_empty_base_has_an_empty_grid() -> None:
    from cp_toolkit.segment.rfm import rf_grid

    empty = pd.DataFrame({"r_score": pd.Series(dtype=int), "f_score": pd.Series(dtype=int),
                          "rfm_segment": pd.Series(dtype=str)})  # fmt: skip
    assert rf_grid(empty, 10).isna().all().all()


def _eight_customers() -> pd.DataFrame:
    """One customer per RFM class: recency 10 or 100 days (mean 55), 8 or 2 orders (mean 5),
    revenue 500 or 100 (mean 300)."""
    return pd.DataFrame(
        {
            "recency_days": [10.0, 10, 100, 100, 10, 10, 100, 100],
            "frequency": [8, 2, 8, 2, 8, 2, 8, 2],
            "monetary": [500.0, 500, 500, 500, 100, 100, 100, 100],
            "avg_order_value": [62.5, 250, 62.5, 250, 12.5, 50, 12.5, 50],
        },
        index=pd.Index(list("abcdefgh"), name="customer_id"),
    )


def test_rfm8_one_customer_per_class() -> None:
    from cp_toolkit.segment import rfm8_class

    classes = rfm8_class(_eight_customers())
    assert classes.name == "rfm8" and classes.to_dict() == {
        "a": "Important value",  # recent, frequent, high revenue
        "b": "Important to develop",  # recent, infrequent, high revenue
        "c": "Important to retain",  # not recent, frequent, high revenue
        "d": "Important to win back",
        "e": "General value",
        "f": "General to develop",
        "g": "General to retain",
        "h": "General to win back",
    }
    assert rfm8_class(_eight_customers(), language="zh")["a"] == "重要价值客户"


def test_rfm8_a_value_equal_to_the_mean_is_low() -> None:
    """Recency 10, 20, 30 (mean 20), orders 1, 2, 3 (mean 2), revenue 5, 10, 15 (mean 10): the middle
    customer equals every mean, so R, F and M are all low (R high needs a recency below the mean)."""
    from cp_toolkit.segment import rfm8_class

    features = pd.DataFrame({"recency_days": [10.0, 20, 30], "frequency": [1, 2, 3], "monetary": [5.0, 10, 15]})
    assert rfm8_class(features).tolist() == ["General to develop", "General to win back", "Important to retain"]


def test_rfm8_summary_and_its_suppression() -> None:
    from cp_toolkit.segment import rfm8_class, rfm8_summary, segment_summary

    features = pd.concat([_eight_customers()] * 2).set_axis([f"c{i}" for i in range(16)])  # two per class
    segments = pd.DataFrame({"rfm8": rfm8_class(features), "rfm_segment": ["A"] * 8 + ["B"] * 8}, index=features.index)
    table = rfm8_summary(segments, features, min_group_size=2)
    assert table.index.name == "segment" and len(table) == 8 and not table["suppressed"].any()
    value = table.loc["Important value"]
    assert value["customers"] == 2 and value["customer_share"] == 2 / 16
    assert value["revenue_share"] == pytest.approx(1000 / 4800) and value["revenue_per_customer"] == 500
    assert value["recency_days"] == 10 and value["orders"] == 8
    assert list(table.columns) == ["customers", "customer_share", "revenue", "revenue_share", "recency_days", "orders",
                                   "revenue_per_customer", "suppressed"]  # fmt: skip
    assert rfm8_summary(segments, features, min_group_size=3)["suppressed"].all()  # every class holds 2
    # the R x F table keeps its own columns: the function is one, the column and the means differ
    rf = segment_summary(segments, features, min_group_size=2)
    assert rf.index.name == "rfm_segment" and "avg_order_value" in rf and "revenue_per_customer" not in rf


def test_new_is_named_by_the_first_order() -> None:
    from cp_toolkit.segment import name_new_customers

    rules = standard_segments()
    by_cell = pd.Series(["New", "New", "Loyal", "Hibernating", "Champions", "Promising"], index=list("xyzwvu"))
    tenure = pd.Series([200.0, 30, 60, 90, 90.5, 400], index=list("xyzwvu"))
    named = name_new_customers(by_cell, tenure, rules, 90)
    # x: in the New cell but first bought 200 days ago; z, w: first order within 90 days (90 included)
    assert named.to_dict() == {"x": "Promising", "y": "New", "z": "New", "w": "New", "v": "Champions",
                               "u": "Promising"}  # fmt: skip
    assert name_new_customers(by_cell, tenure, rules, None).equals(by_cell)  # null: the R x F cell decides
    own = {r"[4-5][4-5]": "Best", r"[4-5][1-3]|[1-3][1-5]": "New"}  # no Promising: not the standard names
    assert name_new_customers(by_cell, tenure, own, 90).equals(by_cell)


def test_the_grid_protects_new_and_promising_together() -> None:
    """New and Promising share their customers, so their cells (51 and 41) form one published total:
    with 41 under the minimum, 51 is blanked too, although it is the largest cell of its row and column."""
    from cp_toolkit.segment.rfm import rf_grid

    counts = {(r, f): 50 + 5 * r + f for r in range(1, 6) for f in range(1, 6)} | {(4, 1): 5, (5, 1): 100}
    rows = [(r, f) for (r, f), n in counts.items() for _ in range(n)]
    segments = pd.DataFrame(rows, columns=["r_score", "f_score"])
    grid = rf_grid(segments, 10)
    assert pd.isna(grid.loc[4, 1]) and pd.isna(grid.loc[5, 1])
    assert grid.notna().to_numpy().sum() > 0


def test_default_run_new_and_rfm8(cj_run) -> None:
    seg = cj_run.load("segments").set_index("customer_id")
    tenure = cj_run.load("features").set_index("customer_id")["tenure_days"].reindex(seg.index)
    new = seg["rfm_segment"] == "New"
    assert (new == (tenure <= 90)).all()  # New: a first order in the last 90 days, and all of them
    assert set(seg["rfm8"]) <= {t(f"segment.rfm8.{c}", language="en") for c in RFM8_CLASSES.values()}
