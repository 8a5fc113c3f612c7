"""Stage 05: fit, validate and apply the CLV model; the tables of the report."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..artifacts import RunFolder
from ..pipeline import ensure, transactions_up_to
from ..pipeline import stage as pipeline_stage
from . import diagnostics
from .models import TRANSACTION_MODELS, CLVModel
from .summary import calibration_end, calibration_holdout, holdout_metrics, rfm_summary

__all__ = [
    "CLVResult",
    "choose_model",
    "clv_deciles",
    "fit_and_validate",
    "parameter_table",
    "run_stage",
    "top_customers",
]


def parameter_table(card: dict[str, Any]) -> pd.DataFrame:
    """Fitted parameters of the purchase and spend models with Hessian and bootstrap standard errors
    and the bootstrap 95% interval, as a table."""
    boot = card["bootstrap"]["parameters"]
    rows = []
    for model, key, errors, prefix in (
        (card["purchase_model"], "purchase_params", "purchase_standard_errors", ""),
        ("Gamma-Gamma", "spend_params", "spend_standard_errors", "gamma_gamma_"),
    ):
        for name, value in card[key].items():
            b = boot.get(prefix + name, {})
            rows.append(
                (model, name, value, card[errors][name], b.get("bootstrap_se"), b.get("ci_low"), b.get("ci_high"))
            )
    columns = ["model", "parameter", "estimate", "hessian_se", "bootstrap_se", "ci_low", "ci_high"]
    return pd.DataFrame(rows, columns=columns).set_index(["model", "parameter"])


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


def top_customers(table: pd.DataFrame, n: int = 10) -> pd.DataFrame:
    """The ``n`` customers of highest CLV, by pseudonymized id."""
    columns = ["frequency", "recency", "T", "monetary", "p_alive", "expected_purchases", "expected_spend", "clv"]
    return table.nlargest(n, "clv")[columns]


@dataclass
class CLVResult:
    """The chosen model, the holdout check, the per-customer table and the diagnostics."""

    model: CLVModel
    holdout: pd.DataFrame
    holdout_metrics: dict[str, Any]
    table: pd.DataFrame
    model_card: dict[str, Any]
    comparison: pd.DataFrame
    tracking: pd.DataFrame
    period_transactions: pd.DataFrame
    matrices: dict[str, pd.DataFrame]
    segments: pd.DataFrame

    @property
    def fit_figures(self) -> dict[str, Any]:
        """Log-likelihood, time unit and fit settings of the model refitted on all data (for the report)."""
        card = self.model_card
        return {"log_likelihood": card["log_likelihood"], "time_unit": card["time_unit"], "fit": card["fit_settings"]}

    @property
    def holdout_figures(self) -> dict[str, Any]:
        """The holdout metrics with the bootstrap interval of the aggregate forecast (for the report)."""
        return {**self.holdout_metrics, "bootstrap_interval": self.model_card["bootstrap"]["holdout"]}


def _require_finite(values: pd.Series | pd.DataFrame, what: str, model: CLVModel) -> None:
    """Stop with a clear error instead of writing NaN or infinite model outputs."""
    bad = ~np.isfinite(values.to_numpy(dtype=float).reshape(len(values), -1))
    if bad.any():
        raise ValueError(
            f"{what} are not finite for {int(bad.any(axis=1).sum())} customers with "
            f"{TRANSACTION_MODELS[model.model][0]} parameters {model.params_} (fit settings {model.fit_settings_}); "
            "the data do not identify the model: try clv_time_unit 'weeks', a longer history, another "
            "clv_holdout_fraction or another clv_model"
        )


def choose_model(comparison: pd.DataFrame, requested: str) -> tuple[str, str]:
    """The transaction model to use and why: the requested one, or with ``auto`` the one whose
    holdout forecast has the lowest per-customer mean absolute error."""
    usable = comparison[comparison["error"] == ""]
    if requested != "auto":
        if requested not in TRANSACTION_MODELS:
            raise ValueError(f"clv_model {requested!r} is not one of {sorted(TRANSACTION_MODELS)} or 'auto'")
        if requested not in usable.index:
            raise ValueError(
                f"clv_model {requested!r} cannot be used on these data ({comparison.at[requested, 'error']}); "
                "try clv_model: auto"
            )
        return requested, f"{TRANSACTION_MODELS[requested][0]} as set by clv_model"
    if usable.empty:
        raise ValueError(f"no transaction model could be fitted: {comparison['error'].to_dict()}")
    ranked = usable.assign(rank=usable["mae"].round(6)).sort_values("rank", kind="stable")  # ties: list order
    best = ranked.index[0]
    others = ", ".join(f"{ranked.at[m, 'label']} {ranked.at[m, 'mae']:.4f}" for m in ranked.index[1:])
    return best, (
        f"{ranked.at[best, 'label']}: lowest per-customer holdout MAE ({ranked.at[best, 'mae']:.4f}"
        + (f" vs {others}" if others else "")
        + f"); aggregate error {ranked.at[best, 'aggregate_error_pct']:+.1f}%"
    )


def fit_and_validate(
    tx: pd.DataFrame,
    as_of: str,
    time_unit: str = "days",
    holdout_fraction: float = 0.25,
    horizon_months: int = 12,
    annual_discount_rate: float = 0.10,
    margin: float = 1.0,
    model: str = "bgnbd",
    calibration_end_date: str | None = None,
    segments: pd.Series | None = None,
    bootstrap_samples: int = 50,
    min_group_size: int = 10,
    seed: int = 42,
) -> CLVResult:
    """Validate on a calibration/holdout split, then refit on all data up to ``as_of`` for CLV.

    The calibration ends at ``calibration_end_date`` when given, else the last
    ``holdout_fraction`` of the observed span is held out. Every transaction model is fitted on
    the calibration period and scored on the holdout; ``model`` (or, with ``"auto"``, the best)
    is then refitted on all data. ``segments`` (customer id -> segment) groups the bootstrap
    intervals of mean CLV.
    """
    end = pd.Timestamp(as_of).normalize()
    cal_end = (
        pd.Timestamp(calibration_end_date).normalize()
        if calibration_end_date
        else calibration_end(tx["ts"].min(), end, holdout_fraction)
    )
    if not tx["ts"].min().normalize() < cal_end < end:
        raise ValueError(f"the calibration end {cal_end.date()} must lie between the first purchase and as_of {as_of}")
    cal = calibration_holdout(tx, cal_end, end, time_unit)
    if not cal["frequency_holdout"].sum():
        raise ValueError(
            f"no customer seen by {cal_end.date()} bought between then and {end.date()}: the holdout cannot "
            "validate the model; use a later as_of or another clv_holdout_fraction or clv_calibration_end"
        )
    comparison, fitted = diagnostics.compare_models(cal, time_unit)
    chosen, reason = choose_model(comparison, model)
    cal_model = fitted[chosen]
    cal["predicted_holdout"] = cal_model.expected_purchases(cal["duration_holdout"].iloc[0], cal)
    metrics = {
        "calibration_end": str(cal_end.date()),
        "holdout_end": str(end.date()),
        "calibration_params": cal_model.params_,
        "calibration_log_likelihood": cal_model.log_likelihood_,
        "calibration_spend_params": cal_model.spend_params_,
        "calibration_fit_settings": cal_model.fit_settings_,
        **holdout_metrics(cal, cal["predicted_holdout"].to_numpy()),
    }
    summary = rfm_summary(tx, end, time_unit)
    final = CLVModel(chosen, time_unit).fit(summary)
    clv_args = {"months": horizon_months, "annual_discount_rate": annual_discount_rate, "margin": margin}
    table = summary.join(final.clv(summary, **clv_args))
    table.insert(4, "p_alive", final.p_alive(summary))
    _require_finite(table[["p_alive", "clv"]], "P(alive) or CLV", final)
    groups = (
        segments.reindex(summary.index).fillna("unsegmented")
        if segments is not None
        else pd.Series("all", index=summary.index)
    )
    boot = diagnostics.bootstrap_intervals(
        cal, summary, chosen, time_unit, clv_args, groups, table["clv"], min_group_size, bootstrap_samples, seed
    )
    card = {
        "purchase_model": TRANSACTION_MODELS[chosen][0],
        "spend_model": "Gamma-Gamma",
        "model_choice": {"requested": model, "chosen": chosen, "reason": reason},
        "library": "lifetimes",
        "time_unit": time_unit,
        "observation_end": str(end.date()),
        "customers": len(summary),
        "repeat_buyers": int((summary["frequency"] > 0).sum()),
        "purchase_params": final.params_,
        "purchase_standard_errors": final.standard_errors_,
        "spend_params": final.spend_params_,
        "spend_standard_errors": final.spend_standard_errors_,
        "log_likelihood": final.log_likelihood_,
        "fit_settings": final.fit_settings_,
        "spend_frequency_correlation": diagnostics.spend_correlation(summary),
        "holdout": metrics,
        "model_comparison": comparison.reset_index().to_dict("records"),
        "bootstrap": {
            "samples": boot["samples"],
            "failed": boot["failed"],
            "seed": seed,
            "holdout": boot["holdout"],
            "parameters": boot["parameters"].to_dict("index"),
        },
        "clv": {
            "horizon_months": horizon_months,
            "annual_discount_rate": annual_discount_rate,
            "margin": margin,
            "time_unit": time_unit,
            "discounting": "monthly cash flows discounted at the end of each month at (1+annual)^(1/12)-1",
            "total": float(table["clv"].sum()),
            "mean": float(table["clv"].mean()),
        },
    }
    return CLVResult(
        model=cal_model,
        holdout=cal,
        holdout_metrics=metrics,
        table=table,
        model_card=card,
        comparison=comparison,
        tracking=diagnostics.tracking(tx, cal.index, cal_end, end, cal_model),
        period_transactions=diagnostics.period_transactions(cal, cal_model),
        matrices=diagnostics.frequency_recency_matrix(
            final,
            float(summary["T"].max()),
            int(min(summary["frequency"].quantile(0.99), 50)),
            diagnostics.monthly_horizon(time_unit),
        ),
        segments=boot["segments"],
    )


@pipeline_stage("05_clv")
def run_stage(
    run: RunFolder,
    as_of: str = "2017-12-31",
    clv_model: str = "bgnbd",
    clv_time_unit: str = "days",
    clv_holdout_fraction: float = 0.25,
    clv_calibration_end: str | None = None,
    clv_horizon_months: int = 12,
    annual_discount_rate: float = 0.10,
    margin: float = 1.0,
    clv_bootstrap_samples: int = 50,
    min_group_size: int = 10,
    seed: int = 42,
) -> CLVResult:
    """Stage 05: write ``clv.parquet`` and ``clv_model.json``."""
    segments = ensure(run, "segments").set_index("customer_id")["rfm_segment"]
    result = fit_and_validate(
        transactions_up_to(run, as_of, "orders"),  # purchases are customer-days: orders carry all it needs
        as_of,
        clv_time_unit,
        clv_holdout_fraction,
        clv_horizon_months,
        annual_discount_rate,
        margin,
        model=clv_model,
        calibration_end_date=clv_calibration_end,
        segments=segments,
        bootstrap_samples=clv_bootstrap_samples,
        min_group_size=min_group_size,
        seed=seed,
    )
    run.save("clv", result.table.reset_index())
    run.save("clv_model", result.model_card)
    h, card = result.holdout_metrics, result.model_card
    run.record_stage(
        "05_clv",
        f"{card['purchase_model']}: mean {clv_horizon_months}-month CLV {result.table['clv'].mean():,.2f}; "
        f"holdout purchases predicted {h['predicted_total']:,.0f} vs actual {h['actual_total']:,.0f} "
        f"({h['aggregate_error_pct']:+.1f}%)",
    )
    return result
