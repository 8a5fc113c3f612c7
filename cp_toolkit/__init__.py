"""cp_toolkit: customer profiling from transactions.

The package reads as the pipeline, one subpackage or module per stage:
:mod:`~cp_toolkit.ingest` (01), :mod:`~cp_toolkit.eda` (02), :mod:`~cp_toolkit.segment` (03),
:mod:`~cp_toolkit.predict` (04), :mod:`~cp_toolkit.clv` (05), :mod:`~cp_toolkit.persona` (06).
Each has a ``run_stage(run, ...)`` that reads upstream artifacts from the run folder and writes
its own. Beside them: :mod:`~cp_toolkit.run` (run folder, stage registry, papermill runner),
shared helpers (:mod:`~cp_toolkit.features`, :mod:`~cp_toolkit.privacy`,
:mod:`~cp_toolkit.engine`, :mod:`~cp_toolkit.plots`, :mod:`~cp_toolkit.display`,
:mod:`~cp_toolkit.text`), :mod:`~cp_toolkit.config` and :mod:`~cp_toolkit.params` (parameters
and their checks), :mod:`~cp_toolkit.errors`, and :mod:`~cp_toolkit.rekey` (the audience joined
back to the key holder's own ids).

Submodules and the names below are imported on first use, so ``import cp_toolkit`` (and the
``cp-toolkit`` command) loads no pandas, matplotlib, scikit-learn or lifetimes until needed.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

#: Public name -> module that defines it (imported on first access).
_NAMES = {
    "ARTIFACTS": "run.artifacts",
    "RunFolder": "run.artifacts",
    "CLVModel": "clv",
    "calibration_holdout": "clv",
    "rfm_summary": "clv",
    "DEFAULTS": "config",
    "load_params": "config",
    "customer_features": "features",
    "orders_from_lines": "features",
    "ensure": "run.pipeline",
    "ChurnModel": "predict",
    "RFM_SEGMENTS": "segment",
    "rfm_scores": "segment",
    "rfm_segment": "segment",
}
_MODULES = ("clv", "config", "display", "eda", "engine", "errors", "features", "ingest", "persona", "plots",
            "params", "predict", "privacy", "rekey", "run", "segment", "text", "timezones")  # fmt: skip

__all__ = sorted([*_NAMES, *_MODULES])


def __getattr__(name: str) -> Any:
    """Import a submodule or public name on first access (PEP 562)."""
    if name in _MODULES:
        return importlib.import_module(f".{name}", __name__)
    if name in _NAMES:
        return getattr(importlib.import_module(f".{_NAMES[name]}", __name__), name)
    raise AttributeError(f"module 'cp_toolkit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
