"""Customer features as of a date: orders, recency, frequency, monetary value, tenure, regularity."""

from __future__ import annotations

import re
from collections.abc import Collection

import numpy as np
import pandas as pd

from .engine import database
from .text import t

__all__ = [
    "BEHAVIOUR",
    "DISCOUNT_COLUMNS",
    "category_revenue",
    "category_share_column",
    "category_spend",
    "DICTIONARY",
    "ORDERS_SQL",
    "ORDER_TYPES",
    "channel_shares",
    "category_shares",
    "customer_features",
    "interpurchase_days",
    "discount_use",
    "store_use",
    "orders_from_lines",
    "profile_features",
]

#: Money taken off a line that ``amount`` does not contain (the line's regular value is amount plus
#: both); stored as magnitudes, so sources that record them as negative numbers are read unsigned.
DISCOUNT_COLUMNS = ("discount", "coupon_discount")

#: Basket-level orders from the lines in ``{lines}``: first timestamp, summed amount, line count.
ORDERS_SQL = (
    "SELECT customer_id, order_id, min(ts) AS ts, fsum(amount) AS amount, count(*) AS n_lines FROM {lines} "
    "GROUP BY customer_id, order_id ORDER BY ts, order_id, customer_id"
)
#: Column types of the orders table.
ORDER_TYPES = {
    "customer_id": "string",
    "order_id": "string",
    "ts": "datetime64[ns]",
    "amount": "float64",
    "n_lines": "int64",
}

#: Numeric behaviour columns of :func:`customer_features` (besides first and last purchase).
BEHAVIOUR = [
    "recency_days",
    "frequency",
    "monetary",
    "avg_order_value",
    "avg_lines_per_order",
    "tenure_days",
    "mean_interpurchase_days",
]


def orders_from_lines(tx: pd.DataFrame) -> pd.DataFrame:
    """Collapse transaction lines into basket-level orders (:data:`ORDERS_SQL`, run in DuckDB).

    Parameters
    ----------
    tx : DataFrame
        Canonical transactions (``customer_id``, ``order_id``, ``ts``, ``amount``, ...).

    Returns
    -------
    DataFrame
        One row per order: ``customer_id``, ``order_id``, ``ts`` (first line), ``amount``
        (sum of lines) and ``n_lines``, sorted by time.
    """
    with database() as con:
        con.register("lines", tx)
        return con.execute(ORDERS_SQL.format(lines="lines")).df().astype(ORDER_TYPES)


def customer_features(orders: pd.DataFrame, as_of: str | pd.Timestamp) -> pd.DataFrame:
    """Per-customer behaviour from the orders placed up to and including ``as_of``.

    Parameters
    ----------
    orders : DataFrame
        Output of :func:`orders_from_lines`.
    as_of : str or Timestamp
        The day the features describe; orders after it are ignored.

    Returns
    -------
    DataFrame
        Indexed by ``customer_id``: ``first_purchase``, ``last_purchase``, ``recency_days``
        (days from the last order to the end of ``as_of``), ``frequency`` (orders),
        ``monetary`` (revenue), ``avg_order_value``, ``avg_lines_per_order``, ``tenure_days``
        and ``mean_interpurchase_days`` (missing for one-order customers).
    """
    end = pd.Timestamp(as_of).normalize() + pd.Timedelta(days=1)
    o = orders[orders["ts"] < end]
    g = o.groupby("customer_id", observed=True)
    f = g.agg(
        first_purchase=("ts", "min"),
        last_purchase=("ts", "max"),
        frequency=("order_id", "size"),
        monetary=("amount", "sum"),
        avg_lines_per_order=("n_lines", "mean"),
    )
    f["recency_days"] = (end - f["last_purchase"]) / pd.Timedelta(days=1)
    f["tenure_days"] = (end - f["first_purchase"]) / pd.Timedelta(days=1)
    f["avg_order_value"] = f["monetary"] / f["frequency"]
    span = (f["last_purchase"] - f["first_purchase"]) / pd.Timedelta(days=1)
    f["mean_interpurchase_days"] = (span / (f["frequency"] - 1)).where(f["frequency"] > 1, np.nan)
    return f[["first_purchase", "last_purchase", *BEHAVIOUR]].sort_index()


#: Columns whose meaning is the text ``features.meaning.column.<column>`` (the data dictionary of
#: features.parquet); columns named after a channel, category or attribute have a template each.
DICTIONARY = (
    "first_purchase",
    "last_purchase",
    *BEHAVIOUR,
    "interpurchase_cv",
    "items_per_order",
    "stores",
    "main_store_share",
    "discount_line_share",
    "coupon_order_share",
    "savings_rate",
    "campaigns_targeted",
    "campaigns_responded",
    "campaign_response_rate",
)


def _meaning(column: str) -> str:
    """The data-dictionary text of one of the :data:`DICTIONARY` columns."""
    return t(f"features.meaning.column.{column}")


def interpurchase_days(orders: pd.DataFrame) -> pd.Series:
    """Days between consecutive orders of the same customer (one value per repeat order, indexed
    like ``orders``)."""
    o = orders.sort_values(["customer_id", "ts"], kind="stable")
    gaps = o.groupby("customer_id", observed=True)["ts"].diff().dropna()
    return (gaps / pd.Timedelta(days=1)).rename("interpurchase_days")


def category_shares(spend: pd.DataFrame) -> pd.DataFrame:
    """Each customer's share of revenue per category (customers x categories, rows add up to 1)
    from a :func:`cp_toolkit.features.category_spend` table."""
    wide = spend.pivot_table(index="customer_id", columns="category", values="revenue", aggfunc="sum", fill_value=0)
    return wide.div(wide.sum(axis=1), axis=0)


def channel_shares(lines: pd.DataFrame) -> pd.DataFrame:
    """Per customer, the share of orders placed through each channel (``channel_share_<channel>``);
    no columns when the lines carry fewer than two channels.

    An order counts for the channel of its first line.
    """
    if "channel" not in lines.columns or lines["channel"].nunique() < 2:
        return pd.DataFrame(index=pd.Index(lines["customer_id"].unique(), name="customer_id"))
    orders = lines.drop_duplicates(["customer_id", "order_id"])
    shares = pd.crosstab(orders["customer_id"], orders["channel"], normalize="index")
    shares.columns = [f"channel_share_{c}" for c in shares.columns]  # the channel as named, so tags can say it
    return shares.rename_axis("customer_id").rename_axis(None, axis=1)


def store_use(lines: pd.DataFrame) -> pd.DataFrame:
    """Per customer, the distinct stores ordered from (``stores``) and the share of orders placed at
    the most used one (``main_store_share``); no columns when the lines carry no store."""
    if "store_id" not in lines.columns or not lines["store_id"].notna().any():
        return pd.DataFrame(index=pd.Index(lines["customer_id"].unique(), name="customer_id"))
    per_order = lines.dropna(subset=["store_id"]).drop_duplicates(["customer_id", "order_id"])
    counts = per_order.groupby(["customer_id", "store_id"], observed=True).size()
    by_customer = counts.groupby(level=0)
    out = pd.DataFrame({"stores": by_customer.size(), "main_store_share": by_customer.max() / by_customer.sum()})
    return out.rename_axis("customer_id")


def discount_use(lines: pd.DataFrame) -> pd.DataFrame:
    """Per customer, how much of the buying is at a discount, from the lines' ``discount`` and
    ``coupon_discount`` columns (:data:`cp_toolkit.features.DISCOUNT_COLUMNS`, those present).

    Parameters
    ----------
    lines : DataFrame
        Transaction lines up to ``as_of``.

    Returns
    -------
    DataFrame
        Indexed by ``customer_id``: ``discount_line_share`` (with ``discount``),
        ``coupon_order_share`` (with ``coupon_discount``) and ``savings_rate``; no columns when the
        lines carry no discounts.
    """
    present = [c for c in DISCOUNT_COLUMNS if c in lines.columns and lines[c].notna().any()]
    if not present:
        return pd.DataFrame(index=pd.Index(lines["customer_id"].unique(), name="customer_id"))
    known = lines[present].notna().any(axis=1)  # lines of sources without discounts do not count
    saved = lines[present].fillna(0).sum(axis=1).where(known)
    by = lines["customer_id"]
    regular = (lines["amount"] + saved).groupby(by).sum(min_count=1)
    out = pd.DataFrame({"savings_rate": saved.groupby(by).sum(min_count=1) / regular})
    if "discount" in present:
        out["discount_line_share"] = _share_of_known(lines["discount"] > 0, lines["discount"].notna(), by)
    if "coupon_discount" in present:
        order = [by, lines["order_id"]]
        with_coupon = (lines["coupon_discount"] > 0).groupby(order).any()
        coupon_known = lines["coupon_discount"].notna().groupby(order).any()
        out["coupon_order_share"] = _share_of_known(with_coupon, coupon_known, with_coupon.index.get_level_values(0))
    return out.rename_axis("customer_id")


def _share_of_known(flag: pd.Series, known: pd.Series, by: pd.Series | pd.Index) -> pd.Series:
    """Per group, the share of ``flag`` among the rows where it is ``known`` (missing without any)."""
    return flag.astype(float).where(known).groupby(by).mean()


def profile_features(
    features: pd.DataFrame,
    orders: pd.DataFrame,
    lines: pd.DataFrame,
    spend: pd.DataFrame,
    top_n: int = 10,
    campaigns: pd.DataFrame | None = None,
    customers: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The customer feature table of stage 03: :func:`customer_features` plus regularity, basket,
    category, channel, store, discount and campaign columns and the customer attributes, with its data dictionary.

    Parameters
    ----------
    features : DataFrame
        :func:`customer_features` as of the run's ``as_of`` (indexed by ``customer_id``).
    orders, lines : DataFrame
        Orders and transaction lines up to ``as_of``.
    spend : DataFrame
        :func:`cp_toolkit.features.category_spend` of those lines.
    top_n : int
        Categories with a share column of their own; the rest are pooled in ``category_share_other``.
    campaigns, customers : DataFrame, optional
        Campaign targeting with responses, and customer attributes (joined as ``attr_<name>``).

    Returns
    -------
    table, dictionary : DataFrame
        The features (indexed by ``customer_id``) and one row per column: ``column``, ``meaning``.
    """
    out = features.copy()
    meaning = {c: _meaning(c) for c in out.columns}
    gap_days = interpurchase_days(orders).groupby(orders["customer_id"], observed=True)
    cv = gap_days.std() / gap_days.mean()
    out["interpurchase_cv"] = cv.where(gap_days.count() >= 2).reindex(out.index)
    meaning["interpurchase_cv"] = _meaning("interpurchase_cv")
    if "quantity" in lines.columns:
        out["items_per_order"] = lines.groupby("customer_id", observed=True)["quantity"].sum() / out["frequency"]
        meaning["items_per_order"] = _meaning("items_per_order")
    stores = store_use(lines)
    out = out.join(stores)
    meaning |= {c: _meaning(c) for c in stores}
    channels = channel_shares(lines)
    out = out.join(channels)
    meaning |= {c: t("features.meaning.channel_share", channel=c[len("channel_share_") :]) for c in channels}
    if not spend.empty:
        shares = category_shares(spend)
        top = spend.groupby("category")["revenue"].sum().nlargest(top_n).index
        for category in top:
            column = category_share_column(category)
            out[column] = shares[category].reindex(out.index)
            meaning[column] = t("features.meaning.category_share", category=category)
        out["category_share_other"] = shares.drop(columns=list(top)).sum(axis=1).reindex(out.index)
        meaning["category_share_other"] = t("features.meaning.category_share_other", top_n=top_n)
    discounts = discount_use(lines)
    out = out.join(discounts)
    meaning |= {c: _meaning(c) for c in discounts}
    if campaigns is not None and not campaigns.empty:
        g = campaigns.assign(response=campaigns["response"].astype("boolean")).groupby("customer_id")
        out["campaigns_targeted"] = g.size().reindex(out.index).fillna(0).astype(int)
        out["campaigns_responded"] = g["response"].sum(min_count=1).astype(float).reindex(out.index)
        out["campaign_response_rate"] = g["response"].mean().astype(float).reindex(out.index)
        meaning |= {c: _meaning(c) for c in ("campaigns_targeted", "campaigns_responded", "campaign_response_rate")}
    if customers is not None and len(customers.columns) > 1:
        attributes = customers.set_index("customer_id").add_prefix("attr_")
        out = out.join(attributes)
        meaning |= {c: t("features.meaning.attribute", attribute=c[5:]) for c in attributes}
    dictionary = pd.DataFrame({"column": list(meaning), "meaning": list(meaning.values())})
    return out, dictionary


def category_share_column(category: str) -> str:
    """The feature column of a category's revenue share: ``category_share_<lower-case words>``."""
    return "category_share_" + re.sub(r"\W+", "_", str(category).lower()).strip("_")


def category_spend(tx: pd.DataFrame, products: pd.DataFrame, level: str = "category") -> pd.DataFrame:
    """Revenue per customer and product category (``level="department"``: department; lines
    without a known one: ``unknown``), in a column named ``category`` whatever the level.

    The one join of transaction lines with products; category tables of the base and of any
    group of customers are sums of it. Empty when the data has no products or no such column.
    """
    if "product_id" not in tx.columns or level not in products.columns or products.empty:
        return pd.DataFrame(columns=["customer_id", "category", "revenue"])
    lines = tx[["customer_id", "product_id", "amount"]].merge(
        products[["product_id", level]].rename(columns={level: "category"}), on="product_id", how="left"
    )
    lines["category"] = lines["category"].fillna("unknown")
    return lines.groupby(["customer_id", "category"], observed=True, as_index=False).agg(revenue=("amount", "sum"))


def category_revenue(spend: pd.DataFrame, top_n: int = 10, non_product: Collection[str] = ()) -> pd.DataFrame:
    """Revenue, revenue share (of all revenue) and customers of the ``top_n`` largest product
    categories of a :func:`category_spend` table; the other categories pooled as ``other`` and the
    ``non_product`` ones (coupons, fuel ...) as ``not products``, each a last row when it has revenue."""
    out = spend.groupby("category").agg(revenue=("revenue", "sum"), customers=("customer_id", "nunique"))
    out = out.sort_values("revenue", ascending=False)
    excluded = out.index.isin(list(non_product))
    products, rest = out[~excluded], out[excluded]
    pools = {"other": products.iloc[top_n:], "not products": rest}
    rows = [products.iloc[:top_n]]
    for label, pool in pools.items():
        if len(pool):
            customers = spend.loc[spend["category"].isin(pool.index), "customer_id"].nunique()
            rows.append(pd.DataFrame({"revenue": [pool["revenue"].sum()], "customers": [customers]},
                                     index=pd.Index([label], name="category")))  # fmt: skip
    out = pd.concat(rows)
    out.insert(1, "revenue_share", out["revenue"] / out["revenue"].sum())
    return out
