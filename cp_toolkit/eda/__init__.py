"""Stage 02: descriptive statistics of the customer base (:mod:`.stage`) and what its report says
first (:mod:`.report`); plots live in :mod:`cp_toolkit.plots`."""

from .report import attribute_coverage, category_table, findings, spread
from .stage import (
    EDAResult,
    attribute_breakdown,
    attribute_profile,
    category_view,
    cohort_retention,
    kpis,
    monthly_activity,
    repeat_purchase_rate,
    revenue_decomposition,
    run_stage,
    weekday_hour,
)

__all__ = [
    "EDAResult",
    "attribute_breakdown",
    "attribute_coverage",
    "category_table",
    "attribute_profile",
    "category_view",
    "cohort_retention",
    "findings",
    "kpis",
    "monthly_activity",
    "repeat_purchase_rate",
    "revenue_decomposition",
    "run_stage",
    "spread",
    "weekday_hour",
]
