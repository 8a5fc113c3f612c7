"""The CLV model: a purchase model (BG/NBD, MBG/NBD or Pareto/NBD, fitted by ``lifetimes`` on
weighted unique rows, optionally with a monthly seasonal index), a spend model, and the
discounted CLV sum. Every forecast uses the stable expressions of :mod:`.btyd`, not lifetimes'.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from lifetimes import BetaGeoFitter, ModifiedBetaGeoFitter, ParetoNBDFitter

from ..errors import DataError, ParameterError
from . import btyd
from .fitting import fit_with_ladder, hessian_standard_errors, refit_from
from .seasonal import SeasonalIndex, check_coverage, fit_seasonal, history, months_covered
from .spend import SpendModel
from .summary import DAYS_PER_MONTH, unique_rows, unit_days, with_spend_frequency

__all__ = [
    "DROPOUT_PARAMETERS",
    "PARAMETERS",
    "TRANSACTION_MODELS",
    "CLVModel",
    "check_model",
    "log_likelihood",
    "model_label",
]

#: Purchase models: name (the ``clv_model`` parameter) -> (label, lifetimes fitter).
TRANSACTION_MODELS: dict[str, tuple[str, type]] = {
    "bgnbd": ("BG/NBD", BetaGeoFitter),
    "mbgnbd": ("MBG/NBD", ModifiedBetaGeoFitter),
    "pareto_nbd": ("Pareto/NBD", ParetoNBDFitter),
}
#: Options of lifetimes' ``fit``: Pareto/NBD draws random starting values unless given some, so it
#: starts where it would on average.
FIT_OPTIONS: dict[str, dict[str, Any]] = {"pareto_nbd": {"initial_params": np.ones(4)}}
#: Parameter names of each purchase model, in lifetimes' order, and those of its dropout process.
PARAMETERS = {
    "bgnbd": ("r", "alpha", "a", "b"),
    "mbgnbd": ("r", "alpha", "a", "b"),
    "pareto_nbd": ("r", "alpha", "s", "beta"),
}
DROPOUT_PARAMETERS = {"bgnbd": ("a", "b"), "mbgnbd": ("a", "b"), "pareto_nbd": ("s", "beta")}
PURCHASE_COLUMNS = ("frequency", "recency", "T")
#: Fewest distinct (frequency, recency, T) rows a four-parameter purchase model is fitted on.
MIN_DISTINCT_ROWS = 10


def check_model(model: str) -> None:
    """Refuse a purchase model name the toolkit does not know, naming the ones it does."""
    if model not in TRANSACTION_MODELS:
        raise ParameterError(f"clv_model {model!r} is not one of {sorted(TRANSACTION_MODELS)} or 'auto'")


def model_label(spec: str) -> str:
    """The label of a candidate: ``BG/NBD`` for ``bgnbd``, ``BG/NBD + monthly seasonality`` for ``bgnbd+monthly``."""
    model, _, season = spec.partition("+")
    return TRANSACTION_MODELS[model][0] + (" + monthly seasonality" if season else "")


def log_likelihood(
    model: str,
    params: Mapping[str, float],
    frequency: np.ndarray,
    recency: np.ndarray,
    T: np.ndarray,
    weights: np.ndarray | None = None,
) -> float:
    """Total log-likelihood of a purchase model in the data's own time unit (not lifetimes'
    internally rescaled, per-customer value); ``weights`` counts customers per row (default 1).
    BG/NBD: Fader, Hardie & Lee (2005), eq. 6; MBG/NBD: Batislam, Denizel & Filiztekin (2007);
    Pareto/NBD: Fader & Hardie (2005), eq. 18 (see :mod:`.btyd`)."""
    per_row = btyd.log_likelihood(model, params, frequency, recency, T)
    return float(np.sum(per_row if weights is None else np.asarray(weights, float) * per_row))


class CLVModel:
    """A purchase model and a spend model; P(alive), expected purchases and discounted CLV
    (scikit-learn style).

    Parameters
    ----------
    model : {"bgnbd", "mbgnbd", "pareto_nbd"}
        The purchase model (see :data:`TRANSACTION_MODELS`).
    time_unit : {"days", "weeks"}
        Unit of the summary the model is fitted on.
    penalizer : float
        L2 penalizer passed to lifetimes' fitters.
    seasonal : bool
        Also estimate a month-of-year index of the purchase rate (:mod:`.seasonal`); the summary
        must then carry ``first`` and the monthly repeat counts of :func:`.rfm_summary`.
    standard_errors : bool
        Compute Hessian standard errors (bootstrap refits skip them).
    start : CLVModel, optional
        A fitted model of the same kind to refit from: the purchase parameters are refined from
        its values by L-BFGS on our log-likelihood, and a seasonal model holds its monthly index
        instead of estimating its own (bootstrap refits, whose intervals are then given the
        seasonal pattern).
    """

    def __init__(
        self,
        model: str = "bgnbd",
        time_unit: str = "days",
        penalizer: float = 0.0,
        seasonal: bool = False,
        standard_errors: bool = True,
        start: CLVModel | None = None,
    ) -> None:
        self.model = model
        self.time_unit = time_unit
        self.penalizer = penalizer
        self.seasonal = seasonal
        self.standard_errors = standard_errors
        self.start = start

    @classmethod
    def from_spec(cls, spec: str, time_unit: str, **kwargs: Any) -> CLVModel:
        """The model of a candidate name: ``bgnbd``, or ``bgnbd+monthly`` with the seasonal index."""
        model, _, season = spec.partition("+")
        return cls(model, time_unit, seasonal=season == "monthly", **kwargs)

    @property
    def spec(self) -> str:
        return self.model + ("+monthly" if self.seasonal else "")

    @property
    def label(self) -> str:
        return model_label(self.spec)

    def fit(self, summary: pd.DataFrame, spend: bool = True) -> CLVModel:
        """Fit the purchase model on all customers and, with ``spend``, the spend model on repeat
        buyers; returns ``self``. Without ``spend`` only purchases can be predicted.

        A seasonal model estimates its monthly index jointly with the parameters
        (:func:`.fit_seasonal`), unless ``start`` carries one: a bootstrap refit holds the index of
        the fit it resamples and refits the parameters in that operational time (see ``start``)."""
        check_model(self.model)
        summary = with_spend_frequency(summary)
        if (summary["frequency"] > 0).sum() < 2:
            raise DataError(
                "fewer than two repeat buyers: the purchase model cannot be fitted; use a longer history "
                "(earlier first date or later as_of)"
            )
        self.observation_end_ = _observation_end(summary, unit_days(self.time_unit))
        held = self.start.season_ if self.seasonal and self.start is not None else None
        self.season_: SeasonalIndex | None = held
        if self.seasonal and held is None:  # before the plain fit it starts from: coverage is cheap to check
            check_coverage(summary, unit_days(self.time_unit))
        self._fit_purchases(summary)
        if self.seasonal and held is None:
            self._fit_season(summary)
        self.spend_: SpendModel | None = None
        if spend:
            self.spend_ = SpendModel(self.penalizer, self.standard_errors).fit(summary)
            self.fit_settings_["spend"] = self.spend_.fit_settings_
        repeats = summary["frequency"].sum()
        self.paid_share_ = float(summary["spend_frequency"].sum() / repeats) if repeats else 1.0
        return self

    def _fit_purchases(self, summary: pd.DataFrame) -> None:
        """Fit the purchase model with lifetimes on weighted unique (x, t_x, T) rows in the model's
        time (operational time when an index is held); its log-likelihood and standard errors."""
        x, tx, T = self.history(summary)
        rows = unique_rows(pd.DataFrame(dict(zip(PURCHASE_COLUMNS, (x, tx, T), strict=True))), PURCHASE_COLUMNS)
        if len(rows) < MIN_DISTINCT_ROWS:
            raise DataError(
                f"only {len(rows)} distinct (frequency, recency, T) among {len(summary)} customers: the purchase "
                f"model cannot be identified (it needs {MIN_DISTINCT_ROWS}); use a longer or more varied history"
            )
        names = PARAMETERS[self.model]
        rx, rtx, rT, w = (rows[c].to_numpy(dtype=float) for c in (*PURCHASE_COLUMNS, "weights"))

        def total(params: Mapping[str, float]) -> float:
            return log_likelihood(self.model, params, rx, rtx, rT, w)

        fitter = TRANSACTION_MODELS[self.model][1]
        if self.start is None:
            self.purchases_, settings = fit_with_ladder(
                fitter, self.penalizer, rows, PURCHASE_COLUMNS, total, names, FIT_OPTIONS.get(self.model)
            )
        else:  # a refit from a fitted model: a few L-BFGS steps on our own log-likelihood
            self.purchases_ = fitter()
            self.purchases_.params_ = pd.Series(refit_from(total, {k: self.start.params_[k] for k in names}))
            settings = {"rows": len(rows), "customers": len(summary), "optimizer": "L-BFGS-B from the fit resampled"}
        self.params_ = {k: float(self.purchases_.params_[k]) for k in names}
        self.log_likelihood_ = total(self.params_) + self._jacobian(summary)
        joint_fit_follows = self.seasonal and self.season_ is None  # its standard errors replace these
        self.standard_errors_ = (
            hessian_standard_errors(total, self.params_) if self.standard_errors and not joint_fit_follows else {}
        )
        if self.season_ is not None:
            settings["optimizer"] += ", in the operational time of the held monthly index"
        self.fit_settings_: dict[str, Any] = {"purchases": settings}

    def _jacobian(self, summary: pd.DataFrame) -> float:
        """log prod s(t_j) over the repeat purchases: the seasonal index's term of the likelihood."""
        if self.season_ is None:
            return 0.0
        return float(months_covered(summary) @ np.log(self.season_.index))

    def _fit_season(self, summary: pd.DataFrame) -> None:
        """Refit the parameters jointly with the monthly index (:func:`.fit_seasonal`), from the plain fit."""
        days = unit_days(self.time_unit)

        def per_customer(params: Mapping[str, float], x: np.ndarray, tx: np.ndarray, T: np.ndarray) -> np.ndarray:
            return btyd.log_likelihood(self.model, params, x, tx, T)

        self.params_, self.season_, self.log_likelihood_, message = fit_seasonal(
            summary, per_customer, self.params_, days
        )
        self.purchases_.params_ = pd.Series(self.params_)
        x, tx, T = self.history(summary)
        self.standard_errors_ = (  # given the index
            hessian_standard_errors(lambda p: log_likelihood(self.model, p, x, tx, T), self.params_)
            if self.standard_errors
            else {}
        )
        self.fit_settings_["purchases"]["optimizer"] += f", then L-BFGS-B jointly with the monthly index ({message})"

    def history(self, summary: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(x, t_x, T) of each customer in the model's time: the time unit, or operational time."""
        x = summary["frequency"].to_numpy(dtype=float)
        if self.season_ is None:
            return x, summary["recency"].to_numpy(dtype=float), summary["T"].to_numpy(dtype=float)
        first, last, end = history(summary, unit_days(self.time_unit))
        return x, self.season_.elapsed(first, last), self.season_.elapsed(first, end)

    def elapsed(self, start: pd.Series | pd.DatetimeIndex, end: pd.Series | pd.DatetimeIndex) -> np.ndarray:
        """Model time between two dates: the time unit, or operational time with a seasonal index."""
        if self.season_ is not None:
            return self.season_.elapsed(start, end)
        return np.asarray((pd.DatetimeIndex(end) - pd.DatetimeIndex(start)) / pd.Timedelta(days=1), float) / unit_days(
            self.time_unit
        )

    def horizon(self, t: float | np.ndarray, summary: pd.DataFrame) -> np.ndarray:
        """The next ``t`` time units after each customer's T, in model time: (customers, horizons)."""
        t = np.atleast_1d(np.asarray(t, dtype=float))
        if self.season_ is None:
            return np.broadcast_to(t[None, :], (len(summary), len(t)))
        _, _, end = history(summary, unit_days(self.time_unit))
        days = pd.to_timedelta(t * unit_days(self.time_unit), unit="D")
        return np.column_stack([self.season_.elapsed(end, end + d) for d in days])

    def expected_purchases(self, t: float | np.ndarray, summary: pd.DataFrame) -> np.ndarray:
        """Expected repeat purchases in the next ``t`` time units, per customer; with several
        horizons ``t``, a (customers, horizons) array, computed at once."""
        x, tx, T = (v[:, None] for v in self.history(summary))
        out = btyd.expected_purchases(self.model, self.params_, self.horizon(t, summary), x, tx, T)
        return out if np.ndim(t) else out[:, 0]

    def expected_purchases_new(self, t: np.ndarray) -> np.ndarray:
        """Expected repeat purchases within ``t`` (model time) of a new customer's first purchase."""
        return btyd.expected_purchases_new(self.model, self.params_, np.asarray(t, float))

    def purchase_pmf(self, t: np.ndarray, n: np.ndarray) -> np.ndarray:
        """P(X(t) = n): n repeat purchases within ``t`` (model time) of a first purchase."""
        return btyd.purchase_pmf(self.model, self.params_, t, n)

    def p_alive(self, summary: pd.DataFrame) -> np.ndarray:
        """Probability that each customer is still active."""
        return btyd.p_alive(self.model, self.params_, *self.history(summary))

    def expected_spend(self, summary: pd.DataFrame) -> np.ndarray:
        """Expected revenue per purchase: the spend model's expected revenue per paid purchase times
        the share of repeat purchases with positive revenue (1 unless zero-value purchases are kept)."""
        return self.spend_.expected_spend(summary) * self.paid_share_

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
        edges = np.arange(months + 1) * days_per_month / unit_days(self.time_unit)
        cumulative = self.expected_purchases(edges, summary)  # 0 at the first edge
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


def _observation_end(summary: pd.DataFrame, days: float) -> pd.Timestamp | None:
    """The common end of observation (first purchase + T), when the summary carries ``first``."""
    if "first" not in summary or summary.empty:
        return None
    return history(summary, days)[2].max()
