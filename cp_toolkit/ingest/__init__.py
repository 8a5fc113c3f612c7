"""Stage 01, ingest: read the sources, map them onto the canonical schema, clean, pseudonymize.

Modules: :mod:`.sources` (source descriptions, presets, reading and mapping), :mod:`.cleaning`
(row rules and their reason codes), :mod:`.schema` (the canonical schema contract),
:mod:`.quality` (the data-quality scorecard), :mod:`.stage` (the streamed ingest and
``run_stage``) and :mod:`.tables` (what the 01 report shows of an ingest).
"""

from .report import findings, quality_score, reason_label, time_sentence
from .sources import PRESETS
from .stage import IngestResult, ingest, ingest_into, run_stage
from .tables import accounting_table, netting_summary, preview, quarantine_sample, scorecard_table, table_sizes

__all__ = [
    "PRESETS",
    "IngestResult",
    "accounting_table",
    "findings",
    "ingest",
    "ingest_into",
    "netting_summary",
    "preview",
    "quality_score",
    "quarantine_sample",
    "reason_label",
    "run_stage",
    "scorecard_table",
    "table_sizes",
    "time_sentence",
]
