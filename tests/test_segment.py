"""Features and RFM segmentation on hand-computed cases and on the default run."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from cp_toolkit.features import customer_features
from cp_toolkit.segment import RFM_SEGMENTS, quantile_scores, rfm_segment, segment_map, standard_segments

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
