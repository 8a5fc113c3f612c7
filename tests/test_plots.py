"""Charts a manager can read: Chinese text renders with the packaged CJK font, and the layout rules
of the charts hold (no overlapping or clipped labels, no blank placeholders, no false spikes)."""

from __future__ import annotations

import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from cp_toolkit import plots
from cp_toolkit.text import labels


@pytest.fixture(autouse=True)
def _close_figures() -> None:
    yield
    plt.close("all")


def test_chinese_title_labels_ticks_and_legend_render_without_a_warning(tmp_path: Path) -> None:
    """Every kind of chart text in Chinese, saved to PNG with warnings as errors: matplotlib warns
    "Glyph ... missing from font(s)" for a character its fonts lack."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig, ax = plt.subplots(figsize=(6, 4))
        plots.use_cjk_font()
        ax.bar(["流失", "复购率", "客单价"], [3, 5, 2], label="客户细分")
        ax.plot([0, 1, 2], [1, 4, 2], color="black", label="客户生命周期价值 (USD)")
        ax.set(title="客户细分：复购率与流失", xlabel="客户细分", ylabel="客户数 (人)")
        ax.legend(title="图例")
        fig.savefig(tmp_path / "zh.png", bbox_inches="tight")
    assert (tmp_path / "zh.png").stat().st_size > 0
    family = plots._cjk_family()
    assert family is not None and family in plt.rcParams["font.family"]
    assert plt.rcParams["font.sans-serif"].index(family) == 1  # after the default Latin font


def test_the_cjk_font_is_set_up_once() -> None:
    before = (list(plt.rcParams["font.family"]), list(plt.rcParams["font.sans-serif"]))
    plots.use_cjk_font()
    plots.use_cjk_font()
    assert (list(plt.rcParams["font.family"]), list(plt.rcParams["font.sans-serif"])) == before


def test_a_plot_function_brings_the_cjk_font_back_after_an_rc_reset(tmp_path: Path) -> None:
    plt.rcdefaults()  # a notebook that resets matplotlib's settings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        shares = pd.DataFrame({"revenue_share": [0.5, 0.3]}, index=["乳制品", "饮料"])
        ax = plots.category_bars(shares, title="品类收入占比", xlabel="收入占比", ylabel="品类", empty="无品类")
        ax.figure.savefig(tmp_path / "zh.png")


# ------------------------------------------------------------------------------------------------
# Layout: no label on another


def _boxes(fig: plt.Figure, texts: list) -> list:
    """Window extents of the visible, non-empty texts (after a draw)."""
    renderer = fig.canvas.get_renderer()
    return [t.get_window_extent(renderer) for t in texts if t.get_visible() and t.get_text().strip()]


def _ticks(axis) -> list:
    """The tick labels an axis draws: those of its ticks within the view (matplotlib keeps the
    labels of ticks just outside it, which are not drawn)."""
    low, high = sorted(axis.get_view_interval())
    index = 0 if axis.axis_name == "x" else 1
    return [t for t in axis.get_ticklabels() if low - 1e-9 <= t.get_position()[index] <= high + 1e-9]


def _collisions(boxes: list, gap: float = 4.0) -> list[tuple[int, int]]:
    """Pairs of boxes closer than ``gap`` pixels (labels that touch read as one)."""
    padded = [b.padded(gap / 2) for b in boxes]
    return [(i, j) for i in range(len(boxes)) for j in range(i + 1, len(boxes)) if padded[i].overlaps(padded[j])]


#: Attributes as the Complete Journey demographics have them (income with eleven bands and a
#: pooled row, long values, shares from 1 % to 64 %).
PROFILE = pd.DataFrame(
    [("age", v, s) for v, s in [("19-24", 0.06), ("25-34", 0.18), ("35-44", 0.24), ("45-54", 0.36), ("65+", 0.09)]]
    + [("income", v, 0.09) for v in ["Under 15K", "15-24K", "25-34K", "35-49K", "50-74K", "75-99K", "100-124K",
                                     "125-149K", "150-174K", "250K+", "other (small groups)"]]
    + [("home_ownership", v, s) for v, s in [("Homeowner", 0.63), ("Probable Homeowner", 0.013), ("unknown", 0.29)]]
    + [("household_comp", v, s) for v, s in [("1 Adult Kids", 0.117), ("1 Adult No Kids", 0.318),
                                             ("2 Adults Kids", 0.243), ("2 Adults No Kids", 0.322)]]
    + [("kids_count", v, s) for v, s in [("0", 0.64), ("1", 0.2), ("3+", 0.09)]],
    columns=["attribute", "value", "share"],
)  # fmt: skip


def test_attribute_panels_have_no_overlapping_labels_and_name_attributes_in_words() -> None:
    axes = plots.attribute_panels(PROFILE, names={"household_comp": "household composition"},
                                  **labels("plots.attribute_panels"))  # fmt: skip
    fig = axes.ravel()[0].figure
    fig.canvas.draw()
    used = [ax for ax in axes.ravel() if ax.axison]
    assert len(used) == 5
    for ax in used:  # within a panel: tick labels of each axis apart
        for ticks in (_ticks(ax.xaxis), _ticks(ax.yaxis)):
            assert not _collisions(_boxes(fig, ticks)), (ax.get_title(), [t.get_text() for t in ticks])
    every = [t for ax in used for t in [*_ticks(ax.xaxis), *_ticks(ax.yaxis), ax.title, ax.xaxis.label]]
    assert not _collisions(_boxes(fig, every))  # nor across panels
    titles = [ax.get_title() for ax in used]
    assert "Customers by household composition" in titles and "Customers by home ownership" in titles
    assert not any("_" in t for t in titles) and not any(ax.get_ylabel() for ax in used)


# ------------------------------------------------------------------------------------------------
# Long tails: cut at a round value, the rest counted, never piled into the last bar


def test_interpurchase_tail_is_left_out_and_counted_not_piled_into_the_last_bar() -> None:
    rng = np.random.default_rng(1)
    days = pd.Series(np.r_[rng.exponential(5.0, 9_900), rng.uniform(200, 400, 100)])  # 1 % far out
    ax = plots.interpurchase_hist(days, **labels("plots.interpurchase_hist"))
    heights = np.array([p.get_height() for p in ax.patches])
    assert heights[-1] <= heights[-5:-1].max()  # no spike at the cut
    cut = ax.patches[-1].get_x() + ax.patches[-1].get_width()
    assert cut == round(cut) and cut < 200 and sum(heights) == (days <= cut).sum()
    beyond = int((days > cut).sum())
    assert f"{beyond:,} repeat orders ({beyond / len(days):.1%}) more than {cut:,.0f} days apart, not shown" in (
        ax.get_xlabel()
    )
    assert "clipped" not in ax.get_title()


def test_clv_hist_names_the_customers_above_the_cut_in_the_currency() -> None:
    clv = pd.DataFrame({"clv": np.r_[np.linspace(0, 7_900, 995), np.full(5, 1e6)]})  # 99th percentile 7,860
    ax = plots.clv_hist(clv, **labels("plots.clv_hist", currency="GBP"))
    assert ax.get_xlabel() == "discounted CLV (GBP); 5 customers (0.5%) above 8,000 GBP, not shown"
    assert sum(p.get_height() for p in ax.patches) == 995
    assert plots.clv_hist(clv.iloc[:0], **labels("plots.clv_hist", currency="GBP")) is None


# ------------------------------------------------------------------------------------------------
# Words, not codes


def test_quarantine_bars_name_reasons_in_words_with_their_counts() -> None:
    quality = {"tables": {"transactions": {"quarantined_by_reason": {"after_as_of": 530, "non_positive_amount": 11221}},
                          "customers": {"quarantined_by_reason": {"some_new_code": 3}}}}  # fmt: skip
    ax = plots.quarantine_bars(quality, reasons=labels("ingest.reason"), **labels("plots.quarantine_bars"))
    ticks = [t.get_text() for t in _ticks(ax.yaxis)]
    assert ticks == ["some new code (customers)", "after the end of the period (transactions)",
                     "amount zero or negative (transactions)"]  # fmt: skip
    assert [t.get_text() for t in ax.texts] == ["3", "530", "11,221"]
    assert not any("_" in t for t in [*ticks, ax.get_ylabel(), ax.get_xlabel(), ax.get_title()])


# ------------------------------------------------------------------------------------------------
# No blank placeholder


def test_migration_without_an_earlier_run_draws_nothing_and_makes_no_figure() -> None:
    plt.close("all")
    for shares in (None, pd.DataFrame()):
        assert plots.migration_heatmap(shares, **labels("plots.migration_heatmap")) is None
    nothing_set_aside = {"tables": {"transactions": {"quarantined_by_reason": {}}}}
    assert plots.quarantine_bars(nothing_set_aside, **labels("plots.quarantine_bars")) is None
    assert plt.get_fignums() == []
    shares = pd.DataFrame([[0.8, 0.2], [0.1, 0.9]], index=["Loyal", "New"], columns=["Loyal", "New"])
    assert plots.migration_heatmap(shares, **labels("plots.migration_heatmap")) is not None


# ------------------------------------------------------------------------------------------------
# Persona map: every name readable, inside the frame


def _card(name: str, customers: int, churn: float, clv: float) -> dict:
    return {"name": name, "customers": customers, "suppressed": False,
            "risk": {"mean_churn_probability": churn}, "value": {"mean_clv": clv}}  # fmt: skip


#: The personas of the default run (Complete Journey): Champions at the top-left corner, four
#: names within 0.3 percentage points and 150 USD of each other.
PERSONAS = [
    _card("Loyal", 507, 0.0048, 3063.2), _card("Champions", 330, 0.0028, 3514.2), _card("At risk", 266, 0.0416, 1475.0),
    _card("Potential loyalists", 302, 0.0126, 1298.4), _card("Hibernating", 680, 0.184, 487.6),
    _card("Need attention", 131, 0.0143, 1414.3), _card("Can't lose them", 42, 0.0123, 2805.6),
    _card("About to sleep", 162, 0.0427, 744.4), _card("New", 24, 0.0413, 515.0), _card("Promising", 25, 0.0354, 596.8),
]  # fmt: skip


def _persona_layout(cards: list[dict]) -> tuple[plt.Axes, list, list, np.ndarray, np.ndarray]:
    """The drawn map, its frame and name boxes (pixels), bubble centres and radii (pixels)."""
    ax = plots.persona_map(cards, **labels("plots.persona_map", currency="USD"))
    fig = ax.figure
    fig.canvas.draw()
    names = [t for t in ax.texts if t.get_text()]
    bubbles = ax.collections[0]
    centers = ax.transData.transform(bubbles.get_offsets())
    radii = np.sqrt(bubbles.get_sizes()) / 2 * fig.dpi / 72
    return ax, ax.get_window_extent(), _boxes(fig, names), centers, radii


@pytest.mark.parametrize("seed", [None, 0, 1, 2])
def test_persona_names_stay_inside_the_axes_and_clear_of_each_other_and_the_bubbles(seed: int | None) -> None:
    cards = PERSONAS
    if seed is not None:  # the same names, scattered elsewhere and crowded
        rng = np.random.default_rng(seed)
        cards = [_card(c["name"], int(rng.integers(10, 900)), rng.uniform(0, 0.03), rng.uniform(900, 1200))
                 for c in PERSONAS]  # fmt: skip
    ax, frame, boxes, centers, radii = _persona_layout(cards)
    assert len(boxes) == len(cards)
    for box in boxes:
        assert frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
    assert not _collisions(boxes, gap=2)
    for c, r in zip(centers, radii, strict=True):  # every bubble whole inside the frame
        assert frame.x0 <= c[0] - r and c[0] + r <= frame.x1 and frame.y0 <= c[1] - r and c[1] + r <= frame.y1
        for box in boxes:  # and no name on a bubble
            dx, dy = max(box.x0 - c[0], 0, c[0] - box.x1), max(box.y0 - c[1], 0, c[1] - box.y1)
            assert np.hypot(dx, dy) >= r
    assert ax.get_ylabel() == "mean CLV (USD)"


# ------------------------------------------------------------------------------------------------
# Open-ended groups drawn apart


def test_the_open_ended_group_of_period_transactions_is_a_separate_panel_with_its_share() -> None:
    table = pd.DataFrame({"actual": [*[40] * 28, 1240], "expected": [*[38.0] * 28, 1210.0]},
                         index=[*map(str, range(28)), "28+"])  # fmt: skip
    ax = plots.period_transactions(table, **labels("plots.period_transactions", label="BG/NBD"))
    fig = ax.figure
    side = next(a for a in fig.axes if a is not ax)
    assert max(p.get_height() for p in ax.patches) == 40 and ax.get_ylim()[1] < 100  # the 28 groups fill the panel
    assert sorted(p.get_height() for p in side.patches) == [1210.0, 1240]
    assert side.get_title() == f"{1240 / table['actual'].sum():.0%} of customers"
    fig.canvas.draw()
    assert [t.get_text() for t in _ticks(side.xaxis)] == ["28+"]
    assert "28+" not in [t.get_text() for t in _ticks(ax.xaxis)]
    assert not _collisions(_boxes(fig, _ticks(ax.xaxis)))


def test_holdout_by_frequency_marks_the_pooled_point_and_keeps_whole_ticks() -> None:
    holdout = pd.DataFrame({"frequency": [0, 1, 2, 3, 25, 40], "frequency_holdout": [0, 1, 1, 2, 9, 12],
                            "predicted_holdout": [0.2, 0.8, 1.1, 1.7, 9.5, 11.0]})  # fmt: skip
    ax = plots.holdout_by_frequency(holdout, **labels("plots.holdout_by_frequency"), max_frequency=20)
    ax.figure.canvas.draw()
    ticks = [t.get_text() for t in _ticks(ax.xaxis)]
    assert "20+" in ticks and all(t.rstrip("+").isdigit() for t in ticks)
    assert all(max(line.get_xdata()) < 20 for line in ax.get_lines() if line.get_linestyle() != "None")


# ------------------------------------------------------------------------------------------------
# Honest log ticks


def _drawn_labels(ax: plt.Axes, which: str = "major") -> list[tuple[float, str]]:
    """(position, text) of the y tick labels drawn, major or minor, within the view."""
    ax.figure.canvas.draw()
    low, high = sorted(ax.get_ylim())
    ticks = ax.yaxis.get_major_ticks() if which == "major" else ax.yaxis.get_minor_ticks()
    locs = ax.yaxis.get_majorticklocs() if which == "major" else ax.yaxis.get_minorticklocs()
    return [(loc, t.label1.get_text()) for loc, t in zip(locs, ticks, strict=False) if low <= loc <= high]


def test_revenue_factor_ticks_read_the_values_they_sit_at() -> None:
    """Indices from 94 to 113 (less than a decade): labels at round values, each exactly where its
    value is on the log axis, and no minor tick labelled (the rounded 95/98/100/102 of before)."""
    months = pd.date_range("2017-01-01", periods=6, freq="MS")
    factors = pd.DataFrame({"revenue": [100, 94, 103, 108, 99, 113], "active_customers": [100, 98, 101, 104, 102, 104],
                            "orders_per_customer": [100, 96, 100, 102, 97, 99],
                            "average_order_value": [100, 101, 100, 101, 100, 110]}, index=months)  # fmt: skip
    ax = plots.revenue_factors(factors, **labels("plots.revenue_factors"))
    major = _drawn_labels(ax)
    assert len(major) >= 3
    for loc, text in major:
        assert float(text.replace(",", "")) == pytest.approx(loc) and loc % 5 == 0
    assert all(text == "" for _, text in _drawn_labels(ax, "minor"))


def test_log_histograms_label_only_decades_or_one_two_five() -> None:
    rng = np.random.default_rng(0)
    orders = pd.DataFrame({"amount": np.exp(rng.normal(3, 1.5, 20_000))})  # about six decades
    ax = plots.order_value_hist(orders, **labels("plots.order_value_hist", currency="USD"))
    ax.figure.canvas.draw()
    low, high = ax.get_xlim()
    locs = [v for v in ax.xaxis.get_majorticklocs() if low <= v <= high]
    assert locs and all(np.log10(v) == pytest.approx(round(np.log10(v))) for v in locs)  # decades
    frequency = pd.DataFrame({c: rng.integers(1, 300, 500) for c in ["monetary", "frequency", "avg_order_value",
                                                                      "mean_interpurchase_days"]})  # fmt: skip
    axes = plots.customer_distributions(frequency, **labels("plots.customer_distributions", currency="USD"))
    ax = axes.ravel()[1]  # orders per customer, 1 to 300: 1-2-5 ticks
    ax.figure.canvas.draw()
    low, high = ax.get_xlim()
    mantissas = {round(v / 10 ** np.floor(np.log10(v)), 6) for v in ax.xaxis.get_majorticklocs() if low <= v <= high}
    assert mantissas <= {1.0, 2.0, 5.0} and len(mantissas) > 1


# ------------------------------------------------------------------------------------------------
# Chinese through the plot functions themselves


def test_plot_functions_draw_chinese_texts_without_a_warning(tmp_path: Path) -> None:
    zh = {"title_fmt": "按{attribute}划分的客户", "xlabel": "有属性客户占比", "empty": "无客户属性"}
    cards = [_card(name, c["customers"], c["risk"]["mean_churn_probability"], c["value"]["mean_clv"])
             for name, c in zip(["冠军客户", "忠诚客户", "流失风险", "潜在忠诚", "沉睡客户", "需要关注", "不能失去",
                                 "即将沉睡", "新客户", "有潜力"], PERSONAS, strict=True)]  # fmt: skip
    table = pd.DataFrame({"actual": [*[40] * 8, 300], "expected": [*[38.0] * 8, 290.0]},
                         index=[*map(str, range(8)), "8+"])  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        axes = plots.attribute_panels(PROFILE, names={"income": "家庭收入", "age": "年龄"}, **zh)
        axes.ravel()[0].figure.savefig(tmp_path / "panels.png")
        ax = plots.persona_map(cards, title="客户画像：价值与流失风险", xlabel="平均流失概率",
                               ylabel="平均客户生命周期价值 (元)", empty="无")  # fmt: skip
        ax.figure.savefig(tmp_path / "personas.png")
        ax = plots.period_transactions(table, title="校准期复购次数", xlabel="复购周期数", ylabel="客户数",
                                       actual="实际", expected="预测", pooled_fmt="占客户 {share:.0%}")  # fmt: skip
        ax.figure.savefig(tmp_path / "periods.png", bbox_inches="tight")


# ------------------------------------------------------------------------------------------------
# Series of runs: a panel per key figure, a gap and a band for a period that did not run

PERIODS = ["31 Jul 2017", "31 Aug 2017", "30 Sep 2017", "31 Oct 2017", "30 Nov 2017", "31 Dec 2017"]


def test_kpi_trends_draw_a_panel_per_figure_with_a_gap_where_a_period_failed() -> None:
    frame = pd.DataFrame(
        {
            "customers": [2400, 2420, np.nan, 2450, 2460, 2469],
            "revenue": [380000, 390000, np.nan, 400000, 405000, 410000],
            "share_at_risk": [0.21, 0.22, np.nan, 0.23, 0.25, 0.26],
            "orders": np.nan,  # no period has it: no panel
        },
        index=PERIODS,
    )
    kinds = {"customers": "count", "revenue": "money", "share_at_risk": "percent", "orders": "count"}
    names = {"customers": "customers", "revenue": "revenue (USD)", "share_at_risk": "expected to lapse"}
    missing = [False, False, True, False, False, False]
    axes = plots.kpi_trends(frame, kinds=kinds, names=names, missing=missing, **labels("plots.kpi_trends"))
    fig = axes.ravel()[0].figure
    fig.canvas.draw()
    used = [ax for ax in axes.ravel() if ax.axison]
    assert [ax.get_title() for ax in used] == ["customers", "revenue (USD)", "expected to lapse"]
    for ax in used:
        assert np.isnan(ax.lines[0].get_ydata()[2])  # a gap, not a line drawn through the failed month
        (band,) = ax.patches
        assert band.get_x() < 2 < band.get_x() + band.get_width()
        ticks = _ticks(ax.xaxis)
        assert [t.get_text() for t in ticks] == PERIODS and ticks[2].get_color() == "#b00"
        # labels at 45 degrees: apart when the tick spacing across their slant exceeds a line of text
        spacing = np.diff(ax.transData.transform([(0, 0), (1, 0)])[:, 0])[0]
        assert (
            ticks[0].get_rotation() == 45 and spacing * np.sin(np.pi / 4) > 1.3 * ticks[0].get_fontsize() * fig.dpi / 72
        )
    assert all(t.get_text().endswith("%") for t in _ticks(used[2].yaxis))
    assert any("," in t.get_text() for t in _ticks(used[1].yaxis))
    every = [t for ax in used for t in [*_ticks(ax.yaxis), ax.title]]
    assert not _collisions(_boxes(fig, every))


def test_kpi_trends_of_one_period_or_of_none_draw_without_error() -> None:
    one = pd.DataFrame({"customers": [2469.0]}, index=PERIODS[:1])
    axes = plots.kpi_trends(one, kinds={}, names={}, **labels("plots.kpi_trends"))
    assert axes.size == 1 and axes.ravel()[0].lines[0].get_ydata()[0] == 2469
    empty = pd.DataFrame({"customers": [np.nan, np.nan]}, index=PERIODS[:2])
    (ax,) = plots.kpi_trends(empty, kinds={}, names={}, missing=[True, True], **labels("plots.kpi_trends")).ravel()
    assert not ax.axison and ax.texts[0].get_text() == labels("plots.kpi_trends")["empty"]


def test_segment_trends_skip_hidden_segments_and_keep_the_legend_beside_the_axes() -> None:
    frame = pd.DataFrame(
        {"Champions": [400, np.nan, 410], "New": [np.nan, np.nan, np.nan], "At risk": [300, np.nan, 290]},
        index=PERIODS[:3],
    )
    ax = plots.segment_trends(frame, missing=[False, True, False], **labels("plots.segment_trends"))
    fig = ax.figure
    fig.canvas.draw()
    assert [line.get_label() for line in ax.lines] == ["Champions", "At risk"]  # New is hidden in every period
    legend = ax.get_legend().get_window_extent(fig.canvas.get_renderer())
    assert legend.x0 > ax.get_window_extent().x1
    assert ax.get_ylim()[0] == 0 and len(ax.patches) == 1
