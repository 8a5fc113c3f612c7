"""Stage 05, customer lifetime value: a purchase model (BG/NBD by default, MBG/NBD, Pareto/NBD, or
``auto``: the best holdout forecast) with Gamma-Gamma for spend, validated on a calibration/holdout
split with bootstrap intervals.

Modules: :mod:`.summary` (the customer summary and the split), :mod:`.btyd` (the models'
expressions), :mod:`.fitting` (lifetimes' fitters with retries, standard errors), :mod:`.seasonal`
(a monthly index of the purchase rate), :mod:`.spend` (Gamma-Gamma and its fallbacks),
:mod:`.models` (the CLV model), :mod:`.diagnostics` (checks of a fitted model), :mod:`.stage`
(the stage and its tables), :mod:`.simulate` (simulated customers for tests and benchmarks).
"""

from . import btyd
from .diagnostics import bootstrap_intervals, compare_models
from .models import TRANSACTION_MODELS, CLVModel, log_likelihood
from .report import findings, fit_settings
from .seasonal import SeasonalIndex
from .simulate import simulate_bgnbd, simulate_pareto_nbd
from .spend import SpendModel
from .stage import (
    CLVResult,
    choice_sentence,
    choose_model,
    clv_deciles,
    comparison_table,
    distribution_table,
    fit_and_validate,
    holdout_table,
    kpis,
    p_alive_title,
    parameter_table,
    report_notes,
    run_stage,
    top_customers,
)
from .summary import (
    DAYS_PER_MONTH,
    TIME_UNITS,
    calibration_end,
    calibration_holdout,
    holdout_metrics,
    rfm_summary,
    unique_rows,
)

__all__ = [
    "DAYS_PER_MONTH",
    "TIME_UNITS",
    "TRANSACTION_MODELS",
    "CLVModel",
    "CLVResult",
    "choice_sentence",
    "SeasonalIndex",
    "SpendModel",
    "bootstrap_intervals",
    "btyd",
    "calibration_end",
    "calibration_holdout",
    "choose_model",
    "clv_deciles",
    "comparison_table",
    "distribution_table",
    "compare_models",
    "findings",
    "fit_and_validate",
    "fit_settings",
    "kpis",
    "holdout_table",
    "p_alive_title",
    "holdout_metrics",
    "log_likelihood",
    "parameter_table",
    "report_notes",
    "rfm_summary",
    "run_stage",
    "simulate_bgnbd",
    "simulate_pareto_nbd",
    "top_customers",
    "unique_rows",
]
