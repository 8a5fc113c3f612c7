"""Features and RFM segmentation on hand-computed cases and on the default run."""

from __future__ import annotations

import re

import numpy as np
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


def test_segment_sizes_record_only_the_counts_the_report_shows() -> None:
    """A segment under the minimum is recorded without its count, and so is the smallest one shown
    beside it when the hidden ones together would still be under the minimum (the total minus the
    counts shown would give them away)."""
    from cp_toolkit.segment import segment_sizes, segment_summary

    sizes = {"A": 30, "B": 12, "C": 3}  # C alone is small; C + B = 15 >= 10 hides both
    features = pd.DataFrame(
        {"frequency": 1, "monetary": 10.0, "recency_days": 5.0, "avg_order_value": 10.0},
        index=[f"c{i}" for i in range(sum(sizes.values()))],
    )
    segments = pd.DataFrame(
        {"rfm_segment": [name for name, n in sizes.items() for _ in range(n)]}, index=features.index
    )
    assert segment_sizes(segment_summary(segments, features, min_group_size=10)) == {"A": 30, "B": None, "C": None}
    assert segment_sizes(segment_summary(segments, features, min_group_size=3)) == sizes
    assert segment_sizes(segment_summary(segments, features, min_group_size=100)) == dict.fromkeys(sizes)


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


def _cells(counts: dict[tuple[int, int], int]) -> pd.DataFrame:
    """One row per customer of each cell, named by the standard rules."""
    segments = pd.DataFrame([(r, f) for (r, f), n in counts.items() for _ in range(n)], columns=["r_score", "f_score"])
    return segments.assign(rfm_segment=rfm_segment(segments["r_score"], segments["f_score"]))


def _rename(segments: pd.DataFrame, cell: tuple[int, int], name: str, n: int) -> pd.DataFrame:
    """Name ``n`` customers of ``cell`` ``name`` (as :func:`name_new_customers` does)."""
    at = segments.index[(segments["r_score"] == cell[0]) & (segments["f_score"] == cell[1])][:n]
    assert len(at) == n
    return segments.assign(rfm_segment=segments["rfm_segment"].mask(segments.index.isin(at), name))


def _what_a_reader_can_tell(segments: pd.DataFrame, grid: pd.DataFrame, k: int) -> dict[tuple, tuple[int, int, int]]:
    """Brute force, apart from the grid's own code: every hidden cell and every segment's part of a
    shared cell that holds 1 to k - 1 customers -> (customers, least, most) that tables of whole,
    non-negative numbers agreeing with everything published can give it. Published: the shown
    cells, every row and column total, the segment table (its shown segments, the suppressed ones
    together, none for the segments it does not list). The reader knows the rules (a cell may hold
    its own segment) and which other cells each segment reaches."""
    from scipy.optimize import LinearConstraint, milp

    from cp_toolkit.privacy import values_to_pool

    parts = segments.groupby(["r_score", "f_score", "rfm_segment"]).size()
    sizes = parts.groupby(level=2).sum()
    for r in range(1, 6):
        for f in range(1, 6):
            own = (r, f, rfm_segment(pd.Series([r]), pd.Series([f]))[0])
            parts[own] = parts.get(own, 0)
    keys, x = list(parts.index), parts.to_numpy(dtype=float)

    def where(test) -> np.ndarray:
        return np.array([test(*key) for key in keys], dtype=float)

    shown = grid.stack(future_stack=True).dropna().index
    pooled = set(values_to_pool(sizes, k))
    laws = [where(lambda r, f, s, c=c: (r, f) == c) for c in shown]
    laws += [where(lambda r, f, s, i=i, j=j: (r, f)[j] == i) for i in range(1, 6) for j in (0, 1)]
    laws += [where(lambda r, f, s, n=n: s == n) for n in parts.index.unique(2) if n not in pooled]
    laws += [where(lambda r, f, s: s in pooled)]
    a = np.array(laws)
    known = LinearConstraint(a, a @ x, a @ x)
    whole = np.ones(len(keys))
    cells = [(r, f) for r, f, _ in keys]
    small = {(r, f): where(lambda r_, f_, s, c=(r, f): (r_, f_) == c) for r, f in set(cells) if pd.isna(grid.loc[r, f])}
    small |= {key: where(lambda *k, key=key: k == key) for key in keys if cells.count(key[:2]) > 1}
    out = {}
    for item, w in small.items():
        held = int(w @ x)
        if 0 < held < k:
            least = milp(w, constraints=known, integrality=whole).fun
            most = -milp(-w, constraints=known, integrality=whole).fun
            out[item] = (held, round(least), round(most))
    return out


def _leak() -> pd.DataFrame:
    """The leak of the review: cell 33 holds 111 Need attention and 9 New (a first order within
    the window); 51 holds 42 New and 15 older customers named Promising."""
    counts = {(r, f): 40 + 3 * r + 2 * f for r in range(1, 6) for f in range(1, 6)} | {(3, 3): 120}
    segments = _rename(_cells(counts), (3, 3), "New", 9)
    return _rename(segments, (5, 1), "Promising", 15)


def test_a_cell_shared_by_segments_does_not_give_a_part_away() -> None:
    """Need attention (111, only in cell 33) is published by the segment table: a cell 33 shown at
    120 gave the 9 New customers in it away. The cell is hidden with enough others that the 9 can
    be anything from 0 to 10 or more, and no other small group can be worked out either."""
    from cp_toolkit.segment import segment_summary
    from cp_toolkit.segment.rfm import rf_grid

    segments = _leak()
    features = pd.DataFrame({"frequency": 1, "monetary": 1.0}, index=segments.index)
    table = segment_summary(segments, features, 10, means={})
    assert table.loc["Need attention", "customers"] == 111 and table.loc["New", "customers"] == 51  # published
    grid = rf_grid(segments, 10)
    assert pd.isna(grid.loc[3, 3])
    for line in (grid.loc[3], grid[3]):  # another cell hidden in its row and in its column
        assert line.isna().sum() >= 2
    told = _what_a_reader_can_tell(segments, grid, 10)
    held, least, most = told[(3, 3, "New")]
    assert held == 9 and least < most  # at least two values fit what is published
    for item, (held, least, most) in told.items():
        assert least == 0 or most >= 10, f"{item}: {held} customers, known to be {least} to {most}"
    assert grid.notna().to_numpy().sum() >= 12  # not blank throughout


def test_the_grid_of_old_totals_would_have_given_it_away() -> None:
    """The same table protected as before (each segment taken as whole cells, two hidden cells to a
    total) still lets a reader pin the 9 New of cell 33: a row minus a segment lying inside it."""
    from cp_toolkit.privacy import complementary_suppression

    segments = _leak()
    grid = pd.crosstab(segments["r_score"], segments["f_score"]).sort_index(ascending=False)
    cells = [(r, f) for r in grid.index for f in grid.columns]
    reach = segments.groupby("rfm_segment").apply(lambda d: sorted(set(zip(d["r_score"], d["f_score"], strict=True))))
    totals = [[c for c in cells if c[i] == v] for i in (0, 1) for v in range(1, 6)] + list(reach)
    hidden = grid < 10
    hidden.loc[3, 3] = True  # the shared cell with a small part, hidden
    old = grid.mask(complementary_suppression(grid, hidden, totals))
    assert _what_a_reader_can_tell(segments, old, 10)[(3, 3, "New")] == (9, 9, 9)


def test_the_grid_protects_new_and_promising_together() -> None:
    """New and Promising share cell 51 (its older customers are Promising): with Promising's 5
    customers of cell 41 hidden, 51 is blanked too, although it is the largest cell of its row and
    column, or 51 less New's total would give the 5 away."""
    from cp_toolkit.segment.rfm import rf_grid

    counts = {(r, f): 50 + 5 * r + f for r in range(1, 6) for f in range(1, 6)} | {(4, 1): 5, (5, 1): 100}
    segments = _rename(_cells(counts), (5, 1), "Promising", 20)
    grid = rf_grid(segments, 10)
    assert pd.isna(grid.loc[4, 1]) and pd.isna(grid.loc[5, 1])
    assert grid.notna().to_numpy().sum() > 0
    assert all(least == 0 or most >= 10 for _, least, most in _what_a_reader_can_tell(segments, grid, 10).values())


def test_a_grid_without_small_groups_shows_every_cell() -> None:
    """One segment to a cell and every cell of 10 or more: nothing to hide, as before."""
    from cp_toolkit.segment.rfm import rf_grid

    counts = {(r, f): 40 + 3 * r + 2 * f for r in range(1, 6) for f in range(1, 6)}
    grid = rf_grid(_cells(counts), 10)
    assert grid.notna().all().all() and grid.loc[5, 1] == 57 and grid.to_numpy().sum() == sum(counts.values())
    segments = _cells(counts).drop(columns="rfm_segment")  # named by the rules
    assert rf_grid(segments, 10).equals(grid)


@pytest.mark.parametrize("seed", [0, 8, 12, 22])
def test_no_small_group_can_be_worked_out_from_a_random_grid(seed: int) -> None:
    """Uneven random bases, New spread over the recent cells: whatever the grid hides, a reader
    with every published figure pins no group of 1 to 9 customers (seeds where the old grid did)."""
    from cp_toolkit.segment.rfm import rf_grid

    rng = np.random.default_rng(seed)
    cell = rng.choice(25, size=1000, p=rng.dirichlet(np.full(25, 0.7)))
    segments = pd.DataFrame({"r_score": 5 - cell // 5, "f_score": 1 + cell % 5})
    named = rfm_segment(segments["r_score"], segments["f_score"])
    recent = rng.random(len(segments)) < np.where(segments["r_score"] >= 4, 0.15, 0.03)
    segments["rfm_segment"] = named.mask(recent, "New").mask(~recent & (named == "New"), "Promising")
    grid = rf_grid(segments, 10)
    for item, (held, least, most) in _what_a_reader_can_tell(segments, grid, 10).items():
        assert least == 0 or most >= 10, f"{item}: {held} customers, known to be {least} to {most}"


def test_default_run_new_and_rfm8(cj_run) -> None:
    seg = cj_run.load("segments").set_index("customer_id")
    tenure = cj_run.load("features").set_index("customer_id")["tenure_days"].reindex(seg.index)
    new = seg["rfm_segment"] == "New"
    assert (new == (tenure <= 90)).all()  # New: a first order in the last 90 days, and all of them
    assert set(seg["rfm8"]) <= {t(f"segment.rfm8.{c}", language="en") for c in RFM8_CLASSES.values()}
