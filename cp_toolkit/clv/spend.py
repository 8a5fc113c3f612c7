"""The spend model: expected revenue per purchase.

Gamma-Gamma (Fader, Hardie & Lee 2005, "RFM and CLV"; fitted by lifetimes) on the repeat buyers'
mean spend per paid purchase. When it cannot serve (it does not converge, or q <= 1: spend so
heavy-tailed that its mean is infinite), Gamma-Gamma is refitted on means capped at the 99th
percentile of repeat buyers; when that fails too, each repeat buyer's own (capped) mean spend is
used and one-time buyers get the repeat buyers' mean. The model used is named in ``name_``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from lifetimes import GammaGammaFitter
from scipy.special import gammaln

from ..errors import DataError
from .fitting import ConvergenceError, fit_with_ladder, hessian_standard_errors
from .summary import unique_rows, with_spend_frequency

__all__ = ["SPEND_MODELS", "SpendModel"]

SPEND_COLUMNS = ("spend_frequency", "monetary")
#: Quantile of repeat buyers' mean spend that the second rung caps at.
CAP_QUANTILE = 0.99
SPEND_MODELS = {
    "gamma_gamma": "Gamma-Gamma",
    "gamma_gamma_capped": "Gamma-Gamma on mean spend capped at the 99th percentile",
    "observed_mean": "each customer's own mean spend (capped at the 99th percentile)",
}


def _gamma_gamma_log_likelihood(params: dict[str, float], x: np.ndarray, m: np.ndarray, w: np.ndarray) -> float:
    """Gamma-Gamma log-likelihood of mean spend m over x purchases (Fader, Hardie & Lee 2005b, eq. 3)."""
    p, q, v = params["p"], params["q"], params["v"]
    ll = (
        gammaln(p * x + q)
        - gammaln(p * x)
        - gammaln(q)
        + q * np.log(v)
        + (p * x - 1) * np.log(m)
        + p * x * np.log(x)
        - (p * x + q) * np.log(x * m + v)
    )
    return float(np.sum(w * ll))


class SpendModel:
    """Expected revenue per paid purchase (scikit-learn style).

    Parameters
    ----------
    penalizer : float
        L2 penalizer of lifetimes' Gamma-Gamma fitter.
    standard_errors : bool
        Compute Hessian standard errors (off for bootstrap refits, which do not use them).
    """

    def __init__(self, penalizer: float = 0.0, standard_errors: bool = True) -> None:
        self.penalizer = penalizer
        self.standard_errors = standard_errors

    def fit(self, summary: pd.DataFrame) -> SpendModel:
        """Fit on the repeat buyers with positive spend; returns ``self``.

        Raises
        ------
        DataError
            With fewer than two such buyers.
        """
        summary = with_spend_frequency(summary)
        repeat = summary[(summary["spend_frequency"] > 0) & (summary["monetary"] > 0)]
        if len(repeat) < 2:
            raise DataError(
                "fewer than two repeat buyers with positive spend: the purchase and spend models cannot be "
                "fitted; use a longer history (earlier first date or later as_of)"
            )
        self.cap_ = float(repeat["monetary"].quantile(CAP_QUANTILE))
        self.population_mean_ = float(np.average(repeat["monetary"].clip(upper=self.cap_)))
        self.params_, self.standard_errors_, self.fit_settings_, self.fitter_ = {}, {}, {}, None
        self.problems_: list[str] = []
        for name, data in (("gamma_gamma", repeat), ("gamma_gamma_capped", self._capped(repeat))):
            try:
                self._fit_gamma_gamma(data)
            except (ConvergenceError, ValueError) as err:
                self.problems_.append(f"{SPEND_MODELS[name]}: {err}")
                continue
            self.name_ = name
            return self
        self.name_ = "observed_mean"
        return self

    def _capped(self, repeat: pd.DataFrame) -> pd.DataFrame:
        return repeat.assign(monetary=repeat["monetary"].clip(upper=self.cap_))

    def _fit_gamma_gamma(self, repeat: pd.DataFrame) -> None:
        rows = unique_rows(repeat, SPEND_COLUMNS)
        x, m, w = (rows[c].to_numpy(dtype=float) for c in ("spend_frequency", "monetary", "weights"))
        fitted, settings = fit_with_ladder(GammaGammaFitter, self.penalizer, rows, SPEND_COLUMNS)
        params = {k: float(v) for k, v in fitted.params_.items()}
        if params["q"] <= 1:
            raise DataError(
                f"q = {params['q']:.3f} <= 1: spend per purchase is so heavy-tailed that its mean is infinite"
            )
        self.params_, self.fit_settings_, self.fitter_ = params, settings, fitted
        if self.standard_errors:
            self.standard_errors_ = hessian_standard_errors(lambda p: _gamma_gamma_log_likelihood(p, x, m, w), params)

    @property
    def label_(self) -> str:
        return SPEND_MODELS[self.name_]

    def expected_spend(self, summary: pd.DataFrame) -> np.ndarray:
        """Expected revenue per paid purchase of each customer (for one-time buyers, the mean of
        the population)."""
        summary = with_spend_frequency(summary)
        x = summary["spend_frequency"].to_numpy(dtype=float)
        m = summary["monetary"].to_numpy(dtype=float)
        if self.name_ == "observed_mean":
            return np.where(x > 0, np.minimum(m, self.cap_), self.population_mean_)
        if self.name_ == "gamma_gamma_capped":
            m = np.minimum(m, self.cap_)
        # one-time buyers (x = 0) get weight 0 on their own mean: the population mean
        return np.asarray(self.fitter_.conditional_expected_average_profit(x, m), dtype=float)
