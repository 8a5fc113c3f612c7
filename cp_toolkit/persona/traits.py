"""Distinctive traits: what sets a persona apart from all customers, with support and significance."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["TRAIT_TAG_GROUPS", "Trait", "distinctive_traits", "trait_matrix"]

#: Tag groups that become traits (the others repeat a behaviour feature or the value band).
TRAIT_TAG_GROUPS = ("lifecycle", "channel_preference", "campaign_responder")
#: A trait whose index lies within this many points of 100 is "near the base" and never shown.
NEAR_BASE = 10.0
#: A category is a trait only when the persona spends at least this share on it, and more than all customers do.
MIN_CATEGORY_SHARE = 0.01
#: Family-wise significance level (Bonferroni over every trait tested for a persona).
ALPHA = 0.01


@dataclass(frozen=True)
class Trait:
    """One column of the trait matrix: what it measures.

    ``kind`` is ``behaviour``, ``category``, ``demographic`` or ``tag``; ``feature`` the behaviour
    column, the category or department, the attribute or the tag group; ``value`` the attribute's
    value or the tag (``None`` for a measure); ``unit`` ``share`` (a share per customer or a yes/no
    per customer, shown as a percentage) or ``number``.
    """

    kind: str
    feature: str
    value: str | None
    unit: str

    @property
    def key(self) -> str:
        """A stable id, e.g. ``behaviour:coupon_order_share`` or ``demographic:age=45-54``."""
        return f"{self.kind}:{self.feature}" + ("" if self.value is None else f"={self.value}")


#: Behaviour features shown as a number rather than a share.
NUMBER_FEATURES = ("avg_lines_per_order", "interpurchase_cv")


def trait_matrix(
    behaviour: pd.DataFrame,
    table: pd.DataFrame,
    categories: pd.DataFrame,
    customers: pd.DataFrame | None,
    tags: pd.DataFrame | None,
) -> tuple[pd.DataFrame, dict[str, Trait]]:
    """Every candidate trait of every customer: one column per trait, a number per customer
    (a yes/no as 1/0), missing where it is unknown (an attribute the customer did not give, a
    response rate of a customer no campaign targeted).

    Parameters
    ----------
    behaviour : DataFrame
        :func:`cp_toolkit.persona.basis.behaviour_features` (any missing values already filled).
    table : DataFrame
        The stage 03 feature table; its ``campaign_response_rate`` joins the behaviour.
    categories : DataFrame
        Each customer's share of product revenue per category (non-products left out).
    customers : DataFrame or None
        Customer attributes (``customer_id`` and one column per attribute).
    tags : DataFrame or None
        ``tags.parquet`` (long: ``customer_id``, ``tag_group``, ``tag``).

    Returns
    -------
    matrix, traits : DataFrame, dict
        Indexed like ``behaviour``; the :class:`Trait` of each column.
    """
    index = behaviour.index
    columns: dict[str, pd.Series] = {}
    traits: dict[str, Trait] = {}

    def add(trait: Trait, values: pd.Series) -> None:
        """One column of the matrix: the trait's value of every customer."""
        traits[trait.key] = trait
        columns[trait.key] = values.reindex(index).astype(float)

    for column in behaviour.columns:
        kind, feature = ("category", column[4:]) if column.startswith("mix:") else ("behaviour", column)
        add(Trait(kind, feature, None, "number" if feature in NUMBER_FEATURES else "share"), behaviour[column])
    if "campaign_response_rate" in table.columns and table["campaign_response_rate"].notna().any():
        add(Trait("behaviour", "campaign_response_rate", None, "share"), table["campaign_response_rate"])
    mixed = {t.feature for t in traits.values() if t.kind == "category"}
    for category in categories.columns:
        if category not in mixed:
            add(Trait("category", str(category), None, "share"), categories[category].reindex(index).fillna(0))
    if customers is not None:
        attributes = customers.set_index("customer_id")
        for attribute in attributes.columns:
            values = attributes[attribute].reindex(index).astype("string")
            for value in values.dropna().unique():
                add(
                    Trait("demographic", str(attribute), str(value), "share"),
                    (values == value).astype(float).where(values.notna()),
                )
    if tags is not None and len(tags):
        chosen = tags[tags["tag_group"].isin(TRAIT_TAG_GROUPS)]
        for (group, tag), members in chosen.groupby(["tag_group", "tag"], observed=True):
            add(
                Trait("tag", str(group), str(tag), "share"),
                pd.Series(1.0, index=members["customer_id"].unique()).reindex(index).fillna(0),
            )
    return pd.DataFrame(columns, index=index), traits


def _effect(inside: pd.Series, outside: pd.Series) -> float:
    """Standardized difference of the persona from the other customers (Cohen's d: the difference
    of the means over the pooled standard deviation), so that a trait of a rare category does not
    outrank a broad one only by its index."""
    pooled = np.sqrt((inside.var(ddof=1) * (len(inside) - 1) + outside.var(ddof=1) * (len(outside) - 1))
                     / max(len(inside) + len(outside) - 2, 1))  # fmt: skip
    return float((inside.mean() - outside.mean()) / pooled) if pooled > 0 else 0.0


def _p_value(inside: pd.Series, outside: pd.Series) -> float:
    """Two-sided p-value of Welch's t-test of the persona's values against the other customers'
    (0 or 1 when neither group varies)."""
    if inside.nunique() < 2 and outside.nunique() < 2:
        return 0.0 if inside.iloc[0] != outside.iloc[0] else 1.0
    with warnings.catch_warnings():  # nearly constant values: scipy warns of precision, the p-value stands
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(stats.ttest_ind(inside, outside, equal_var=False).pvalue)


def distinctive_traits(
    matrix: pd.DataFrame,
    traits: dict[str, Trait],
    members: pd.Series,
    min_group_size: int,
    shown: int = 8,
    most: dict[str, int] | None = None,
) -> list[dict[str, object]]:
    """The traits that set a persona apart from all customers, most distinctive first.

    For every trait the persona's mean (a share for a yes/no) is compared with all customers'
    (``index`` = 100 x persona / all) and tested against the other customers (Welch's t-test,
    Bonferroni over the traits tested). A trait is kept when its index lies further than
    :data:`NEAR_BASE` points from 100, the test is significant at :data:`ALPHA`, and no count a
    reader could work out from it lies between 1 and ``min_group_size - 1`` (members known and
    unknown; for a yes/no, members with it and without it and other customers with it; for the
    values of one attribute or tag group, those with none of the values shown); a category only
    when the persona spends more on it than all customers and at least :data:`MIN_CATEGORY_SHARE`
    of its spend. Ranked by the standardized difference (``effect``, Cohen's d), largest first.

    Parameters
    ----------
    matrix, traits
        :func:`trait_matrix`.
    members : Series of bool
        Which customers (rows of ``matrix``) belong to the persona.
    min_group_size : int
        The smallest number of customers any figure may rest on.
    shown : int
        At most this many traits.
    most : dict, optional
        At most this many traits of a kind, e.g. ``{"category": 5}``.

    Returns
    -------
    list of dict
        ``key``, ``kind``, ``feature``, ``value``, ``unit``, ``persona`` (mean), ``base`` (mean of
        all customers), ``index``, ``direction`` (``high`` or ``low``), ``known``, ``p_value`` and
        ``effect``.
    """
    members = members.reindex(matrix.index).fillna(False).astype(bool)
    candidates = [(key, values) for key, values in matrix.items() if _testable(values, members, min_group_size)]
    out = []
    for key, values in candidates:
        row = _trait(traits[key], values, members, min_group_size)
        if row is not None and row["p_value"] * len(candidates) < ALPHA:
            out.append({"key": key, **row})
    out.sort(key=lambda r: -abs(r["effect"]))
    out = _one_tag_per_group(out)
    most = most or {}
    kept = [r for i, r in enumerate(out) if sum(o["kind"] == r["kind"] for o in out[:i]) < most.get(r["kind"], shown)]
    return _without_small_remainders(kept[:shown], matrix, members, min_group_size)


def _one_tag_per_group(rows: list[dict[str, object]]) -> list[dict[str, object]]:
    """The first (most distinctive) tag of each tag group: more responders, not also fewer non-responders."""
    seen: set[object] = set()
    out = []
    for row in rows:
        if row["kind"] == "tag":
            if row["feature"] in seen:
                continue
            seen.add(row["feature"])
        out.append(row)
    return out


def _testable(values: pd.Series, members: pd.Series, min_group_size: int) -> bool:
    """Whether a trait can be tested for a persona: known for ``min_group_size`` members, for two
    other customers, and present in the base (the Bonferroni count is of these)."""
    return values[members].notna().sum() >= min_group_size and values[~members].notna().sum() >= 2 and values.mean() > 0


def _small(count: int, min_group_size: int) -> bool:
    """A count a reader must not learn: between 1 and ``min_group_size - 1``."""
    return 0 < count < min_group_size


def _trait(trait: Trait, values: pd.Series, members: pd.Series, min_group_size: int) -> dict[str, object] | None:
    """One trait's figures for the persona, or None when it is near the base, a category below
    the persona's spend floor, or would let a reader count fewer than ``min_group_size`` customers:
    members unknown, members with it (a yes/no), members without it, or other customers with it."""
    inside, outside = values[members].dropna(), values[~members].dropna()
    base = values.mean()
    index = 100 * inside.mean() / base
    if abs(index - 100) <= NEAR_BASE:
        return None
    if trait.kind == "category" and (index < 100 or inside.mean() < MIN_CATEGORY_SHARE):
        return None
    counts = [int(members.sum()) - len(inside)]  # members whose value is unknown
    having = int((inside > 0).sum())
    if inside.isin([0.0, 1.0]).all():  # 0 or 1 for every member (a yes/no, or one order each): the mean counts them
        counts += [having, len(inside) - having]
    if (
        values.dropna().isin([0.0, 1.0]).all()
    ):  # a yes/no: it must be shared, and all customers' share counts the others
        counts.append(int((outside > 0).sum()))
        if having < min_group_size:
            return None
    if any(_small(c, min_group_size) for c in counts):
        return None
    return {
        "kind": trait.kind, "feature": trait.feature, "value": trait.value, "unit": trait.unit,
        "persona": float(inside.mean()), "base": float(base), "index": float(index),
        "direction": "high" if index > 100 else "low", "known": len(inside),
        "p_value": _p_value(inside, outside), "effect": _effect(inside, outside),
    }  # fmt: skip


def _without_small_remainders(
    shown: list[dict[str, object]], matrix: pd.DataFrame, members: pd.Series, min_group_size: int
) -> list[dict[str, object]]:
    """Leave out the smallest shown value of an attribute or tag group while the members known but
    with none of its shown values (or the other customers likewise) number 1 to ``min_group_size - 1``:
    the shown shares would count them by subtraction."""
    out = list(shown)
    for kind, feature in {(r["kind"], r["feature"]) for r in shown if r["value"] is not None}:
        while True:
            group = [r for r in out if (r["kind"], r["feature"]) == (kind, feature)]
            if not group:
                break
            flags = matrix[[r["key"] for r in group]]
            known = flags.notna().all(axis=1)
            rest = (flags.fillna(0).sum(axis=1) == 0) & known
            if not any(_small(int(rest[side].sum()), min_group_size) for side in (members, ~members)):
                break
            out.remove(min(group, key=lambda r: r["persona"]))
    return out
