"""The presentation layer: hand cases for how a figure reads by kind, for the one table formatter
every report table goes through, for the findings box, and for the change since the previous run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cp_toolkit.display import MISSING, column_kind, findings, key_figures, money, number, present, settings
from cp_toolkit.run.artifacts import RunFolder
from cp_toolkit.run.history import change, compared, previous_run


@pytest.mark.parametrize(
    ("value", "kind", "shown"),
    [(np.int64(1469307), "count", "1,469,307"), (4594146.3, "money", "4,594,146"), (17.626, "money", "17.63"),
     (0.98741, "percent", "99%"), (0.0587, "percent", "5.9%"), (0.0, "percent", "0%"), (3.0017, "days", "3"),
     (6.04, "ratio", "6.04"), (0.53241, "decimal", "0.532"), (17.62, "decimal", "17.6"), (1234.5, "decimal", "1,234"),
     (np.nan, "money", MISSING), (pd.NA, "count", MISSING), (pd.NaT, "date", MISSING), (None, "decimal", MISSING),
     (np.inf, "ratio", MISSING), (pd.Timestamp("2017-01-26 21:13:09.530174208"), "date", "2017-01-26 21:13"),
     (pd.Timestamp("2017-03-01"), "month", "2017-03"), ("Champions", "money", "Champions")],
)  # fmt: skip
def test_a_figure_reads_by_its_kind(value: object, kind: str, shown: str) -> None:
    assert number(value, kind) == shown


def test_money_in_a_sentence_carries_its_currency() -> None:
    assert money(421882.4, "USD") == "421,882 USD" and money(np.nan, "USD") == MISSING


@pytest.mark.parametrize(
    ("name", "kind"),
    [("revenue", "money"), ("revenue_share", "percent"), ("repeat_rate", "percent"), ("recency_days", "days"),
     ("mean_clv", "money"), ("lift", "ratio"), ("month", "month"), ("share_of_customers", "percent")],
)  # fmt: skip
def test_a_column_kind_comes_from_its_name(name: str, kind: str) -> None:
    assert column_kind(name) == kind


def test_a_table_has_words_for_headings_currency_on_money_and_no_raw_values() -> None:
    settings(currency="USD")
    frame = pd.DataFrame(
        {"revenue": [370886.93, np.nan], "active_customers": pd.array([1982, None], dtype="Int64"),
         "revenue_share": [0.61, 0.39]},
        index=pd.Index(pd.to_datetime(["2017-01-01", "2017-02-01"]), name="month"),
    )  # fmt: skip
    shown = present(frame)
    assert list(shown.data.columns) == ["revenue (USD)", "active customers", "share of revenue"]
    assert shown.data.iloc[0].tolist() == ["370,887", "1,982", "61%"] and shown.data.index[1] == "2017-02"
    assert "NaN" not in shown.html and "&lt;NA&gt;" not in shown.html and shown.html.count(f">{MISSING}<") == 2
    settings(currency=None)


def test_an_unnamed_index_is_hidden_flags_highlight_and_long_tables_fold() -> None:
    frame = pd.DataFrame({"rule": [f"check {i}" for i in range(20)], "flag": [i == 3 for i in range(20)]})
    shown = present(frame)
    assert "flag" not in shown.data.columns and list(shown.data.columns) == ["check"]
    assert shown.html.count("background-color: #fff3cd") >= 1 and "<details" in shown.html
    assert "Show all 20 rows" in shown.html
    assert ">0<" not in present(frame.head(3)).html  # no 0, 1, 2 row labels


def test_a_series_is_a_named_column_without_dtype() -> None:
    counts = pd.Series([2282, 112], index=pd.Index(["low", "medium"], name="churn_risk"), name="customers")
    html = present(counts).html
    assert ">customers<" in html and ">2,282<" in html and "dtype" not in html


def test_key_figures_name_each_figure_in_words() -> None:
    table = key_figures({"total": 4279757.9, "annual_discount_rate": 0.1, "custom_thing": 3}, "clv.convention",
                        {"total": "money", "annual_discount_rate": "percent"})  # fmt: skip
    rows = dict(zip(table.data.index, table.data.iloc[:, 0], strict=True))
    assert rows == {"total CLV": "4,279,758", "discount rate per year": "10%", "custom thing": "3"}


def test_findings_are_a_framed_list_with_bold_and_escaped_text() -> None:
    html = findings(["**2,469 customers** bought", "a < b", None]).data
    assert "<strong>2,469 customers</strong>" in html and "a &lt; b" in html and html.count("<li>") == 2


@pytest.mark.parametrize(
    ("now", "before", "kind", "said"),
    [(110.0, 100.0, "count", "+10.0%"), (0.62, 0.60, "percent", "+2.0 pts"), (100.0, 100.0, "money", "no change"),
     (5.0, None, "count", None), (5.0, 0.0, "count", None)],
)  # fmt: skip
def test_the_change_since_the_previous_run_in_words(now: float, before: float | None, kind: str, said: str) -> None:
    assert change(now, before, kind) == said


def _finished_run(folder: Path, kpis: dict[str, float], status: str = "ok") -> RunFolder:
    run = RunFolder(folder)
    run.record_stage("02_eda", "headline", kpis=kpis)
    (folder / "manifest.json").write_text(json.dumps({"status": status}), encoding="utf-8")
    return run


def test_the_previous_run_is_the_latest_finished_earlier_run_of_the_same_profile(tmp_path: Path) -> None:
    _finished_run(tmp_path / "2017-10-31_default", {"revenue": 80.0})
    _finished_run(tmp_path / "2017-11-30_default", {"revenue": 100.0})
    _finished_run(tmp_path / "2017-11-30_other", {"revenue": 1.0})
    _finished_run(tmp_path / "2017-12-15_default", {"revenue": 1.0}, status="failed")
    now = _finished_run(tmp_path / "2017-12-31_default", {"revenue": 110.0})
    assert previous_run(now).path.name == "2017-11-30_default"
    assert compared(now, {"revenue": 110.0}) == {"revenue": "+10.0%"}
    assert previous_run(RunFolder(tmp_path / "2017-10-31_default")) is None
    assert previous_run(RunFolder(tmp_path / "my_run")) is None


def test_groups_under_the_minimum_are_blanked_whatever_counts_them() -> None:
    settings(currency="USD", min_group_size=10)
    monthly = pd.DataFrame({"revenue": [5000.0, 120.0], "active_customers": [40, 3]},
                           index=pd.Index(pd.to_datetime(["2017-01-01", "2017-02-01"]), name="month"))  # fmt: skip
    shown = present(monthly).data
    assert shown.iloc[1].tolist() == [MISSING, MISSING] and shown.iloc[0, 0] == "5,000"
    wide = pd.DataFrame({("2016", "customers"): [50, 5, 30], ("2017", "customers"): [40, 30, 30],
                         ("2017", "revenue"): [1.0, 2.0, 3.0]})  # fmt: skip
    cells = present(wide).data
    assert (cells.iloc[1] == MISSING).all() and (cells.iloc[2] == MISSING).all()  # 5, and the next smallest with it
    assert cells.iloc[0].tolist() == ["50", "40", "1.00"]
    settings(currency=None, min_group_size=1)


def test_two_columns_of_one_name_stay_two() -> None:
    frame = pd.DataFrame([[1, 2]], columns=["a", "a"])
    assert present(frame).data.iloc[0].tolist() == ["1", "2"]


def test_the_previous_run_parameter_wins_over_the_folder_names(tmp_path: Path) -> None:
    _finished_run(tmp_path / "2017-10-31_default", {"revenue": 80.0})
    _finished_run(tmp_path / "2017-11-30_default", {"revenue": 100.0})
    now = _finished_run(tmp_path / "2017-12-31_default", {"revenue": 110.0})
    now.record_params({"previous_run": "2017-10-31_default"})
    assert previous_run(now).path.name == "2017-10-31_default"
    assert compared(now, {"revenue": 110.0}) == {"revenue": "+37.5%"}


def test_the_clv_holdout_error_is_a_signed_share_and_its_card_shows_the_sign(tmp_path: Path) -> None:
    from cp_toolkit.clv import kpis as clv_kpis
    from cp_toolkit.run.report import kpi_cards

    table = pd.DataFrame({"clv": [10.0, 30.0]})
    assert clv_kpis(table, {"holdout": {"aggregate_error_pct": 0.8}}) == {"mean_clv": 20.0, "holdout_error": 0.008}
    assert clv_kpis(table, {"holdout": {}}) == clv_kpis(table) == {"mean_clv": 20.0}  # no holdout check: no figure
    before = RunFolder(tmp_path / "2017-11-30_default")
    before.record_stage("05_clv", "headline", kpis={"mean_clv": 20.0, "holdout_error": -0.012})
    (before.path / "manifest.json").write_text(json.dumps({"status": "ok"}), encoding="utf-8")
    now = RunFolder(tmp_path / "2017-12-31_default")
    now.record_stage("05_clv", "headline", kpis={"mean_clv": 20.0, "holdout_error": 0.008})
    cards = kpi_cards(now)
    assert "CLV model&#x27;s holdout error</div><div class='figure'>+0.8%</div>" in cards
    assert "+2.0 pts on the previous run" in cards  # from -1.2% to +0.8%
    from cp_toolkit.run.history import kpi_text

    assert [kpi_text("holdout_error", v) for v in (-0.0001, 0.0, -0.003)] == ["0.0%", "0%", "-0.3%"]
    assert kpi_text("mean_clv", -5.0, "USD") == "-5.00 USD"  # only a signed figure loses a sign that rounds away
