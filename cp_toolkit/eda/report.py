"""What the 02 report says first: its key figures and findings, computed from the stage's tables."""

from __future__ import annotations

from typing import Any

import pandas as pd

from ..config import DEFAULTS
from ..display import money, number
from ..run.artifacts import RunFolder
from ..run.history import since_previous
from ..text import t
from .stage import EDAResult, kpis

__all__ = ["attribute_coverage", "category_table", "findings", "spread"]


def attribute_coverage(result: EDAResult) -> dict[str, Any] | None:
    """How many buying customers have attributes, and how their mean revenue compares with the
    others' (None when all or none have them)."""
    customers = result.headline["customers"]
    known = result.headline["customers_with_attributes"]
    if min(known, customers - known) < max(result.min_group_size, 1):  # both groups must be large enough
        return None
    revenue = result.customers["monetary"]
    has = revenue.index.isin(result.attribute_ids)
    ratio = revenue[has].mean() / revenue[~has].mean() if revenue[~has].mean() > 0 else float("nan")
    return {"known": known, "customers": customers, "share": known / customers, "ratio": float(ratio)}


def _month_sentence(result: EDAResult, currency: str, run: RunFolder | None) -> str | None:
    monthly = result.monthly
    if len(monthly) < 2:
        return None
    last = monthly.iloc[-1]
    if last["active_customers"] < result.min_group_size:
        return None
    mean = monthly["revenue"].iloc[:-1].mean()
    return t(
        "eda.finding.month",
        month=t("display.month", month=pd.Timestamp(monthly.index[-1])),
        active=number(last["active_customers"], "count"),
        revenue=money(last["revenue"], currency),
        against_mean=last["revenue"] / mean - 1 if mean > 0 else 0.0,
        since=since_previous(run, kpis(result), "revenue"),
    )


def _coverage_sentence(result: EDAResult) -> str | None:
    coverage = attribute_coverage(result)
    if coverage is None:
        return None
    ratio = coverage["ratio"]
    return t(
        "eda.finding.coverage_more" if ratio >= 1 else "eda.finding.coverage_less",
        known=coverage["known"],
        customers=coverage["customers"],
        share=coverage["share"],
        ratio=ratio if ratio >= 1 else 1 / ratio,
    )


def _category_sentence(result: EDAResult) -> str | None:
    categories = result.categories
    named = categories.drop(index=list(POOLED), errors="ignore")
    if named.empty:
        return None
    return t(
        "eda.finding.department" if result.category_level == "department" else "eda.finding.category",
        top=named.index[0],
        share=named["revenue_share"].iloc[0],
        n=len(named),
        top_share=named["revenue_share"].sum(),
    )


def findings(result: EDAResult, currency: str, run: RunFolder | None = None) -> list[str]:
    """The 3-6 sentences the 02 report opens with: the base and its value, the report month against
    the rest (and the previous run), order value and rhythm, top categories, attribute coverage.

    Parameters
    ----------
    result : EDAResult
        The stage's tables.
    currency : str
        The unit of money.
    run : RunFolder, optional
        This run: the report month is compared with the previous run of the same profile beside it.
    """
    head = result.headline
    gaps = result.interpurchase
    sentences = [
        t(
            "eda.finding.base",
            customers=number(head["customers"], "count"),
            orders=number(head["orders"], "count"),
            revenue=money(head["revenue"], currency),
            first=number(result.orders["ts"].min().normalize(), "date"),
            last=number(result.orders["ts"].max().normalize(), "date"),
            repeat_rate=head["repeat_rate"],
        ),
        _month_sentence(result, currency, run),
        t(
            "eda.finding.rhythm",
            median_order=money(head["median_order_value"], currency),
            gap=number(gaps.median(), "days"),
        )
        if len(gaps)
        else None,
        _category_sentence(result),
        _coverage_sentence(result),
    ]
    return [s for s in sentences if s]


def _figure(value: float, kind: str, currency: str) -> str:
    """A figure with its unit for a sentence (money with its currency, days as days)."""
    if kind == "money":
        return money(value, currency)
    return t("eda.text.days", days=number(value, kind)) if kind == "days" else number(value, kind)


def spread(values: pd.Series, kind: str, currency: str = DEFAULTS["currency"]) -> str | None:
    """A distribution in one sentence: median, the middle half, the top tenth (None for fewer than
    two values)."""
    values = pd.Series(values).dropna()
    if len(values) < 2:
        return None
    q = values.quantile([0.25, 0.5, 0.75, 0.9])
    shown = [_figure(q[p], kind, currency) for p in (0.25, 0.5, 0.75, 0.9)]
    return t("eda.text.spread", q1=shown[0], median=shown[1], q3=shown[2], p90=shown[3])


#: The pooled rows of the category table and the texts that name them.
POOLED = {"other": "other", "not products": "not_products", "unknown": "unknown"}


def category_table(result: EDAResult) -> pd.DataFrame:
    """The top categories (or departments) with the pooled rows named in the report's language."""
    table = result.categories.rename(index=lambda c: t(f"eda.value.{POOLED[c]}") if c in POOLED else c)
    return table.rename_axis(result.category_level)
