"""Cleaning rules for canonical transactions: one reason code per set-aside row.

Rules, in order (the first that applies names the row's reason):

1. ``missing_customer_id``, ``excluded_account`` (ids listed in ``exclude_customers_file``:
   internal, staff or test accounts), ``missing_order_id`` (when ``order_id`` is mapped),
   ``invalid_timestamp``, ``invalid_amount``;
2. ``after_as_of``: later than the end of ``as_of`` (kept out of this run, not an error);
3. ``duplicate_row``: an exact repeat of an earlier row (``drop_duplicates: false`` keeps them);
4. cancellations (sources with ``cancellation_prefix``, e.g. UCI invoices ``C536379``): each
   cancellation line is netted against the same customer's earlier purchase lines of the same
   product, latest first. Fully matched cancellation lines are set aside as
   ``cancellation_netted``, the others as ``cancellation_unmatched`` (what did match is still
   netted); purchase lines cancelled in full become ``cancelled``, partly cancelled lines stay
   with their quantity and amount reduced;
5. ``negative_quantity``: a quantity below zero that no cancellation explains (an unmarked
   return or an adjustment); ``non_positive_amount``: amount <= 0 (< 0 with ``allow_zero_amount: true``), which also
   catches returns in sources that do not mark them;
6. ``outlier_amount`` (only with ``outlier_iqr_k``): a line whose log amount lies more than
   ``k`` interquartile ranges above the upper quartile of the log amounts of the lines still
   kept (k = 3 flags about one line in a million of a log-normal; bulk orders of wholesalers
   are real and stay unless a rule asks otherwise).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["transaction_reasons", "net_cancellations"]


def _mark(reason: pd.Series, mask: pd.Series, code: str) -> pd.Series:
    """Give ``code`` to the rows of ``mask`` that have no reason yet."""
    return reason.mask(reason.isna() & mask.fillna(False).astype(bool), code)


def transaction_reasons(
    df: pd.DataFrame, as_of: pd.Timestamp, spec: dict[str, Any]
) -> tuple[pd.DataFrame, pd.Series, dict]:
    """Apply the cleaning rules to typed canonical transactions.

    Parameters
    ----------
    df : DataFrame
        Canonical transactions with ``_row`` (source row number).
    as_of : Timestamp
        Last day of the run.
    spec : dict
        The source description (``drop_duplicates``, ``allow_zero_amount``, ``cancellation_prefix``).

    Returns
    -------
    df, reason, netting : DataFrame, Series, dict
        Transactions (quantities and amounts reduced where cancellations were netted), the
        reason code of each row (missing when kept) and the netting statistics.
    """
    no = pd.Series(False, index=df.index)
    reason = pd.Series(pd.NA, index=df.index, dtype="string")
    reason = _mark(reason, df["customer_id"].isna(), "missing_customer_id")
    excluded = excluded_accounts(spec)
    reason = _mark(reason, df["customer_id"].isin(excluded), "excluded_account")
    reason = _mark(reason, df["order_id"].isna() if "order_id" in df.columns else no, "missing_order_id")
    reason = _mark(reason, df["ts"].isna(), "invalid_timestamp")
    reason = _mark(reason, df["amount"].isna() | ~np.isfinite(df["amount"].fillna(0)), "invalid_amount")
    reason = _mark(reason, df["ts"] >= as_of + pd.Timedelta(days=1), "after_as_of")
    if spec.get("drop_duplicates", True):
        # a line repeated in two files of a glob (overlapping drops) is a duplicate too
        reason = _mark(reason, df.drop(columns=["_row", "_file"], errors="ignore").duplicated(), "duplicate_row")
    netting: dict[str, Any] = {}
    if spec.get("cancellation_prefix"):
        df, reason, netting = net_cancellations(df, reason, str(spec["cancellation_prefix"]))
    if "quantity" in df.columns:
        reason = _mark(reason, df["quantity"] < 0, "negative_quantity")
    positive = df["amount"] < 0 if spec.get("allow_zero_amount") else df["amount"] <= 0
    reason = _mark(reason, positive, "non_positive_amount")
    if spec.get("outlier_iqr_k") is not None:
        reason = _mark(
            reason, outlier_amounts(df["amount"], reason.isna(), float(spec["outlier_iqr_k"])), "outlier_amount"
        )
    return df, reason, netting


def outlier_amounts(amount: pd.Series, candidates: pd.Series, k: float) -> pd.Series:
    """Lines whose log amount exceeds Q3 + k * IQR of the log amounts of the ``candidates``."""
    logs = np.log(amount[candidates & (amount > 0)])
    q1, q3 = logs.quantile([0.25, 0.75])
    limit = q3 + k * (q3 - q1)
    return candidates & (np.log(amount.where(amount > 0)) > limit)


def excluded_accounts(spec: dict[str, Any]) -> set[str]:
    """Raw ids of internal, staff or test accounts: one per line in the file ``exclude_customers_file``.

    The ids live in a file outside the reports so that no raw id reaches ``params.json``.
    """
    path = spec.get("exclude_customers_file")
    if not path:
        return set()
    lines = Path(path).expanduser().read_text(encoding="utf-8").splitlines()
    return {line.strip() for line in lines if line.strip() and not line.startswith("#")}


def _purchase_lines(df: pd.DataFrame, open_: pd.Series) -> dict[tuple[str, str], list[int]]:
    """Row positions of open purchase lines per (customer, product), in time order."""
    lines: dict[tuple[str, str], list[int]] = defaultdict(list)
    buys = df[open_ & (df["quantity"] > 0)].sort_values("ts", kind="stable")
    for pos, key in zip(buys.index, zip(buys["customer_id"], buys["product_id"], strict=True), strict=True):
        lines[key].append(pos)
    return lines


def net_cancellations(df: pd.DataFrame, reason: pd.Series, prefix: str) -> tuple[pd.DataFrame, pd.Series, dict]:
    """Net cancellation lines (``order_id`` starting with ``prefix``) against earlier purchases.

    Returns the transactions with reduced quantities and amounts, the updated reasons and
    counts: cancellation lines netted / unmatched, purchase lines cancelled / reduced, and the
    quantity and revenue netted.
    """
    missing = [c for c in ("quantity", "product_id", "order_id") if c not in df.columns]
    if missing:
        raise ValueError(f"cancellation_prefix needs the columns {missing} mapped to net cancellations")
    df = df.copy()
    open_ = reason.isna()
    cancel = open_ & df["order_id"].str.startswith(prefix).fillna(False) & (df["quantity"] < 0)
    lines = _purchase_lines(df, open_ & ~cancel)
    remaining = df["quantity"].copy()
    unmatched_codes, netted_qty, unmatched_qty = {}, 0.0, 0.0
    for pos in df[cancel].sort_values("ts", kind="stable").index:
        want = -df.at[pos, "quantity"]
        for line in reversed(lines.get((df.at[pos, "customer_id"], df.at[pos, "product_id"]), [])):
            if want <= 0:
                break
            if df.at[line, "ts"] > df.at[pos, "ts"] or remaining[line] <= 0:
                continue
            take = min(remaining[line], want)
            remaining[line] -= take
            want -= take
            netted_qty += take
        unmatched_codes[pos] = "cancellation_netted" if want <= 0 else "cancellation_unmatched"
        unmatched_qty += max(want, 0)
    touched = open_ & ~cancel & (remaining < df["quantity"])
    fully, partly = touched & (remaining <= 0), touched & (remaining > 0)
    revenue_before = df.loc[touched, "amount"].sum()
    # partly cancelled lines keep the rest; fully cancelled ones keep their values for the quarantine
    df.loc[partly, "amount"] = df.loc[partly, "amount"] * remaining[partly] / df.loc[partly, "quantity"]
    df.loc[partly, "quantity"] = remaining[partly]
    codes = pd.Series(unmatched_codes, dtype="string").reindex(df.index)
    reason = _mark(reason.fillna(codes), fully, "cancelled")
    stats = {
        "cancellation_lines": int(cancel.sum()),
        "cancellation_lines_unmatched": int((codes == "cancellation_unmatched").sum()),
        "purchase_lines_cancelled": int(fully.sum()),
        "purchase_lines_reduced": int(partly.sum()),
        "quantity_netted": float(netted_qty),
        "quantity_unmatched": float(unmatched_qty),
        "revenue_netted": float(revenue_before - df.loc[partly, "amount"].sum()),
    }
    return df, reason, stats
