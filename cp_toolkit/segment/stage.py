"""Stage 03: customer features, RFM segments, behavioural clusters, tags and migration as of ``as_of``."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import pandas as pd

from ..config import DEFAULTS
from ..features import category_spend, customer_features, profile_features
from ..run.artifacts import RunFolder
from ..run.pipeline import ensure, stage, transactions_up_to
from ..text import t
from .cluster import CLUSTER_FEATURES, BehaviourClusters, cluster_labels, cluster_names, lift_table
from .migration import find_previous_run, migration
from .rfm import check_rules, rf_grid, rfm_scores, rfm_segment, segment_map, segment_summary, standard_segments
from .tags import build_tags, load_definitions, tag_coverage

__all__ = ["SegmentResult", "run_stage"]


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
    as_of: str = DEFAULTS["as_of"],
    min_group_size: int = DEFAULTS["min_group_size"],
    seed: int = DEFAULTS["seed"],
    previous_run: str | None = None,
    tag_definitions: str | None = None,
    top_n_categories: int = DEFAULTS["top_n_categories"],
    rfm_segments: dict[str, str] | None = None,
) -> SegmentResult:
    """Stage 03: write ``features.parquet``, ``segments.parquet`` (RFM segment and behavioural
    cluster of every customer), ``tags.parquet`` (rules in ``tag_definitions``, default the
    packaged ``tags.yaml``) and ``category_spend.parquet`` (revenue per customer and product
    category); compare with the previous run when there is one."""
    orders = transactions_up_to(run, as_of, "orders")
    features = customer_features(orders, as_of)
    rules = standard_segments() if rfm_segments is None else dict(rfm_segments)
    check_rules(rules)
    scores = rfm_scores(features)
    segments = scores.assign(rfm_segment=rfm_segment(scores["r_score"], scores["f_score"], rules))
    behaviour = features[CLUSTER_FEATURES]
    clusters = BehaviourClusters(random_state=seed).fit(behaviour)
    numbered = pd.Series(clusters.labels_, index=features.index)
    labels = cluster_labels(numbered)
    lift = lift_table(behaviour, numbered, min_group_size)
    names = cluster_names(lift[~lift["suppressed"]], CLUSTER_FEATURES)
    segments = segments.assign(cluster=labels, cluster_name=labels.map(names).fillna(t("segment.cluster.small")))
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
    note = t("segment.migration.none")
    if earlier is not None:
        before = earlier.load("segments").set_index("customer_id")
        before = before.join(earlier.load("features").set_index("customer_id")["monetary"])
        common = before.index.isin(segments.index).mean()
        if common < 0.5:
            note = t("segment.migration.keys_differ", common=common, as_of=earlier.params.get("as_of"))
            warnings.warn(note, UserWarning, stacklevel=3)
        else:
            moves = migration(before, segments.join(features["monetary"]), min_group_size)
            note = t("segment.migration.compared", as_of=earlier.params.get("as_of"), folder=earlier.path.name)
    shown = summary[~summary["suppressed"]]
    top = (
        t("segment.headline_top", segment=shown.index[0], share=shown["revenue_share"].iloc[0])
        if len(shown)
        else t("segment.headline_all_suppressed")
    )
    checks = clusters.summary()
    run.record_stage(
        "03_segmentation",
        t(
            "segment.headline",
            customers=len(features),
            segments=summary.shape[0],
            top=top,
            k=checks["k"],
            silhouette=checks["silhouette"],
            ari=checks["bootstrap_ari"]["ari_mean"],
        ),
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
