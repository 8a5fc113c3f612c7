"""Run parameters: the defaults of the embedded profile and loading of ``params/*.yaml``.

Each default is written once, in :data:`DEFAULTS`, the ``params/default.yaml`` profile: the
notebooks' ``parameters`` cells, the ``run_stage`` signatures and the README's parameter table
repeat it and are tested against it, so a notebook run alone in JupyterLab computes what the
default report computes. :func:`load_params` checks every value before any stage runs
(:mod:`cp_toolkit.params`).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from .errors import ParameterError
from .params import check_values, read_yaml, unknown_keys

__all__ = [
    "CHOICES",
    "DEFAULTS",
    "PRESET_CURRENCY",
    "PRESET_NON_PRODUCT",
    "RUNNER_PARAMETERS",
    "SERIES_PERIODS",
    "load_params",
]

#: The default profile: the embedded Complete Journey data as of 2017-12-31.
DEFAULTS: dict[str, Any] = {
    "dataset": "completejourney",
    "sources": {},
    "as_of": "2017-12-31",
    "min_group_size": 10,
    "currency": "USD",
    "previous_run": None,
    "rfm_segments": None,
    "new_customer_days": 90,  # a first order within this many days of as_of makes a customer New (None: the R x F cell)
    "tag_definitions": None,
    "top_n_categories": 10,
    "persona_categories": 5,
    "persona_basis": "behaviour",  # behaviour | rfm | rfm8 | value_x_behaviour: what a persona groups
    "persona_playbook": None,  # a playbook YAML (None: the packaged cp_toolkit/persona/playbook.yaml)
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
    "contact_share": 0.2,  # at most this share of customers is contacted by the churn campaign
    "contact_budget": None,  # at most this total contact cost (None: no budget, only contact_share)
    "contact_cost": 1.0,  # cost of contacting one customer, in the run's currency
    "save_rate": 0.1,  # share of contacted would-be lapsers that the contact keeps
    "report_language": "en",  # en | zh: the language of every report, the index and the console
    "non_product_categories": None,  # categories/departments that are not products (None: the preset's)
    "cell_timeout": 3600,  # seconds one notebook cell may run before the run stops it (None: no limit)
}

#: The periods a series of runs may step by (``cp-toolkit run --every``).
SERIES_PERIODS: tuple[str, ...] = ("week", "month", "quarter")

#: Parameters of the runner itself (``cp-toolkit run``), which no notebook declares.
RUNNER_PARAMETERS: tuple[str, ...] = ("cell_timeout",)


#: Parameters that take one of a few words.
CHOICES: dict[str, tuple[str, ...]] = {
    "zero_amount": ("set_aside", "purchase"),
    "clv_model": ("bgnbd", "mbgnbd", "pareto_nbd", "auto"),
    "clv_seasonality": ("auto", "monthly", "none"),
    "persona_basis": ("behaviour", "rfm", "rfm8", "value_x_behaviour"),
    "clv_time_unit": ("days", "weeks"),
    "purchase_period": ("day", "week"),
    "report_language": ("en", "zh"),
}

#: The currency of each preset's amounts; ``currency`` follows the dataset unless a file sets it.
PRESET_CURRENCY = {"completejourney": "USD", "cdnow": "USD", "online_retail": "GBP"}

#: Product categories and departments of each preset that are not products (coupons, fuel,
#: deposits, donations): left out of "top" and "favourite" views unless a file sets its own list.
PRESET_NON_PRODUCT: dict[str, list[str]] = {
    "completejourney": ["COUPON/MISC ITEMS", "COUPON", "COUPONS/STORE & MFG", "FUEL", "BOTTLE DEPOSITS",
                        "CHARITABLE CONT", "POSTAL CENTER"],
    "online_retail": ["POSTAGE", "DOTCOM POSTAGE", "Manual", "Bank Charges", "CARRIAGE", "Discount"],
}  # fmt: skip


def load_params(
    path: str | Path | None = None, *, runs_folder: str | Path | None = None, **overrides: Any
) -> dict[str, Any]:
    """Read a parameter file, apply overrides on top of :data:`DEFAULTS` and check every value.

    Parameters
    ----------
    path : str or Path, optional
        A YAML mapping of parameter names to values. ``None`` gives the defaults.
    runs_folder : str or Path, optional
        The folder that will hold the run (the parent of ``--out``); a relative ``previous_run``
        is looked for there. Without it, only an absolute ``previous_run`` is checked.
    **overrides
        Values that win over the file (``None`` values are ignored).

    Returns
    -------
    dict
        The complete parameter set.

    Raises
    ------
    ParameterError
        Listing every problem at once, one per line, each naming its key: unknown keys (with
        the nearest known one), types, choices, ranges, dates and their order, the rule tables,
        the source descriptions and their files (:func:`cp_toolkit.params.check_values`).
    """
    params = copy.deepcopy(DEFAULTS)
    loaded: Any = {}  # what the file says
    where = str(path) if path is not None else "parameters"
    if path is not None:
        loaded = read_yaml(Path(path), "parameter file") or {}
        if not isinstance(loaded, dict):
            raise ParameterError(f"{path}: expected a mapping of parameter names to values, not {loaded!r}")
        params.update(loaded)
    params.update({k: v for k, v in overrides.items() if v is not None})
    problems = unknown_keys(params, DEFAULTS, "", "parameter")
    problems += check_values(params, CHOICES, Path(runs_folder) if runs_folder is not None else None)
    if problems:
        raise ParameterError(
            f"{where}: {len(problems)} problem(s), nothing was run:\n" + "\n".join(f"  {p}" for p in problems)
        )
    chosen = overrides.get("currency") or loaded.get("currency")
    params["currency"] = chosen or PRESET_CURRENCY.get(params["dataset"], "currency units")
    if params["non_product_categories"] is None:
        params["non_product_categories"] = PRESET_NON_PRODUCT.get(params["dataset"], [])
    return params
