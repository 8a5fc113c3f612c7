"""Fitting: lifetimes' fitters on weighted unique rows with a ladder of retries, Nelder-Mead on our
own log-likelihood as the last rung, and standard errors from a finite-difference Hessian."""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd
from lifetimes.utils import ConvergenceError
from scipy.optimize import minimize

from ..errors import CPToolkitWarning
from ..text import t
from .btyd import nbd_log_likelihood

__all__ = ["ConvergenceError", "fit_nbd", "fit_with_ladder", "hessian_standard_errors", "refit_from"]

#: Retries after a fit fails to converge, in order: looser tolerances first (boundary optima such as
#: a -> 0, "no dropout", stop BFGS with "precision loss" while the gradient is already ~0), then
#: small penalizers.
TOLERANCES = (1e-6, 1e-5, 1e-4)
PENALIZER_LADDER = (0.001, 0.01, 0.1)
NELDER_MEAD_TOL = 1e-10
#: Step in log parameters of the finite-difference Hessian.
HESSIAN_STEP = 1e-4
#: A direction whose curvature is below this share of the largest is flat; a parameter whose squared
#: loading on flat directions exceeds LOOSE_LOADING has no standard error.
FLAT = 1e-9
LOOSE_LOADING = 0.01


def fit_with_ladder(
    fitter_class: type,
    penalizer: float,
    rows: pd.DataFrame,
    columns: tuple[str, ...],
    log_likelihood: Callable[[dict[str, float]], float] | None = None,
    names: tuple[str, ...] = (),
    fit_options: Mapping[str, Any] | None = None,
) -> tuple[Any, dict[str, Any]]:
    """Fit a lifetimes model on weighted unique rows, retrying on non-convergence with looser
    tolerances, then larger penalizers, and last, when ``log_likelihood`` is given, with
    Nelder-Mead on it over the log of ``names`` (:func:`nelder_mead`). ``fit_options`` go to the
    fitter's ``fit`` (e.g. fixed starting values).

    Returns the fitted model and the settings that converged; a warning names any retry. The
    optimizer's own printout of a failed attempt is swallowed. Raises the last
    ``ConvergenceError`` when every attempt fails.
    """
    attempts = [(penalizer, 1e-7), *((penalizer, tol) for tol in TOLERANCES)]
    attempts += [(pen, TOLERANCES[0]) for pen in PENALIZER_LADDER if pen > penalizer]
    data = [rows[c] for c in columns]
    settings = {"rows": len(rows), "customers": int(rows["weights"].sum())}
    for i, (pen, tol) in enumerate(attempts):
        try:
            with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                fitted = fitter_class(penalizer_coef=pen).fit(
                    *data, weights=rows["weights"], tol=tol, **(fit_options or {})
                )
        except (ConvergenceError, ValueError, np.linalg.LinAlgError):
            continue
        if i:
            _warn_retry(fitter_class, penalizer, t("clv.warning.retry_settings", penalizer=pen, tolerance=tol))
        return fitted, {**settings, "penalizer": pen, "tol": tol, "optimizer": "lifetimes"}
    if log_likelihood is None:
        raise ConvergenceError(f"{fitter_class.__name__} did not converge with any penalizer or tolerance")
    fitted = fitter_class()
    fitted.params_ = pd.Series(nelder_mead(log_likelihood, names, rows))
    _warn_retry(fitter_class, penalizer, t("clv.warning.retry_nelder_mead"))
    return fitted, {**settings, "penalizer": 0.0, "tol": NELDER_MEAD_TOL, "optimizer": "Nelder-Mead (cp_toolkit)"}


def _warn_retry(fitter_class: type, penalizer: float, how: str) -> None:
    """A fit that needed looser settings: a warning the console shows (a stage note)."""
    warnings.warn(
        t("clv.warning.retry", model=fitter_class.__name__, penalizer=penalizer, how=how),
        CPToolkitWarning,
        stacklevel=4,
    )


def on_log_scale(
    log_likelihood: Callable[[dict[str, float]], float], names: list[str] | tuple[str, ...]
) -> Callable[[np.ndarray], float]:
    """The negative log-likelihood as a function of log parameters, for a minimizer (1e300 where
    it is not finite, so that the minimizer steps back)."""

    def negative(log_params: np.ndarray) -> float:
        value = -log_likelihood(dict(zip(names, np.exp(log_params), strict=True)))
        return value if np.isfinite(value) else 1e300

    return negative


def nelder_mead(
    log_likelihood: Callable[[dict[str, float]], float], names: tuple[str, ...], rows: pd.DataFrame
) -> dict[str, float]:
    """Maximize ``log_likelihood(params)`` with Nelder-Mead over log parameters (no gradient, so no
    "precision loss"), starting from 1 and, for the scale parameters alpha and beta, the mean T."""
    scale = float(np.average(rows["T"], weights=rows["weights"])) if "T" in rows else 1.0
    start = np.log([scale if n in ("alpha", "beta") else 1.0 for n in names])
    options = {"xatol": NELDER_MEAD_TOL, "fatol": NELDER_MEAD_TOL, "maxiter": 20_000, "maxfev": 20_000}
    result = minimize(on_log_scale(log_likelihood, names), start, method="Nelder-Mead", options=options)
    if not result.success:
        raise ConvergenceError(f"Nelder-Mead did not converge either ({result.message})")
    return dict(zip(names, np.exp(result.x).tolist(), strict=True))


def refit_from(log_likelihood: Callable[[dict[str, float]], float], start: dict[str, float]) -> dict[str, float]:
    """Maximize ``log_likelihood`` with L-BFGS-B over log parameters from ``start``: a bootstrap
    refit starts at the fit it resamples, a few steps from its own optimum (lifetimes' Pareto/NBD
    fitter, Nelder-Mead from a fixed start, takes hundreds of evaluations there)."""
    names = list(start)
    result = minimize(on_log_scale(log_likelihood, names), np.log([start[k] for k in names]), method="L-BFGS-B")
    if not np.isfinite(result.fun) or result.fun >= 1e299:
        raise ConvergenceError(f"the refit did not converge ({result.message})")
    return dict(zip(names, np.exp(result.x).tolist(), strict=True))


def hessian_standard_errors(
    log_likelihood: Callable[[dict[str, float]], float], params: dict[str, float]
) -> dict[str, float]:
    """Standard errors of ``params`` from the finite-difference Hessian of ``log_likelihood`` in log
    parameters (the delta method: SE = value x SE of its log). Directions in which the
    log-likelihood is flat or not concave (a boundary optimum such as a -> 0, a ridge) are left
    out of the inverse: the parameters that load on them get NaN (the data do not pin them down),
    the others their standard error within the well-determined directions."""
    names = list(params)
    theta = np.log([params[k] for k in names])
    n, h = len(theta), HESSIAN_STEP

    def ll(v: np.ndarray) -> float:
        return log_likelihood(dict(zip(names, np.exp(v), strict=True)))

    eye = np.eye(n) * h
    hessian = np.empty((n, n))
    for i in range(n):
        for j in range(i, n):
            hessian[i, j] = hessian[j, i] = (
                ll(theta + eye[i] + eye[j])
                - ll(theta + eye[i] - eye[j])
                - ll(theta - eye[i] + eye[j])
                + ll(theta - eye[i] - eye[j])
            ) / (4 * h * h)
    if not np.isfinite(hessian).all():
        return dict.fromkeys(names, float("nan"))
    curvature, directions = np.linalg.eigh(-hessian)
    firm = curvature > FLAT * max(curvature.max(), 0.0)
    covariance = (directions[:, firm] / curvature[firm]) @ directions[:, firm].T
    loose = (directions[:, ~firm] ** 2).sum(axis=1) > LOOSE_LOADING
    se = np.where(loose, np.nan, np.exp(theta) * np.sqrt(np.clip(np.diag(covariance), 0.0, None)))
    return {k: float(v) for k, v in zip(names, se, strict=True)}


def fit_nbd(x: np.ndarray, T: np.ndarray, weights: np.ndarray) -> tuple[dict[str, float], float]:
    """Maximum likelihood of the no-dropout NBD (:func:`.btyd.nbd_log_likelihood`) on weighted rows;
    returns the parameters and the maximized total log-likelihood."""

    def total(params: dict[str, float]) -> float:
        return float(np.sum(weights * nbd_log_likelihood(params, x, T)))

    start = np.log([1.0, max(float(np.average(T, weights=weights)), 1e-3)])
    result = minimize(on_log_scale(total, ("r", "alpha")), start, method="L-BFGS-B")
    return {"r": float(np.exp(result.x[0])), "alpha": float(np.exp(result.x[1]))}, -float(result.fun)
