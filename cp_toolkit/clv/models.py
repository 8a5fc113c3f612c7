"""Purchase models (BG/NBD, MBG/NBD, Pareto/NBD, fitted by ``lifetimes`` on weighted unique rows),
Gamma-Gamma for spend, and the discounted CLV sum.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from lifetimes import BetaGeoFitter, GammaGammaFitter, ModifiedBetaGeoFitter, ParetoNBDFitter
from lifetimes.utils import ConvergenceError
from scipy.optimize import minimize
from scipy.special import betaln, gammaln

from .summary import DAYS_PER_MONTH, unique_rows, unit_days

__all__ = ["TRANSACTION_MODELS", "CLVModel", "log_likelihood"]

#: Transaction models: name (the ``clv_model`` parameter) -> (label, lifetimes fitter).
TRANSACTION_MODELS: dict[str, tuple[str, type]] = {
    "bgnbd": ("BG/NBD", BetaGeoFitter),
    "mbgnbd": ("MBG/NBD", ModifiedBetaGeoFitter),
    "pareto_nbd": ("Pareto/NBD", ParetoNBDFitter),
}
PURCHASE_COLUMNS = ("frequency", "recency", "T")
#: Fewest distinct (frequency, recency, T) rows a four-parameter purchase model is fitted on.
MIN_DISTINCT_ROWS = 10
SPEND_COLUMNS = ("frequency", "monetary")


def log_likelihood(
    model: str,
    params: Mapping[str, float],
    frequency: np.ndarray,
    recency: np.ndarray,
    T: np.ndarray,
    weights: np.ndarray | None = None,
) -> float:
    """Total log-likelihood of a transaction model in the data's own time unit (not lifetimes'
    internally rescaled, per-customer value).

    BG/NBD: Fader, Hardie & Lee (2005), eq. 6. MBG/NBD: Batislam, Denizel & Filiztekin (2007),
    where a customer may also drop out right after the first purchase. Pareto/NBD: Fader & Hardie
    (2005), eq. 18, as implemented by lifetimes. ``weights`` counts customers per row (default 1).
    """
    x, tx, T = (np.asarray(v, dtype=float) for v in (frequency, recency, T))
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=float)
    if model == "pareto_nbd":
        theta = tuple(params[k] for k in ("r", "alpha", "s", "beta"))
        with np.errstate(invalid="ignore", over="ignore"):  # lifetimes' hyp2f1 overflows on long spans in days
            return float(np.sum(w * ParetoNBDFitter._conditional_log_likelihood(theta, x, tx, T)))
    r, alpha, a, b = (params[k] for k in ("r", "alpha", "a", "b"))
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    if model == "mbgnbd":
        a2 = betaln(a, b + x + 1) - betaln(a, b) - (r + x) * np.log(alpha + T)
        a3 = betaln(a + 1, b + x) - betaln(a, b) - (r + x) * np.log(alpha + tx)
        return float(np.sum(w * (a1 + np.logaddexp(a2, a3))))
    a2 = betaln(a, b + x) - betaln(a, b) - (r + x) * np.log(alpha + T)
    with np.errstate(invalid="ignore", divide="ignore"):
        a3 = np.where(
            x > 0, betaln(a + 1, b + np.maximum(x, 1) - 1) - betaln(a, b) - (r + x) * np.log(alpha + tx), -np.inf
        )
    return float(np.sum(w * (a1 + np.logaddexp(a2, a3))))


#: Retries after a fit fails to converge, in order: looser tolerances first (boundary optima such as
#: a -> 0, "no dropout", stop BFGS with "precision loss" while the gradient is already ~0), then
#: small penalizers.
TOLERANCES = (1e-6, 1e-5, 1e-4)
PENALIZER_LADDER = (0.001, 0.01, 0.1)


def _fit_with_ladder(
    fitter_class: type, penalizer: float, rows: pd.DataFrame, columns: tuple[str, ...]
) -> tuple[Any, dict[str, float]]:
    """Fit a lifetimes model on weighted unique rows, retrying on non-convergence with looser
    tolerances, then larger penalizers, and last (purchase models) with another optimizer:
    Nelder-Mead on our own log-likelihood (:func:`_nelder_mead`).

    Returns the fitted model and the settings that converged; a warning names any retry. The
    optimizer's own printout of a failed attempt is swallowed. Raises the last
    ``ConvergenceError`` when every attempt fails.
    """
    attempts = [(penalizer, 1e-7), *((penalizer, tol) for tol in TOLERANCES)]
    attempts += [(pen, TOLERANCES[0]) for pen in PENALIZER_LADDER if pen > penalizer]
    data = [rows[c] for c in columns]
    # Pareto/NBD draws random starting values unless given some; start where it would on average
    start = {"initial_params": np.ones(4)} if fitter_class is ParetoNBDFitter else {}
    for i, (pen, tol) in enumerate(attempts):
        try:
            with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                fitted = fitter_class(penalizer_coef=pen).fit(*data, weights=rows["weights"], tol=tol, **start)
        except ConvergenceError:
            if i < len(attempts) - 1:
                continue
            if fitter_class is GammaGammaFitter:
                raise
            fitted, pen, tol = _nelder_mead(fitter_class, rows), 0.0, NELDER_MEAD_TOL
            i += 1
        if i:
            how = (
                "Nelder-Mead on our log-likelihood" if i == len(attempts) else f"penalizer {pen} and tolerance {tol:g}"
            )
            warnings.warn(
                f"{fitter_class.__name__} did not converge with penalizer {penalizer} and tolerance 1e-07; "
                f"fitted with {how} instead",
                UserWarning,
                stacklevel=3,
            )
        optimizer = "Nelder-Mead (cp_toolkit)" if i == len(attempts) else "lifetimes"
        return fitted, {
            "penalizer": pen,
            "tol": tol,
            "optimizer": optimizer,
            "rows": len(rows),
            "customers": int(rows["weights"].sum()),
        }
    raise AssertionError("unreachable")


#: Parameter names of each transaction model, in lifetimes' order.
PARAMETERS = {
    "bgnbd": ("r", "alpha", "a", "b"),
    "mbgnbd": ("r", "alpha", "a", "b"),
    "pareto_nbd": ("r", "alpha", "s", "beta"),
}
NELDER_MEAD_TOL = 1e-10


def _nelder_mead(fitter_class: type, rows: pd.DataFrame) -> Any:
    """The last rung of the ladder: maximize our own weighted log-likelihood with Nelder-Mead over
    log parameters (no gradient, so no "precision loss"), starting from r = a = b = s = 1 and
    alpha = beta = mean T. Returns a lifetimes fitter carrying these parameters."""
    model = next(name for name, (_, cls) in TRANSACTION_MODELS.items() if cls is fitter_class)
    names = PARAMETERS[model]
    data = (rows["frequency"], rows["recency"], rows["T"], rows["weights"])
    scale = float(np.average(rows["T"], weights=rows["weights"]))
    start = np.log([scale if n in ("alpha", "beta") else 1.0 for n in names])

    def negative(log_params: np.ndarray) -> float:
        value = -log_likelihood(model, dict(zip(names, np.exp(log_params), strict=True)), *data)
        return value if np.isfinite(value) else 1e300

    options = {"xatol": NELDER_MEAD_TOL, "fatol": NELDER_MEAD_TOL, "maxiter": 20_000, "maxfev": 20_000}
    result = minimize(negative, start, method="Nelder-Mead", options=options)
    if not result.success:
        raise ConvergenceError(f"{fitter_class.__name__}: Nelder-Mead did not converge either ({result.message})")
    fitted = fitter_class()
    fitted.params_ = pd.Series(np.exp(result.x), index=list(names))
    return fitted


def _standard_errors(fitted: Any) -> dict[str, float]:
    """Standard errors from the Hessian at the optimum (lifetimes' delta method on log parameters);
    missing for fitters that do not compute it (Pareto/NBD's Nelder-Mead)."""
    errors = getattr(fitted, "standard_errors_", None)
    return {k: float(errors[k]) if errors is not None else float("nan") for k in fitted.params_.index}


class CLVModel:
    """A transaction model (BG/NBD, MBG/NBD or Pareto/NBD) for purchases and Gamma-Gamma for spend;
    discounted CLV (scikit-learn style).

    Parameters
    ----------
    model : {"bgnbd", "mbgnbd", "pareto_nbd"}
        The transaction model (see :data:`TRANSACTION_MODELS`).
    time_unit : {"days", "weeks"}
        Unit of the summary the model is fitted on.
    penalizer : float
        L2 penalizer passed to both lifetimes fitters.
    """

    def __init__(self, model: str = "bgnbd", time_unit: str = "days", penalizer: float = 0.0) -> None:
        self.model = model
        self.time_unit = time_unit
        self.penalizer = penalizer

    def fit(self, summary: pd.DataFrame, spend: bool = True) -> CLVModel:
        """Fit the transaction model on all customers and, with ``spend``, Gamma-Gamma on repeat
        buyers, both on weighted unique rows; returns ``self``. Without ``spend`` only purchases
        can be predicted (``spend_params_`` is empty)."""
        if self.model not in TRANSACTION_MODELS:
            raise ValueError(f"clv_model {self.model!r} is not one of {sorted(TRANSACTION_MODELS)} or 'auto'")
        repeat = summary[(summary["frequency"] > 0) & (summary["monetary"] > 0)]
        if len(repeat) < 2:
            raise ValueError(
                "fewer than two repeat buyers with positive spend: the purchase and spend models cannot be "
                "fitted; use a longer history (earlier first date or later as_of)"
            )
        fitter = TRANSACTION_MODELS[self.model][1]
        rows = unique_rows(summary, PURCHASE_COLUMNS)
        if len(rows) < MIN_DISTINCT_ROWS:
            raise ValueError(
                f"only {len(rows)} distinct (frequency, recency, T) among {len(summary)} customers: the purchase "
                f"model cannot be identified (it needs {MIN_DISTINCT_ROWS}); use a longer or more varied history"
            )
        self.purchases_, purchase_fit = _fit_with_ladder(fitter, self.penalizer, rows, PURCHASE_COLUMNS)
        self.params_ = {k: float(v) for k, v in self.purchases_.params_.items()}
        self.standard_errors_ = _standard_errors(self.purchases_)
        self.log_likelihood_ = log_likelihood(
            self.model, self.params_, summary["frequency"], summary["recency"], summary["T"]
        )
        self.fit_settings_ = {"purchases": purchase_fit}
        self.spend_, self.spend_params_, self.spend_standard_errors_ = None, {}, {}
        return self._fit_spend(repeat) if spend else self

    def _fit_spend(self, repeat: pd.DataFrame) -> CLVModel:
        """Gamma-Gamma on the repeat buyers with positive spend."""
        spend_rows = unique_rows(repeat, SPEND_COLUMNS)
        self.spend_, spend_fit = _fit_with_ladder(GammaGammaFitter, self.penalizer, spend_rows, SPEND_COLUMNS)
        if self.spend_.params_["q"] <= 1:
            raise ValueError(
                f"Gamma-Gamma q = {self.spend_.params_['q']:.3f} <= 1: spend per purchase is so heavy-tailed that "
                "its mean is infinite and CLV is meaningless; set aside extreme amounts (outlier_iqr_k) or check "
                "the amount column"
            )
        self.fit_settings_["spend"] = spend_fit
        self.spend_params_ = {k: float(v) for k, v in self.spend_.params_.items()}
        self.spend_standard_errors_ = _standard_errors(self.spend_)
        return self

    def expected_purchases(self, t: float, summary: pd.DataFrame) -> np.ndarray:
        """Expected repeat purchases in the next ``t`` time units, per customer."""
        return np.asarray(
            self.purchases_.conditional_expected_number_of_purchases_up_to_time(
                t, summary["frequency"], summary["recency"], summary["T"]
            ),
            dtype=float,
        )

    def expected_purchases_new(self, t: np.ndarray) -> np.ndarray:
        """Expected repeat purchases within ``t`` time units of a new customer's first purchase."""
        return np.asarray(self.purchases_.expected_number_of_purchases_up_to_time(np.asarray(t, float)), float)

    def p_alive(self, summary: pd.DataFrame) -> np.ndarray:
        """Probability that each customer is still active."""
        return np.asarray(
            self.purchases_.conditional_probability_alive(summary["frequency"], summary["recency"], summary["T"]),
            dtype=float,
        ).reshape(len(summary))

    def expected_spend(self, summary: pd.DataFrame) -> np.ndarray:
        """Gamma-Gamma expected revenue per purchase (population mean for one-time buyers)."""
        return np.asarray(
            self.spend_.conditional_expected_average_profit(
                summary["frequency"], summary["monetary"].where(summary["frequency"] > 0, 0.0)
            ),
            dtype=float,
        )

    def clv(
        self,
        summary: pd.DataFrame,
        months: int,
        annual_discount_rate: float,
        margin: float,
        days_per_month: float = DAYS_PER_MONTH,
    ) -> pd.DataFrame:
        """Discounted CLV over ``months``: sum over months i of margin x spend x purchases_i / (1+d)^i.

        ``purchases_i`` is the expected number of purchases in month i (months of
        ``days_per_month`` days, 365.25/12 by default) and ``d = (1 + annual_discount_rate)^(1/12) - 1``
        the monthly rate; cash flows are discounted at the end of their month. All months
        are computed at once (lifetimes' own ``customer_lifetime_value`` loops over them).
        """
        unit = unit_days(self.time_unit)
        edges = np.arange(months + 1) * days_per_month / unit
        cumulative = np.column_stack(
            [self.expected_purchases(t, summary) if t > 0 else np.zeros(len(summary)) for t in edges]
        )
        monthly = np.diff(cumulative, axis=1)
        d = (1 + annual_discount_rate) ** (1 / 12) - 1
        discount = (1 + d) ** -np.arange(1, months + 1)
        spend = self.expected_spend(summary)
        return pd.DataFrame(
            {
                "expected_purchases": cumulative[:, -1],
                "expected_spend": spend,
                "clv": margin * spend * (monthly @ discount),
            },
            index=summary.index,
        )
