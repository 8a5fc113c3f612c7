"""What the 03 report says first: who holds the revenue, who is slipping away, the behavioural groups."""

from __future__ import annotations

import pandas as pd

from ..display import Table, present
from ..text import localize, t
from .cluster import CLUSTER_FEATURES, STABLE_ARI
from .stage import SegmentResult

__all__ = ["cluster_checks", "cluster_lifts", "findings", "segment_label", "tag_rules"]


def segment_label(name: str) -> str:
    """An RFM segment name as written in the artifacts (English) in the report's language."""
    return localize("segment.rfm", name)


def _top_sentence(summary: pd.DataFrame) -> str | None:
    shown = summary[~summary["suppressed"]].sort_values("revenue_share", ascending=False)
    if shown.empty:
        return None
    top = shown.iloc[0]
    return t(
        "segment.finding.top",
        segments=len(summary),
        segment=segment_label(shown.index[0]),
        customers=int(top["customers"]),
        customer_share=top["customer_share"],
        revenue_share=top["revenue_share"],
    )


def _slipping_sentence(result: SegmentResult) -> str | None:
    """Customers who bought often but not lately (F score 3 or more, R score 2 or less)."""
    seg = result.segments.set_index("customer_id") if "customer_id" in result.segments else result.segments
    slipping = (seg["f_score"] >= 3) & (seg["r_score"] <= 2)
    revenue = result.features["monetary"]
    if slipping.sum() < max(result.min_group_size, 1) or revenue.sum() <= 0:
        return None
    share = revenue.reindex(seg.index[slipping]).sum() / revenue.sum()
    return t("segment.finding.slipping", customers=int(slipping.sum()), revenue_share=share)


def _cluster_sentence(result: SegmentResult) -> str | None:
    if result.clusters is None:
        return None
    checks = result.clusters.summary()
    ari = checks["bootstrap_ari"]["ari_mean"]
    stable = ari >= STABLE_ARI
    return t("segment.finding.clusters" if stable else "segment.finding.clusters_unstable", k=checks["k"], ari=ari)


def findings(result: SegmentResult) -> list[str]:
    """The sentences the 03 report opens with: the segment that holds most revenue, the frequent
    buyers who stopped buying, the behavioural clusters, the moves since the previous run."""
    sentences = [_top_sentence(result.summary), _slipping_sentence(result), _cluster_sentence(result)]
    if result.stayed is not None:
        sentences.append(t("segment.finding.stayed", stayed=result.stayed, note=result.migration_note))
    return [s for s in sentences if s]


def cluster_checks(result: SegmentResult) -> dict[str, object]:
    """The clusters' checks as one flat mapping (figure -> value) for :func:`cp_toolkit.display.key_figures`."""
    checks = dict(result.cluster_checks)
    boot = checks.pop("bootstrap_ari", {}) or {}
    return {**checks, **{k: v for k, v in boot.items() if k in ("ari_mean", "ari_min", "samples")}}


def tag_rules(definitions: dict[str, object]) -> pd.DataFrame:
    """The tag definitions as a table: tag group, setting, value (nested settings joined by "›")."""
    rows = []

    def walk(group: str, path: list[str], node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(group, [*path, str(key)], value)
        else:
            setting = " › ".join(p.replace("_", " ") for p in path if p)
            rows.append({"tag_group": group.replace("_", " "), "setting": setting, "value": str(node)})

    for group, node in definitions.items():
        walk(group, [], node if isinstance(node, dict) else {"": node})
    return pd.DataFrame(rows, columns=["tag_group", "setting", "value"])


def cluster_lifts(result: SegmentResult) -> Table:
    """The clusters' profiles as a table: each feature's mean over the base's (1 = average), so
    every feature column reads as a ratio, whatever its unit."""
    return present(result.lift, dict.fromkeys(CLUSTER_FEATURES, "ratio"))
