"""CLV models: the customer summary, BG/NBD, MBG/NBD and Pareto/NBD for purchases and Gamma-Gamma
for spend (fitted by ``lifetimes`` on weighted unique rows), and the discounted CLV sum.

lifetimes 0.11.3's data helpers break under pandas 3, so the customer summary, the
calibration/holdout split and the discounted CLV sum are written here, with lifetimes'
definitions (``freq='D'``, ``freq_multiplier`` = days per time unit):

- a purchase *period* is a calendar day with at least one order;
- ``frequency`` = purchase periods - 1 (repeat purchases);
- ``recency`` = last minus first purchase day, ``T`` = end of observation minus first
  purchase day, both in the time unit;
- ``monetary`` = mean revenue of the repeat purchase periods (0 for one-time buyers).
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

__all__ = [
    "DAYS_PER_MONTH",
    "TIME_UNITS",
    "TRANSACTION_MODELS",
    "CLVModel",
    "calibration_end",
    "calibration_holdout",
    "holdout_metrics",
    "log_likelihood",
    "purchase_days",
    "rfm_summary",
    "simulate_bgnbd",
    "unique_rows",
    "unit_days",
]

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

#: Time unit name -> days per unit.
TIME_UNITS = {"days": 1.0, "weeks": 7.0}
DAYS_PER_MONTH = 365.25 / 12


def unit_days(time_unit: str) -> float:
    if time_unit not in TIME_UNITS:
        raise ValueError(f"clv_time_unit {time_unit!r} is not one of {sorted(TIME_UNITS)}")
    return TIME_UNITS[time_unit]


def purchase_days(tx: pd.DataFrame) -> pd.DataFrame:
    """Revenue per customer and purchase day."""
    day = tx["ts"].dt.normalize()
    return tx.assign(day=day).groupby(["customer_id", "day"], observed=True)["amount"].sum().reset_index()


def rfm_summary(tx: pd.DataFrame, observation_end: str | pd.Timestamp, time_unit: str = "days") -> pd.DataFrame:
    """The per-customer (frequency, recency, T, monetary) summary of lifetimes.

    Parameters
    ----------
    tx : DataFrame
        Transactions or orders with ``customer_id``, ``ts`` and ``amount``.
    observation_end : str or Timestamp
        Last day observed; later purchases are ignored.
    time_unit : {"days", "weeks"}
        Unit of ``recency`` and ``T`` (weeks = days / 7, as in Fader, Hardie & Lee 2005).

    Returns
    -------
    DataFrame
        Indexed by ``customer_id``: ``frequency``, ``recency``, ``T``, ``monetary``.
    """
    end = pd.Timestamp(observation_end).normalize()
    days = purchase_days(tx[tx["ts"] < end + pd.Timedelta(days=1)])
    first = days.groupby("customer_id", observed=True)["day"].transform("min")
    g = days.assign(repeat=np.where(days["day"] > first, days["amount"], np.nan)).groupby("customer_id", observed=True)
    out = g.agg(first=("day", "min"), last=("day", "max"), periods=("day", "size"), monetary=("repeat", "mean"))
    unit = pd.Timedelta(days=unit_days(time_unit))
    return pd.DataFrame(
        {
            "frequency": (out["periods"] - 1).astype("float64"),
            "recency": (out["last"] - out["first"]) / unit,
            "T": (end - out["first"]) / unit,
            "monetary": out["monetary"].fillna(0.0),
        }
    )


def calibration_holdout(
    tx: pd.DataFrame, calibration_end: str | pd.Timestamp, observation_end: str | pd.Timestamp, time_unit: str = "days"
) -> pd.DataFrame:
    """Calibration summary plus the repeat purchase periods each customer made in the holdout.

    Returns
    -------
    DataFrame
        :func:`rfm_summary` as of ``calibration_end`` for customers seen by then, with
        ``frequency_holdout`` (purchase days in the holdout) and ``duration_holdout``.
    """
    cal_end, obs_end = pd.Timestamp(calibration_end).normalize(), pd.Timestamp(observation_end).normalize()
    cal = rfm_summary(tx, cal_end, time_unit)
    days = purchase_days(tx)
    hold = days[(days["day"] > cal_end) & (days["day"] <= obs_end)].groupby("customer_id", observed=True).size()
    cal["frequency_holdout"] = hold.reindex(cal.index, fill_value=0).astype("float64")
    cal["duration_holdout"] = (obs_end - cal_end) / pd.Timedelta(days=unit_days(time_unit))
    return cal


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


def unique_rows(summary: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    """The distinct rows of ``columns`` with ``weights`` = how many customers share each.

    Fitting on these with weights maximizes the same likelihood as fitting on every customer
    (lifetimes' fitters accept weights), with far fewer rows: the 2,357 CDNOW customers have
    1,016 distinct (frequency, recency, T).
    """
    return summary.groupby(list(columns), sort=True).size().rename("weights").reset_index()


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


def holdout_metrics(cal: pd.DataFrame, predicted: np.ndarray) -> dict[str, float]:
    """Per-customer and aggregate error of predicted vs actual holdout purchases."""
    actual = cal["frequency_holdout"].to_numpy()
    err = predicted - actual
    return {
        "customers": int(len(cal)),
        "actual_total": float(actual.sum()),
        "predicted_total": float(predicted.sum()),
        "aggregate_error_pct": float(100 * (predicted.sum() - actual.sum()) / actual.sum()) if actual.sum() else np.nan,
        "mae": float(np.abs(err).mean()),
        "rmse": float(np.sqrt((err**2).mean())),
        "correlation": float(np.corrcoef(predicted, actual)[0, 1]),
    }


def calibration_end(first: pd.Timestamp, observation_end: pd.Timestamp, holdout_fraction: float) -> pd.Timestamp:
    """The day that ends calibration: the last ``holdout_fraction`` of the span is held out."""
    if not 0 < holdout_fraction < 1:
        raise ValueError(f"clv_holdout_fraction must lie strictly between 0 and 1, not {holdout_fraction}")
    span_days = (observation_end - first.normalize()).days
    return observation_end - pd.Timedelta(days=int(round(holdout_fraction * span_days)))


def simulate_bgnbd(
    customers: int,
    params: Mapping[str, float],
    start: str = "2020-01-01",
    acquisition_days: int = 180,
    horizon_days: int = 540,
    max_repeats: int = 40,
    seed: int = 0,
) -> pd.DataFrame:
    """Transactions drawn from the BG/NBD story (for tests and benchmarks): each customer makes a
    first purchase on a day drawn uniformly from the first ``acquisition_days``, then buys as a
    Poisson process of rate lambda ~ Gamma(r, 1/alpha) per day and, after each purchase, drops out
    with probability p ~ Beta(a, b); spend per purchase is log-normal. Purchases after
    ``horizon_days`` or beyond ``max_repeats`` repeats are cut.

    Returns
    -------
    DataFrame
        ``customer_id`` (text), ``ts`` (timestamps at midnight) and ``amount``, in customer order.
    """
    rng = np.random.default_rng(seed)
    first = rng.integers(0, acquisition_days, customers)
    rate = rng.gamma(params["r"], 1 / params["alpha"], customers)
    p = rng.beta(params["a"], params["b"], customers)
    gaps = rng.exponential(1.0, (customers, max_repeats)) / rate[:, None]
    times = first[:, None] + np.cumsum(gaps, axis=1)
    alive = np.arange(1, max_repeats + 1)[None, :] <= rng.geometric(p)[:, None] - 1
    keep = alive & (times < horizon_days)
    who = np.concatenate([np.arange(customers), np.nonzero(keep)[0]])
    day = np.concatenate([first, np.floor(times[keep]).astype(int)])
    order = np.argsort(who, kind="stable")
    return pd.DataFrame(
        {
            "customer_id": pd.Series(who[order]).astype(str).astype("string"),
            "ts": pd.Timestamp(start) + pd.to_timedelta(day[order], unit="D"),
            "amount": np.round(rng.lognormal(3.0, 0.6, len(who)), 2),
        }
    )
