"""RFM scores (quintiles), the named R x F segment map (New named by the first order) and the
8 RFM classes (R, F and M each high or low against the base's mean)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import ParameterError
from ..params import rfm_rule_problems
from ..privacy import protect_cells, suppress_small_groups, values_to_pool
from ..text import DEFAULT_LANGUAGE, t

__all__ = ["RFM8_CLASSES", "RFM8_MEANS", "RFM_SEGMENTS", "SEGMENT_MEANS", "check_rules", "name_new_customers",
           "new_and_promising", "new_by_first_order", "quantile_scores", "rf_grid", "rfm8_class", "rfm8_summary",
           "rfm_scores", "rfm_segment", "segment_map", "segment_summary", "standard_segments"]  # fmt: skip


#: The standard R x F segment map: regular expression on "<R><F>" -> segment id; the segment's
#: name is the text ``segment.rfm.<id>`` (:func:`standard_segments`).
#: Every one of the 25 pairs matches exactly one rule (tested).
RFM_SEGMENTS: dict[str, str] = {
    r"[1-2][1-2]": "hibernating",
    r"[1-2][3-4]": "at_risk",
    r"[1-2]5": "cant_lose_them",
    r"3[1-2]": "about_to_sleep",
    r"33": "need_attention",
    r"[3-4][4-5]": "loyal",
    r"41": "promising",
    r"51": "new",
    r"[4-5][2-3]": "potential_loyalists",
    r"5[4-5]": "champions",
}


#: The 8 RFM classes: (R high, F high, M high) -> class id; the class's name is the text
#: ``segment.rfm8.<id>``. R is high for a recency below the base's mean (a recent buyer), F and M
#: for a frequency and a revenue above it; a value equal to the mean is low.
RFM8_CLASSES: dict[tuple[bool, bool, bool], str] = {
    (True, True, True): "important_value",
    (True, False, True): "important_develop",
    (False, True, True): "important_retain",
    (False, False, True): "important_winback",
    (True, True, False): "general_value",
    (True, False, False): "general_develop",
    (False, True, False): "general_retain",
    (False, False, False): "general_winback",
}

#: The mean behaviour a segment table shows: column of the table -> feature averaged.
SEGMENT_MEANS: dict[str, str] = {"recency_days": "recency_days", "orders": "frequency",
                                 "avg_order_value": "avg_order_value"}  # fmt: skip
#: The same for the 8 RFM classes, which are split on revenue per customer (M).
RFM8_MEANS: dict[str, str] = {"recency_days": "recency_days", "orders": "frequency", "revenue_per_customer": "monetary"}


def standard_segments(language: str = DEFAULT_LANGUAGE) -> dict[str, str]:
    """The standard rule table with names: pattern on "<R><F>" -> the text of ``segment.rfm.<id>``
    (English by default: the names are written to ``segments.parquet``, and a later run, in whatever
    report language, must find the same names for the migration table)."""
    return {pattern: t(f"segment.rfm.{sid}", language=language) for pattern, sid in RFM_SEGMENTS.items()}


def segment_map(rules: dict[str, str] | None = None) -> pd.DataFrame:
    """The 5 x 5 grid of segment names: rows R score (5 = most recent), columns F score."""
    grid = {f: rfm_segment(pd.Series(range(5, 0, -1)), pd.Series([f] * 5), rules).to_numpy() for f in range(1, 6)}
    return pd.DataFrame(grid, index=pd.Index(range(5, 0, -1), name="R score")).rename_axis(columns="F score")


def quantile_scores(values: pd.Series, n: int = 5, higher_is_better: bool = True) -> pd.Series:
    """Score values 1..n by quantile; tied values share a score.

    A customer's score is ``floor(n * share of customers with a worse value) + 1``: with
    distinct values each score holds ``1/n`` of the customers, and a group of tied values
    takes the score of its first member. So the worst value always scores 1 however common
    it is (half of CDNOW's customers bought once: all of them get F = 1), and a score whose
    quantile lies wholly inside a larger tie stays empty.

    Parameters
    ----------
    values : Series
        The values to score.
    n : int
        Number of scores (5 for quintiles).
    higher_is_better : bool
        Whether a larger value earns a higher score (False for recency in days).

    Returns
    -------
    Series of int
    """
    worse = values.rank(method="min", ascending=higher_is_better) - 1
    return (np.floor(n * worse / len(values)) + 1).clip(1, n).astype("int64")


def rfm_scores(features: pd.DataFrame, n: int = 5) -> pd.DataFrame:
    """R, F and M quintile scores from ``recency_days``, ``frequency`` and ``monetary``."""
    return pd.DataFrame(
        {
            "r_score": quantile_scores(features["recency_days"], n, higher_is_better=False),
            "f_score": quantile_scores(features["frequency"], n),
            "m_score": quantile_scores(features["monetary"], n),
        },
        index=features.index,
    )


def check_rules(rules: dict[str, str]) -> None:
    """Refuse a rule table under which some of the 25 R x F pairs match no rule or several
    (:func:`cp_toolkit.params.rfm_rule_problems`, the check ``load_params`` makes up front)."""
    problems = rfm_rule_problems(rules)
    if problems:
        raise ParameterError("; ".join(problems))


def rfm_segment(r_score: pd.Series, f_score: pd.Series, rules: dict[str, str] | None = None) -> pd.Series:
    """Name each customer's segment from the R and F scores with the rule table (pattern -> name;
    default :func:`standard_segments`)."""
    rules = standard_segments() if rules is None else rules
    key = r_score.astype(str) + f_score.astype(str)
    out = pd.Series(pd.NA, index=key.index, dtype="string")
    for pattern, name in rules.items():
        out = out.mask(out.isna() & key.str.fullmatch(pattern), name)
    if out.isna().any():
        raise ParameterError(f"R x F pairs {sorted(key[out.isna()].unique())} match no rule in the segment table")
    return out


def new_and_promising() -> tuple[str, str]:
    """The English names of the standard segments New and Promising (as written to the artifacts)."""
    return t("segment.rfm.new", language=DEFAULT_LANGUAGE), t("segment.rfm.promising", language=DEFAULT_LANGUAGE)


def new_by_first_order(rules: dict[str, str], new_customer_days: int | None) -> bool:
    """Whether :func:`name_new_customers` names New by the first order: a window is set and the rule
    table names both New and Promising with their standard names."""
    return new_customer_days is not None and set(new_and_promising()) <= set(rules.values())


def name_new_customers(
    segments: pd.Series, tenure_days: pd.Series, rules: dict[str, str], new_customer_days: int | None
) -> pd.Series:
    """Name New the customers whose first order lies within ``new_customer_days`` days of the end of
    ``as_of``, whatever their R x F cell, and Promising those the R x F rules call New whose first
    order is older: the names then say what customers did (an R x F cell of recent, infrequent
    buyers also holds old customers who rarely buy).

    Parameters
    ----------
    segments : Series
        Each customer's segment by the R x F rules (:func:`rfm_segment`).
    tenure_days : Series
        Days from each customer's first order to the end of ``as_of`` (same index).
    rules : dict
        The rule table the segments come from. Only a table that names both New and Promising
        with their standard (English) names is changed; another is returned as it is.
    new_customer_days : int or None
        The window of a first order that makes a customer New; None leaves the segments as they are.

    Returns
    -------
    Series
        The segment names.
    """
    if not new_by_first_order(rules, new_customer_days):
        return segments
    new, promising = new_and_promising()
    recent = tenure_days.reindex(segments.index) <= new_customer_days
    return segments.mask(recent, new).mask(~recent & (segments == new), promising)


def rf_grid(segments: pd.DataFrame, min_group_size: int, rules: dict[str, str] | None = None) -> pd.DataFrame:
    """Customers per R score (rows, 5 first) and F score (columns); cells under ``min_group_size``
    missing, and with them every cell that would let a reader work out a smaller group from the
    figures published beside the grid (:func:`cp_toolkit.privacy.protect_cells`).

    A cell can hold customers of several segments: New are named by their first order whatever
    their cell (:func:`name_new_customers`), so a cell may hold 111 Need attention and 9 New. A
    segment's total in the segment table (:func:`segment_summary`) sums its own customers in each
    cell, not whole cells: Need attention published at 111 and found only in that cell, the cell
    shown at 120 gives the 9 New away. Complementary suppression with one segment to a cell cannot
    see this; nor does hiding such a cell with a second hidden cell in each of its totals suffice,
    as totals nest (a row minus a segment that lies inside it leaves the cell alone).

    So the figures are taken as they are. The unknowns are the parts, each segment's customers in
    each cell (``rfm_segment``; without that column, the segments of the rule table ``rules``,
    default :func:`standard_segments`), with an empty part for each cell's own segment by the rules,
    which a reader expects there. Known are the shown cells (each the sum of its parts), the total
    of every row and column, every segment's total that the segment table shows, the total of the
    segments it suppresses together (:func:`cp_toolkit.privacy.values_to_pool`: the base minus the
    others), and none for a segment of the rules that it does not list. Each hidden cell, part of a
    shared cell and hidden share of a row, column or total with 1 to ``min_group_size - 1``
    customers must fit those figures with none or with ``min_group_size`` or more: integer
    programming finds the fewest customers' worth of cells to hide until each does.
    """
    rules = standard_segments() if rules is None else rules
    grid = pd.crosstab(segments["r_score"], segments["f_score"]).reindex(index=range(5, 0, -1), columns=range(1, 6))
    grid = grid.fillna(0).rename_axis(index="R score", columns="F score")
    if "rfm_segment" in segments:
        names = segments["rfm_segment"].astype("string")
    else:
        names = rfm_segment(segments["r_score"], segments["f_score"], rules)
    observed = segments.groupby(["r_score", "f_score", names.rename("segment")]).size()
    sizes = observed.groupby(level="segment").sum()  # as the segment table counts them
    pooled = list(values_to_pool(sizes, min_group_size))
    r, f = pd.Series([r for r in range(1, 6) for _ in range(5)]), pd.Series([f for _ in range(5) for f in range(1, 6)])
    expected = pd.MultiIndex.from_arrays([r, f, rfm_segment(r, f, rules)], names=observed.index.names)
    parts = observed.add(pd.Series(0, index=expected), fill_value=0).astype("int64")
    unlisted = [[name] for name in parts.index.unique("segment") if name not in sizes.index]
    totals = [[name] for name in sizes.index if name not in pooled] + [pooled] + unlisted
    hidden = protect_cells(parts, grid < min_group_size, totals, min_group_size)
    return grid.mask(hidden).astype("float64")


def rfm8_class(features: pd.DataFrame, language: str = DEFAULT_LANGUAGE) -> pd.Series:
    """Each customer's class of the 8 RFM classes (:data:`RFM8_CLASSES`).

    Parameters
    ----------
    features : DataFrame
        ``recency_days``, ``frequency`` and ``monetary`` per customer.
    language : str
        Language of the names (English by default: the names are written to ``segments.parquet``).

    Returns
    -------
    Series of str
        The name of the class (text ``segment.rfm8.<id>``), named ``rfm8``. R is high when the
        recency is below the base's mean, F and M when frequency and revenue are above it; a
        value equal to the mean is low.
    """
    high = zip(
        features["recency_days"] < features["recency_days"].mean(),
        features["frequency"] > features["frequency"].mean(),
        features["monetary"] > features["monetary"].mean(),
        strict=True,
    )
    names = {key: t(f"segment.rfm8.{cid}", language=language) for key, cid in RFM8_CLASSES.items()}
    return pd.Series([names[key] for key in high], index=features.index, dtype="string", name="rfm8")


def segment_summary(
    segments: pd.DataFrame,
    features: pd.DataFrame,
    min_group_size: int,
    column: str = "rfm_segment",
    means: dict[str, str] | None = None,
) -> pd.DataFrame:
    """Size, revenue share and mean behaviour of each segment, largest revenue first; small
    segments suppressed (:func:`cp_toolkit.privacy.suppress_small_groups`).

    Parameters
    ----------
    segments : DataFrame
        The segment of each customer in ``column``.
    features : DataFrame
        ``frequency``, ``monetary`` and the features ``means`` averages, per customer.
    min_group_size : int
        Smallest segment shown.
    column : str
        The column of ``segments`` that names the segment (``rfm_segment``, ``rfm8``).
    means : dict, optional
        Column of the table -> feature averaged per segment (default :data:`SEGMENT_MEANS`).

    Returns
    -------
    DataFrame
        Indexed by segment: customers, customer_share, revenue, revenue_share, the means, suppressed.
    """
    means = SEGMENT_MEANS if means is None else means
    df = features.join(segments[[column]])
    g = df.groupby(column, observed=True)
    out = g.agg(
        customers=("frequency", "size"),
        revenue=("monetary", "sum"),
        **{name: (feature, "mean") for name, feature in means.items()},
    )
    out.insert(1, "customer_share", out["customers"] / out["customers"].sum())
    out.insert(3, "revenue_share", out["revenue"] / out["revenue"].sum())
    out = out.sort_values("revenue", ascending=False)
    return suppress_small_groups(out, "customers", min_group_size)


def rfm8_summary(segments: pd.DataFrame, features: pd.DataFrame, min_group_size: int) -> pd.DataFrame:
    """:func:`segment_summary` of the 8 RFM classes (column ``rfm8``): customers, shares of customers
    and revenue, mean recency, orders and revenue per customer; the index is named ``segment``."""
    return segment_summary(segments, features, min_group_size, "rfm8", RFM8_MEANS).rename_axis("segment")
