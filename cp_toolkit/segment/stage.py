"""Stage 03: customer features, RFM segments, behavioural clusters, tags and migration as of ``as_of``."""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ..config import DEFAULTS
from ..errors import CPToolkitWarning, DataError
from ..features import category_spend, customer_features, profile_features
from ..run.artifacts import RunFolder
from ..run.pipeline import ensure, stage, transactions_up_to
from ..text import DEFAULT_LANGUAGE, localize, t
from .cluster import CLUSTER_FEATURES, BehaviourClusters, cluster_labels, cluster_names, lift_table
from .migration import find_previous_run, migration
from .rfm import (
    check_rules,
    name_new_customers,
    new_by_first_order,
    rf_grid,
    rfm8_class,
    rfm8_summary,
    rfm_scores,
    rfm_segment,
    segment_map,
    segment_summary,
    standard_segments,
)
from .tags import build_tags, load_definitions, tag_coverage

__all__ = ["SegmentResult", "fit_clusters", "run_stage", "segment_sizes"]


@dataclass
class SegmentResult:
    """Features, segments and the segment summary of one run."""

    features: pd.DataFrame
    segments: pd.DataFrame
    summary: pd.DataFrame
    grid: pd.DataFrame
    table: pd.DataFrame
    dictionary: pd.DataFrame
    clusters: BehaviourClusters | None  # None when the data are too few for clusters (see ``skipped``)
    lift: pd.DataFrame
    cluster_names: dict[str, str]
    pca: pd.DataFrame | None
    migration: dict[str, pd.DataFrame]
    migration_note: str
    tags: pd.DataFrame
    tag_coverage: pd.DataFrame
    tag_definitions: dict[str, Any]
    segment_map: pd.DataFrame
    #: Part of the report -> why it is not shown (what the data lack); empty when all is shown.
    skipped: dict[str, str] = field(default_factory=dict)
    #: Share of the customers of both runs who kept their segment (None without an earlier run).
    stayed: float | None = None
    #: The smallest group of customers the report may describe.
    min_group_size: int = 1
    #: The 8 RFM classes (:func:`~cp_toolkit.segment.rfm.rfm8_summary`), named in the report's language.
    rfm8_summary: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: What New means when it is named by the first order (None when the R x F cell decides).
    new_note: str | None = None

    @property
    def cluster_checks(self) -> dict[str, Any]:
        """The clusters' summary (:meth:`BehaviourClusters.summary`), empty when there are no clusters."""
        return {} if self.clusters is None else self.clusters.summary()


def fit_clusters(behaviour: pd.DataFrame, seed: int, min_group_size: int) -> BehaviourClusters:
    """Behavioural clusters of the customers, none under ``min_group_size`` (so that the lift table
    never has to blank a large cluster to protect tiny ones).

    Raises
    ------
    DataError
        When there are fewer than two groups of ``min_group_size`` customers (no cluster could be
        shown), too few distinct behaviours for two clusters, or fewer than two clusters of
        ``min_group_size`` left after merging the smaller ones.
    """
    need = 2 * min_group_size
    if len(behaviour) < need:
        raise DataError(
            f"behavioural clusters need at least {need} customers (two clusters of min_group_size "
            f"{min_group_size}); the data have {len(behaviour):,}, so no clusters are formed and the RFM segments "
            "stand alone"
        )
    return BehaviourClusters(random_state=seed, min_cluster_size=min_group_size).fit(behaviour)


def _no_clusters(features: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """An empty lift table and blank cluster labels, for data too few to cluster."""
    lift = pd.DataFrame(columns=["cluster", "customers", "customer_share", *CLUSTER_FEATURES, "suppressed"])
    return lift.astype({"suppressed": bool}), pd.Series(pd.NA, index=features.index, dtype="string", name="cluster")


def _suppressed_note(summary: pd.DataFrame, customers: int, min_group_size: int) -> str | None:
    """A sentence when every RFM segment is suppressed (no segment holds ``min_group_size`` customers)."""
    if len(summary) and summary["suppressed"].all():
        return t("segment.all_suppressed", min_group_size=min_group_size, customers=customers)
    return None


def segment_sizes(summary: pd.DataFrame) -> dict[str, int | None]:
    """Customers per RFM segment as the 03 report publishes them (English names, as in the
    artifacts): a segment the summary suppressed (under ``min_group_size``, or pooled with those so
    that the total gives none away) is there with None, never its count.

    Parameters
    ----------
    summary : DataFrame
        :func:`~cp_toolkit.segment.rfm.segment_summary`, indexed by segment, with ``customers``
        and ``suppressed``.
    """
    return {
        str(name): None if hidden else int(customers)
        for name, customers, hidden in zip(summary.index, summary["customers"], summary["suppressed"], strict=True)
    }


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
    new_customer_days: int | None = DEFAULTS["new_customer_days"],
) -> SegmentResult:
    """Stage 03: write ``features.parquet``, ``segments.parquet`` (RFM segment, class of the 8 RFM
    classes and behavioural cluster of every customer; with the standard segments, New are the
    customers whose first order lies within ``new_customer_days`` of ``as_of``), ``tags.parquet``
    (rules in ``tag_definitions``, default the packaged ``tags.yaml``) and ``category_spend.parquet``
    (revenue per customer and product category); compare with the previous run when there is one."""
    orders = transactions_up_to(run, as_of, "orders")
    features = customer_features(orders, as_of)
    rules = standard_segments() if rfm_segments is None else dict(rfm_segments)
    check_rules(rules)
    scores = rfm_scores(features)
    by_cell = rfm_segment(scores["r_score"], scores["f_score"], rules)
    segments = scores.assign(
        rfm_segment=name_new_customers(by_cell, features["tenure_days"], rules, new_customer_days),
        rfm8=rfm8_class(features),
    )
    behaviour = features[CLUSTER_FEATURES]
    skipped: dict[str, str] = {}
    try:
        clusters: BehaviourClusters | None = fit_clusters(behaviour, seed, min_group_size)
    except DataError as err:
        clusters, skipped["clusters"] = None, t("segment.clusters_skipped", reason=err)
    if clusters is not None:
        numbered = pd.Series(clusters.labels_, index=features.index)
        labels = cluster_labels(numbered)
        lift = lift_table(behaviour, numbered, min_group_size)
        names = cluster_names(lift[~lift["suppressed"]], CLUSTER_FEATURES)
        segments = segments.assign(
            cluster=labels, cluster_name=labels.map(names).fillna(t("segment.cluster.small", language=DEFAULT_LANGUAGE))
        )
    else:
        (lift, labels), names = _no_clusters(features), {}
        segments = segments.assign(cluster=labels, cluster_name=labels)
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
    suppressed = _suppressed_note(summary, len(features), min_group_size)
    if suppressed:
        skipped["segments"] = t("segment.segments_skipped", reason=suppressed)
    earlier = find_previous_run(run, as_of, previous_run)
    moves: dict[str, pd.DataFrame] = {}  # empty without an earlier run
    stayed: float | None = None
    note = t("segment.migration.none")
    if earlier is not None:
        before = earlier.load("segments").set_index("customer_id")
        before = before.join(earlier.load("features").set_index("customer_id")["monetary"])
        common = before.index.isin(segments.index).mean()
        if common < 0.5:
            note = t("segment.migration.keys_differ", common=common, as_of=earlier.params.get("as_of"))
            warnings.warn(note, CPToolkitWarning, stacklevel=3)
        else:
            moves = migration(before, segments.join(features["monetary"]), min_group_size)
            both = before.index.intersection(segments.index)
            stayed = float((before.loc[both, "rfm_segment"] == segments.loc[both, "rfm_segment"]).mean())
            note = t("segment.migration.compared", as_of=earlier.params.get("as_of"), folder=earlier.path.name)
    shown = summary[~summary["suppressed"]]
    top = (
        t("segment.headline_top", segment=localize("segment.rfm", shown.index[0]), share=shown["revenue_share"].iloc[0])
        if len(shown)
        else t("segment.headline_all_suppressed")
    )
    if clusters is not None:
        checks = clusters.summary()
        cluster_text = t(
            "segment.headline_clusters",
            k=checks["k"],
            silhouette=checks["silhouette"],
            ari=checks["bootstrap_ari"]["ari_mean"],
        )
    else:
        cluster_text = t("segment.headline_no_clusters")
    run.record_stage(
        "03_segmentation",
        t("segment.headline", customers=len(features), segments=summary.shape[0], top=top, clusters=cluster_text),
        **({"notes": list(skipped.values())} if skipped else {}),
        segment_sizes=segment_sizes(summary),
    )
    named = functools.partial(localize, "segment.rfm")  # the report's names; the artifacts keep English
    named8 = functools.partial(localize, "segment.rfm8")
    return SegmentResult(
        features,
        segments,
        summary.rename(index=named),
        rf_grid(segments, min_group_size, rules),
        table,
        dictionary,
        clusters,
        lift,
        names,
        clusters.pca_view(behaviour) if clusters is not None else None,
        {k: v.rename(index=named, columns=named) for k, v in moves.items()},
        note,
        tags,
        tag_coverage(tags, len(features), min_group_size),
        tag_rules,
        segment_map(rules),
        skipped,
        stayed=stayed,
        min_group_size=min_group_size,
        rfm8_summary=rfm8_summary(segments, features, min_group_size).rename(index=named8),
        new_note=t("segment.text.new_customers", days=new_customer_days, as_of=as_of)
        if new_by_first_order(rules, new_customer_days)
        else None,
    )
