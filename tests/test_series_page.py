"""The page of a series of runs (``reports/<series>/index.html``): what it says first, its tables
and charts, and what it never shows (NaN, a small base's figures, a hidden segment's count)."""

from __future__ import annotations

import html
import re
import warnings
from collections.abc import Iterator
from pathlib import Path

import matplotlib
import pytest

from cp_toolkit.run.series_page import SeriesEntry, write_series_index
from cp_toolkit.text import set_language

matplotlib.use("Agg")

DATES = ["2017-07-31", "2017-08-31", "2017-09-30", "2017-10-31", "2017-11-30", "2017-12-31"]
ERROR = "stage 04_prediction failed in cell 7: ValueError: no customer left after the split"
FLAG = "its input changed since it ran: rerun with --force"


def _kpis(i: int) -> dict[str, float]:
    return {
        "customers": 2400.0 + 23 * i,
        "revenue": 380000.0 + 1000 * i,
        "share_at_risk": 0.21 + 0.01 * i,
        "mean_clv": 400.0 + 10 * i,
        "holdout_error": 0.008,
    }


def _entries() -> list[SeriesEntry]:
    """Six months: September failed, October has a base of 5 customers, New is hidden in July."""
    out = []
    for i, day in enumerate(DATES):
        name, previous = f"{day}_default", f"{DATES[i - 1]}_default" if i else None
        sizes = {"Champions": 400 + i, "Hibernating": 900, "New": None if i == 0 else 15}
        entry = SeriesEntry(day, name, "ok", f"{name}/index.html", _kpis(i), sizes, compared_with=previous)
        out.append(entry)
    out[1].flags = [FLAG]
    failed = f"{DATES[2]}_default.failed"
    out[2] = SeriesEntry(DATES[2], failed, "failed", f"{failed}/04_prediction.html", error=ERROR,
                         compared_with=out[2].compared_with)  # fmt: skip
    out[3].kpis = {"customers": 5.0, "revenue": 777.0, "mean_clv": 31.5}
    out[3].segment_sizes = {"Champions": 3, "Hibernating": 2}
    out[5].kpis["customers"] = 2469.0
    return out


def _visible(page: str) -> str:
    """The page's text as a reader sees it: no images, no tags, entities decoded."""
    page = re.sub(r"<style>.*?</style>", " ", page, flags=re.DOTALL)
    page = re.sub(r"src='data:image/png;base64,[^']*'", "", page)
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


@pytest.fixture
def zh() -> Iterator[None]:
    set_language("zh")
    try:
        yield
    finally:
        set_language("en")


def _write(tmp_path: Path, entries: list[SeriesEntry], **kw: object) -> str:
    path = write_series_index(tmp_path, entries, "default_monthly", currency=kw.pop("currency", "USD"), **kw)
    assert path == tmp_path / "index.html"
    return path.read_text(encoding="utf-8")


def test_the_page_opens_with_what_ran_what_failed_and_how_the_figures_moved(tmp_path: Path) -> None:
    page = _write(tmp_path, _entries(), min_group_size=10)
    text = _visible(page)
    assert "6 periods from 31 July 2017 to 31 December 2017: 5 ran to the end, 1 failed." in text
    assert f"The run of 30 September 2017 failed: {ERROR}" in text
    assert "customers 2,400 → 2,469 (+2.9%)" in text  # first to last good period
    assert "revenue in the last month 380,000 USD → 385,000 USD (+1.3%)" in text
    assert "expected to lapse in the next horizon 21% → 26% (+5.0 pts)" in text
    assert f"31 August 2017: {FLAG}" in text
    assert "31 October 2017: fewer customers than the smallest group" in text
    assert page.index("What we found") < page.index("The runs") < page.index("Key figures over time")


def test_the_runs_table_links_each_report_and_colours_the_status(tmp_path: Path) -> None:
    page = _write(tmp_path, _entries(), min_group_size=10)
    assert '<a href="2017-07-31_default/index.html">report</a>' in page
    assert '<a href="2017-09-30_default.failed/04_prediction.html">report of the failed stage</a>' in page
    assert "<span class='failed'>failed</span>" in page and "<span class='ok'>ok</span>" in page
    row = re.search(r"<tr><td class='nowrap'>30 September 2017</td>.*?</tr>", page).group(0)
    assert "31 August 2017" in row and ERROR in row  # compared with the previous period, as a date


def test_nothing_reads_nan_none_or_a_small_base(tmp_path: Path) -> None:
    page = _write(tmp_path, _entries(), min_group_size=10)
    text = _visible(page)
    assert not re.search(r"\b(nan|NaN|None|<NA>)\b", text)
    assert page.count("<img ") == 2  # the key figures and the segments
    assert "777" not in text and "31.5" not in text  # the base of 5 shows no figures
    assert "+0.8%" in text and "2,469" in text and "hidden" in text
    segments = text[text.index("Customers by RFM segment over time") :]
    assert "New hidden 15" in " ".join(segments.split())  # July hid New: never its count


@pytest.mark.parametrize("case", ["single", "all_failed", "none_ok"])
def test_a_series_without_two_good_periods_renders_without_nan(tmp_path: Path, case: str) -> None:
    entries = _entries()
    if case == "single":
        entries = entries[:1]
    elif case == "all_failed":
        entries = [SeriesEntry(e.as_of, e.name, "failed", error=ERROR) for e in entries]
    else:
        statuses = ["interrupted", "not_run", "not_run"]
        entries = [SeriesEntry(d, f"{d}_default", s) for d, s in zip(DATES[:3], statuses, strict=True)]
    text = _visible(_write(tmp_path, entries, min_group_size=10))
    assert not re.search(r"\b(nan|NaN|None)\b", text)
    if case == "single":
        assert (
            "One period, 31 July 2017: 1 ran to the end." in text
            and "Only the run of 31 July 2017 ran to the end" in text
        )
    elif case == "all_failed":
        assert "6 failed." in text and "No period ran to the end with figures to show" in text
    else:
        assert "1 interrupted, 2 not run." in text and "Not run: 31 August 2017, 30 September 2017." in text


def test_the_chinese_page_is_in_chinese(tmp_path: Path, zh: None) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warns "Glyph ... missing from font(s)"
        text = _visible(_write(tmp_path, _entries(), min_group_size=10))
    assert "从 2017年7月31日 到 2017年12月31日 共 6 个周期：5 期完整运行、1 期失败。" in text
    assert "2017年9月30日 的运行失败" in text and "冠军客户" in text and "已隐藏" in text
    assert "What we found" not in text and "report of the failed stage" not in text and "失败阶段的报告" in text
