"""What the 01 report says first: rows kept and set aside, what the data cover, the quality score."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..display import number
from ..run.artifacts import RunFolder
from ..run.history import compared
from ..text import t, table, words
from ..timezones import transactions_timezone

__all__ = ["findings", "kpis", "quality_score", "reason_label", "table_label", "time_sentence"]


def quality_score(quality: Mapping[str, Any]) -> float | None:
    """The data-quality score: the share of the scorecard's checks that pass (None without checks)."""
    card = quality.get("scorecard", [])
    return sum(not rule["flag"] for rule in card) / len(card) if card else None


def kpis(quality: Mapping[str, Any]) -> dict[str, float]:
    """The key figures of an ingest the index compares between runs: customers and the quality score."""
    out = {"customers": int(quality["transactions"]["customers"])}
    score = quality_score(quality)
    return out if score is None else {**out, "quality_score": score}


def table_label(name: str) -> str:
    """A table of the accounting in words: ``transactions`` or ``transactions:web`` (one of several
    sources) with the table named by the text ``ingest.table.<table>``."""
    table_name, _, source = name.partition(":")
    shown = words("ingest.table", table_name)
    return f"{shown}: {source}" if source else shown


def reason_label(code: str) -> str:
    """A quarantine reason code in words (the text ``ingest.reason.<code>``, else the code spelt out)."""
    return words("ingest.reason", code)


def _rows_sentence(quality: Mapping[str, Any]) -> str:
    tx = [v for name, v in quality["tables"].items() if name.split(":")[0] == "transactions"]
    rows_in, kept = sum(v["rows_in"] for v in tx), sum(v["rows_kept"] for v in tx)
    reasons: dict[str, int] = {}
    for v in tx:
        for code, n in v["quarantined_by_reason"].items():
            reasons[code] = reasons.get(code, 0) + n
    if not reasons:
        return t("ingest.finding.rows_all_kept", rows_in=number(rows_in, "count"))
    top = max(reasons, key=reasons.get)
    return t(
        "ingest.finding.rows",
        rows_in=number(rows_in, "count"),
        kept=number(kept, "count"),
        kept_share=kept / rows_in if rows_in else 0.0,
        set_aside=number(rows_in - kept, "count"),
        reason=reason_label(top),
        reason_rows=number(reasons[top], "count"),
    )


def _coverage_sentence(quality: Mapping[str, Any]) -> str:
    tx = quality["transactions"]
    kept = {name.split(":")[0]: 0 for name in quality["tables"]}
    for name, v in quality["tables"].items():
        kept[name.split(":")[0]] += v["rows_kept"]
    extras = [t(f"ingest.finding.extra.{name}", rows=number(n, "count")) for name, n in kept.items()
              if name != "transactions" and n and f"ingest.finding.extra.{name}" in table()]  # fmt: skip
    return t(
        "ingest.finding.coverage",
        customers=number(tx["customers"], "count"),
        orders=number(tx["orders"], "count"),
        first=tx["first_ts"][:10],
        last=tx["last_ts"][:10],
        extras=t("ingest.finding.separator").join(extras) if extras else t("ingest.finding.no_extras"),
    )


def _quality_sentence(quality: Mapping[str, Any]) -> str | None:
    score = quality_score(quality)
    if score is None:
        return None
    card = quality["scorecard"]
    flagged = [f"{r['table']}.{r['column']}" for r in card if r["flag"]]
    return t(
        "ingest.finding.quality_flagged" if flagged else "ingest.finding.quality",
        score=score,
        passed=len(card) - len(flagged),
        checks=len(card),
        flagged=", ".join(flagged[:3]),
    )


def time_sentence(quality: Mapping[str, Any]) -> str:
    """What the transactions' timestamps are: converted from the zone they were stored in to the
    shops' local time, local time of a named zone, or of an unknown zone (hours shown as recorded)."""
    zone = transactions_timezone(quality)
    if zone is None:
        return t("ingest.finding.time_unknown")
    if zone["stored"] != zone["local"]:
        return t("ingest.finding.time_converted", stored=zone["stored"], local=zone["local"])
    return t("ingest.finding.time_local", local=zone["local"])


def findings(quality: Mapping[str, Any], run: RunFolder | None = None) -> list[str]:
    """The sentences the 01 report opens with: rows kept and set aside, what the kept data cover,
    the quality score (and its change since the previous run)."""
    sentences = [
        _rows_sentence(quality),
        _coverage_sentence(quality),
        _quality_sentence(quality),
        time_sentence(quality),
    ]
    changes = compared(run, kpis(quality)) if run is not None else {}
    if "customers" in changes:
        sentences.append(t("ingest.finding.customers_change", change=changes["customers"]))
    return [s for s in sentences if s]
