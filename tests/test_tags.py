"""Tags: hand-computed rules, one tag per group and customer, coverage that hides small tags."""

from __future__ import annotations

import pandas as pd
import pytest

from cp_toolkit.features import customer_features, profile_features
from cp_toolkit.segment import build_tags, load_definitions, tag_coverage

from .conftest import orders_frame


@pytest.fixture
def tagged() -> pd.DataFrame:
    # a: 3 orders, last 2020-06-27 (a Saturday); b: last order 40 days before the end; c: one order
    # 200 days before; d: first order 10 days before the end (new)
    orders = orders_frame(
        [
            ("a", "2019-01-05", 10.0), ("a", "2020-06-13", 30.0), ("a", "2020-06-27", 60.0),
            ("b", "2019-03-01", 5.0), ("b", "2020-05-21", 15.0), ("c", "2019-12-13", 5.0), ("d", "2020-06-20", 50.0),
        ]
    )  # fmt: skip
    features = customer_features(orders, "2020-06-30")
    spend = pd.DataFrame(
        {"customer_id": ["a", "a", "b", "c"], "category": ["X", "Y", "Y", "unknown"], "revenue": [90.0, 10.0, 20, 5]}
    )
    campaigns = pd.DataFrame({"customer_id": ["a", "b", "b"], "campaign_id": ["1", "1", "2"],
                              "response": [True, False, False]})  # fmt: skip
    # a: a coupon on 1 of 3 orders; b saves 10 of 30; c saves 1 of 6
    lines = orders.assign(
        discount=[0, 0, 0, 5, 5, 1, 0.0],
        coupon_discount=[0, 0, 5, 0, 0, 0, 0.0],
        store_id=["s1", "s1", "s2", "s1", "s1", "s3", "s1"],
        channel=["web", "web", "store", "store", "web", "store", "web"],
    )
    table = profile_features(features, orders, lines, spend, 10, campaigns)[0]
    return build_tags(table, orders, spend, "2020-06-30", load_definitions())


def tag(tags: pd.DataFrame, group: str) -> dict[str, str]:
    rows = tags[tags["tag_group"] == group]
    return dict(zip(rows["customer_id"], rows["tag"], strict=True))


def test_rules_hand_computed(tagged: pd.DataFrame) -> None:
    assert tag(tagged, "lifecycle") == {"a": "active", "b": "at risk", "c": "lapsed", "d": "new"}
    # revenue 100, 20, 5, 50: quantiles 1.0, 0.5, 0.25, 0.75 -> high above 0.8, mid above 0.5
    assert tag(tagged, "value_tier") == {"a": "high", "b": "low", "c": "low", "d": "mid"}
    assert tag(tagged, "favourite_category") == {"a": "X", "b": "Y"}  # c bought only unknown products
    shares = tagged[tagged["tag_group"] == "favourite_category"].set_index("customer_id")["value"]
    assert shares.to_dict() == {"a": 0.9, "b": 1.0}
    # Saturdays: a 2 of 3 orders (2019-01-05, 2020-06-27), d 1 of 1 (2020-06-20)
    assert tag(tagged, "weekend_shopper") == {"a": "weekend shopper", "d": "weekend shopper"}
    assert tag(tagged, "campaign_responder") == {"a": "responder", "b": "non-responder"}  # c, d: not targeted
    # savings 20% or more, or a coupon on 25% of orders or more
    assert tag(tagged, "discount_seeker") == {"a": "discount seeker", "b": "discount seeker"}
    savings = tagged[tagged["tag_group"] == "discount_seeker"].set_index("customer_id")["value"]
    assert savings.to_dict() == pytest.approx({"a": 5 / 105, "b": 10 / 30})
    # a: 2 of 3 orders at s1 and on the web; b: both at s1, one web and one store
    assert tag(tagged, "store_loyalty") == {"a": "several stores", "b": "one store", "c": "one store", "d": "one store"}
    assert tag(tagged, "channel_preference") == {"a": "web", "b": "mixed", "c": "store", "d": "web"}
    # only a has three orders: gaps of 525 and 14 days, CV = 511 / sqrt(2) / 269.5
    assert tag(tagged, "shopping_rhythm") == {"a": "irregular"}
    cv = tagged.loc[tagged["tag_group"] == "shopping_rhythm", "value"].item()
    assert cv == pytest.approx(511 / 2**0.5 / 269.5)
    assert (tagged["as_of"] == "2020-06-30").all() and (tagged["definitions_version"] == 3).all()


def test_one_tag_per_group_and_customer(tagged: pd.DataFrame) -> None:
    assert not tagged.duplicated(["customer_id", "tag_group"]).any()


def test_coverage_names_tag_groups_in_words(tagged: pd.DataFrame) -> None:
    cover = tag_coverage(tagged, customers=4, min_group_size=2)
    assert {"value tier", "lifecycle"} <= set(cover["tag_group"]) and not cover["tag_group"].str.contains("_").any()


def test_coverage_pools_small_tags(tagged: pd.DataFrame) -> None:
    cover = tag_coverage(tagged, customers=4, min_group_size=2).set_index(["tag_group", "tag"])
    assert cover.loc[("value tier", "low"), "customers"] == 2
    assert cover.loc[("value tier", "other (2 tags)"), "customers"] == 2  # high and mid: 1 customer each
    assert not cover.loc[("lifecycle", "other (4 tags)"), "suppressed"]  # 4 tags of 1 customer, pooled: 4 >= 2
    assert cover.loc[("lifecycle", "other (4 tags)"), "customers"] == 4
    assert cover.loc[("lifecycle", "(all tagged)"), "share_of_customers"] == 1.0
    assert not (cover["customers"].dropna() < 2).any()


def test_unknown_tag_group_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown tag group"):
        build_tags(pd.DataFrame(), pd.DataFrame({"customer_id": [], "ts": pd.to_datetime([])}), pd.DataFrame(),
                   "2020-06-30", {"version": 1, "vip": {}})  # fmt: skip


def test_unknown_responses_give_no_campaign_tags() -> None:
    orders = orders_frame([("a", "2020-06-01", 10.0), ("b", "2020-06-02", 20.0)])
    features = customer_features(orders, "2020-06-30")
    campaigns = pd.DataFrame({"customer_id": ["a", "b", "b"], "campaign_id": ["1", "1", "2"]})
    for response, expected in (([pd.NA] * 3, {}), ([pd.NA, True, pd.NA], {"b": "responder"})):
        table = profile_features(features, orders, orders, pd.DataFrame(), 10, campaigns.assign(response=response))[0]
        tags = build_tags(table, orders, pd.DataFrame(), "2020-06-30", {"version": 1, "campaign_responder": {}})
        assert tag(tags, "campaign_responder") == expected
        assert tags["value"].tolist() == [1.0] * len(expected)  # campaigns responded to, not a rate times targets


def test_a_missing_setting_names_its_tag_group() -> None:
    orders = orders_frame([("a", "2020-06-01", 10.0)])
    features = customer_features(orders, "2020-06-30")
    with pytest.raises(ValueError, match="tag group 'store_loyalty' needs the setting 'min_share'"):
        build_tags(features.assign(main_store_share=1.0), orders, pd.DataFrame(), "2020-06-30",
                   {"version": 1, "store_loyalty": {}})  # fmt: skip
