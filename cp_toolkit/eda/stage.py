"""Stage 02: descriptive statistics of the customer base (computation only; plots live in ``plots``)."""

from __future__ import annotations

import calendar
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..config import DEFAULTS, PRESET_NON_PRODUCT
from ..features import category_revenue, category_spend, customer_features, interpurchase_days
from ..privacy import SUPPRESSED, pool_small_counts, shares_of_shown, values_to_pool
from ..run.artifacts import RunFolder
from ..run.pipeline import ensure, stage
from ..text import t
from ..timezones import to_local_time, transactions_timezone

__all__ = [
    "monthly_activity",
    "repeat_purchase_rate",
    "attribute_profile",
    "attribute_breakdown",
    "cohort_retention",
    "revenue_decomposition",
    "weekday_hour",
    "EDAResult",
    "category_view",
    "kpis",
    "run_stage",
]


def monthly_activity(orders: pd.DataFrame) -> pd.DataFrame:
    """Revenue, orders and active customers per calendar month."""
    month = orders["ts"].dt.to_period("M").dt.to_timestamp()
    out = (
        orders.assign(month=month)
        .groupby("month")
        .agg(revenue=("amount", "sum"), orders=("order_id", "size"), active_customers=("customer_id", "nunique"))
    )
    return out


def repeat_purchase_rate(orders: pd.DataFrame) -> float:
    """Share of customers with more than one order."""
    counts = orders.groupby("customer_id", observed=True).size()
    return float((counts > 1).mean())


def _natural_key(value: str) -> tuple[float, int, str]:
    """Sort key that puts "Under 15K" < "15-24K" < "100-124K" < "Homeowner" (numbers by value,
    "under"/"<" before the same number, text without numbers last)."""
    number = re.search(r"\d+(?:\.\d+)?", value)
    below = value.strip().lower().startswith(("under", "<", "less"))
    return (float(number.group()) if number else np.inf, 0 if below else 1, value)


def attribute_profile(customers: pd.DataFrame, min_group_size: int) -> pd.DataFrame:
    """Long table of customer attributes: attribute, value (in natural order), customers, share.

    Values held by fewer than ``min_group_size`` customers are pooled into one unlabelled row
    (:func:`cp_toolkit.privacy.pool_small_counts`); shares are of the customers in the groups shown,
    so that a hidden pooled count cannot be worked out from them.
    """
    rows = []
    for attr in (c for c in customers.columns if c != "customer_id"):
        raw = customers[attr].astype("string").fillna(t("eda.value.unknown")).value_counts()
        raw = raw.loc[sorted(raw.index, key=_natural_key)]
        counts = pool_small_counts(raw, min_group_size)
        rows.append(
            pd.DataFrame(
                {
                    "attribute": attr,
                    "value": counts.index,
                    "customers": counts.astype("Int64").array,
                    "share": shares_of_shown(counts).to_numpy(),
                }
            )
        )
    if not rows:
        return pd.DataFrame(columns=["attribute", "value", "customers", "share"])
    return pd.concat(rows, ignore_index=True)


def _group_behaviour(features: pd.DataFrame, labels: pd.Series, min_group_size: int) -> pd.DataFrame:
    """Customers, revenue share, orders and revenue per customer, order value and repeat rate per
    label; the labels of :func:`cp_toolkit.privacy.values_to_pool` are pooled as :data:`SUPPRESSED`
    (so no small group can be worked out from the total), and a pool still too small is blanked."""
    labels = labels.mask(labels.isin(values_to_pool(labels.value_counts(), min_group_size)), SUPPRESSED)
    g = features.assign(repeat=features["frequency"] > 1).groupby(labels, observed=True)
    out = g.agg(customers=("frequency", "size"), orders=("frequency", "sum"), revenue=("monetary", "sum"),
                repeat_rate=("repeat", "mean"))  # fmt: skip
    out["orders_per_customer"] = out["orders"] / out["customers"]
    out["revenue_per_customer"] = out["revenue"] / out["customers"]
    out["average_order_value"] = out["revenue"] / out["orders"]
    out = out.astype("float64").mask(out["customers"] < min_group_size)
    out.insert(1, "revenue_share", shares_of_shown(out["revenue"]))
    last = [v for v in (t("eda.value.not_recorded"), SUPPRESSED) if v in out.index]
    order = sorted(out.index.drop(last), key=_natural_key) + last
    return out.drop(columns=["orders", "revenue"]).loc[order].astype({"customers": "Int64"})


def attribute_breakdown(features: pd.DataFrame, customers: pd.DataFrame, min_group_size: int) -> pd.DataFrame:
    """How the buying customers behave by each customer attribute, against all of them.

    Parameters
    ----------
    features : DataFrame
        :func:`cp_toolkit.features.customer_features` (indexed by ``customer_id``).
    customers : DataFrame
        The customers table: ``customer_id`` and attribute columns.
    min_group_size : int
        Values held by fewer customers are pooled, unlabelled, as :data:`SUPPRESSED`, with the
        next smallest values while the pool is smaller; a pool that stays smaller is blanked.

    Returns
    -------
    DataFrame
        Long table: ``attribute``, ``value``, ``customers``, ``revenue_share`` (of the groups
        shown), ``repeat_rate``, ``orders_per_customer``, ``revenue_per_customer`` and
        ``average_order_value``. The first row (attribute ``all customers``, the key that
        :func:`cp_toolkit.plots.attribute_behaviour` finds the base by; value: text ``eda.value.all``)
        is the base; customers missing from the customers table are ``eda.value.not_recorded``,
        blank values ``eda.value.unknown``.
    """
    parts = {"all customers": pd.Series(t("eda.value.all"), index=features.index)}
    attributes = customers.set_index("customer_id").reindex(features.index)
    recorded = features.index.isin(customers["customer_id"])
    for attr in attributes.columns:
        value = attributes[attr].astype("string").fillna(t("eda.value.unknown"))
        value = value.where(recorded, t("eda.value.not_recorded"))
        parts[attr] = value.astype(object)
    tables = [
        _group_behaviour(features, labels, min_group_size).assign(attribute=name) for name, labels in parts.items()
    ]
    out = pd.concat(tables).rename_axis("value").reset_index()
    columns = ["attribute", "value", "customers", "revenue_share", "repeat_rate", "orders_per_customer",
               "revenue_per_customer", "average_order_value"]  # fmt: skip
    return out[columns]


def cohort_retention(orders: pd.DataFrame, min_group_size: int) -> pd.DataFrame:
    """Monthly acquisition cohorts: share of each cohort's customers who order in each month since
    their first (month 0 = 100%); cohorts smaller than ``min_group_size`` are left out.

    Returns
    -------
    DataFrame
        Indexed by cohort (month of first order), one column per months since the first order,
        and ``customers`` (cohort size) first.
    """
    month = orders["ts"].dt.to_period("M")
    first = month.groupby(orders["customer_id"], observed=True).transform("min")
    age = (month - first).apply(lambda offset: offset.n).rename("months_since_first")
    active = (
        orders.assign(cohort=first.dt.to_timestamp(), age=age)
        .groupby(["cohort", "age"], observed=True)["customer_id"]
        .nunique()
        .unstack("age")
    )
    size = active[0]
    shares = active.div(size, axis=0)[size >= min_group_size]
    shares.insert(0, "customers", size[size >= min_group_size].astype(int))
    return shares


def revenue_decomposition(monthly: pd.DataFrame) -> pd.DataFrame:
    """Monthly revenue as active customers x orders per customer x average order value, and each
    factor's share of the month-on-month change in log revenue (the three add up to it exactly)."""
    out = pd.DataFrame(
        {
            "revenue": monthly["revenue"],
            "active_customers": monthly["active_customers"],
            "orders_per_customer": monthly["orders"] / monthly["active_customers"],
            "average_order_value": monthly["revenue"] / monthly["orders"],
        }
    )
    logs = np.log(out.clip(lower=1e-12)).diff()
    for factor in ("active_customers", "orders_per_customer", "average_order_value"):
        out[f"dlog_{factor}"] = logs[factor]
    out["dlog_revenue"] = logs["revenue"]
    return out


def weekday_hour(orders: pd.DataFrame, timezone: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Orders by weekday (rows, Monday first, named in the report's language) and hour of day
    (columns) in the shops' local time (``timezone``: the transactions' ``{stored, local}`` zones);
    a single column (text ``eda.value.all_day``) when the timestamps carry no time of day."""
    ts = to_local_time(orders["ts"], timezone)
    days = [t(f"eda.weekday.{name.lower()}") for name in calendar.day_name]
    weekday = pd.Categorical(ts.dt.dayofweek.map(dict(enumerate(days))), categories=days, ordered=True)
    has_time = bool((ts != ts.dt.normalize()).any())
    hour = ts.dt.hour if has_time else pd.Series(t("eda.value.all_day"), index=orders.index)
    return pd.crosstab(pd.Series(weekday, index=orders.index, name="weekday"), hour.rename("hour"))


@dataclass
class EDAResult:
    """Tables behind the 02 report."""

    orders: pd.DataFrame
    monthly: pd.DataFrame
    interpurchase: pd.Series
    categories: pd.DataFrame
    attributes: pd.DataFrame
    headline: dict[str, Any]
    cohorts: pd.DataFrame
    decomposition: pd.DataFrame
    weekday_hour: pd.DataFrame
    customers: pd.DataFrame
    attribute_behaviour: pd.DataFrame
    attribute_ids: pd.Index
    category_level: str = "category"
    #: The smallest group of customers the report may describe.
    min_group_size: int = 1


def kpis(result: EDAResult) -> dict[str, float]:
    """The report month's active customers, revenue and orders (the calendar month of ``as_of``)
    and the repeat rate to date: the figures the index compares with the previous run."""
    last = result.monthly.iloc[-1] if len(result.monthly) else pd.Series(dtype=float)
    month = {
        "active_customers": int(last.get("active_customers", 0)),
        "revenue": float(last.get("revenue", 0.0)),
        "orders": int(last.get("orders", 0)),
    }
    shown = month if month["active_customers"] >= result.min_group_size else {}  # fewer: no figures of them
    return {**shown, "repeat_rate": float(result.headline["repeat_rate"])}


#: Below this share of product revenue in the top categories, the view is by department.
MIN_TOP_SHARE = 0.5


def category_view(
    tx: pd.DataFrame, products: pd.DataFrame, top_n: int, non_product: list[str]
) -> tuple[pd.DataFrame, str]:
    """The top product categories, or departments when the top categories hold less than
    :data:`MIN_TOP_SHARE` of product revenue and the products have departments; and the level used."""
    table = category_revenue(category_spend(tx, products), top_n, non_product)
    named = table.drop(index=["other", "not products", "unknown"], errors="ignore")["revenue"].sum()
    product_revenue = table.drop(index=["not products"], errors="ignore")["revenue"].sum()
    if product_revenue > 0 and named / product_revenue < MIN_TOP_SHARE and "department" in products.columns:
        return category_revenue(category_spend(tx, products, "department"), top_n, non_product), "department"
    return table, "category"


@stage("02_eda")
def run_stage(
    run: RunFolder,
    min_group_size: int = DEFAULTS["min_group_size"],
    top_n_categories: int = DEFAULTS["top_n_categories"],
    non_product_categories: list[str] | None = DEFAULTS["non_product_categories"],
    currency: str = DEFAULTS["currency"],
) -> EDAResult:
    """Stage 02: compute the descriptive tables from the canonical tables."""
    tx = ensure(run, "transactions")
    orders = ensure(run, "orders")
    customers = ensure(run, "customers")
    headline = {
        "revenue": float(orders["amount"].sum()),
        "orders": len(orders),
        "customers": int(orders["customer_id"].nunique()),
        "repeat_rate": repeat_purchase_rate(orders),
        "median_order_value": float(orders["amount"].median()),
        "customers_with_attributes": int(customers["customer_id"].isin(orders["customer_id"]).sum()),
    }
    monthly = monthly_activity(orders)
    features = customer_features(orders, run.load("quality")["as_of"])
    if non_product_categories is None:  # the preset's list, as load_params gives it
        non_product_categories = PRESET_NON_PRODUCT.get(run.params.get("dataset", ""), [])
    categories, level = category_view(tx, ensure(run, "products"), top_n_categories, non_product_categories)
    result = EDAResult(
        orders,
        monthly,
        interpurchase_days(orders),
        categories,
        attribute_profile(customers, min_group_size),
        headline,
        cohort_retention(orders, min_group_size),
        revenue_decomposition(monthly),
        weekday_hour(orders, transactions_timezone(run.load("quality"))),
        features,
        attribute_breakdown(features, customers, min_group_size),
        pd.Index(customers["customer_id"]),
        level,
        min_group_size,
    )
    run.record_stage(
        "02_eda",
        t(
            "eda.headline",
            revenue=headline["revenue"],
            orders=headline["orders"],
            customers=headline["customers"],
            repeat_rate=headline["repeat_rate"],
            currency=currency,
        ),
        kpis=kpis(result),
    )
    return result
