"""RFM scores (quintiles) and the named R x F segment map."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import ParameterError
from ..params import rfm_rule_problems
from ..privacy import complementary_suppression, suppress_small_groups
from ..text import DEFAULT_LANGUAGE, t

__all__ = ["RFM_SEGMENTS", "check_rules", "quantile_scores", "rf_grid", "rfm_scores", "rfm_segment", "segment_map",
           "segment_summary", "standard_segments"]  # fmt: skip


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


def rf_grid(segments: pd.DataFrame, min_group_size: int) -> pd.DataFrame:
    """Customers per R score (rows, 5 first) and F score (columns); cells under ``min_group_size``
    missing, and with them the cells that the totals of a row, a column or a segment (published
    in the segment table) would give away (:func:`cp_toolkit.privacy.complementary_suppression`)."""
    grid = pd.crosstab(segments["r_score"], segments["f_score"]).reindex(index=range(5, 0, -1), columns=range(1, 6))
    grid = grid.fillna(0).rename_axis(index="R score", columns="F score")
    cells = [(r, f) for r in grid.index for f in grid.columns]
    pairs = segments.drop_duplicates(["r_score", "f_score"])
    segment_cells = [
        list(zip(d["r_score"], d["f_score"], strict=True)) for _, d in pairs.groupby("rfm_segment", observed=True)
    ]
    totals = [[c for c in cells if c[0] == r] for r in grid.index] + [
        [c for c in cells if c[1] == f] for f in grid.columns
    ]
    hidden = complementary_suppression(grid, grid < min_group_size, totals + segment_cells)
    return grid.mask(hidden).astype("float64")


def segment_summary(segments: pd.DataFrame, features: pd.DataFrame, min_group_size: int) -> pd.DataFrame:
    """Size, revenue share and mean behaviour of each segment; small segments suppressed."""
    df = features.join(segments[["rfm_segment"]])
    g = df.groupby("rfm_segment", observed=True)
    out = g.agg(
        customers=("frequency", "size"),
        revenue=("monetary", "sum"),
        recency_days=("recency_days", "mean"),
        orders=("frequency", "mean"),
        avg_order_value=("avg_order_value", "mean"),
    )
    out.insert(1, "customer_share", out["customers"] / out["customers"].sum())
    out.insert(3, "revenue_share", out["revenue"] / out["revenue"].sum())
    out = out.sort_values("revenue", ascending=False)
    return suppress_small_groups(out, "customers", min_group_size)
