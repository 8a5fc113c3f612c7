"""What the 01 report shows of an ingest: row accounting, netting, scorecard, table sizes, previews.

Headers and sentences come from the text table (``ingest.accounting``, ``ingest.netting``,
``ingest.scorecard``, ``ingest.sizes``); table names, reasons and columns are shown as the
artifacts name them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

from ..display import number
from ..engine import database, parquet_sql
from ..run.artifacts import RunFolder
from ..text import parse, t
from .report import reason_label, table_label
from .stage import TABLES

__all__ = ["accounting_table", "netting_summary", "preview", "quarantine_sample", "scorecard_table", "table_sizes"]


def accounting_table(quality: Mapping[str, Any]) -> pd.DataFrame:
    """The row accounting of ``quality.json`` as a table: one row per table and reason (in words)."""
    rows = []
    for table, acc in quality["tables"].items():
        base = {"table": table_label(table), "rows_in": acc["rows_in"], "rows_kept": acc["rows_kept"]}
        reasons = acc["quarantined_by_reason"] or {"": 0}
        rows += [{**base, "reason": reason_label(r) if r else "", "rows_set_aside": n} for r, n in reasons.items()]
    return pd.DataFrame(rows, columns=["table", "rows_in", "rows_kept", "reason", "rows_set_aside"])


def netting_summary(quality: Mapping[str, Any]) -> dict[str, Any]:
    """Cancellation netting figures of each transaction source, or a note when no source marks any."""
    netting = {t: v["netting"] for t, v in quality["tables"].items() if t.startswith("transactions") and "netting" in v}
    if len(netting) == 1:
        return next(iter(netting.values()))
    return netting or {t("ingest.netting.cancellations"): t("ingest.netting.not_marked")}


def scorecard_table(quality: Mapping[str, Any]) -> pd.DataFrame:
    """The data-quality scorecard of ``quality.json`` as a table, its dimensions and rules in the
    report's language (:func:`cp_toolkit.text.parse` reads the English rules back); scores are
    percentages, timeliness in days; ``flag`` marks a check past its threshold."""
    card = pd.DataFrame(
        quality["scorecard"], columns=["table", "column", "dimension", "rule", "value", "threshold", "flag"]
    )
    days = card["dimension"] == "timeliness"
    for name in ("value", "threshold"):
        card[name] = [number(v, "days" if d else "percent") for v, d in zip(card[name], days, strict=True)]
    card["dimension"] = [t(f"ingest.scorecard.dimension.{d}") for d in card["dimension"]]
    card["rule"] = [_rule(r) for r in card["rule"]]
    return card.sort_values("flag", ascending=False, kind="stable").reset_index(drop=True)  # failed checks first


def _rule(sentence: str) -> str:
    """A scorecard rule of ``quality.json`` in the report's language (as written when unknown)."""
    found = parse("ingest.scorecard.rule", sentence)
    if found is None:
        return sentence
    key, fields = found
    return t(key, **fields)


def table_sizes(run: RunFolder) -> pd.DataFrame:
    """Rows and columns of each table ingest wrote, read from the Parquet footers (no table is loaded)."""
    rows = [
        {"table": table_label(name), "rows": meta.num_rows, "columns": meta.num_columns}
        for name in (*TABLES, "orders", "quarantine")
        if run.has(name)
        for meta in [pq.ParquetFile(run.file(name)).metadata]
    ]
    return pd.DataFrame(rows, columns=["table", "rows", "columns"])


def preview(run: RunFolder, name: str, n: int = 5) -> pd.DataFrame:
    """The first ``n`` rows of the artifact ``name``, read without loading the rest."""
    parquet = pq.ParquetFile(run.file(name))
    batch = next(parquet.iter_batches(batch_size=n), None)
    return (batch.to_pandas() if batch is not None else parquet.schema_arrow.empty_table().to_pandas()).head(n)


def quarantine_sample(run: RunFolder, per_reason: int = 2) -> pd.DataFrame:
    """The first ``per_reason`` set-aside rows of each table and reason: table, reason, source row."""
    with database() as con:
        return (
            con.execute(
                f'SELECT "table", reason, "row" FROM {parquet_sql(run.file("quarantine"))} '
                'QUALIFY row_number() OVER (PARTITION BY "table", reason ORDER BY source, "row") <= $n '
                'ORDER BY "table", reason, "row"',
                {"n": per_reason},
            )
            .df()
            .assign(reason=lambda d: d["reason"].map(reason_label), table=lambda d: d["table"].map(table_label))
        )
