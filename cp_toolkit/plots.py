"""All figures of the toolkit. Each function takes data (or a fitted object) and an optional
``ax``, draws, and returns the Axes; nothing here computes anything expensive or calls show().

Every title, axis label, legend entry and empty-panel message is a keyword argument without a
default: the notebooks pass the texts of :mod:`cp_toolkit.text` (``**cp.text.labels("plots.<name>")``).
An argument ending in ``_fmt`` is a template this module fills with a value only it knows
(``median_fmt`` with ``{median}``, for example)."""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib import font_manager
from matplotlib.axes import Axes
from matplotlib.axis import Axis
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter
from matplotlib.transforms import Bbox
from mpl_toolkits.axes_grid1 import make_axes_locatable

__all__ = [
    "use_cjk_font",
    "monthly_revenue",
    "order_value_hist",
    "interpurchase_hist",
    "category_bars",
    "attribute_bars",
    "attribute_panels",
    "customer_distributions",
    "attribute_behaviour",
    "quarantine_bars",
    "rfm_heatmap",
    "segment_shares",
    "holdout_by_frequency",
    "clv_hist",
    "seasonal_index",
    "clv_tracking",
    "period_transactions",
    "frequency_recency_heatmap",
    "persona_map",
    "persona_traits",
    "cohort_heatmap",
    "revenue_factors",
    "weekday_hour_heatmap",
    "cluster_selection",
    "lift_heatmap",
    "pca_scatter",
    "migration_heatmap",
    "reliability_diagram",
    "gains_chart",
    "profit_curve",
    "kpi_trends",
    "segment_trends",
]

_THOUSANDS = FuncFormatter(lambda v, _: f"{v:,.0f}")
#: A share as a percentage with the decimals its tick needs (5%, 2.5%), never rounded to another value.
_PERCENT = FuncFormatter(lambda v, _: f"{round(100 * v, 6) + 0.0:g}%")
#: Round steps of ticks on a linear scale (and on a log scale spanning less than a decade).
_ROUND_STEPS = [1, 2, 2.5, 5, 10]

#: The CJK font of the ``mplfonts`` package (a dependency): Noto Sans CJK SC, under its package folder.
_CJK_FONT = ("fonts", "NotoSansCJKsc-Regular.otf")


@functools.cache
def _cjk_family() -> str | None:
    """Register the CJK font shipped by ``mplfonts`` with matplotlib's font manager (once) and
    return its family name; None when the package or its font file is missing."""
    spec = importlib.util.find_spec("mplfonts")
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    paths = [Path(folder, *_CJK_FONT) for folder in folders if Path(folder, *_CJK_FONT).is_file()]
    if not paths:
        return None
    font_manager.fontManager.addfont(str(paths[0]))
    return font_manager.FontProperties(fname=str(paths[0])).get_name()


def use_cjk_font() -> None:
    """Let every chart draw Chinese text: the CJK font goes into the sans-serif list after the
    default Latin font, and into ``font.family`` after it, so that matplotlib (>= 3.6) takes each
    glyph the Latin font lacks from the CJK font. Idempotent; the plot functions call it, so a
    reset of ``rcParams`` in a notebook does not bring the missing-glyph boxes back."""
    family = _cjk_family()
    if family is None:
        return
    sans = list(plt.rcParams["font.sans-serif"])
    if family not in sans:
        plt.rcParams["font.sans-serif"] = [*sans[:1], family, *sans[1:]]
    families = list(plt.rcParams["font.family"])
    if family not in families:
        plt.rcParams["font.family"] = [*families, family]


def _ax(ax: Axes | None, size: tuple[float, float] = (8, 4)) -> Axes:
    """The given Axes, or a new one of ``size`` (with the CJK font in place either way)."""
    use_cjk_font()
    return ax if ax is not None else plt.subplots(figsize=size)[1]


def monthly_revenue(
    monthly: pd.DataFrame, *, title: str, xlabel: str, ylabel: str, ylabel_right: str, ax: Axes | None = None
) -> Axes:
    """Bars of monthly revenue with active customers on a second axis (``ylabel_right``)."""
    ax = _ax(ax)
    labels = monthly.index.strftime("%Y-%m")
    ax.bar(labels, monthly["revenue"], color="#4C72B0")
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.yaxis.set_major_formatter(_THOUSANDS)
    ax.tick_params(axis="x", rotation=90)
    twin = ax.twinx()
    twin.plot(labels, monthly["active_customers"], color="#DD8452", marker="o")
    twin.set_ylabel(ylabel_right)
    twin.set_ylim(bottom=0)
    twin.yaxis.set_major_formatter(_THOUSANDS)
    return ax


def order_value_hist(
    orders: pd.DataFrame,
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    median_fmt: str,
    left_out_fmt: str,
    empty_fmt: str,
    ax: Axes | None = None,
) -> Axes:
    """Distribution of order values on a log scale (the templates as in :func:`_log_hist`)."""
    texts = {"median_fmt": median_fmt, "left_out_fmt": left_out_fmt, "empty_fmt": empty_fmt}
    return _log_hist(orders["amount"], _ax(ax), title, xlabel, ylabel, texts)


def interpurchase_hist(
    days: pd.Series,
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    median_fmt: str,
    beyond_fmt: str,
    empty: str,
    ax: Axes | None = None,
) -> Axes:
    """Distribution of days between consecutive orders of a customer, up to a round cut above the
    99th percentile; the longer gaps are left out, not piled into the last bar, and the axis label
    says how many (``beyond_fmt`` as in :func:`_tail_hist`). ``median_fmt`` takes ``{median}``
    (of all gaps)."""
    ax = _ax(ax)
    if days.empty:
        return _no_data(ax, empty)
    _tail_hist(days, ax, "#55A868", xlabel, beyond_fmt)
    ax.axvline(days.median(), color="black", linestyle="--", label=median_fmt.format(median=days.median()))
    ax.set(title=title, ylabel=ylabel)
    ax.legend()
    return ax


def _round_up(value: float) -> float:
    """The smallest multiple of a round step (1, 2, 2.5 or 5 times a power of ten, a tenth of
    ``value`` or more) at or above ``value``: 46 -> 50, 8,437 -> 9,000."""
    if value <= 0:
        return value
    power = 10 ** np.floor(np.log10(value / 10))
    step = next(s * power for s in _ROUND_STEPS if s * power >= value / 10)
    return float(np.ceil(value / step) * step)


def _tail_hist(values: pd.Series, ax: Axes, color: str, xlabel: str, beyond_fmt: str) -> None:
    """Histogram of ``values`` up to a round cut above their 99th percentile, in 50 equal bins;
    values beyond the cut are left out (a clipped tail would pile into the last bar as a false
    spike). ``beyond_fmt`` makes the axis label from ``{xlabel}``, ``{count}``, ``{share}`` (of
    all values) and ``{cut}`` when any value is left out."""
    values = values.dropna()
    cut = _round_up(float(values.quantile(0.99)))
    low = min(float(values.min()), 0.0)
    beyond = int((values > cut).sum()) if cut > low else 0
    shown = values[values <= cut] if beyond else values
    high = max(cut, float(shown.max()))
    ax.hist(shown, bins=np.linspace(low, high, 51) if high > low else 10, color=color)
    ax.xaxis.set_major_formatter(_THOUSANDS if cut >= 10 else FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_major_formatter(_THOUSANDS)
    if beyond:
        xlabel = beyond_fmt.format(xlabel=xlabel, count=beyond, share=beyond / len(values), cut=cut)
    ax.set_xlabel(xlabel)


def _words(code: str, names: Mapping[str, str] | None) -> str:
    """What a chart shows for a code of the data (a column, an attribute, a reason): its name in
    ``names`` (from the text table), else the code with its underscores as spaces."""
    return (names or {}).get(code, code.replace("_", " "))


def _percent_axis(axis: Axis, nbins: int = 5) -> None:
    """Ticks of a share axis: at most ``nbins`` round percentages, so that no two labels collide."""
    axis.set_major_locator(MaxNLocator(nbins=nbins, steps=_ROUND_STEPS))
    axis.set_major_formatter(_PERCENT)


def _log_ticks(axis: Axis, low: float, high: float) -> None:
    """Labelled ticks of a log axis at the values they read, never rounded minor ticks that look
    linear: decades when the data (``low`` to ``high``) span three or more, round steps (95, 100,
    105) within one decade when they give three labels or more, else 1-2-5 (20, 50, 100); minor
    ticks unlabelled."""
    decades = np.log10(high / low) if low > 0 and high > low else 0.0
    steps = MaxNLocator(nbins=5, steps=_ROUND_STEPS)
    if decades >= 3:
        axis.set_major_locator(LogLocator(base=10))
    elif decades < 1 and sum(0 < low <= v <= high for v in steps.tick_values(low, high)) >= 3:
        axis.set_major_locator(steps)
    else:  # 1-2-5 from a decade on, and below one where round steps would leave fewer than three labels
        axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_minor_formatter(NullFormatter())


def _no_data(ax: Axes, message: str) -> Axes:
    """An empty panel that says why it is empty."""
    ax.text(0.5, 0.5, message, ha="center", va="center")
    ax.set_axis_off()
    return ax


def category_bars(
    categories: pd.DataFrame, *, title: str, xlabel: str, ylabel: str, empty: str, ax: Axes | None = None
) -> Axes:
    """Horizontal bars of revenue share by product category (``empty`` says why a panel is blank)."""
    ax = _ax(ax)
    if categories.empty:
        return _no_data(ax, empty)
    data = categories["revenue_share"][::-1]
    ax.barh(data.index.astype(str), data.to_numpy(), color="#8172B3")
    _percent_axis(ax.xaxis)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    return ax


def attribute_bars(
    profile: pd.DataFrame,
    attribute: str,
    *,
    title_fmt: str,
    xlabel: str,
    names: Mapping[str, str] | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Share of customers by value of one attribute (suppressed cells are left out); ``title_fmt``
    takes ``{attribute}``, written as its name in ``names`` (attribute column -> words), else
    with spaces for underscores. The title names the attribute, so the value axis has no label."""
    ax = _ax(ax, (5, 3))
    data = profile[(profile["attribute"] == attribute) & profile["share"].notna()]
    ax.barh(data["value"].astype(str)[::-1], data["share"][::-1], color="#64B5CD")
    _percent_axis(ax.xaxis, nbins=4)
    ax.set(title=title_fmt.format(attribute=_words(attribute, names)), xlabel=xlabel)
    return ax


def attribute_panels(
    profile: pd.DataFrame,
    *,
    title_fmt: str,
    xlabel: str,
    empty: str,
    names: Mapping[str, str] | None = None,
    axes: np.ndarray | None = None,
    ncols: int = 3,
) -> np.ndarray:
    """One :func:`attribute_bars` panel per attribute (``names`` as there); returns the array of Axes."""
    attributes = list(profile["attribute"].unique())
    axes = _grid(axes, len(attributes), ncols, 3.2)
    for attribute, ax in zip(attributes, np.ravel(axes), strict=False):
        attribute_bars(profile, attribute, title_fmt=title_fmt, xlabel=xlabel, names=names, ax=ax)
    return _finish_grid(axes, len(attributes), empty)


def _grid(axes: np.ndarray | None, panels: int, ncols: int, height: float) -> np.ndarray:
    """The given Axes, or a new grid with room for ``panels`` panels in ``ncols`` columns."""
    use_cjk_font()
    if axes is not None:
        return axes
    nrows = max(1, -(-panels // ncols))
    return plt.subplots(nrows, ncols, figsize=(5 * ncols, height * nrows), squeeze=False)[1]


def _finish_grid(axes: np.ndarray, used: int, message: str) -> np.ndarray:
    """Blank the unused panels (the first says ``message`` when none is used) and lay out."""
    flat = np.ravel(axes)
    for ax in flat[used:]:
        _no_data(ax, "" if used else message)
    flat[0].figure.tight_layout()
    return axes


def _log_hist(values: pd.Series, ax: Axes, title: str, xlabel: str, ylabel: str, texts: dict[str, str]) -> Axes:
    """Histogram of the positive ``values`` on log-spaced bins and a log x axis, median marked;
    whole-number values (counts) get bins that each hold at least one whole number. The label
    says how many values of zero or less a log axis cannot show.

    ``texts`` holds the templates ``median_fmt`` (``{median}``), ``left_out_fmt`` (``{xlabel}``,
    ``{count}``: values at or below 0) and ``empty_fmt`` (``{title}``: no positive values)."""
    left_out = int((values <= 0).sum())
    values = values[values > 0].dropna()
    if left_out:
        xlabel = texts["left_out_fmt"].format(xlabel=xlabel, count=left_out)
    if values.empty:
        return _no_data(ax, texts["empty_fmt"].format(title=title))
    low, high = np.log10(values.min()), np.log10(values.max())
    bins = np.logspace(low, max(high, low + 1e-9), 40)
    if (values == np.round(values)).all():
        whole = np.unique(np.round(bins))
        bins = np.append(whole - 0.5, whole[-1] + 0.5)
    ax.hist(values, bins=bins, color="#4C72B0")
    ax.set_xscale("log")
    _log_ticks(ax.xaxis, values.min(), values.max())
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 1 else f"{v:g}"))
    ax.yaxis.set_major_formatter(_THOUSANDS)
    ax.axvline(values.median(), color="black", linestyle="--", label=texts["median_fmt"].format(median=values.median()))
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.legend()
    return ax


#: Columns of :func:`cp_toolkit.features.customer_features` in the panels of :func:`customer_distributions`.
_DISTRIBUTIONS = ("monetary", "frequency", "avg_order_value", "mean_interpurchase_days")


def customer_distributions(
    features: pd.DataFrame,
    *,
    ylabel: str,
    left_out_fmt: str,
    empty_fmt: str,
    axes: np.ndarray | None = None,
    **panels: str,
) -> np.ndarray:
    """Four log-scale histograms over customers: revenue, orders, average order value and mean
    days between orders (of :func:`cp_toolkit.features.customer_features`); returns the Axes.

    ``panels`` holds ``<column>_title``, ``<column>_xlabel`` and ``<column>_median_fmt`` for each
    of the four columns (``monetary``, ``frequency``, ``avg_order_value``,
    ``mean_interpurchase_days``); the templates as in :func:`_log_hist`."""
    wanted = {f"{c}_{part}" for c in _DISTRIBUTIONS for part in ("title", "xlabel", "median_fmt")}
    if set(panels) != wanted:
        raise TypeError(f"customer_distributions needs the texts {sorted(wanted)}; got {sorted(panels)}")
    use_cjk_font()
    if axes is None:
        axes = plt.subplots(2, 2, figsize=(12, 7))[1]
    for ax, column in zip(np.ravel(axes), _DISTRIBUTIONS, strict=True):
        texts = {"median_fmt": panels[f"{column}_median_fmt"], "left_out_fmt": left_out_fmt, "empty_fmt": empty_fmt}
        _log_hist(features[column], ax, panels[f"{column}_title"], panels[f"{column}_xlabel"], ylabel, texts)
    np.ravel(axes)[0].figure.tight_layout()
    return axes


def attribute_behaviour(
    breakdown: pd.DataFrame,
    measure: str,
    *,
    title_fmt: str,
    xlabel_fmt: str,
    empty: str,
    names: Mapping[str, str] | None = None,
    base_row: str = "all customers",
    axes: np.ndarray | None = None,
    ncols: int = 3,
) -> np.ndarray:
    """One panel per customer attribute: ``measure`` by value, against the ``base_row`` group
    (all customers, dashed); suppressed groups are left out. ``title_fmt`` takes ``{attribute}``
    (its name in ``names``, as in :func:`attribute_bars`), ``xlabel_fmt`` takes ``{base}`` (the
    measure over all customers). Returns the array of Axes."""
    base = breakdown.loc[breakdown["attribute"] == base_row, measure].iloc[0]
    rows = breakdown[(breakdown["attribute"] != base_row) & breakdown[measure].notna()]
    attributes = list(rows["attribute"].unique())
    axes = _grid(axes, len(attributes), ncols, 3.4)
    for attribute, ax in zip(attributes, np.ravel(axes), strict=False):
        data = rows[rows["attribute"] == attribute][::-1]
        ax.barh(data["value"].astype(str), data[measure], color="#64B5CD")
        ax.axvline(base, color="black", linestyle="--")
        ax.xaxis.set_major_locator(MaxNLocator(nbins=4, steps=_ROUND_STEPS))
        ax.xaxis.set_major_formatter(_THOUSANDS if base >= 10 else FuncFormatter(lambda v, _: f"{v:.2f}"))
        ax.set(title=title_fmt.format(attribute=_words(attribute, names)), xlabel=xlabel_fmt.format(base=base))
    return _finish_grid(axes, len(attributes), empty)


def quarantine_bars(
    quality: dict[str, Any],
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    bar_fmt: str,
    reasons: Mapping[str, str] | None = None,
    ax: Axes | None = None,
) -> Axes | None:
    """Rows set aside per table and reason, largest first, each bar with its count; ``bar_fmt``
    names a bar from ``{table}`` and ``{reason}``, the reason in words from ``reasons`` (reason
    code -> text), else its code with spaces for underscores. When no row was set aside nothing is
    drawn and no figure made (None): the row accounting beside it says so."""
    rows = sorted(
        ((bar_fmt.format(table=t, reason=_words(r, reasons)), n)
         for t, v in quality["tables"].items() for r, n in v["quarantined_by_reason"].items()),
        key=lambda row: row[1],
    )  # fmt: skip
    if not rows:
        return None
    ax = _ax(ax, (7, max(2.5, 1.2 + 0.4 * len(rows))))
    labels, counts = zip(*rows, strict=True)
    bars = ax.barh(labels, counts, color="#C44E52")
    ax.bar_label(bars, labels=[f"{n:,}" for n in counts], padding=3)
    ax.set_xlim(0, max(counts) * 1.15)
    ax.xaxis.set_major_formatter(_THOUSANDS)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    return ax


def rfm_heatmap(
    grid: pd.DataFrame, *, title: str, xlabel: str, ylabel: str, colorbar: str, empty: str, ax: Axes | None = None
) -> Axes:
    """Customers per (R score, F score) cell; suppressed (missing) cells are left blank."""
    ax = _ax(ax, (6, 5))
    if grid.isna().all().all():
        return _no_data(ax, empty)
    sns.heatmap(grid, annot=True, fmt=",.0f", cmap="Blues", cbar_kws={"label": colorbar, "format": _THOUSANDS}, ax=ax)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    return ax


def segment_shares(
    summary: pd.DataFrame,
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    customers: str,
    revenue: str,
    empty: str,
    ax: Axes | None = None,
) -> Axes:
    """Customer share against revenue share for each segment (legend entries ``customers``, ``revenue``)."""
    ax = _ax(ax)
    data = summary[~summary["suppressed"]][["customer_share", "revenue_share"]]
    if data.empty:
        return _no_data(ax, empty)
    data.plot.barh(ax=ax, color=["#4C72B0", "#DD8452"])
    ax.invert_yaxis()
    _percent_axis(ax.xaxis)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.legend([customers, revenue])
    return ax


def holdout_by_frequency(
    holdout: pd.DataFrame,
    *,
    title: str,
    xlabel_fmt: str,
    ylabel: str,
    actual: str,
    predicted: str,
    ax: Axes | None = None,
    max_frequency: int = 20,
) -> Axes | None:
    """Mean predicted and actual holdout purchases by calibration-period frequency; ``xlabel_fmt``
    takes ``{max_frequency}`` (the frequency from which customers are pooled). Nothing is drawn (None) without data."""
    if holdout is None or holdout.empty:
        return None
    ax = _ax(ax)
    freq = holdout["frequency"].clip(upper=max_frequency)
    means = holdout.groupby(freq)[["frequency_holdout", "predicted_holdout"]].mean()
    pooled = bool((holdout["frequency"] > max_frequency).any())
    lines = means[means.index < max_frequency] if pooled else means
    series = (("frequency_holdout", "o", "C0", actual), ("predicted_holdout", "s", "C1", predicted))
    for column, marker, color, label in series:
        ax.plot(lines.index, lines[column], marker=marker, color=color, label=label)
        if pooled:  # the pooled group stands apart: a point, not the next step of the line
            ax.plot([max_frequency], [means[column].iloc[-1]], marker=marker, color=color, linestyle="none")
    ax.xaxis.set_major_locator(MaxNLocator(nbins=10, steps=[1, 2, 5, 10], integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(steps=[1, 2, 5, 10]))
    plus = max_frequency if pooled else None
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.0f}+" if v == plus else f"{v:.0f}"))
    ax.set(title=title, xlabel=xlabel_fmt.format(max_frequency=max_frequency), ylabel=ylabel)
    ax.legend()
    return ax


def clv_tracking(
    tracking: pd.DataFrame,
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    actual: str,
    forecast: str,
    end_fmt: str,
    ax: Axes | None = None,
) -> Axes | None:
    """Weekly cumulative repeat transactions of the calibration cohort: actual and model;
    ``end_fmt`` marks the end of calibration with ``{week}``. Nothing is drawn (None) without data."""
    if tracking is None:
        return None
    ax = _ax(ax)
    ax.plot(tracking.index, tracking["actual"], label=actual)
    ax.plot(tracking.index, tracking["predicted"], linestyle="--", label=forecast)
    end = tracking.index[~tracking["holdout"]].max()
    ax.axvline(end, color="grey", linestyle=":", label=end_fmt.format(week=end))
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.legend()
    return ax


def period_transactions(
    table: pd.DataFrame,
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    actual: str,
    expected: str,
    pooled_fmt: str,
    ax: Axes | None = None,
) -> Axes | None:
    """Customers by repeat transactions in the calibration period: actual and expected by the model.
    The last row when open-ended ("28+": everyone from there up) is drawn apart, in a narrow panel
    on the right with its own scale and its share of the customers (``pooled_fmt`` takes
    ``{share}``), so that it neither dwarfs the other bars nor passes for one of them. Returns the
    main Axes; nothing is drawn (None) without data."""
    if table is None:
        return None
    ax = _ax(ax, (9, 4))
    pooled = str(table.index[-1]).endswith("+")
    _paired_bars(ax, table.iloc[:-1] if pooled else table, actual, expected)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.legend(loc="upper left", ncols=2)
    ax.set_ylim(top=ax.get_ylim()[1] * 1.15)  # room for the legend above the bars
    if pooled:
        side = make_axes_locatable(ax).append_axes("right", size="12%", pad=0.35)
        _paired_bars(side, table.iloc[-1:], actual, expected)
        side.yaxis.tick_right()  # its own scale, read on its own side
        side.set_title(pooled_fmt.format(share=table["actual"].iloc[-1] / table["actual"].sum()), fontsize="medium")
    return ax


def _paired_bars(ax: Axes, table: pd.DataFrame, actual: str, expected: str) -> None:
    """Actual and expected customers side by side for each row of ``table`` (labelled by its index)."""
    positions = np.arange(len(table))
    ax.bar(positions - 0.2, table["actual"], width=0.4, color="C0", label=actual)
    ax.bar(positions + 0.2, table["expected"], width=0.4, color="C1", label=expected)
    step = max(1, int(np.ceil(len(table) / 15)))
    ax.set_xticks(positions[::step], [str(v) for v in table.index[::step]])
    ax.yaxis.set_major_formatter(_THOUSANDS)


def frequency_recency_heatmap(
    matrix: pd.DataFrame, *, title: str, xlabel: str, ylabel: str, ax: Axes | None = None
) -> Axes | None:
    """A model quantity over frequency (rows) and age at the last purchase (columns: the time from
    the first to the last purchase, what lifetimes calls recency), for a customer of the longest
    tenure; both axes numeric, so that their ticks fall on round values. Nothing is drawn (None)
    without data."""
    if matrix is None:
        return None
    ax = _ax(ax, (8, 5))
    cells = ax.pcolormesh(matrix.columns.astype(float), matrix.index.astype(float), matrix.to_numpy(dtype=float),
                          cmap="viridis", shading="nearest")  # fmt: skip
    ax.figure.colorbar(cells, ax=ax)
    ax.xaxis.set_major_locator(MaxNLocator(nbins=8, steps=_ROUND_STEPS))
    ax.yaxis.set_major_locator(MaxNLocator(nbins=10, steps=[1, 2, 5, 10], integer=True))
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    return ax


def seasonal_index(
    season: dict[str, Any], *, title: str, xlabel: str, ylabel: str, ax: Axes | None = None
) -> Axes | None:
    """The monthly index of the purchase rate (1 = the year's average); nothing is drawn (None)
    when the model has no index (the report says why in words)."""
    if not season.get("used"):
        return None
    ax = _ax(ax, (8, 3))
    index = pd.Series(season["index"])
    ax.bar(index.index, index.to_numpy(), color=np.where(index.to_numpy() >= 1, "#c44e52", "#4c72b0"))
    ax.axhline(1.0, color="grey", linewidth=1)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    return ax


def clv_hist(
    table: pd.DataFrame, *, title: str, xlabel: str, ylabel: str, beyond_fmt: str, ax: Axes | None = None
) -> Axes | None:
    """Distribution of customer lifetime value up to a round cut above the 99th percentile; the
    customers beyond it are left out and counted in the axis label (``beyond_fmt`` as in
    :func:`_tail_hist`). Nothing is drawn (None) without data."""
    if table.empty:
        return None
    ax = _ax(ax)
    _tail_hist(table["clv"], ax, "#937860", xlabel, beyond_fmt)
    ax.set(title=title, ylabel=ylabel)
    return ax


def persona_map(
    cards: list[dict[str, Any]], *, title: str, xlabel: str, ylabel: str, empty: str, ax: Axes | None = None
) -> Axes:
    """Personas by churn risk and mean CLV; bubble area = customers. Personas without either figure
    (churn or CLV not computed, see the stage notes) are left out; ``empty`` says why when none is left.

    The bubbles keep a margin from the frame and each name goes beside its bubble by
    :func:`_place_labels` (off every other name and bubble, inside the axes, with a thin line to
    its bubble when it had to move further out)."""
    ax = _ax(ax, (9, 6))
    shown = [
        c
        for c in cards
        if not c.get("suppressed") and None not in (c["risk"]["mean_churn_probability"], c["value"]["mean_clv"])
    ]
    if not shown:
        return _no_data(ax, empty)
    x = np.array([c["risk"]["mean_churn_probability"] for c in shown], dtype=float)
    y = np.array([c["value"]["mean_clv"] for c in shown], dtype=float)
    customers = np.array([c["customers"] for c in shown], dtype=float)
    sizes = _BIGGEST_BUBBLE * customers / customers.max()  # area in proportion, whatever the size of the base
    ax.scatter(x, y, s=sizes, alpha=0.5, color="#4C72B0", edgecolor="white")
    ax.margins(0.15)
    _percent_axis(ax.xaxis)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, pos: "" if v < 0 else _PERCENT(v, pos)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: "" if v < 0 else f"{v:,.0f}"))
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    _place_labels(ax, [c["name"] for c in shown], x, y, np.sqrt(sizes) / 2)
    return ax


def persona_traits(
    labels: list[str], index: list[float], *, title: str, xlabel: str, empty: str, ax: Axes | None = None
) -> Axes:
    """A persona's distinctive traits as bars of their index against all customers (100 = all
    customers) on a log scale, so that twice and half as common are as long; above the base in
    blue, below in orange, the most distinctive on top."""
    ax = _ax(ax, (5.2, 0.45 * max(len(labels), 2) + 1.1))
    if not labels:
        return _no_data(ax, empty)
    values = np.asarray(index, dtype=float)
    ratio = np.log2(values / 100)
    y = np.arange(len(labels))[::-1]
    ax.barh(y, ratio, color=np.where(ratio > 0, "#4C72B0", "#DD8452"), height=0.6)
    ax.axvline(0, color="#333333", linewidth=0.8)
    ax.set_yticks(y, [_wrap(label, 30) for label in labels], fontsize=9)
    reach = max(1.0, float(np.ceil(np.abs(ratio).max())))
    ticks = np.arange(-reach, reach + 1)
    ax.set_xticks(ticks, [f"{100 * 2**v:,.0f}" for v in ticks])
    ax.set_xlim(-reach - 0.1, reach + 0.1)
    ax.set(title=title, xlabel=xlabel)
    ax.title.set_fontsize(10)
    return ax


def _wrap(label: str, width: int) -> str:
    """A long label on two lines, broken at the space nearest its middle (CJK text unbroken)."""
    if len(label) <= width or " " not in label:
        return label
    middle = len(label) // 2
    spaces = [i for i, c in enumerate(label) if c == " "]
    cut = min(spaces, key=lambda i: abs(i - middle))
    return label[:cut] + "\n" + label[cut + 1 :]


#: Area (points squared) of the biggest persona bubble; the others in proportion to their customers.
_BIGGEST_BUBBLE = 900.0
#: Directions (degrees) tried for a label around its bubble, in order of preference.
_DIRECTIONS = (0, 180, 90, 270, 45, 135, 315, 225, 30, 150, 210, 330, 60, 120, 240, 300)


def _place_labels(ax: Axes, names: list[str], x: np.ndarray, y: np.ndarray, radii: np.ndarray) -> None:
    """Label each bubble (centre ``x``, ``y`` in data, radius in points) with its name: biggest
    bubble first, at the first place on rings of growing distance around it (in the order of
    :data:`_DIRECTIONS`) where the label stays inside the axes and clear of every bubble and every
    label placed before; a label beyond the first ring gets a thin line to its bubble. Where no
    place is free, the one with the fewest conflicts. The axis limits are fixed first."""
    ax.autoscale_view()
    ax.set(xlim=ax.get_xlim(), ylim=ax.get_ylim())
    scale = ax.figure.dpi / 72
    centers, pixels = ax.transData.transform(np.c_[x, y]), radii * scale
    frame = ax.get_window_extent().padded(-2)
    placed: list[Bbox] = []
    for i in np.argsort(-radii, kind="stable"):
        label = ax.text(x[i], y[i], names[i], fontsize=9, ha="center", va="center")
        size = label.get_window_extent()
        ring, box = min(
            _label_spots(centers[i], pixels[i], size.width, size.height),
            key=lambda spot: _conflicts(spot[1], frame, placed, centers, pixels),
        )
        placed.append(box)
        label.set_position(ax.transData.inverted().transform(box.corners()[[0, 3]].mean(axis=0)))
        if ring:
            ax.annotate("", xy=(x[i], y[i]), xytext=label.get_position(), arrowprops={
                "arrowstyle": "-", "color": "grey", "lw": 0.6, "shrinkA": 0, "shrinkB": radii[i]})  # fmt: skip


def _label_spots(
    center: np.ndarray, radius: float, width: float, height: float, pad: float = 3.0
) -> Iterator[tuple[int, Bbox]]:
    """(ring, box in pixels) of each place tried for a ``width`` x ``height`` label around a bubble,
    nearest first: ring 0 touches the bubble (``pad`` pixels off), each further ring 8 pixels out."""
    for ring in range(12):
        for angle in _DIRECTIONS if ring else _DIRECTIONS[:8]:
            dx, dy = np.cos(np.radians(angle)), np.sin(np.radians(angle))
            anchor = center + (radius + pad + 8 * ring) * np.array([dx, dy])
            x0 = anchor[0] - width * (0.5 - 0.5 * np.sign(round(dx, 6)))
            y0 = anchor[1] - height * (0.5 - 0.5 * np.sign(round(dy, 6)))
            yield ring, Bbox.from_bounds(x0, y0, width, height)


def _conflicts(box: Bbox, frame: Bbox, placed: list[Bbox], centers: np.ndarray, radii: np.ndarray) -> int:
    """How badly a label box sits: 100 outside the frame, 10 per label and 1 per bubble it touches
    (0: a free place). :func:`min` keeps the first of equals, so a free place ends the search."""
    outside = not (frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1)
    labels = sum(box.padded(2).overlaps(other) for other in placed)
    dx = np.maximum.reduce([box.x0 - centers[:, 0], np.zeros(len(centers)), centers[:, 0] - box.x1])
    dy = np.maximum.reduce([box.y0 - centers[:, 1], np.zeros(len(centers)), centers[:, 1] - box.y1])
    return 100 * outside + 10 * labels + int((np.hypot(dx, dy) < radii + 2).sum())


def cluster_selection(
    scores: Any,
    k: int | None = None,
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    ylabel_right: str,
    silhouette: str,
    inertia: str,
    chosen_fmt: str,
    ax: Axes | None = None,
) -> Axes | None:
    """Silhouette (left axis) and inertia (right axis, the elbow) by number of clusters; the chosen
    k marked (``chosen_fmt`` takes ``{k}``). ``scores`` is the table of scores (with ``k``) or a fitted
    :class:`~cp_toolkit.segment.cluster.BehaviourClusters`; None (no clusters) draws nothing."""
    if scores is None:
        return None
    if hasattr(scores, "scores_"):
        scores, k = scores.scores_, scores.k_
    ax = _ax(ax)
    ax.plot(scores.index, scores["silhouette"], marker="o", color="C0", label=silhouette)
    ax.axvline(k, color="grey", linestyle=":", label=chosen_fmt.format(k=k))
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    right = ax.twinx()
    right.plot(scores.index, scores["inertia"], marker="s", color="C1", label=inertia)
    right.set_ylabel(ylabel_right)
    right.yaxis.set_major_formatter(_THOUSANDS)
    lines = ax.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
    ax.legend(lines, [line.get_label() for line in lines], loc="upper right")
    return ax


def lift_heatmap(
    lift: pd.DataFrame,
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    colorbar: str,
    empty: str,
    names: Mapping[str, str] | None = None,
    ax: Axes | None = None,
) -> Axes | None:
    """Feature lift of each cluster against the whole base (1 = average), on a log colour scale
    whose ticks read as lifts (0.25, 0.5, 1, 2, ...); features named by ``names`` (column -> words),
    else with spaces for underscores. Nothing is drawn (None) without data."""
    shown = lift[~lift["suppressed"]].set_index("cluster").drop(columns=["customers", "customer_share", "suppressed"])
    if lift.empty:
        return None
    ax = _ax(ax, (8, 3 + 0.4 * len(lift)))
    if shown.empty:
        return _no_data(ax, empty)
    shown = shown.astype(float).rename(columns=lambda c: _words(str(c), names))
    sns.heatmap(np.log2(shown), annot=shown, fmt=".2f", cmap="RdBu_r", center=0, ax=ax, cbar_kws={"label": colorbar})
    _lift_ticks(ax.collections[0].colorbar)
    ax.tick_params(axis="x", labelrotation=30)
    plt.setp(ax.get_xticklabels(), ha="right", rotation_mode="anchor")
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    return ax


def _lift_ticks(bar: Any) -> None:
    """Ticks of a colour bar of log2 lifts that read as lifts: powers of two (0.25, 0.5, 1, 2),
    or 0.67, 0.8, 1, 1.25, 1.5 when the lifts stay within a factor of two."""
    low, high = bar.mappable.get_clim()
    lifts = [2.0**e for e in range(-6, 7)]
    if sum(low <= np.log2(v) <= high for v in lifts) < 3:
        lifts = [0.5, 0.67, 0.8, 1.0, 1.25, 1.5, 2.0]
    shown = [v for v in lifts if low - 1e-9 <= np.log2(v) <= high + 1e-9]
    bar.set_ticks(np.log2(shown), labels=[f"{v:g}" for v in shown])


def pca_scatter(
    view: pd.DataFrame, *, title: str, xlabel: str, ylabel: str, legend: str, ax: Axes | None = None
) -> Axes | None:
    """Customers on the first two principal components of the clustering features, by cluster
    (``legend`` titles the legend, beside the chart so that it covers no customer). Nothing is
    drawn (None) without data."""
    if view is None:
        return None
    ax = _ax(ax, (7, 5))
    sns.scatterplot(data=view, x="pc1", y="pc2", hue="cluster", s=8, alpha=0.5, ax=ax)
    ax.legend(title=legend, loc="upper left", bbox_to_anchor=(1.01, 1.0), markerscale=2)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    return ax


def migration_heatmap(
    shares: pd.DataFrame | None,
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    colorbar: str,
    ax: Axes | None = None,
) -> Axes | None:
    """Shares of each earlier segment (rows) by segment now (columns); blank cells are suppressed.
    Without an earlier run (None or no rows) nothing is drawn and no figure is made (None): the
    report says so in words."""
    if shares is None or shares.empty:
        return None
    ax = _ax(ax, (9, 6))
    sns.heatmap(shares, annot=True, fmt=".0%", cmap="Blues", vmin=0, vmax=1, ax=ax, cbar_kws={"label": colorbar})
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    return ax


def cohort_heatmap(
    cohorts: pd.DataFrame,
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    colorbar: str,
    row_fmt: str,
    empty: str,
    ax: Axes | None = None,
) -> Axes:
    """Share of each monthly acquisition cohort ordering in each month since its first order;
    ``row_fmt`` names a cohort from ``{month}`` (a Timestamp) and ``{customers}``."""
    ax = _ax(ax, (10, 0.35 * len(cohorts) + 2))
    if cohorts.empty:
        return _no_data(ax, empty)
    shares = cohorts.drop(columns="customers")
    shares.index = [
        row_fmt.format(month=d, customers=n) for d, n in zip(shares.index, cohorts["customers"], strict=True)
    ]
    sns.heatmap(shares, cmap="Greens", vmin=0, vmax=1, annot=len(shares.columns) <= 13, fmt=".0%", ax=ax,
                cbar_kws={"label": colorbar, "format": _PERCENT})  # fmt: skip
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    return ax


#: Columns of :func:`cp_toolkit.eda.revenue_decomposition` drawn by :func:`revenue_factors`.
_FACTORS = ("revenue", "active_customers", "orders_per_customer", "average_order_value")


def revenue_factors(
    decomposition: pd.DataFrame,
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    ax: Axes | None = None,
    **legend: str,
) -> Axes:
    """Revenue and its three factors by month, each indexed to its first month (= 100), log scale;
    ``legend`` names each line by its column (``revenue``, ``active_customers``,
    ``orders_per_customer``, ``average_order_value``)."""
    if set(legend) != set(_FACTORS):
        raise TypeError(f"revenue_factors needs a legend text for each of {list(_FACTORS)}; got {sorted(legend)}")
    ax = _ax(ax)
    factors = list(_FACTORS)
    indexed = 100 * decomposition[factors] / decomposition[factors].iloc[0]
    for name in factors:
        ax.plot(indexed.index, indexed[name], marker="o", linewidth=2.5 if name == "revenue" else 1.2,
                label=legend[name])  # fmt: skip
    ax.set_yscale("log")
    _log_ticks(ax.yaxis, float(indexed.min().min()), float(indexed.max().max()))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.4g}"))
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return ax


def weekday_hour_heatmap(
    table: pd.DataFrame, *, title: str, xlabel: str, ylabel: str, colorbar: str, ax: Axes | None = None
) -> Axes:
    """Orders by weekday and hour of day."""
    ax = _ax(ax, (10, 4))
    sns.heatmap(table, cmap="Purples", ax=ax, cbar_kws={"label": colorbar, "format": _THOUSANDS})
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    return ax


def _diagonal_in_percent(ax: Axes, label: str) -> None:
    """The dotted diagonal of a share-against-share chart, and both axes in percent."""
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label=label)
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_formatter(_PERCENT)


def reliability_diagram(
    tables: dict[str, pd.DataFrame],
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    perfect: str,
    ax: Axes | None = None,
) -> Axes | None:
    """Observed rate against mean predicted probability by bin, one line per scorer (the keys of
    ``tables``, each a :func:`cp_toolkit.predict.evaluation.reliability_table`); the diagonal
    (``perfect``) is a calibrated model. Nothing is drawn (None) without data."""
    if not tables:
        return None
    ax = _ax(ax, (5, 5))
    for name, table in tables.items():
        ax.plot(table["mean_predicted"], table["observed_rate"], marker="o", label=name)
    _diagonal_in_percent(ax, perfect)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel, xlim=(0, 1), ylim=(0, 1))
    ax.legend(loc="best")
    return ax


def gains_chart(
    tables: dict[str, pd.DataFrame],
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    scorer_fmt: str,
    chance: str,
    ax: Axes | None = None,
) -> Axes | None:
    """Cumulative gains: the share of all positives found in the top share of customers by score,
    one line per scorer (the keys of ``tables``, each a
    :func:`cp_toolkit.predict.evaluation.gains_table`); ``scorer_fmt`` names a line from
    ``{name}`` and ``{lift}`` (its top-group lift); the diagonal (``chance``) is a random order.
    Nothing is drawn (None) without data."""
    if not tables:
        return None
    ax = _ax(ax, (5, 5))
    for name, table in tables.items():
        x = np.r_[0.0, table["customer_share"].to_numpy()]
        y = np.r_[0.0, table["gains"].to_numpy()]
        ax.plot(x, y, marker="o", label=scorer_fmt.format(name=name, lift=table["lift"].iloc[0]))
    _diagonal_in_percent(ax, chance)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel, xlim=(0, 1), ylim=(0, 1.02))
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0))  # beside the chart: the lines fill its lower right
    return ax


def profit_curve(
    curve: pd.DataFrame,
    best_n: int,
    limit: int | None = None,
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    best_fmt: str,
    limit_fmt: str,
    ax: Axes | None = None,
) -> Axes | None:
    """Expected profit of contacting the first N customers (a
    :func:`cp_toolkit.predict.operating.profit_curve`), with the best N marked (``best_fmt``
    takes ``{n}`` and ``{profit}``) and, when given, the most that may be contacted (``limit``;
    ``limit_fmt`` takes ``{n}``). Nothing is drawn (None) without data."""
    if curve is None or curve.empty:
        return None
    ax = _ax(ax)
    ax.plot(np.r_[0, curve["contacted"].to_numpy()], np.r_[0.0, curve["profit"].to_numpy()], color="#4C72B0")
    ax.axhline(0, color="grey", linewidth=1)
    profit = float(curve["profit"].iloc[best_n - 1]) if best_n > 0 else 0.0
    ax.axvline(best_n, color="#C44E52", linestyle="--", label=best_fmt.format(n=best_n, profit=profit))
    if limit is not None:
        ax.axvline(limit, color="grey", linestyle=":", label=limit_fmt.format(n=limit))
    ax.xaxis.set_major_formatter(_THOUSANDS)
    ax.yaxis.set_major_formatter(_THOUSANDS)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.legend()
    return ax


#: The light red band behind a period that did not run to the end, in the charts of a series.
_GAP_COLOR = "#f2b8b5"
#: Most period labels an x axis of a series shows (every k-th beyond that).
_MAX_PERIOD_TICKS = 10


def _period_axis(ax: Axes, periods: list[str], missing: Sequence[bool]) -> None:
    """The x axis of a series chart: one slot per period, labelled with the caller's texts (every
    k-th when there are many), and a band over each period that did not run, its label in red."""
    step = -(-len(periods) // _MAX_PERIOD_TICKS)
    ax.set_xlim(-0.5, len(periods) - 0.5)
    ticks = range(0, len(periods), step)  # at 45 degrees, labels of any length stay clear of each other
    ax.set_xticks(ticks, [periods[i] for i in ticks], rotation=45, ha="right", rotation_mode="anchor")
    for i, gap in enumerate(missing):
        if gap:
            ax.axvspan(i - 0.45, i + 0.45, color=_GAP_COLOR, alpha=0.5, linewidth=0, zorder=0)
            if i % step == 0:
                ax.get_xticklabels()[i // step].set_color("#b00")


def _kind_axis(axis: Axis, kind: str, values: np.ndarray) -> None:
    """Ticks of a key figure's axis by its kind: percentages, whole counts, money with separators
    (two decimals when every amount is under 100)."""
    if kind == "percent":
        _percent_axis(axis, nbins=4)
    elif kind == "money" and np.nanmax(np.abs(values)) < 100:
        axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.2f}"))
    else:
        axis.set_major_locator(MaxNLocator(nbins=4, integer=kind == "count"))
        axis.set_major_formatter(_THOUSANDS)


def kpi_trends(
    frame: pd.DataFrame,
    *,
    kinds: Mapping[str, str],
    names: Mapping[str, str],
    empty: str,
    missing: Sequence[bool] | None = None,
    axes: np.ndarray | None = None,
    ncols: int = 3,
) -> np.ndarray:
    """Key figures of a series of runs over its periods: one small panel per column of ``frame``
    that has a figure, titled with its name in ``names`` and its axis read by its kind in
    ``kinds`` (``money``, ``percent``, ``count``).

    ``frame`` is indexed by the periods' labels (texts, in order), one column per key figure; a
    missing figure (NaN) is a gap in the line. ``missing`` flags the periods that did not run to
    the end, drawn as a light red band. Returns the array of Axes (one panel saying ``empty``
    when no figure is there)."""
    shown = [c for c in frame.columns if frame[c].notna().any()]
    ncols = max(1, min(ncols, len(shown)))
    if axes is None:
        use_cjk_font()
        nrows = max(1, -(-len(shown) // ncols))
        axes = plt.subplots(nrows, ncols, figsize=(3.9 * ncols, 2.7 * nrows), squeeze=False)[1]
    periods = [str(p) for p in frame.index]
    gaps = list(missing) if missing is not None else [False] * len(periods)
    for name, ax in zip(shown, np.ravel(axes), strict=False):
        values = frame[name].to_numpy(dtype="float64")
        ax.plot(range(len(values)), values, marker="o", color="#4C72B0")
        _period_axis(ax, periods, gaps)
        _kind_axis(ax.yaxis, kinds.get(name, "count"), values)
        ax.set_title(_wrap(names.get(name, _words(name, None)), 34), fontsize=10)
        ax.grid(axis="y", color="#eee")
    return _finish_grid(axes, len(shown), empty)


def segment_trends(
    frame: pd.DataFrame,
    *,
    title: str,
    ylabel: str,
    empty: str,
    missing: Sequence[bool] | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Customers of each segment over the periods of a series: a line per column of ``frame``
    (indexed by the periods' labels; a segment not shown in a period is NaN, a gap), the legend
    beside the axes; ``missing`` flags the periods that did not run (a light red band)."""
    ax = _ax(ax, (9, 4.2))
    data = frame.loc[:, frame.notna().any()]
    if data.empty:
        return _no_data(ax, empty)
    palette = sns.color_palette("tab10" if data.shape[1] <= 10 else "husl", data.shape[1])
    for column, color in zip(data.columns, palette, strict=True):
        ax.plot(range(len(data)), data[column].to_numpy(dtype="float64"), marker="o", color=color, label=column)
    periods = [str(p) for p in frame.index]
    _period_axis(ax, periods, list(missing) if missing is not None else [False] * len(periods))
    ax.yaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
    ax.yaxis.set_major_formatter(_THOUSANDS)
    ax.set_ylim(bottom=0)
    ax.set(title=title, ylabel=ylabel)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    return ax


use_cjk_font()
