"""cp_toolkit: customer profiling from transactions, one stage per concept module.

Stages (each a ``run_stage(run, ...)`` that reads upstream artifacts from the run folder and
writes its own): :mod:`~cp_toolkit.ingest`, :mod:`~cp_toolkit.eda`, :mod:`~cp_toolkit.segment`,
:mod:`~cp_toolkit.predict`, :mod:`~cp_toolkit.clv`, :mod:`~cp_toolkit.persona`. Figures are in
:mod:`~cp_toolkit.plots`; the papermill runner in :mod:`~cp_toolkit.report`.
"""

from . import clv, display, eda, features, ingest, persona, pipeline, plots, predict, privacy, segment, sources
from .artifacts import ARTIFACTS, RunFolder
from .clv import CLVModel, calibration_holdout, rfm_summary
from .config import DEFAULTS, load_params
from .features import customer_features, orders_from_lines
from .pipeline import ensure
from .predict import ChurnModel
from .segment import RFM_SEGMENTS, rfm_scores, rfm_segment

__version__ = "0.1.0"

__all__ = [
    "ARTIFACTS",
    "CLVModel",
    "ChurnModel",
    "DEFAULTS",
    "RFM_SEGMENTS",
    "RunFolder",
    "calibration_holdout",
    "clv",
    "customer_features",
    "display",
    "eda",
    "ensure",
    "features",
    "ingest",
    "load_params",
    "orders_from_lines",
    "persona",
    "pipeline",
    "plots",
    "predict",
    "privacy",
    "rfm_scores",
    "rfm_segment",
    "rfm_summary",
    "segment",
    "sources",
]
