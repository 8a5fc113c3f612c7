"""Stage 04, prediction: churn, next-period spend and next categories from one time split, each
chosen on the training windows only and set beside honest baselines out of time, and an
operating point that says how many customers a churn campaign should contact.

Modules: :mod:`.windows` (time split, window features, targets), :mod:`.churn`, :mod:`.spend`,
:mod:`.categories` (candidates, time-ordered selection, baselines), :mod:`.evaluation` (gains,
lift, reliability, paired bootstrap), :mod:`.operating` (profit curve, who to contact),
:mod:`.stage` (the stage) and :mod:`.report` (its findings and tables).
"""

from .report import (
    category_table,
    churn_table,
    contact_grid_table,
    deciles_table,
    feature_name,
    findings,
    gains_tables,
    importance_sentence,
    lift_table,
    profit_inputs,
    reliability_tables,
    spend_table,
)
from .stage import PredictionResult, evaluate, headline, kpis, run_stage

__all__ = [
    "PredictionResult",
    "category_table",
    "churn_table",
    "contact_grid_table",
    "deciles_table",
    "evaluate",
    "feature_name",
    "findings",
    "gains_tables",
    "headline",
    "kpis",
    "importance_sentence",
    "lift_table",
    "profit_inputs",
    "reliability_tables",
    "run_stage",
    "spend_table",
]
