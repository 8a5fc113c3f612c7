"""Stage 03, segmentation: RFM segments, behavioural clusters, tags and migration as of ``as_of``.

Modules: :mod:`.rfm` (scores, the named R x F map and the 8 RFM classes), :mod:`.cluster`
(behavioural clusters and their choice), :mod:`.tags` (rule-based tags from a YAML table),
:mod:`.migration` (movement between segments since an earlier run) and :mod:`.stage` (``run_stage``).
"""

from .cluster import CLUSTER_FEATURES, BehaviourClusters, lift_table
from .migration import find_previous_run, migration
from .report import cluster_checks, cluster_lifts, findings, segment_label, tag_rules
from .rfm import (
    RFM8_CLASSES,
    RFM_SEGMENTS,
    check_rules,
    name_new_customers,
    quantile_scores,
    rfm8_class,
    rfm8_summary,
    rfm_scores,
    rfm_segment,
    segment_map,
    segment_summary,
    standard_segments,
)
from .stage import SegmentResult, run_stage, segment_sizes
from .tags import TAGS, build_tags, load_definitions, tag_coverage, tag_name

__all__ = [
    "cluster_checks",
    "cluster_lifts",
    "findings",
    "segment_label",
    "tag_rules",
    "CLUSTER_FEATURES",
    "RFM8_CLASSES",
    "RFM_SEGMENTS",
    "BehaviourClusters",
    "SegmentResult",
    "TAGS",
    "build_tags",
    "check_rules",
    "find_previous_run",
    "lift_table",
    "load_definitions",
    "migration",
    "quantile_scores",
    "name_new_customers",
    "rfm8_class",
    "rfm8_summary",
    "rfm_scores",
    "rfm_segment",
    "run_stage",
    "segment_map",
    "segment_sizes",
    "segment_summary",
    "standard_segments",
    "tag_coverage",
    "tag_name",
]
