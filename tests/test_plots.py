"""Charts a manager can read: Chinese text renders with the packaged CJK font, and the layout rules
of the charts hold (no overlapping or clipped labels, no blank placeholders, no false spikes)."""

from __future__ import annotations

import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import pytest

from cp_toolkit import plots


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
    import pandas as pd

    plt.rcdefaults()  # a notebook that resets matplotlib's settings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        shares = pd.DataFrame({"revenue_share": [0.5, 0.3]}, index=["乳制品", "饮料"])
        ax = plots.category_bars(shares, title="品类收入占比", xlabel="收入占比", ylabel="品类", empty="无品类")
        ax.figure.savefig(tmp_path / "zh.png")
