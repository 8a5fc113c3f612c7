"""Run parameters: the defaults of the embedded profile and loading of ``params/*.yaml``.

The defaults below are the ``params/default.yaml`` profile; every notebook declares the
same defaults in its ``parameters`` cell (both are checked by the tests), so a notebook
run alone in JupyterLab computes what the default report computes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .errors import ParameterError

__all__ = ["CHOICES", "DEFAULTS", "PRESET_CURRENCY", "load_params", "ParameterError"]

#: The default profile: the embedded Complete Journey data as of 2017-12-31.
DEFAULTS: dict[str, Any] = {
    "dataset": "completejourney",
    "sources": {},
    "as_of": "2017-12-31",
    "min_group_size": 10,
    "currency": "USD",
    "previous_run": None,
    "rfm_segments": None,
    "tag_definitions": None,
    "top_n_categories": 10,
    "persona_categories": 5,
    "horizon_days": 90,
    "seed": 42,
    "zero_amount": "set_aside",
    "allow_identifiers": [],
    "clv_model": "auto",
    "clv_seasonality": "auto",
    "clv_time_unit": "days",
    "purchase_period": "day",
    "clv_holdout_fraction": 0.25,
    "clv_calibration_end": None,
    "clv_horizon_months": 12,
    "annual_discount_rate": 0.10,
    "margin": 1.0,
    "clv_bootstrap_samples": 50,
}


#: Parameters that take one of a few words.
CHOICES: dict[str, tuple[str, ...]] = {
    "zero_amount": ("set_aside", "purchase"),
    "clv_model": ("bgnbd", "mbgnbd", "pareto_nbd", "auto"),
    "clv_seasonality": ("auto", "monthly", "none"),
    "clv_time_unit": ("days", "weeks"),
    "purchase_period": ("day", "week"),
}

#: The currency of each preset's amounts; ``currency`` follows the dataset unless a file sets it.
PRESET_CURRENCY = {"completejourney": "USD", "cdnow": "USD", "online_retail": "GBP"}


def load_params(path: str | Path | None = None, **overrides: Any) -> dict[str, Any]:
    """Read a parameter file and apply overrides on top of :data:`DEFAULTS`.

    Parameters
    ----------
    path : str or Path, optional
        A YAML mapping of parameter names to values. ``None`` gives the defaults.
    **overrides
        Values that win over the file (``None`` values are ignored).

    Returns
    -------
    dict
        The complete parameter set. Keys the toolkit does not know raise
        :class:`ParameterError` so that a typo never passes silently.
    """
    params = dict(DEFAULTS)
    loaded: dict[str, Any] = {}  # what the file says
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ParameterError(f"parameter file {path} does not exist; pass an existing YAML file")
        loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(loaded, dict):
            raise ParameterError(f"{path}: expected a mapping of parameter names to values")
        params.update(loaded)
    params.update({k: v for k, v in overrides.items() if v is not None})
    unknown = sorted(set(params) - set(DEFAULTS))
    if unknown:
        raise ParameterError(f"{path or 'overrides'}: unknown parameter(s) {unknown}; known: {sorted(DEFAULTS)}")
    wrong = {k: params[k] for k, options in CHOICES.items() if params[k] not in options}
    if wrong:
        raise ParameterError(
            f"{path or 'overrides'}: "
            + "; ".join(f"{k}: {v!r} is not one of {list(CHOICES[k])}" for k, v in wrong.items())
        )
    chosen = overrides.get("currency") or loaded.get("currency")
    params["currency"] = chosen or PRESET_CURRENCY.get(params["dataset"], "currency units")
    params["as_of"] = str(params["as_of"])
    if params["clv_calibration_end"] is not None:
        params["clv_calibration_end"] = str(params["clv_calibration_end"])
    return params
