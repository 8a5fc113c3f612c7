"""Stage 05, customer lifetime value: a purchase model (BG/NBD by default, MBG/NBD, Pareto/NBD, or
``auto``: the best holdout forecast) with Gamma-Gamma for spend, validated on a calibration/holdout
split with bootstrap intervals.

Modules: :mod:`.summary` (the customer summary and the split), :mod:`.models` (fitting and
forecasting), :mod:`.diagnostics` (checks of a fitted model), :mod:`.stage` (the stage and its
tables), :mod:`.simulate` (simulated customers for tests and benchmarks).
"""

from .diagnostics import bootstrap_intervals, compare_models
from .models import TRANSACTION_MODELS, CLVModel, log_likelihood
from .simulate import simulate_bgnbd
from .stage import CLVResult, choose_model, clv_deciles, fit_and_validate, parameter_table, run_stage, top_customers
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
    "bootstrap_intervals",
    "calibration_end",
    "calibration_holdout",
    "choose_model",
    "clv_deciles",
    "compare_models",
    "fit_and_validate",
    "holdout_metrics",
    "log_likelihood",
    "parameter_table",
    "rfm_summary",
    "run_stage",
    "simulate_bgnbd",
    "top_customers",
    "unique_rows",
]
