"""Stage 05: customer lifetime value with BG/NBD + Gamma-Gamma (fitted by ``lifetimes``).

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
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from lifetimes import BetaGeoFitter, GammaGammaFitter
from lifetimes.utils import ConvergenceError
from scipy.special import betaln, gammaln

from .artifacts import RunFolder
from .pipeline import stage, transactions_up_to

__all__ = [
    "TIME_UNITS",
    "parameter_table",
    "clv_deciles",
    "rfm_summary",
    "calibration_holdout",
    "bgnbd_log_likelihood",
    "CLVModel",
    "CLVResult",
    "run_stage",
]

#: Time unit name -> days per unit.
TIME_UNITS = {"days": 1.0, "weeks": 7.0}
DAYS_PER_MONTH = 365.25 / 12


def _unit_days(time_unit: str) -> float:
    if time_unit not in TIME_UNITS:
        raise ValueError(f"clv_time_unit {time_unit!r} is not one of {sorted(TIME_UNITS)}")
    return TIME_UNITS[time_unit]


def _purchase_days(tx: pd.DataFrame) -> pd.DataFrame:
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
    days = _purchase_days(tx[tx["ts"] < end + pd.Timedelta(days=1)])
    first = days.groupby("customer_id", observed=True)["day"].transform("min")
    g = days.assign(repeat=np.where(days["day"] > first, days["amount"], np.nan)).groupby("customer_id", observed=True)
    out = g.agg(first=("day", "min"), last=("day", "max"), periods=("day", "size"), monetary=("repeat", "mean"))
    unit = pd.Timedelta(days=_unit_days(time_unit))
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
    days = _purchase_days(tx)
    hold = days[(days["day"] > cal_end) & (days["day"] <= obs_end)].groupby("customer_id", observed=True).size()
    cal["frequency_holdout"] = hold.reindex(cal.index, fill_value=0).astype("float64")
    cal["duration_holdout"] = (obs_end - cal_end) / pd.Timedelta(days=_unit_days(time_unit))
    return cal


def bgnbd_log_likelihood(params: dict[str, float], frequency: np.ndarray, recency: np.ndarray, T: np.ndarray) -> float:
    """Total BG/NBD log-likelihood (Fader, Hardie & Lee 2005, eq. 6) in the data's own time unit."""
    r, alpha, a, b = (params[k] for k in ("r", "alpha", "a", "b"))
    x, tx, T = (np.asarray(v, dtype=float) for v in (frequency, recency, T))
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    a2 = betaln(a, b + x) - betaln(a, b) - (r + x) * np.log(alpha + T)
    with np.errstate(invalid="ignore", divide="ignore"):
        a3 = np.where(
            x > 0, betaln(a + 1, b + np.maximum(x, 1) - 1) - betaln(a, b) - (r + x) * np.log(alpha + tx), -np.inf
        )
    return float(np.sum(a1 + np.logaddexp(a2, a3)))


MODELS = {"BG/NBD": "bgnbd", "Gamma-Gamma": "gamma_gamma"}

#: Retries after a fit fails to converge, in order: looser tolerances first (boundary optima such as
#: a -> 0, "no dropout", stop BFGS with "precision loss" while the gradient is already ~0), then
#: small penalizers.
TOLERANCES = (1e-6, 1e-5, 1e-4)
PENALIZER_LADDER = (0.001, 0.01, 0.1)


def _fit_with_ladder(fitter_class: type, penalizer: float, *data: pd.Series) -> tuple[Any, dict[str, float]]:
    """Fit a lifetimes model, retrying on non-convergence with looser tolerances, then larger penalizers.

    Returns the fitted model and the settings that converged; a warning names any retry. The
    optimizer's own printout of a failed attempt is swallowed. Raises the last
    ``ConvergenceError`` when every attempt fails.
    """
    attempts = [(penalizer, 1e-7), *((penalizer, tol) for tol in TOLERANCES)]
    attempts += [(pen, TOLERANCES[0]) for pen in PENALIZER_LADDER if pen > penalizer]
    for i, (pen, tol) in enumerate(attempts):
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                fitted = fitter_class(penalizer_coef=pen).fit(*data, tol=tol)
        except ConvergenceError:
            if i == len(attempts) - 1:
                raise
            continue
        if i:
            warnings.warn(
                f"{fitter_class.__name__} did not converge with penalizer {penalizer} and tolerance 1e-07; "
                f"fitted with penalizer {pen} and tolerance {tol:g} instead",
                UserWarning,
                stacklevel=3,
            )
        return fitted, {"penalizer": pen, "tol": tol}
    raise AssertionError("unreachable")


class CLVModel:
    """BG/NBD for purchases and Gamma-Gamma for spend; discounted CLV (scikit-learn style).

    Parameters
    ----------
    time_unit : {"days", "weeks"}
        Unit of the summary the model is fitted on.
    penalizer : float
        L2 penalizer passed to both lifetimes fitters.
    """

    def __init__(self, time_unit: str = "days", penalizer: float = 0.0) -> None:
        self.time_unit = time_unit
        self.penalizer = penalizer

    def fit(self, summary: pd.DataFrame) -> CLVModel:
        """Fit BG/NBD on all customers and Gamma-Gamma on repeat buyers; returns ``self``."""
        repeat = summary[(summary["frequency"] > 0) & (summary["monetary"] > 0)]
        if len(repeat) < 2:
            raise ValueError(
                "fewer than two repeat buyers: BG/NBD and Gamma-Gamma cannot be fitted; "
                "use a longer history (earlier first date or later as_of)"
            )
        self.bgf_, bg_fit = _fit_with_ladder(
            BetaGeoFitter, self.penalizer, summary["frequency"], summary["recency"], summary["T"]
        )
        self.ggf_, gg_fit = _fit_with_ladder(GammaGammaFitter, self.penalizer, repeat["frequency"], repeat["monetary"])
        self.fit_settings_ = {"bgnbd": bg_fit, "gamma_gamma": gg_fit}
        self.params_ = {k: float(v) for k, v in self.bgf_.params_.items()}
        self.spend_params_ = {k: float(v) for k, v in self.ggf_.params_.items()}
        self.log_likelihood_ = bgnbd_log_likelihood(
            self.params_, summary["frequency"], summary["recency"], summary["T"]
        )
        return self

    def expected_purchases(self, t: float, summary: pd.DataFrame) -> np.ndarray:
        """Expected repeat purchases in the next ``t`` time units, per customer."""
        return np.asarray(
            self.bgf_.conditional_expected_number_of_purchases_up_to_time(
                t, summary["frequency"], summary["recency"], summary["T"]
            ),
            dtype=float,
        )

    def p_alive(self, summary: pd.DataFrame) -> np.ndarray:
        """Probability that each customer is still active."""
        return np.asarray(
            self.bgf_.conditional_probability_alive(summary["frequency"], summary["recency"], summary["T"]), dtype=float
        )

    def expected_spend(self, summary: pd.DataFrame) -> np.ndarray:
        """Gamma-Gamma expected revenue per purchase (population mean for one-time buyers)."""
        return np.asarray(
            self.ggf_.conditional_expected_average_profit(
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
        unit = _unit_days(self.time_unit)
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
        "aggregate_error_pct": float(100 * (predicted.sum() - actual.sum()) / max(actual.sum(), 1e-12)),
        "mae": float(np.abs(err).mean()),
        "rmse": float(np.sqrt((err**2).mean())),
        "correlation": float(np.corrcoef(predicted, actual)[0, 1]),
    }


def parameter_table(card: dict[str, Any]) -> pd.DataFrame:
    """Fitted parameters of both sub-models, with the BG/NBD log-likelihood, as a table."""
    rows = [("BG/NBD", k, v) for k, v in card["bgnbd_params"].items()]
    rows += [("Gamma-Gamma", k, v) for k, v in card["gamma_gamma_params"].items()]
    rows.append(("BG/NBD", f"log-likelihood ({card['time_unit']})", card["log_likelihood"]))
    rows += [
        (name, setting, card["fit_settings"][key][setting])
        for name, key in MODELS.items()
        for setting in ("penalizer", "tol")
    ]
    return pd.DataFrame(rows, columns=["model", "parameter", "estimate"]).set_index(["model", "parameter"])


def clv_deciles(table: pd.DataFrame) -> pd.DataFrame:
    """Customers, mean CLV, share of total CLV and mean P(alive) per CLV decile (10 = highest)."""
    decile = np.ceil(table["clv"].rank(method="first", pct=True) * 10).astype(int).rename("clv_decile")
    out = table.groupby(decile).agg(
        customers=("clv", "size"),
        mean_clv=("clv", "mean"),
        total_clv=("clv", "sum"),
        mean_p_alive=("p_alive", "mean"),
        mean_frequency=("frequency", "mean"),
    )
    out.insert(3, "clv_share", out.pop("total_clv") / table["clv"].sum())
    return out.sort_index(ascending=False)


@dataclass
class CLVResult:
    """The fitted model, the holdout check and the per-customer table."""

    model: CLVModel
    holdout: pd.DataFrame
    holdout_metrics: dict[str, Any]
    table: pd.DataFrame
    model_card: dict[str, Any]


def calibration_end(first: pd.Timestamp, observation_end: pd.Timestamp, holdout_fraction: float) -> pd.Timestamp:
    """The day that ends calibration: the last ``holdout_fraction`` of the span is held out."""
    if not 0 < holdout_fraction < 1:
        raise ValueError(f"clv_holdout_fraction must lie strictly between 0 and 1, not {holdout_fraction}")
    span_days = (observation_end - first.normalize()).days
    return observation_end - pd.Timedelta(days=int(round(holdout_fraction * span_days)))


def _require_finite(values: pd.Series | pd.DataFrame, what: str, model: CLVModel) -> None:
    """Stop with a clear error instead of writing NaN or infinite model outputs."""
    bad = ~np.isfinite(values.to_numpy(dtype=float).reshape(len(values), -1))
    if bad.any():
        raise ValueError(
            f"{what} are not finite for {int(bad.any(axis=1).sum())} customers with BG/NBD parameters "
            f"{model.params_} (fit settings {model.fit_settings_}); the data do not identify the model: "
            "try clv_time_unit 'weeks', a longer history or another clv_holdout_fraction"
        )


def fit_and_validate(
    tx: pd.DataFrame,
    as_of: str,
    time_unit: str = "days",
    holdout_fraction: float = 0.25,
    horizon_months: int = 12,
    annual_discount_rate: float = 0.10,
    margin: float = 1.0,
) -> CLVResult:
    """Validate on a calibration/holdout split, then refit on all data up to ``as_of`` for CLV."""
    end = pd.Timestamp(as_of).normalize()
    cal_end = calibration_end(tx["ts"].min(), end, holdout_fraction)
    cal = calibration_holdout(tx, cal_end, end, time_unit)
    cal_model = CLVModel(time_unit).fit(cal)
    cal["predicted_holdout"] = cal_model.expected_purchases(cal["duration_holdout"].iloc[0], cal)
    _require_finite(cal["predicted_holdout"], "predicted holdout purchases", cal_model)
    metrics = {
        "calibration_end": str(cal_end.date()),
        "holdout_end": str(end.date()),
        "calibration_fit_settings": cal_model.fit_settings_,
        **holdout_metrics(cal, cal["predicted_holdout"].to_numpy()),
    }
    summary = rfm_summary(tx, end, time_unit)
    model = CLVModel(time_unit).fit(summary)
    table = summary.join(model.clv(summary, horizon_months, annual_discount_rate, margin))
    table.insert(4, "p_alive", model.p_alive(summary))
    _require_finite(table[["p_alive", "clv"]], "P(alive) or CLV", model)
    card = {
        "model": "BG/NBD + Gamma-Gamma",
        "library": "lifetimes",
        "time_unit": time_unit,
        "observation_end": str(end.date()),
        "customers": len(summary),
        "repeat_buyers": int((summary["frequency"] > 0).sum()),
        "bgnbd_params": model.params_,
        "fit_settings": model.fit_settings_,
        "log_likelihood": model.log_likelihood_,
        "gamma_gamma_params": model.spend_params_,
        "holdout": metrics,
        "clv": {
            "horizon_months": horizon_months,
            "annual_discount_rate": annual_discount_rate,
            "margin": margin,
            "discounting": "monthly cash flows discounted at the end of each month at (1+annual)^(1/12)-1",
            "total": float(table["clv"].sum()),
            "mean": float(table["clv"].mean()),
        },
    }
    return CLVResult(cal_model, cal, metrics, table, card)


@stage("05_clv")
def run_stage(
    run: RunFolder,
    as_of: str = "2017-12-31",
    clv_time_unit: str = "days",
    clv_holdout_fraction: float = 0.25,
    clv_horizon_months: int = 12,
    annual_discount_rate: float = 0.10,
    margin: float = 1.0,
) -> CLVResult:
    """Stage 05: write ``clv.parquet`` and ``clv_model.json``."""
    result = fit_and_validate(
        transactions_up_to(run, as_of),
        as_of,
        clv_time_unit,
        clv_holdout_fraction,
        clv_horizon_months,
        annual_discount_rate,
        margin,
    )
    run.save("clv", result.table.reset_index())
    run.save("clv_model", result.model_card)
    h = result.holdout_metrics
    run.record_stage(
        "05_clv",
        f"mean {clv_horizon_months}-month CLV {result.table['clv'].mean():,.2f}; holdout purchases "
        f"predicted {h['predicted_total']:,.0f} vs actual {h['actual_total']:,.0f} "
        f"({h['aggregate_error_pct']:+.1f}%)",
    )
    return result
