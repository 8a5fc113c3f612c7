"""Stage 03: RFM scores (quintiles) and the named 10-segment R x F map."""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .artifacts import ARTIFACTS, RunFolder
from .cluster import CLUSTER_FEATURES, BehaviourClusters, cluster_labels, cluster_names, lift_table
from .eda import category_spend
from .features import customer_features, profile_features
from .pipeline import ensure, stage, transactions_up_to
from .privacy import suppress_small_groups
from .tags import build_tags, load_definitions, tag_coverage

__all__ = [
    "RFM_SEGMENTS",
    "segment_map",
    "quantile_scores",
    "rfm_scores",
    "rfm_segment",
    "segment_summary",
    "check_rules",
    "migration",
    "find_previous_run",
    "SegmentResult",
    "run_stage",
]

#: The standard R x F segment map: regular expression on "<R><F>" -> segment name.
#: Every one of the 25 pairs matches exactly one rule (tested).
RFM_SEGMENTS: dict[str, str] = {
    r"[1-2][1-2]": "Hibernating",
    r"[1-2][3-4]": "At risk",
    r"[1-2]5": "Can't lose them",
    r"3[1-2]": "About to sleep",
    r"33": "Need attention",
    r"[3-4][4-5]": "Loyal",
    r"41": "Promising",
    r"51": "New",
    r"[4-5][2-3]": "Potential loyalists",
    r"5[4-5]": "Champions",
}


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
    """Refuse a rule table under which some of the 25 R x F pairs match no rule or several."""
    pairs = [f"{r}{f}" for r in range(1, 6) for f in range(1, 6)]
    hits = {pair: [p for p in rules if re.fullmatch(p, pair)] for pair in pairs}
    bad = {pair: found for pair, found in hits.items() if len(found) != 1}
    if bad:
        raise ValueError(
            f"rfm_segments: every R x F pair (R then F, e.g. '53') must match exactly one pattern; these do not: {bad}"
        )


def rfm_segment(r_score: pd.Series, f_score: pd.Series, rules: dict[str, str] | None = None) -> pd.Series:
    """Name each customer's segment from the R and F scores with the rule table."""
    rules = RFM_SEGMENTS if rules is None else rules
    key = r_score.astype(str) + f_score.astype(str)
    out = pd.Series(pd.NA, index=key.index, dtype="string")
    for pattern, name in rules.items():
        out = out.mask(out.isna() & key.str.fullmatch(pattern), name)
    if out.isna().any():
        raise ValueError(f"R x F pairs {sorted(key[out.isna()].unique())} match no rule in the segment table")
    return out


def rf_grid(segments: pd.DataFrame, min_group_size: int) -> pd.DataFrame:
    """Customers per R score (rows, 5 first) and F score (columns); cells under ``min_group_size`` missing."""
    grid = pd.crosstab(segments["r_score"], segments["f_score"]).reindex(index=range(5, 0, -1), columns=range(1, 6))
    grid = grid.fillna(0).rename_axis(index="R score", columns="F score")
    return grid.where(grid >= min_group_size).astype("float64")


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


def hidden_cells(counts: pd.DataFrame, min_group_size: int) -> pd.DataFrame:
    """Cells of a from x to table of customers that a report must blank.

    Cells of 1 to ``min_group_size - 1`` customers are hidden (an empty cell tells nothing about
    anyone and stays). Row and column totals are known (the segment sizes of both runs), so a row
    or column with one hidden cell would give it away: its smallest shown cell is hidden too,
    repeatedly, until no row or column has exactly one.
    """
    hidden = (counts > 0) & (counts < min_group_size)
    while True:
        extra = _lone_hidden(hidden, counts) | _lone_hidden(hidden.T, counts.T).T
        if not (extra & ~hidden).any().any():
            return hidden
        hidden |= extra


def _lone_hidden(hidden: pd.DataFrame, counts: pd.DataFrame) -> pd.DataFrame:
    """For every row with exactly one hidden cell, its smallest shown cell."""
    extra = pd.DataFrame(False, index=hidden.index, columns=hidden.columns)
    for row in hidden.index[hidden.sum(axis=1) == 1]:
        shown = counts.loc[row][~hidden.loc[row]]
        if len(shown):
            extra.loc[row, shown.idxmin()] = True
    return extra


def _hide_flows(flows: pd.DataFrame, hidden: pd.DataFrame, min_group_size: int) -> pd.DataFrame:
    """Blank the per-segment flows that are hidden cells (stayed, new, lapsed); entered and left
    are the totals minus stayed, so they are blanked with it; small totals are blanked too."""

    def is_hidden(row: str, column: str) -> bool:
        return bool(row in hidden.index and column in hidden.columns and hidden.at[row, column])

    out = flows.astype("Float64")
    totals = out[["earlier", "now"]]
    out[["earlier", "now"]] = totals.mask((totals > 0) & (totals < min_group_size))
    for segment in out.index:
        if is_hidden(segment, segment):
            out.loc[segment, ["stayed", "entered", "left"]] = pd.NA
        if is_hidden("(new)", segment):
            out.loc[segment, "new"] = pd.NA
        if is_hidden(segment, "(lapsed)"):
            out.loc[segment, "lapsed"] = pd.NA
    return out.astype("Int64")


def migration(previous: pd.DataFrame, current: pd.DataFrame, min_group_size: int) -> dict[str, pd.DataFrame]:
    """Moves between segments from an earlier run to this one.

    Parameters
    ----------
    previous, current : DataFrame
        Indexed by ``customer_id``, with ``rfm_segment`` and ``monetary`` (revenue to date).
    min_group_size : int
        Cells with fewer customers, but not none, are blanked in the tables meant for reports,
        with the cells that would give them away (:func:`hidden_cells`).

    Returns
    -------
    dict of DataFrame
        ``counts``: customers from (rows; ``(new)`` = not in the earlier run) to (columns;
        ``(lapsed)`` = not in this run), unsuppressed, for checks only; ``shown``: the same with
        the :func:`hidden_cells` blanked; ``row_shares``: each row as shares of the earlier segment (blank where
        the count is); ``revenue``: revenue to date, as of the earlier run, of the customers in each
        move (this run's for new customers), blanked alike; ``flows``: per segment, customers who
        stayed, entered, left, were new or lapsed.
    """
    ids = previous.index.union(current.index)
    before = previous["rfm_segment"].reindex(ids).fillna("(new)").rename("from")
    after = current["rfm_segment"].reindex(ids).fillna("(lapsed)").rename("to")
    value = previous["monetary"].reindex(ids).fillna(current["monetary"].reindex(ids))
    counts = pd.crosstab(before, after)
    revenue = pd.crosstab(before, after, values=value, aggfunc="sum").reindex_like(counts).fillna(0.0)
    small = hidden_cells(counts, min_group_size)
    shown = counts.astype("float64").mask(small)
    names = sorted((set(before) | set(after)) - {"(new)", "(lapsed)"})
    square = counts.reindex(index=[*names, "(new)"], columns=[*names, "(lapsed)"], fill_value=0)
    stayed = pd.Series(np.diag(square.loc[names, names]), index=names)
    flows = pd.DataFrame(
        {
            "earlier": square.loc[names].sum(axis=1),
            "now": square[names].sum(axis=0),
            "stayed": stayed,
            "entered": square[names].sum(axis=0) - stayed,
            "left": square.loc[names].sum(axis=1) - stayed,
            "new": square.loc["(new)", names],
            "lapsed": square.loc[names, "(lapsed)"],
        }
    ).rename_axis("segment")
    flows = _hide_flows(flows, small, min_group_size)
    return {
        "counts": counts,
        "shown": shown,
        "row_shares": counts.div(counts.sum(axis=1), axis=0).mask(small),
        "revenue": revenue.mask(small),
        "flows": flows,
    }


def find_previous_run(run: RunFolder, as_of: str, path: str | None) -> RunFolder | None:
    """The earlier run to compare with: ``path`` (relative paths from the folder that holds this run),
    else the previous month end's run of the same profile beside this one (``<date>_<profile>``),
    when it has segments."""
    if path:
        folder = Path(path) if Path(path).is_absolute() else run.path.parent / path
        if not (folder / "data" / ARTIFACTS["segments"]).is_file():
            raise FileNotFoundError(f"previous_run {path}: {folder} has no segments; run stage 03 there first")
        return RunFolder(folder)
    date, _, profile = run.path.name.partition("_")
    if date != str(as_of) or not profile:
        return None
    earlier = (pd.Timestamp(as_of).replace(day=1) - pd.Timedelta(days=1)).date()
    folder = run.path.parent / f"{earlier}_{profile}"
    return RunFolder(folder) if (folder / "data" / ARTIFACTS["segments"]).is_file() else None


@dataclass
class SegmentResult:
    """Features, segments and the segment summary of one run."""

    features: pd.DataFrame
    segments: pd.DataFrame
    summary: pd.DataFrame
    grid: pd.DataFrame
    table: pd.DataFrame
    dictionary: pd.DataFrame
    clusters: BehaviourClusters
    lift: pd.DataFrame
    cluster_names: dict[str, str]
    pca: pd.DataFrame
    migration: dict[str, pd.DataFrame]
    migration_note: str
    tags: pd.DataFrame
    tag_coverage: pd.DataFrame
    tag_definitions: dict[str, Any]
    segment_map: pd.DataFrame


@stage("03_segmentation")
def run_stage(
    run: RunFolder,
    as_of: str = "2017-12-31",
    min_group_size: int = 10,
    seed: int = 42,
    previous_run: str | None = None,
    tag_definitions: str | None = None,
    top_n_categories: int = 10,
    rfm_segments: dict[str, str] | None = None,
) -> SegmentResult:
    """Stage 03: write ``features.parquet``, ``segments.parquet`` (RFM segment and behavioural
    cluster of every customer), ``tags.parquet`` (rules in ``tag_definitions``, default the
    packaged ``tags.yaml``) and ``category_spend.parquet`` (revenue per customer and product
    category); compare with the previous run when there is one."""
    orders = transactions_up_to(run, as_of, "orders")
    features = customer_features(orders, as_of)
    rules = RFM_SEGMENTS if rfm_segments is None else dict(rfm_segments)
    check_rules(rules)
    scores = rfm_scores(features)
    segments = scores.assign(rfm_segment=rfm_segment(scores["r_score"], scores["f_score"], rules))
    behaviour = features[CLUSTER_FEATURES]
    clusters = BehaviourClusters(random_state=seed).fit(behaviour)
    numbered = pd.Series(clusters.labels_, index=features.index)
    labels = cluster_labels(numbered)
    lift = lift_table(behaviour, numbered, min_group_size)
    names = cluster_names(lift[~lift["suppressed"]], CLUSTER_FEATURES)
    segments = segments.assign(cluster=labels, cluster_name=labels.map(names).fillna("(small cluster)"))
    lines = transactions_up_to(run, as_of)
    spend = category_spend(lines, ensure(run, "products"))
    table, dictionary = profile_features(
        features, orders, lines, spend, top_n_categories, ensure(run, "campaigns"), ensure(run, "customers")
    )
    run.save("features", table.reset_index())
    run.save("segments", segments.reset_index())
    tag_rules = load_definitions(tag_definitions)
    tags = build_tags(table, orders, spend, as_of, tag_rules)
    run.save("tags", tags)
    run.save("category_spend", spend)
    summary = segment_summary(segments, features, min_group_size)
    earlier = find_previous_run(run, as_of, previous_run)
    moves: dict[str, pd.DataFrame] = {}  # empty without an earlier run
    note = "no earlier run found: run the previous month end first, or set previous_run"
    if earlier is not None:
        before = earlier.load("segments").set_index("customer_id")
        before = before.join(earlier.load("features").set_index("customer_id")["monetary"])
        common = before.index.isin(segments.index).mean()
        if common < 0.5:
            note = (
                f"only {common:.0%} of the customers of the run as of {earlier.params.get('as_of')} appear in this "
                "one: the runs used different pseudonymization keys (set CP_TOOLKIT_PSEUDONYM_KEY or "
                "CP_TOOLKIT_PSEUDONYM_KEY_FILE for every run), so no migration is shown"
            )
            warnings.warn(note, UserWarning, stacklevel=3)
        else:
            moves = migration(before, segments.join(features["monetary"]), min_group_size)
            note = f"compared with the run as of {earlier.params.get('as_of')} ({earlier.path.name})"
    shown = summary[~summary["suppressed"]]
    top = f"{shown.index[0]} ({shown['revenue_share'].iloc[0]:.0%})" if len(shown) else "all suppressed"
    checks = clusters.summary()
    run.record_stage(
        "03_segmentation",
        f"{len(features):,} customers in {summary.shape[0]} RFM segments; largest revenue share: {top}; "
        f"{checks['k']} behavioural clusters (silhouette {checks['silhouette']:.2f}, "
        f"bootstrap ARI {checks['bootstrap_ari']['ari_mean']:.2f})",
    )
    return SegmentResult(
        features,
        segments,
        summary,
        rf_grid(segments, min_group_size),
        table,
        dictionary,
        clusters,
        lift,
        names,
        clusters.pca_view(behaviour),
        moves,
        note,
        tags,
        tag_coverage(tags, len(features), min_group_size),
        tag_rules,
        segment_map(rules),
    )
