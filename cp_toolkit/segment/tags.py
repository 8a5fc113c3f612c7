"""Customer tags: a long table (customer_id, tag_group, tag, value, as_of) built from rules in a
versioned YAML (``cp_toolkit/segment/tags.yaml`` by default).

The tags written to ``tags.parquet`` are stable ids (:data:`TAGS`: ``"at risk"``, ``"one store"``,
...) and stay the same in every language; a report shows each through :func:`tag_name`, the
text ``segment.tag.value.<group>.<id>``. Tags taken from the data (a category, a channel) or
from a user's tier names are shown as they are."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from ..errors import ParameterError
from ..features import category_shares
from ..params import tag_definition_problems
from ..privacy import suppress_small_groups, values_to_pool
from ..text import t, words

__all__ = ["DEFAULT_DEFINITIONS", "TAGS", "build_tags", "load_definitions", "tag_coverage", "tag_name"]

#: The packaged tag definitions.
DEFAULT_DEFINITIONS = "tags.yaml"

#: The tags the rules write, per tag group: the values of ``tags.parquet``, never translated.
#: ``value_tier`` lists the packaged tiers; ``channel_preference`` and ``favourite_category``
#: otherwise name a channel or category of the data.
TAGS: dict[str, tuple[str, ...]] = {
    "value_tier": ("low", "mid", "high"),
    "lifecycle": ("new", "active", "at risk", "lapsed"),
    "weekend_shopper": ("weekend shopper",),
    "channel_preference": ("mixed",),
    "store_loyalty": ("one store", "several stores"),
    "shopping_rhythm": ("regular", "irregular"),
    "discount_seeker": ("discount seeker",),
    "campaign_responder": ("responder", "non-responder"),
}


def tag_name(group: str, tag: str, language: str | None = None) -> str:
    """How a report shows ``tag`` of ``group``: the text ``segment.tag.value.<group>.<id>`` for a
    tag of :data:`TAGS` (id: the tag with spaces and hyphens as ``_``), else the tag itself."""
    if tag not in TAGS.get(group, ()):
        return tag
    return t(f"segment.tag.value.{group}.{re.sub(r'[ -]', '_', tag)}", language=language)


def group_name(group: str) -> str:
    """How a report names a tag group: the text ``segment.tag.group.<group>``, else the id spelt out."""
    return words("segment.tag.group", group)


def load_definitions(path: str | Path | None = None) -> dict[str, Any]:
    """Tag rules from ``path``, or the packaged :data:`DEFAULT_DEFINITIONS`; ``version`` is required.

    Raises
    ------
    ParameterError
        When the file cannot be read, is not YAML, or breaks the rules' schema.
    """
    source = Path(path) if path else resources.files("cp_toolkit.segment").joinpath(DEFAULT_DEFINITIONS)
    try:
        rules = yaml.safe_load(source.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise ParameterError(
            f"tag_definitions {path}: cannot be read as YAML ({err}); fix the file or the path"
        ) from err
    problems = tag_definition_problems(rules, str(path or DEFAULT_DEFINITIONS))
    if problems:
        raise ParameterError("; ".join(problems))
    return rules


def _long(group: str, tag: pd.Series, value: pd.Series) -> pd.DataFrame:
    """One tag group as long rows (customers without a tag are left out)."""
    keep = tag.notna()
    return pd.DataFrame(
        {"customer_id": tag.index[keep], "tag_group": group, "tag": tag[keep].astype(str), "value": value[keep]}
    )


def _value_tier(features: pd.DataFrame, rule: dict[str, Any]) -> pd.DataFrame:
    values = features[rule.get("column", "monetary")]
    quantile = values.rank(pct=True, method="average")
    tiers = sorted(rule["tiers"].items(), key=lambda kv: kv[1])
    tag = pd.Series(tiers[0][0], index=features.index)
    for name, start in tiers[1:]:
        tag = tag.mask(quantile > start, name)
    return _long("value_tier", tag, values.astype(float))


def _lifecycle(features: pd.DataFrame, rule: dict[str, Any]) -> pd.DataFrame:
    recency, tenure = features["recency_days"], features["tenure_days"]
    tag = np.select(
        [
            tenure <= rule["new_within_days"],
            recency <= rule["active_within_days"],
            recency <= rule["at_risk_within_days"],
        ],
        ["new", "active", "at risk"],
        "lapsed",
    )
    return _long("lifecycle", pd.Series(tag, index=features.index), recency.astype(float))


def _favourite_category(spend: pd.DataFrame, rule: dict[str, Any]) -> pd.DataFrame:
    if spend.empty:
        return _long("favourite_category", pd.Series(dtype=object), pd.Series(dtype=float))
    shares = category_shares(spend).drop(columns="unknown", errors="ignore")  # never a favourite
    shares = shares[shares.sum(axis=1) > 0]
    best = shares.max(axis=1)
    tag = shares.idxmax(axis=1).where(best >= rule.get("min_share", 0.0))
    return _long("favourite_category", tag, best.astype(float))


def _share_tag(orders: pd.DataFrame, flag: pd.Series, group: str, tag: str, rule: dict[str, Any]) -> pd.DataFrame:
    share = flag.groupby(orders["customer_id"], observed=True).mean()
    yes = share >= rule["min_share"]
    return _long(group, pd.Series(np.where(yes, tag, None), index=share.index), share.astype(float))


def _channel_preference(features: pd.DataFrame, rule: dict[str, Any]) -> pd.DataFrame:
    shares = features.filter(regex="^channel_share_").dropna(how="all")
    if shares.empty:
        return _long("channel_preference", pd.Series(dtype=object), pd.Series(dtype=float))
    best = shares.max(axis=1)
    tag = shares.idxmax(axis=1).str.removeprefix("channel_share_").where(best >= rule["min_share"], "mixed")
    return _long("channel_preference", tag, best.astype(float))


def _store_loyalty(features: pd.DataFrame, rule: dict[str, Any]) -> pd.DataFrame:
    if "main_store_share" not in features.columns:
        return _long("store_loyalty", pd.Series(dtype=object), pd.Series(dtype=float))
    share = features["main_store_share"].dropna()
    tag = pd.Series(np.where(share >= rule["min_share"], "one store", "several stores"), index=share.index)
    return _long("store_loyalty", tag, share.astype(float))


def _shopping_rhythm(features: pd.DataFrame, rule: dict[str, Any]) -> pd.DataFrame:
    cv = features["interpurchase_cv"].dropna() if "interpurchase_cv" in features.columns else pd.Series(dtype=float)
    tag = pd.Series(np.where(cv < rule["regular_below_cv"], "regular", "irregular"), index=cv.index)
    return _long("shopping_rhythm", tag, cv.astype(float))


def _campaign_responder(features: pd.DataFrame) -> pd.DataFrame:
    if "campaigns_responded" not in features.columns:
        return _long("campaign_responder", pd.Series(dtype=object), pd.Series(dtype=float))
    targeted = features[features["campaigns_targeted"] > 0]
    responded = targeted["campaigns_responded"].dropna()  # blank where responses are unknown
    tag = pd.Series(np.where(responded > 0, "responder", "non-responder"), index=responded.index)
    return _long("campaign_responder", tag, responded.astype(float))


def _discount_seeker(features: pd.DataFrame, rule: dict[str, Any]) -> pd.DataFrame:
    if "savings_rate" not in features.columns:
        return _long("discount_seeker", pd.Series(dtype=object), pd.Series(dtype=float))
    yes = features["savings_rate"] >= rule["min_savings_rate"]
    if "coupon_order_share" in features.columns and "min_coupon_order_share" in rule:
        yes |= features["coupon_order_share"] >= rule["min_coupon_order_share"]
    tag = pd.Series(np.where(yes, "discount seeker", None), index=features.index)
    return _long("discount_seeker", tag, features["savings_rate"].astype(float))


def build_tags(
    features: pd.DataFrame,
    orders: pd.DataFrame,
    spend: pd.DataFrame,
    as_of: str,
    rules: dict[str, Any],
) -> pd.DataFrame:
    """The tags of every customer as of ``as_of``.

    Parameters
    ----------
    features : DataFrame
        :func:`cp_toolkit.features.profile_features` (indexed by ``customer_id``); the channel,
        store, rhythm, discount and campaign tags read its columns and are empty without them.
    orders : DataFrame
        Orders up to ``as_of``.
    spend : DataFrame
        :func:`cp_toolkit.features.category_spend` of the lines up to ``as_of``.
    as_of : str
        The day the tags describe.
    rules : dict
        :func:`load_definitions`.

    Returns
    -------
    DataFrame
        ``customer_id``, ``tag_group``, ``tag``, ``value`` (the measure behind the tag) and
        ``as_of``, plus ``definitions_version``.
    """
    orders = orders[orders["customer_id"].isin(features.index)]
    weekend = orders["ts"].dt.dayofweek >= 5
    groups = {
        "value_tier": lambda r: _value_tier(features, r),
        "lifecycle": lambda r: _lifecycle(features, r),
        "favourite_category": lambda r: _favourite_category(spend, r),
        "weekend_shopper": lambda r: _share_tag(orders, weekend, "weekend_shopper", "weekend shopper", r),
        "channel_preference": lambda r: _channel_preference(features, r),
        "store_loyalty": lambda r: _store_loyalty(features, r),
        "shopping_rhythm": lambda r: _shopping_rhythm(features, r),
        "discount_seeker": lambda r: _discount_seeker(features, r),
        "campaign_responder": lambda r: _campaign_responder(features),
    }
    unknown = sorted(set(rules) - set(groups) - {"version"})
    if unknown:
        raise ParameterError(f"tag definitions: unknown tag group(s) {unknown}; known: {sorted(groups)}")
    parts = []
    for name, rule in rules.items():
        if name == "version":
            continue
        try:
            parts.append(groups[name](rule or {}))
        except KeyError as err:
            raise ParameterError(
                f"tag definitions: tag group {name!r} needs the setting {err.args[0]!r}; "
                "see the packaged cp_toolkit/segment/tags.yaml"
            ) from err
    tags = pd.concat(parts, ignore_index=True)
    return tags.assign(as_of=str(as_of), definitions_version=rules["version"]).astype(
        {"customer_id": "string", "tag_group": "string", "tag": "string", "value": "float64"}
    )


def tag_coverage(tags: pd.DataFrame, customers: int, min_group_size: int) -> pd.DataFrame:
    """Customers per tag group and tag, and their share of all customers (a report table: the
    tags are shown by :func:`tag_name`).

    Tags held by fewer than ``min_group_size`` customers are pooled per group as ``other (n tags)``
    (text ``segment.tag.pooled``), with the next smallest tags while the pool is smaller
    (:func:`cp_toolkit.privacy.values_to_pool`, so that the total gives no small tag away); each
    group ends with its ``(all tagged)`` total (``segment.tag.all_tagged``).
    """
    counts = tags.groupby(["tag_group", "tag"], observed=True)["customer_id"].nunique().rename("customers")
    rows = []
    for group in counts.index.get_level_values("tag_group").unique():
        per_tag = counts.xs(group, level="tag_group").sort_values(ascending=False)
        small = per_tag.index.isin(values_to_pool(per_tag, min_group_size))
        shown = per_tag[~small]
        named = group_name(group)
        rows += [{"tag_group": named, "tag": tag_name(group, tag), "customers": n} for tag, n in shown.items()]
        if small.any():
            pooled = t("segment.tag.pooled", tags=int(small.sum()))
            rows.append({"tag_group": named, "tag": pooled, "customers": per_tag[small].sum()})
        tagged = tags.loc[tags["tag_group"] == group, "customer_id"].nunique()
        rows.append({"tag_group": named, "tag": t("segment.tag.all_tagged"), "customers": tagged})
    out = pd.DataFrame(rows).assign(share_of_customers=lambda d: d["customers"] / customers)
    return suppress_small_groups(out, "customers", min_group_size, partition=False)  # pooled per group above
