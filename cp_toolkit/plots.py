"""All figures of the toolkit. Each function takes data (or a fitted object) and an optional
``ax``, draws, and returns the Axes; nothing here computes anything expensive or calls show()."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.ticker import FuncFormatter, PercentFormatter

__all__ = [
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
    "roc_curves",
    "holdout_by_frequency",
    "clv_hist",
    "seasonal_index",
    "clv_tracking",
    "period_transactions",
    "frequency_recency_heatmap",
    "persona_map",
    "cohort_heatmap",
    "revenue_factors",
    "weekday_hour_heatmap",
    "cluster_selection",
    "lift_heatmap",
    "pca_scatter",
    "migration_heatmap",
]

_THOUSANDS = FuncFormatter(lambda v, _: f"{v:,.0f}")


def _ax(ax: Axes | None, size: tuple[float, float] = (8, 4)) -> Axes:
    """The given Axes, or a new one of ``size``."""
    return ax if ax is not None else plt.subplots(figsize=size)[1]


def monthly_revenue(monthly: pd.DataFrame, currency: str = "currency units", ax: Axes | None = None) -> Axes:
    """Bars of monthly revenue with active customers on a second axis."""
    ax = _ax(ax)
    labels = monthly.index.strftime("%Y-%m")
    ax.bar(labels, monthly["revenue"], color="#4C72B0")
    ax.set(title="Revenue and active customers by month", xlabel="month", ylabel=f"revenue ({currency})")
    ax.yaxis.set_major_formatter(_THOUSANDS)
    ax.tick_params(axis="x", rotation=90)
    twin = ax.twinx()
    twin.plot(labels, monthly["active_customers"], color="#DD8452", marker="o")
    twin.set_ylabel("active customers")
    twin.set_ylim(bottom=0)
    return ax


def order_value_hist(orders: pd.DataFrame, currency: str = "currency units", ax: Axes | None = None) -> Axes:
    """Distribution of order values on a log scale."""
    xlabel = f"order value ({currency}, log scale)"
    return _log_hist(orders["amount"], _ax(ax), "Order value distribution", xlabel, "orders", ",.2f")


def interpurchase_hist(days: pd.Series, ax: Axes | None = None) -> Axes:
    """Distribution of days between consecutive orders of a customer."""
    ax = _ax(ax)
    if days.empty:
        return _no_data(ax, "no repeat orders: no time between purchases")
    clipped = days.clip(upper=days.quantile(0.99))
    ax.hist(clipped, bins=60, color="#55A868")
    ax.axvline(days.median(), color="black", linestyle="--", label=f"median {days.median():.1f} days")
    ax.set(title="Time between purchases (top 1% clipped)", xlabel="days since previous order", ylabel="repeat orders")
    ax.legend()
    return ax


def _no_data(ax: Axes, message: str) -> Axes:
    """An empty panel that says why it is empty."""
    ax.text(0.5, 0.5, message, ha="center", va="center")
    ax.set_axis_off()
    return ax


def category_bars(categories: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Horizontal bars of revenue share by product category."""
    ax = _ax(ax)
    if categories.empty:
        return _no_data(ax, "no product categories in this data")
    data = categories["revenue_share"][::-1]
    ax.barh(data.index.astype(str), data.to_numpy(), color="#8172B3")
    ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set(title="Revenue share by product category", xlabel="share of revenue", ylabel="category")
    return ax


def attribute_bars(profile: pd.DataFrame, attribute: str, ax: Axes | None = None) -> Axes:
    """Share of customers by value of one attribute (suppressed cells are left out)."""
    ax = _ax(ax, (5, 3))
    data = profile[(profile["attribute"] == attribute) & profile["share"].notna()]
    ax.barh(data["value"].astype(str)[::-1], data["share"][::-1], color="#64B5CD")
    ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set(title=f"Customers by {attribute}", xlabel="share of customers with attributes", ylabel=attribute)
    return ax


def attribute_panels(profile: pd.DataFrame, axes: np.ndarray | None = None, ncols: int = 3) -> np.ndarray:
    """One :func:`attribute_bars` panel per attribute; returns the array of Axes."""
    attributes = list(profile["attribute"].unique())
    axes = _grid(axes, len(attributes), ncols, 3.2)
    for attribute, ax in zip(attributes, np.ravel(axes), strict=False):
        attribute_bars(profile, attribute, ax)
    return _finish_grid(axes, len(attributes), "no customer attributes in this data")


def _grid(axes: np.ndarray | None, panels: int, ncols: int, height: float) -> np.ndarray:
    """The given Axes, or a new grid with room for ``panels`` panels in ``ncols`` columns."""
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


def _log_hist(values: pd.Series, ax: Axes, title: str, xlabel: str, ylabel: str, fmt: str) -> Axes:
    """Histogram of the positive ``values`` on log-spaced bins and a log x axis, median marked;
    whole-number values (counts) get bins that each hold at least one whole number. The label
    says how many values of zero or less a log axis cannot show."""
    left_out = int((values <= 0).sum())
    values = values[values > 0].dropna()
    if left_out:
        xlabel = f"{xlabel}; {left_out:,} at or below 0 not shown"
    if values.empty:
        return _no_data(ax, f"{title}: no positive values")
    low, high = np.log10(values.min()), np.log10(values.max())
    bins = np.logspace(low, max(high, low + 1e-9), 40)
    if (values == np.round(values)).all():
        whole = np.unique(np.round(bins))
        bins = np.append(whole - 0.5, whole[-1] + 0.5)
    ax.hist(values, bins=bins, color="#4C72B0")
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 1 else f"{v:g}"))
    ax.axvline(values.median(), color="black", linestyle="--", label=f"median {values.median():{fmt}}")
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.legend()
    return ax


def customer_distributions(
    features: pd.DataFrame, currency: str = "currency units", axes: np.ndarray | None = None
) -> np.ndarray:
    """Four log-scale histograms over customers: revenue, orders, average order value and mean
    days between orders (of :func:`cp_toolkit.features.customer_features`); returns the Axes."""
    if axes is None:
        axes = plt.subplots(2, 2, figsize=(12, 7))[1]
    panels = [
        ("monetary", "Revenue per customer", f"revenue ({currency}, log scale)", ",.0f"),
        ("frequency", "Orders per customer", "orders (log scale)", ",.0f"),
        ("avg_order_value", "Average order value per customer", f"order value ({currency}, log scale)", ",.2f"),
        ("mean_interpurchase_days", "Mean time between orders", "days (log scale)", ",.1f"),
    ]
    for ax, (column, title, xlabel, fmt) in zip(np.ravel(axes), panels, strict=True):
        _log_hist(features[column], ax, title, xlabel, "customers", fmt)
    np.ravel(axes)[0].figure.tight_layout()
    return axes


#: Axis labels of the measures of :func:`cp_toolkit.eda.attribute_breakdown` ({} = currency).
_MEASURES = {
    "revenue_per_customer": "revenue per customer ({})",
    "orders_per_customer": "orders per customer",
    "average_order_value": "average order value ({})",
    "repeat_rate": "share of customers with 2+ orders",
}


def attribute_behaviour(
    breakdown: pd.DataFrame,
    measure: str = "revenue_per_customer",
    currency: str = "currency units",
    axes: np.ndarray | None = None,
    ncols: int = 3,
) -> np.ndarray:
    """One panel per customer attribute: ``measure`` by value, against all customers (dashed);
    suppressed groups are left out. Returns the array of Axes."""
    base = breakdown.loc[breakdown["attribute"] == "all customers", measure].iloc[0]
    rows = breakdown[(breakdown["attribute"] != "all customers") & breakdown[measure].notna()]
    attributes = list(rows["attribute"].unique())
    axes = _grid(axes, len(attributes), ncols, 3.4)
    label = _MEASURES[measure].format(currency)
    for attribute, ax in zip(attributes, np.ravel(axes), strict=False):
        data = rows[rows["attribute"] == attribute][::-1]
        ax.barh(data["value"].astype(str), data[measure], color="#64B5CD")
        ax.axvline(base, color="black", linestyle="--")
        ax.xaxis.set_major_formatter(_THOUSANDS if base >= 10 else FuncFormatter(lambda v, _: f"{v:.2f}"))
        ax.set(title=f"{label.split(' (')[0].capitalize()} by {attribute}", ylabel=attribute,
               xlabel=f"{label}; dashed: all customers, {base:,.2f}")  # fmt: skip
    return _finish_grid(axes, len(attributes), "no customer attributes in this data")


def quarantine_bars(quality: dict[str, Any], ax: Axes | None = None) -> Axes:
    """Rows set aside per table and reason."""
    ax = _ax(ax, (7, 3))
    rows = [(f"{t}: {r}", n) for t, v in quality["tables"].items() for r, n in v["quarantined_by_reason"].items()]
    if not rows:
        return _no_data(ax, "no rows set aside")
    labels, counts = zip(*rows, strict=True)
    ax.barh(labels, counts, color="#C44E52")
    ax.xaxis.set_major_formatter(_THOUSANDS)
    ax.set(title="Rows set aside by reason", xlabel="rows", ylabel="table: reason")
    return ax


def rfm_heatmap(grid: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Customers per (R score, F score) cell; suppressed (missing) cells are left blank."""
    ax = _ax(ax, (6, 5))
    if grid.isna().all().all():
        return _no_data(ax, "every cell holds fewer customers than min_group_size")
    sns.heatmap(grid, annot=True, fmt=",.0f", cmap="Blues", cbar_kws={"label": "customers"}, ax=ax)
    ax.set(
        title="Customers by recency and frequency score",
        xlabel="F score (5 = most orders)",
        ylabel="R score (5 = most recent)",
    )
    return ax


def segment_shares(summary: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Customer share against revenue share for each segment."""
    ax = _ax(ax)
    data = summary[~summary["suppressed"]][["customer_share", "revenue_share"]]
    if data.empty:
        return _no_data(ax, "every segment is suppressed (fewer customers than min_group_size)")
    data.plot.barh(ax=ax, color=["#4C72B0", "#DD8452"])
    ax.invert_yaxis()
    ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set(title="RFM segments: share of customers and of revenue", xlabel="share", ylabel="segment")
    ax.legend(["customers", "revenue"])
    return ax


def roc_curves(curves: dict[str, pd.DataFrame], aucs: dict[str, float], ax: Axes | None = None) -> Axes:
    """Out-of-time ROC curves of each scorer, AUC in the legend; nothing is drawn (None) without curves
    (churn was not evaluated: the report says why)."""
    if not curves:
        return None
    ax = _ax(ax, (5, 5))
    for name, curve in curves.items():
        ax.plot(curve["fpr"], curve["tpr"], label=f"{name} (AUC {aucs[name]:.3f})")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="chance")
    ax.set(title="Churn: out-of-time ROC", xlabel="false positive rate", ylabel="true positive rate")
    ax.legend(loc="lower right")
    return ax


def holdout_by_frequency(holdout: pd.DataFrame, ax: Axes | None = None, max_frequency: int = 20) -> Axes:
    """Mean predicted and actual holdout purchases by calibration-period frequency."""
    if holdout is None or holdout.empty:
        return None
    ax = _ax(ax)
    freq = holdout["frequency"].clip(upper=max_frequency)
    means = holdout.groupby(freq)[["frequency_holdout", "predicted_holdout"]].mean()
    ax.plot(means.index, means["frequency_holdout"], marker="o", label="actual")
    ax.plot(means.index, means["predicted_holdout"], marker="s", label="predicted")
    ax.set(
        title="Calibration vs holdout purchases",
        xlabel=f"repeat purchases in calibration ({max_frequency}+ pooled)",
        ylabel="mean purchases in holdout",
    )
    ax.legend()
    return ax


def clv_tracking(tracking: pd.DataFrame, label: str, ax: Axes | None = None) -> Axes:
    """Weekly cumulative repeat transactions of the calibration cohort: actual and model (None: not drawn)."""
    if tracking is None:
        return None
    ax = _ax(ax)
    ax.plot(tracking.index, tracking["actual"], label="actual")
    ax.plot(tracking.index, tracking["predicted"], linestyle="--", label=f"{label} forecast")
    end = tracking.index[~tracking["holdout"]].max()
    ax.axvline(end, color="grey", linestyle=":", label=f"end of calibration (week {end})")
    ax.set(
        title="Tracking: cumulative repeat transactions",
        xlabel="week since the cohort's first purchase",
        ylabel="repeat transactions (cumulative)",
    )
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.legend()
    return ax


def period_transactions(table: pd.DataFrame, label: str, ax: Axes | None = None) -> Axes:
    """Customers by repeat transactions in the calibration period: actual and expected by the model."""
    if table is None:
        return None
    ax = _ax(ax)
    table.rename(columns={"expected": label}).plot.bar(ax=ax, rot=0 if len(table) <= 12 else 90)
    ax.set(
        title="Repeat transactions in calibration",
        xlabel="repeat purchase periods",
        ylabel="customers",
    )
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    return ax


def frequency_recency_heatmap(matrix: pd.DataFrame, title: str, unit: str, ax: Axes | None = None) -> Axes:
    """A model quantity over frequency (rows) and recency (columns), for a customer of the longest tenure."""
    if matrix is None:
        return None
    ax = _ax(ax, (8, 5))
    sns.heatmap(matrix.iloc[::-1], cmap="viridis", ax=ax, xticklabels=max(len(matrix.columns) // 8, 1))
    ax.set(title=title, xlabel=f"recency ({unit})", ylabel="repeat purchase periods (frequency)")
    return ax


def seasonal_index(season: dict[str, Any], ax: Axes | None = None) -> Axes | None:
    """The monthly index of the purchase rate (1 = the year's average); nothing is drawn (None)
    when the model has no index (the report says why in words)."""
    if not season.get("used"):
        return None
    ax = _ax(ax, (8, 3))
    index = pd.Series(season["index"])
    ax.bar(index.index, index.to_numpy(), color=np.where(index.to_numpy() >= 1, "#c44e52", "#4c72b0"))
    ax.axhline(1.0, color="grey", linewidth=1)
    ax.set(title="Purchase rate by calendar month (1 = the year's average)", xlabel="", ylabel="index")
    return ax


def clv_hist(table: pd.DataFrame, currency: str = "currency units", ax: Axes | None = None) -> Axes:
    """Distribution of customer lifetime value (None, not drawn, without values)."""
    if table.empty:
        return None
    ax = _ax(ax)
    ax.hist(table["clv"].clip(upper=table["clv"].quantile(0.99)), bins=50, color="#937860")
    ax.set(title="Customer lifetime value (top 1% clipped)", xlabel=f"discounted CLV ({currency})", ylabel="customers")
    ax.xaxis.set_major_formatter(_THOUSANDS)
    return ax


def persona_map(cards: list[dict[str, Any]], ax: Axes | None = None) -> Axes:
    """Personas by churn risk and mean CLV; bubble area = customers."""
    ax = _ax(ax, (8, 5))
    shown = [c for c in cards if not c["suppressed"]]
    x = [c["risk"]["mean_churn_probability"] for c in shown]
    y = [c["value"]["mean_clv"] for c in shown]
    ax.scatter(x, y, s=[c["customers"] for c in shown], alpha=0.5, color="#4C72B0")
    for c, xi, yi in zip(shown, x, y, strict=True):
        ax.annotate(c["name"], (xi, yi), ha="center", va="center", fontsize=8)
    ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    ax.yaxis.set_major_formatter(_THOUSANDS)
    ax.set(
        title="Personas: value against churn risk (area = customers)",
        xlabel="mean churn probability",
        ylabel="mean CLV",
    )
    return ax


def cluster_selection(scores: Any, k: int | None = None, ax: Axes | None = None) -> Axes | None:
    """Silhouette (left axis) and inertia (right axis, the elbow) by number of clusters; the chosen k marked.
    ``scores`` is the table of scores (with ``k``) or a fitted
    :class:`~cp_toolkit.segment.cluster.BehaviourClusters`; None (no clusters) draws nothing."""
    if scores is None:
        return None
    if hasattr(scores, "scores_"):
        scores, k = scores.scores_, scores.k_
    ax = _ax(ax)
    ax.plot(scores.index, scores["silhouette"], marker="o", color="C0", label="silhouette")
    ax.axvline(k, color="grey", linestyle=":", label=f"chosen k = {k}")
    ax.set(title="Choosing k", xlabel="number of clusters k", ylabel="silhouette (higher is better)")
    right = ax.twinx()
    right.plot(scores.index, scores["inertia"], marker="s", color="C1", label="inertia (elbow)")
    right.set_ylabel("inertia (within-cluster sum of squares)")
    lines = ax.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
    ax.legend(lines, [line.get_label() for line in lines], loc="upper right")
    return ax


def lift_heatmap(lift: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Feature lift of each cluster against the whole base (1 = average), on a log colour scale."""
    shown = lift[~lift["suppressed"]].set_index("cluster").drop(columns=["customers", "customer_share", "suppressed"])
    if lift.empty:
        return None
    ax = _ax(ax, (8, 3 + 0.4 * len(lift)))
    if shown.empty:
        return _no_data(ax, "every cluster is suppressed (fewer customers than min_group_size)")
    sns.heatmap(np.log2(shown.astype(float)), annot=shown.astype(float), fmt=".2f", cmap="RdBu_r", center=0, ax=ax,
                cbar_kws={"label": "log2 lift"})  # fmt: skip
    ax.set(title="Cluster profiles: mean relative to all customers", xlabel="feature", ylabel="cluster")
    return ax


def pca_scatter(view: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Customers on the first two principal components of the clustering features, by cluster (None: no clusters)."""
    if view is None:
        return None
    ax = _ax(ax, (7, 5))
    sns.scatterplot(data=view, x="pc1", y="pc2", hue="cluster", s=8, alpha=0.5, ax=ax)
    ax.set(title="Clusters on two principal components", xlabel="principal component 1", ylabel="principal component 2")
    return ax


def migration_heatmap(shares: pd.DataFrame | None, ax: Axes | None = None) -> Axes:
    """Shares of each earlier segment (rows) by segment now (columns); blank cells are suppressed."""
    if shares is None or shares.empty:
        return _no_data(_ax(ax, (6, 1)), "no earlier run to compare with")
    ax = _ax(ax, (9, 6))
    sns.heatmap(shares, annot=True, fmt=".0%", cmap="Blues", vmin=0, vmax=1, ax=ax, cbar_kws={"label": "share of row"})
    ax.set(title="Segment migration since the previous run", xlabel="segment now", ylabel="segment in the earlier run")
    return ax


def cohort_heatmap(cohorts: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Share of each monthly acquisition cohort ordering in each month since its first order."""
    ax = _ax(ax, (10, 0.35 * len(cohorts) + 2))
    if cohorts.empty:
        return _no_data(ax, "no monthly cohort holds min_group_size customers")
    shares = cohorts.drop(columns="customers")
    shares.index = [f"{d:%Y-%m} (n={n:,})" for d, n in zip(shares.index, cohorts["customers"], strict=True)]
    sns.heatmap(shares, cmap="Greens", vmin=0, vmax=1, annot=len(shares.columns) <= 13, fmt=".0%", ax=ax,
                cbar_kws={"label": "share of cohort ordering"})  # fmt: skip
    ax.set(title="Retention by monthly acquisition cohort", xlabel="months since first order",
           ylabel="cohort (month of first order)")  # fmt: skip
    return ax


def revenue_factors(decomposition: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Revenue and its three factors by month, each indexed to its first month (= 100), log scale."""
    ax = _ax(ax)
    factors = ["revenue", "active_customers", "orders_per_customer", "average_order_value"]
    indexed = 100 * decomposition[factors] / decomposition[factors].iloc[0]
    for name in factors:
        ax.plot(indexed.index, indexed[name], marker="o", linewidth=2.5 if name == "revenue" else 1.2,
                label=name.replace("_", " "))  # fmt: skip
    ax.set_yscale("log")
    for axis in (ax.yaxis.set_major_formatter, ax.yaxis.set_minor_formatter):
        axis(FuncFormatter(lambda v, _: f"{v:.0f}"))
    ax.set(title="Revenue = customers x orders per customer x order value",
           xlabel="month", ylabel="index, first month = 100 (log scale)")  # fmt: skip
    ax.legend()
    return ax


def weekday_hour_heatmap(table: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Orders by weekday and hour of day."""
    ax = _ax(ax, (10, 4))
    sns.heatmap(table, cmap="Purples", ax=ax, cbar_kws={"label": "orders"})
    ax.set(title="Orders by weekday and hour", xlabel="hour of day", ylabel="weekday")
    return ax
