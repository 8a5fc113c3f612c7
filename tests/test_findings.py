"""What the reports say first, on the embedded Complete Journey run, and the time-zone option."""

from __future__ import annotations

import pandas as pd
import pytest

from cp_toolkit import eda, ingest
from cp_toolkit.params import timezone_problems
from cp_toolkit.run.artifacts import RunFolder
from cp_toolkit.timezones import time_zones, to_local_time


@pytest.fixture(scope="module")
def cj_eda(cj_run: RunFolder) -> eda.EDAResult:
    return eda.run_stage(cj_run, currency="USD")


def test_eda_findings_state_the_base_the_month_and_the_attribute_caveat(cj_eda: eda.EDAResult) -> None:
    found = eda.findings(cj_eda, "USD")
    assert found[0] == (
        "**2,469 customers** placed 155,285 orders worth **4,594,146 USD** between 2017-01-01 and 2017-12-31; "
        "**99%** of them bought more than once."
    )
    assert found[1].startswith("In December 2017, 2,057 customers were active and spent **421,882 USD**")
    # the top ten categories hold under half of product revenue (COUPON/MISC ITEMS, the largest, is not a product)
    assert cj_eda.category_level == "department" and "By department, **GROCERY** takes 50% of revenue" in found[3]
    # 801 households with demographics spend 2.8 times as much as the 1,668 without
    assert "known for only 801 of 2,469 customers (32%)" in found[4] and "**2.8× as much**" in found[4]
    coverage = eda.attribute_coverage(cj_eda)
    assert coverage["ratio"] == pytest.approx(2.8, abs=0.05)


def test_non_product_categories_are_pooled_apart(cj_eda: eda.EDAResult) -> None:
    table = cj_eda.categories
    assert "not products" in table.index and not {"COUPON", "FUEL"} & set(table.index)
    assert table["revenue_share"].sum() == pytest.approx(1.0)
    shown = eda.category_table(cj_eda)
    assert shown.index.name == "department" and shown.index[-1] == "not products (coupons, fuel …)"


def test_eda_key_figures_are_the_report_month(cj_eda: eda.EDAResult) -> None:
    assert eda.kpis(cj_eda) == {
        "active_customers": 2057,
        "revenue": pytest.approx(421881.9, abs=1),
        "orders": 13048,
        "repeat_rate": pytest.approx(cj_eda.headline["repeat_rate"]),
    }


def test_ingest_findings_account_for_rows_quality_and_time_zone(cj_run: RunFolder) -> None:
    quality = cj_run.load("quality")
    found = ingest.findings(quality)
    assert found[0] == (
        "**1,469,307** transaction lines were read: **1,457,556** kept (99.2%) and 11,751 set aside, "
        "most as *amount zero or negative* (11,217 lines)."
    )
    score = ingest.quality_score(quality)
    assert score == sum(not r["flag"] for r in quality["scorecard"]) / len(quality["scorecard"])
    assert f"Data-quality score **{score:.0%}**" in found[2]
    assert quality["tables"]["transactions"]["timezone"] == {"stored": "UTC", "local": "America/New_York"}
    assert "stored in UTC" in found[3] and "(America/New_York)" in found[3]


def test_a_source_without_a_time_zone_says_so() -> None:
    quality = {"tables": {"transactions": {"timezone": None}}}
    assert "does not say in which time zone" in ingest.time_sentence(quality)


def test_stored_timestamps_read_as_local_wall_clock_time() -> None:
    stored = pd.Series(pd.to_datetime(["2017-01-01 05:30", "2017-07-01 03:15", "2017-12-31 23:59"]))
    local = to_local_time(stored, {"stored": "UTC", "local": "America/New_York"})
    # EST is UTC-5 in winter, EDT UTC-4 in summer
    assert local.tolist() == pd.to_datetime(["2017-01-01 00:30", "2017-06-30 23:15", "2017-12-31 18:59"]).tolist()
    assert to_local_time(stored, "America/New_York").equals(stored) and to_local_time(stored, None).equals(stored)
    assert time_zones("Europe/London") == {"stored": "Europe/London", "local": "Europe/London"}


def test_weekday_and_hour_of_day_are_local() -> None:
    orders = pd.DataFrame({"ts": pd.to_datetime(["2017-01-02 01:00", "2017-01-02 22:00"])})  # Monday, UTC
    table = eda.weekday_hour(orders, {"stored": "UTC", "local": "America/New_York"})
    assert table.loc["Sunday", 20] == 1 and table.loc["Monday", 17] == 1 and table.to_numpy().sum() == 2


@pytest.mark.parametrize(
    ("value", "problem"),
    [("Mars/Olympus", "is not a time zone name"), ({"stored": "UTC", "locale": "UTC"}, "is not allowed"),
     (5, "is not allowed"), ({"stored": "UTC", "local": "Asia/Shangai"}, "timezone.local: 'Asia/Shangai'")],
)  # fmt: skip
def test_a_wrong_time_zone_is_refused_with_what_to_write(value: object, problem: str) -> None:
    problems = timezone_problems("sources.transactions.timezone", value)
    assert problems and problem in problems[0]
    assert timezone_problems("timezone", {"stored": "UTC", "local": "Asia/Shanghai"}) == []


def test_a_one_sided_time_zone_means_one_zone() -> None:
    assert time_zones({"local": "America/New_York"}) == {"stored": "America/New_York", "local": "America/New_York"}
    converted, local = {"stored": "UTC", "local": "America/New_York"}, time_zones("America/New_York")
    quality = {"tables": {"transactions:web": {"timezone": converted}, "transactions:shop": {"timezone": local}}}
    assert "does not say" in ingest.time_sentence(quality)  # sources that differ are not converted


def test_attribute_coverage_needs_both_groups_of_the_minimum(cj_eda: eda.EDAResult) -> None:
    from dataclasses import replace

    assert eda.attribute_coverage(replace(cj_eda, min_group_size=10)) is not None
    assert eda.attribute_coverage(replace(cj_eda, min_group_size=1000)) is None  # 801 with attributes < 1,000
    assert not any("known for only" in s for s in eda.findings(replace(cj_eda, min_group_size=1000), "USD"))
