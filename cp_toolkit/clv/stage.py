"""Stage 05: fit, validate and apply the CLV model; the tables of the report."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..config import DEFAULTS
from ..display import MISSING
from ..errors import DataError, ParameterError
from ..privacy import deciles_allowed
from ..run.artifacts import RunFolder
from ..run.pipeline import ensure, transactions_up_to
from ..run.pipeline import stage as pipeline_stage
from ..text import labels, t
from . import diagnostics
from .fitting import ConvergenceError
from .models import TRANSACTION_MODELS, CLVModel, model_label
from .seasonal import coverage_reason
from .spend import SpendModel
from .summary import SUMMARY_COLUMNS, calibration_end, calibration_holdout, holdout_metrics, rfm_summary

__all__ = [
    "CLVResult",
    "choice_sentence",
    "choose_model",
    "clv_deciles",
    "comparison_table",
    "distribution_table",
    "fit_and_validate",
    "holdout_table",
    "p_alive_title",
    "parameter_table",
    "report_notes",
    "run_stage",
    "skipped_result",
    "top_customers",
]


def parameter_table(card: dict[str, Any]) -> pd.DataFrame:
    """Fitted parameters of the purchase and spend models with Hessian and bootstrap standard errors,
    the bootstrap 95% interval, and whether the data identify each, as a table."""
    if card.get("skipped"):
        return pd.DataFrame(columns=["model", "parameter", "estimate"]).set_index(["model", "parameter"])
    boot = card["bootstrap"]["parameters"]
    checks = card["identification"]["parameters"]
    rows = []
    for model, key, errors, prefix in (
        (card["purchase_model"], "purchase_params", "purchase_standard_errors", ""),
        (card["spend_model"], "spend_params", "spend_standard_errors", "spend_"),
    ):
        for name, value in card[key].items():
            b = boot.get(prefix + name, {})
            identified = checks.get(prefix + name, {}).get("identified")
            se = card[errors].get(name)
            rows.append((model, name, value, se, b.get("bootstrap_se"), b.get("ci_low"), b.get("ci_high"), identified))
    columns = ["model", "parameter", "estimate", "hessian_se", "bootstrap_se", "ci_low", "ci_high", "identified"]
    return pd.DataFrame(rows, columns=columns).set_index(["model", "parameter"])


def _fmt(value: Any, pattern: str) -> str:
    """A number formatted for a report table, or a dash when it is missing."""
    return MISSING if value is None or (isinstance(value, float) and not np.isfinite(value)) else pattern.format(value)


def comparison_table(comparison: pd.DataFrame, chosen: str) -> pd.DataFrame:
    """The candidates' holdout scores as formatted text, best first, with each one's status: used,
    fitted, or why it could not be."""
    ranked = comparison.sort_values("mae", na_position="last")
    head = labels("clv.comparison")
    rows = {
        ranked.at[spec, "label"]: {
            head["parameters"]: _fmt(ranked.at[spec, "parameters"], "{:.0f}"),
            head["log_likelihood"]: _fmt(ranked.at[spec, "log_likelihood"], "{:,.1f}"),
            head["mae"]: _fmt(ranked.at[spec, "mae"], "{:.4f}"),
            head["aggregate_error"]: _fmt(ranked.at[spec, "aggregate_error_pct"], "{:+.1f}%"),
            head["correlation"]: _fmt(ranked.at[spec, "correlation"], "{:.3f}"),
            head["status"]: head["used"] if spec == chosen else (ranked.at[spec, "error"] or head["fitted"]),
        }
        for spec in ranked.index
    }
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis(head["index"])


def choice_sentence(card: dict[str, Any]) -> str:
    """What was asked for, what was used and why, in one sentence."""
    choice = card["model_choice"]
    if card.get("skipped"):
        return t("clv.choice.none_used", reason=card["skipped"])
    used = t(
        "clv.choice.used",
        model=card["purchase_model"],
        spend_model=card["spend_model"],
        requested=choice["requested"],
        seasonality=choice["seasonality"],
        reason=choice["reason"],
    )
    return used + (t("clv.choice.fallback", fallback=choice["fallback"]) if choice["fallback"] else "")


def holdout_table(card: dict[str, Any]) -> pd.DataFrame:
    """The holdout check in a few formatted figures (none when CLV was not computed)."""
    if card.get("skipped"):
        return pd.DataFrame({"value": {}}).rename_axis("holdout check")
    h, interval = card["holdout"], card["bootstrap"]["holdout"]
    name = labels("clv.holdout_table.name")
    holds = "holds" if interval["actual_in_interval"] else "misses"
    figures = {
        name["calibration"]: t("clv.holdout_table.value.calibration", calibration_end=h["calibration_end"]),
        name["holdout"]: t(
            "clv.holdout_table.value.holdout", calibration_end=h["calibration_end"], holdout_end=h["holdout_end"]
        ),
        name["customers"]: f"{h['customers']:,}",
        name["actual"]: f"{h['actual_total']:,.0f}",
        name["forecast"]: t(
            "clv.holdout_table.value.forecast", predicted=h["predicted_total"], error_pct=h["aggregate_error_pct"]
        ),
        name["interval"]: t(
            f"clv.holdout_table.value.interval_{holds}",
            low=interval["predicted_ci_low"],
            high=interval["predicted_ci_high"],
        ),
        name["mae"]: t("clv.holdout_table.value.mae", mae=h["mae"]),
        name["correlation"]: _fmt(h["correlation"], "{:.3f}"),
        name["time_unit"]: card["time_unit"],
    }
    return pd.DataFrame({name["column"]: figures}).rename_axis(name["index"])


def distribution_table(table: pd.DataFrame) -> pd.DataFrame:
    """Count, mean, spread and quantiles of each column of the per-customer CLV table."""
    return table.astype("float64").describe().T


def p_alive_title(card: dict[str, Any]) -> str:
    """Title of the P(alive) chart, saying when P(alive) is not a risk signal."""
    if card.get("skipped"):
        return t("clv.matrix.p_alive_not_available")
    usable = card["identification"]["p_alive_usable"]
    return t("clv.matrix.p_alive" if usable else "clv.matrix.p_alive_unidentified", model=card["purchase_model"])


def _by_value(segments: pd.DataFrame) -> pd.DataFrame:
    """Segments from the highest mean CLV down (suppressed ones last)."""
    if segments.empty or "mean_clv" not in segments:
        return segments
    return segments.sort_values("mean_clv", ascending=False, na_position="last", kind="stable")


def clv_deciles(table: pd.DataFrame, min_group_size: int = DEFAULTS["min_group_size"]) -> pd.DataFrame:
    """Customers, mean CLV, share of total CLV and mean P(alive) (where the table has it: not when
    dropout is not identified) per CLV decile (10 = highest); empty when a decile would hold fewer
    than ``min_group_size`` customers."""
    if table.empty or not deciles_allowed(len(table), min_group_size):
        return pd.DataFrame(columns=["customers", "mean_clv", "clv_share"]).rename_axis("clv_decile")
    decile = np.ceil(table["clv"].rank(method="first", pct=True) * 10).astype(int).rename("clv_decile")
    p_alive = {"mean_p_alive": ("p_alive", "mean")} if "p_alive" in table else {}
    out = table.groupby(decile).agg(
        customers=("clv", "size"),
        mean_clv=("clv", "mean"),
        total_clv=("clv", "sum"),
        **p_alive,
        mean_frequency=("frequency", "mean"),
    )
    out.insert(3, "clv_share", out.pop("total_clv") / table["clv"].sum())
    return out.sort_index(ascending=False)


def top_customers(table: pd.DataFrame, n: int = 10) -> pd.DataFrame:
    """The ``n`` customers of highest CLV, by pseudonymized id."""
    columns = ["frequency", "recency", "T", "monetary", "p_alive", "expected_purchases", "expected_spend", "clv"]
    return table.nlargest(n, "clv")[[c for c in columns if c in table]]


def kpis(table: pd.DataFrame, card: dict[str, Any] | None = None) -> dict[str, float]:
    """The figures the index compares between runs: mean CLV (none without a CLV table) and, given
    the model card, the model's aggregate holdout error as a signed share (``0.008`` for +0.8%;
    none without a holdout check)."""
    out = {"mean_clv": float(table["clv"].mean())} if len(table) and "clv" in table else {}
    error = ((card or {}).get("holdout") or {}).get("aggregate_error_pct")
    if error is not None and np.isfinite(error):
        out["holdout_error"] = float(error) / 100
    return out


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
    matrices: dict[str, pd.DataFrame | None]
    segments: pd.DataFrame
    #: Part of the report -> why it is not shown (what the data lack); empty when all is shown.
    skipped: dict[str, str] = field(default_factory=dict)
    #: The smallest group of customers the report may describe.
    min_group_size: int = 1

    @property
    def fit_figures(self) -> dict[str, Any]:
        """Log-likelihood, time unit and fit settings of the model refitted on all data (for the report)."""
        card = self.model_card
        if card.get("skipped"):
            return {}
        return {"log_likelihood": card["log_likelihood"], "time_unit": card["time_unit"], "fit": card["fit_settings"]}


#: Relative MAE difference below which two candidates count as tied whatever the interval says.
NEAR_TIE = 0.01


def _simplicity(spec: str) -> tuple[bool, int]:
    """Sort key, simplest first: plain before seasonal, then BG/NBD, MBG/NBD, Pareto/NBD."""
    model, _, season = spec.partition("+")
    return bool(season), list(TRANSACTION_MODELS).index(model)


def choose_model(
    comparison: pd.DataFrame, predictions: pd.DataFrame, holdout: pd.Series, requested: str, seasonality: str = "none"
) -> dict[str, Any]:
    """The purchase model to use, why, and the order of fallbacks.

    With ``auto`` (for the model or the seasonality) the usable candidate of lowest per-customer
    holdout MAE wins, unless a simpler one is tied with it: its MAE lies within the 95% interval
    of the paired difference or within 1% (:data:`NEAR_TIE`). A requested model is used when it
    fitted and forecast finite values; otherwise the best usable candidate takes over and the
    choice says so (``fallback``).

    Returns
    -------
    dict
        ``requested``, ``seasonality``, ``chosen``, ``reason``, ``fallback`` (empty when none) and
        ``order`` (the usable candidates in the order to try them).
    """
    wanted = diagnostics.candidates(requested, seasonality)
    usable = [s for s in comparison.index if comparison.at[s, "error"] == ""]
    if not usable:
        by_error = comparison.groupby("error", sort=False)["label"].agg(" or ".join)
        reasons = "; ".join(f"{labels}: {error}" if len(by_error) > 1 else error for error, labels in by_error.items())
        raise DataError(f"no purchase model could be fitted: {reasons}")
    errors = predictions[usable].sub(holdout, axis=0).abs()
    by_mae = sorted(usable, key=lambda s: (round(comparison.at[s, "mae"], 9), _simplicity(s)))
    preferred = [s for s in wanted if seasonality != "monthly" or s.endswith("+monthly")]
    pool = [s for s in preferred if s in usable]
    fallback = ""
    if not pool:
        by_error = comparison.loc[preferred].groupby("error", sort=False)["label"]
        fallback = t(
            "clv.choice.could_not_use",
            candidates="; ".join(
                t("clv.choice.candidate_error", candidates=t("clv.choice.or").join(names), error=error)
                for error, names in by_error
            ),
        )
        pool = [s for s in wanted if s in usable] or by_mae
    if requested == "auto" or seasonality == "auto" or fallback:
        chosen, reason = _best_or_simpler(sorted(pool, key=by_mae.index), errors, comparison)
    else:
        chosen, reason = pool[0], t("clv.choice.as_set", model=comparison.at[pool[0], "label"])
    order = [chosen, *[s for s in by_mae if s != chosen]]
    return {"requested": requested, "seasonality": seasonality, "chosen": chosen, "reason": reason,
            "fallback": fallback, "order": order}  # fmt: skip


def _best_or_simpler(ranked: list[str], errors: pd.DataFrame, comparison: pd.DataFrame) -> tuple[str, str]:
    """The lowest-MAE candidate of ``ranked`` (sorted by MAE), or the simplest one tied with it."""
    best = ranked[0]
    tied = []
    for spec in ranked[1:]:
        d = diagnostics.mae_difference(errors, spec, best)
        if _simplicity(spec) < _simplicity(best) and (
            d["ci_low"] <= 0 or d["difference"] < NEAR_TIE * comparison.at[best, "mae"]
        ):
            tied.append((spec, d))
    label = comparison["label"]
    others = ", ".join(t("clv.choice.other_mae", model=label[s], mae=comparison.at[s, "mae"]) for s in ranked[1:])
    mae = t("clv.choice.mae", mae=comparison.at[best, "mae"]) + (
        t("clv.choice.mae_others", others=others) if others else ""
    )
    if not tied:
        return best, t("clv.choice.lowest", model=label[best], mae=mae)
    simplest, d = min(tied, key=lambda pair: _simplicity(pair[0]))
    how = t(
        "clv.choice.within_noise" if d["ci_low"] <= 0 else "clv.choice.within_one_percent",
        best=label[best],
        difference=d["difference"],
        ci_low=d["ci_low"],
        ci_high=d["ci_high"],
    )
    return simplest, t("clv.choice.simpler", model=label[simplest], how=how, mae=mae)


def _final_fit(
    order: list[str], summary: pd.DataFrame, time_unit: str, clv_args: dict[str, Any]
) -> tuple[CLVModel, pd.DataFrame, list[str]]:
    """Refit the first candidate of ``order`` that serves on all data: it converges and gives finite
    P(alive) and CLV. Returns the model, the per-customer table and what was skipped, and why."""
    skipped = []
    for spec in order:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                model = CLVModel.from_spec(spec, time_unit).fit(summary)
                table = summary[SUMMARY_COLUMNS[:4]].join(model.clv(summary, **clv_args))
                table.insert(4, "p_alive", model.p_alive(summary))
            values = table[["p_alive", "clv"]].to_numpy(dtype=float)
            if not np.isfinite(values).all():
                raise DataError(
                    f"{int((~np.isfinite(values)).any(axis=1).sum())} customers' P(alive) or CLV are not finite"
                )
        except (ConvergenceError, ValueError, np.linalg.LinAlgError) as err:
            skipped.append(t("clv.choice.skipped", model=model_label(spec), error=str(err).splitlines()[0]))
            continue
        return model, table, skipped
    raise DataError(f"no purchase model could be fitted on all data up to as_of: {skipped}")


def _calibration_span(
    tx: pd.DataFrame, as_of: str, holdout_fraction: float, date: str | None
) -> tuple[pd.Timestamp, pd.Timestamp, pd.Timestamp]:
    """First day of data, end of calibration and end of observation, checked.

    Raises
    ------
    ParameterError
        When ``clv_calibration_end`` was set and lies outside the data (the stage cannot go on as asked).
    DataError
        When the data span too short a time to split (the later stages go on without CLV).
    """
    end, first = pd.Timestamp(as_of).normalize(), tx["ts"].min().normalize()
    cal_end = pd.Timestamp(date).normalize() if date else calibration_end(first, end, holdout_fraction)
    if first < cal_end < end:
        return first, cal_end, end
    span = f"between the first purchase ({first.date()}) and as_of ({end.date()})"
    if date:
        raise ParameterError(f"clv_calibration_end {cal_end.date()} must lie {span}; set a date in that span")
    raise DataError(f"the data are too short to hold out a period: the calibration end must lie {span}")


def fit_and_validate(
    tx: pd.DataFrame,
    as_of: str,
    time_unit: str = DEFAULTS["clv_time_unit"],
    holdout_fraction: float = DEFAULTS["clv_holdout_fraction"],
    horizon_months: int = DEFAULTS["clv_horizon_months"],
    annual_discount_rate: float = DEFAULTS["annual_discount_rate"],
    margin: float = DEFAULTS["margin"],
    model: str = DEFAULTS["clv_model"],
    calibration_end_date: str | None = DEFAULTS["clv_calibration_end"],
    segments: pd.Series | None = None,
    bootstrap_samples: int = DEFAULTS["clv_bootstrap_samples"],
    min_group_size: int = DEFAULTS["min_group_size"],
    seed: int = DEFAULTS["seed"],
    seasonality: str = DEFAULTS["clv_seasonality"],
    purchase_period: str = DEFAULTS["purchase_period"],
    zero_amount: str = DEFAULTS["zero_amount"],
) -> CLVResult:
    """Validate on a calibration/holdout split, then refit on all data up to ``as_of`` for CLV.

    The calibration ends at ``calibration_end_date`` when given, else the last
    ``holdout_fraction`` of the observed span is held out. Every purchase model (with a monthly
    index too unless ``seasonality`` is ``none``) is fitted on the calibration period and scored
    on the holdout; ``model`` (or, with ``"auto"``, the best: :func:`choose_model`) is refitted on
    all data, the next usable one when it cannot serve. ``segments`` (customer id -> segment)
    groups the bootstrap intervals of mean CLV; ``purchase_period`` is ``day`` or ``week``;
    ``zero_amount`` (how ingest treated zero-value lines: ``set_aside``, ``purchase`` or ``mixed``,
    as ``quality.json`` records it) is stated in the model card.
    """
    first, cal_end, end = _calibration_span(tx, as_of, holdout_fraction, calibration_end_date)
    _require_repeat_buyers(tx, purchase_period)
    cal = calibration_holdout(tx, cal_end, end, time_unit, purchase_period)
    if not cal["frequency_holdout"].sum():
        last = tx["ts"].max().normalize()
        fix = (
            f"as_of lies {(end - last).days:,} days after the last transaction ({last.date()}): set as_of to that day"
            if last < cal_end
            else "use a later as_of or another clv_holdout_fraction or clv_calibration_end"
        )
        raise DataError(
            f"no customer seen by {cal_end.date()} bought between then and {end.date()}: the holdout cannot "
            f"validate the model; {fix}"
        )
    specs = diagnostics.candidates("auto", seasonality)
    comparison, fitted, predictions = diagnostics.compare_models(cal, time_unit, specs)
    choice = choose_model(comparison, predictions, cal["frequency_holdout"], model, seasonality)
    summary = rfm_summary(tx, end, time_unit, purchase_period)
    clv_args = {"months": horizon_months, "annual_discount_rate": annual_discount_rate, "margin": margin}
    final, table, skipped = _final_fit(choice["order"], summary, time_unit, clv_args)
    if skipped:
        refit = t("clv.choice.could_not_refit", models=t("clv.choice.or").join(skipped))
        choice["fallback"] = "; ".join(filter(None, [choice["fallback"], refit]))
        choice["reason"] = t("clv.choice.next_usable", model=final.label)
    choice["chosen"] = final.spec
    cal_model = fitted[final.spec]
    cal["predicted_holdout"] = predictions[final.spec]
    cal_spend = SpendModel(standard_errors=False).fit(cal)  # for the record: FHL 2005 fit it on calibration
    metrics = {
        "calibration_end": str(cal_end.date()),
        "holdout_end": str(end.date()),
        "calibration_params": cal_model.params_,
        "calibration_log_likelihood": cal_model.log_likelihood_,
        "calibration_spend_model": cal_spend.label_,
        "calibration_spend_params": cal_spend.params_,
        "calibration_fit_settings": {**cal_model.fit_settings_, "spend": cal_spend.fit_settings_},
        **holdout_metrics(cal, cal["predicted_holdout"].to_numpy()),
    }
    groups = (
        segments.reindex(summary.index).fillna(t("clv.group.unsegmented"))
        if segments is not None
        else pd.Series(t("clv.group.all"), index=summary.index)
    )
    boot = diagnostics.bootstrap_intervals(
        cal, summary, (cal_model, final), time_unit, clv_args, groups, table["clv"], min_group_size,
        bootstrap_samples, seed,
    )  # fmt: skip
    boot["holdout"] = diagnostics.forecast_interval(cal, boot["holdout"])
    track = diagnostics.tracking(tx, cal.index, cal_end, end, cal_model, purchase_period)
    checks = {
        "identification": diagnostics.identification(
            final, summary, boot["parameters"], table["p_alive"].to_numpy(), boot["p_alive_width"].to_numpy()
        ),
        "diagnosis": diagnostics.holdout_diagnosis(
            track, boot["holdout"], (first, cal_end), end, _seasonal_check(comparison, final.spec)
        ),
        "seasonality": _seasonality_status(comparison, final, seasonality),
    }
    if not checks["identification"]["p_alive_usable"]:  # no risk signal: not published, not shown
        table = table.drop(columns="p_alive")
    card = _model_card(final, summary, choice, metrics, comparison, boot, checks, clv_args, seed)
    card["counting"].update({"purchase_period": purchase_period, "zero_amount": zero_amount})
    card["clv"].update({"total": float(table["clv"].sum()), "mean": float(table["clv"].mean())})
    card["notes"] = report_notes(card)
    return CLVResult(
        model=cal_model,
        holdout=cal,
        holdout_metrics=metrics,
        table=table,
        model_card=card,
        comparison=comparison,
        tracking=track,
        period_transactions=diagnostics.period_transactions(cal, cal_model),
        matrices=diagnostics.frequency_recency_matrix(
            final,
            float(summary["T"].max()),
            int(min(summary["frequency"].quantile(0.99), 50)),
            diagnostics.monthly_horizon(time_unit),
        ),
        segments=_by_value(boot["segments"]),
    )


def _require_repeat_buyers(tx: pd.DataFrame, purchase_period: str) -> None:
    """Refuse data without repeat purchases: the purchase models learn only from customers who buy again."""
    period = tx["ts"].dt.to_period("D" if purchase_period == "day" else "W").rename("period")
    periods = period.groupby(tx["customer_id"], observed=True).nunique()
    if len(periods) and not (periods > 1).any():
        raise DataError(
            f"CLV needs repeat purchases: none of the {len(periods):,} customers bought in more than one "
            f"{purchase_period} up to as_of, and the purchase model learns how often customers buy again only "
            "from those who do; use a longer history"
        )


def skipped_result(tx: pd.DataFrame, reason: str, clv_args: dict[str, Any], settings: dict[str, Any]) -> CLVResult:
    """The result of a stage that could not compute CLV: no model, empty tables, the reason in the card's
    notes and in ``skipped``."""
    columns = ["frequency", "recency", "T", "monetary", "clv"]
    table = pd.DataFrame({c: pd.Series(dtype="float64") for c in columns}, index=pd.Index([], name="customer_id"))
    sentence = t("clv.not_available", reason=reason)
    card = {
        "skipped": reason,
        "purchase_model": None,
        "spend_model": None,
        "model_choice": {
            "requested": settings["model"],
            "seasonality": settings["seasonality"],
            "chosen": None,
            "reason": reason,
            "fallback": "",
        },  # fmt: skip
        "time_unit": settings["time_unit"],
        "customers": int(tx["customer_id"].nunique()),
        "seasonality": {"requested": settings["seasonality"], "used": False, "status": "not modelled"},
        "identification": {"p_alive_usable": False, "messages": [], "parameters": {}},
        "spend_frequency_correlation": {},
        "clv": {
            **{"horizon_months": clv_args["months"]},
            **{k: v for k, v in clv_args.items() if k != "months"},
            "total": None,
            "mean": None,
        },  # fmt: skip
        "notes": [sentence],
    }
    comparison = pd.DataFrame(
        columns=["label", "parameters", "log_likelihood", "mae", "aggregate_error_pct", "correlation", "error"]
    )
    return CLVResult(
        model=None,
        holdout=pd.DataFrame(),
        holdout_metrics={},
        table=table,
        model_card=card,
        comparison=comparison,
        tracking=None,
        period_transactions=None,
        matrices={"p_alive": None, "expected_purchases": None},
        segments=pd.DataFrame(),
        skipped={"clv": sentence},
    )


def _seasonal_check(comparison: pd.DataFrame, spec: str) -> dict[str, Any] | None:
    """The holdout errors of the chosen plain model and its seasonal version, when both forecast."""
    if spec.endswith("+monthly"):  # seasonality is in the model already
        return None
    model = spec.partition("+")[0]
    plain, seasonal = model, f"{model}+monthly"
    if not {plain, seasonal} <= set(comparison.index) or (comparison.loc[[plain, seasonal], "error"] != "").any():
        return None
    return {
        "label": comparison.at[seasonal, "label"],
        "seasonal_error_pct": float(comparison.at[seasonal, "aggregate_error_pct"]),
        "plain_error_pct": float(comparison.at[plain, "aggregate_error_pct"]),
    }


def _seasonality_status(comparison: pd.DataFrame, final: CLVModel, requested: str) -> dict[str, Any]:
    """What became of the monthly index: used (with its values), not chosen, or why unavailable."""
    if requested == "none":
        return {"requested": requested, "used": False, "status": t("clv.seasonality.not_modelled")}
    if final.season_ is not None:
        return {
            "requested": requested,
            "used": True,
            "status": t("clv.seasonality.used"),
            "index": final.season_.as_dict(),
        }
    seasonal = comparison[comparison.index.str.endswith("+monthly")]
    errors = seasonal.loc[seasonal["error"] != "", "error"]
    if len(errors) == len(seasonal):
        return {
            "requested": requested,
            "used": False,
            "status": t("clv.seasonality.not_available"),
            "reason": errors.iloc[0],
        }
    return {"requested": requested, "used": False, "status": t("clv.seasonality.not_chosen", model=final.label)}


def _model_card(
    final: CLVModel,
    summary: pd.DataFrame,
    choice: dict[str, Any],
    metrics: dict[str, Any],
    comparison: pd.DataFrame,
    boot: dict[str, Any],
    checks: dict[str, Any],
    clv_args: dict[str, Any],
    seed: int,
) -> dict[str, Any]:
    """The content of ``clv_model.json``: the model, how it was chosen, its checks, the CLV convention."""
    spend = final.spend_
    card = {
        "purchase_model": final.label,
        "purchase_model_key": final.spec,
        "spend_model": spend.label_,
        "model_choice": {k: v for k, v in choice.items() if k != "order"},
        "library": "lifetimes (fitting), cp_toolkit.clv.btyd (P(alive), forecasts, likelihoods)",
        "time_unit": final.time_unit,
        "counting": {
            "zero_value_repeat_purchases": int(summary["frequency"].sum() - summary["spend_frequency"].sum()),
            "paid_share": final.paid_share_,
        },
        "observation_end": str(final.observation_end_.date()) if final.observation_end_ is not None else None,
        "customers": len(summary),
        "repeat_buyers": int((summary["frequency"] > 0).sum()),
        "purchase_params": final.params_,
        "purchase_standard_errors": final.standard_errors_,
        "spend_params": spend.params_,
        "spend_standard_errors": spend.standard_errors_,
        "spend_model_problems": spend.problems_,
        "log_likelihood": final.log_likelihood_,
        "fit_settings": final.fit_settings_,
        "spend_frequency_correlation": diagnostics.spend_correlation(summary),
        "seasonality": checks["seasonality"],
        "identification": checks["identification"],
        "holdout": {**metrics, "diagnosis": checks["diagnosis"]},
        "model_comparison": comparison.reset_index().to_dict("records"),
        "bootstrap": {
            "samples": boot["samples"],
            "failed": boot["failed"],
            "seed": seed,
            "holdout": boot["holdout"],
            "parameters": boot["parameters"].to_dict("index"),
            "p_alive_interval_width": boot["p_alive_width"].quantile([0.5, 0.9]).to_list(),
        },
        "clv": {
            "horizon_months": clv_args["months"],
            "annual_discount_rate": clv_args["annual_discount_rate"],
            "margin": clv_args["margin"],
            "time_unit": final.time_unit,
            "discounting": "monthly cash flows discounted at the end of each month at (1+annual)^(1/12)-1",
        },
    }
    return card


def _seasonality_notes(season: dict[str, Any]) -> list[str]:
    """The monthly index in one sentence (its lowest and highest month), or why there is none."""
    if season["used"]:
        index = pd.Series(season["index"])
        return [
            t(
                "clv.notes.seasonal",
                low=index.min(),
                low_month=index.idxmin(),
                high=index.max(),
                high_month=index.idxmax(),
            )
        ]
    if season["requested"] == "none":
        return []
    if "reason" in season:
        return [t("clv.notes.seasonality_unavailable", reason=coverage_reason(season["reason"]))]
    return [t("clv.notes.seasonality_status", status=season["status"])]


def report_notes(card: dict[str, Any], console: bool = False) -> list[str]:
    """What the reader of the CLV report must know first, in plain sentences: a fallback, what the
    data cannot identify, a holdout miss and its likely causes, seasonality, the spend model and how
    purchases were counted. With ``console``, only what an operator must act on: a fallback, a
    holdout miss and a spend model that fell back."""
    notes = []
    choice = card["model_choice"]
    if choice["fallback"]:
        notes.append(t("clv.notes.fallback", fallback=choice["fallback"], model=card["purchase_model"]))
    if not console:
        notes += card["identification"]["messages"]
    notes += _holdout_sentences(card)
    if not console:
        notes += _seasonality_notes(card["seasonality"])
    if card["spend_model_problems"]:
        notes.append(t("clv.notes.spend", problems="; ".join(card["spend_model_problems"]), model=card["spend_model"]))
    return notes if console else [*notes, _counting_sentence(card["counting"])]


def _holdout_sentences(card: dict[str, Any]) -> list[str]:
    """The holdout miss, its size, and its likely causes (nothing when the interval holds the actual)."""
    diagnosis, interval, holdout = card["holdout"]["diagnosis"], card["bootstrap"]["holdout"], card["holdout"]
    if diagnosis["actual_in_interval"]:
        return []
    side = "over" if diagnosis["direction"] == "over" else "under"
    sentence = t(
        f"clv.notes.holdout_miss_{side}",
        error_pct=abs(holdout["aggregate_error_pct"]),
        predicted=holdout["predicted_total"],
        actual=interval["actual_total"],
        low=interval["predicted_ci_low"],
        high=interval["predicted_ci_high"],
    )
    causes = diagnosis["causes"]
    if causes:
        listed = "; ".join(t("clv.notes.cause", cause=c["cause"], evidence=c["evidence"]) for c in causes)
        sentence += t("clv.notes.cause_one" if len(causes) == 1 else "clv.notes.cause_many", causes=listed)
    else:
        sentence += t("clv.notes.no_cause")
    return [sentence]


def _counting_sentence(counting: dict[str, Any]) -> str:
    """How purchases were counted and what became of zero-value lines, in one sentence."""
    zero = counting["zero_value_repeat_purchases"]
    return t(
        "clv.notes.counting",
        period=t(f"clv.notes.period_{counting['purchase_period']}"),
        purchase_period=counting["purchase_period"],
        ingest=t(f"clv.notes.zero_{counting['zero_amount']}"),
        zero_amount=counting["zero_amount"],
        unpaid=t("clv.notes.unpaid", count=zero) if zero else "",
    )


@pipeline_stage("05_clv")
def run_stage(
    run: RunFolder,
    as_of: str = DEFAULTS["as_of"],
    clv_model: str = DEFAULTS["clv_model"],
    clv_seasonality: str = DEFAULTS["clv_seasonality"],
    clv_time_unit: str = DEFAULTS["clv_time_unit"],
    purchase_period: str = DEFAULTS["purchase_period"],
    clv_holdout_fraction: float = DEFAULTS["clv_holdout_fraction"],
    clv_calibration_end: str | None = DEFAULTS["clv_calibration_end"],
    clv_horizon_months: int = DEFAULTS["clv_horizon_months"],
    annual_discount_rate: float = DEFAULTS["annual_discount_rate"],
    margin: float = DEFAULTS["margin"],
    clv_bootstrap_samples: int = DEFAULTS["clv_bootstrap_samples"],
    min_group_size: int = DEFAULTS["min_group_size"],
    seed: int = DEFAULTS["seed"],
    currency: str = DEFAULTS["currency"],
) -> CLVResult:
    """Stage 05: write ``clv.parquet`` and ``clv_model.json``."""
    segments = ensure(run, "segments").set_index("customer_id")["rfm_segment"]
    orders = transactions_up_to(run, as_of, "orders")  # purchase periods need only orders
    try:
        result = fit_and_validate(
            orders,
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
            seasonality=clv_seasonality,
            purchase_period=purchase_period,
            zero_amount=ensure(run, "quality").get("zero_amount", "set_aside"),  # what 01 did
        )
    except DataError as err:
        clv_args = {"months": clv_horizon_months, "annual_discount_rate": annual_discount_rate, "margin": margin}
        settings = {"model": clv_model, "seasonality": clv_seasonality, "time_unit": clv_time_unit}
        result = skipped_result(orders, str(err), clv_args, settings)
    result.min_group_size = min_group_size
    card = result.model_card
    run.save("clv", result.table.reset_index())
    run.save("clv_model", card)
    if result.skipped:
        run.record_stage("05_clv", t("clv.headline_not_computed"), notes=list(result.skipped.values()))
        return result
    h = result.holdout_metrics
    run.record_stage(
        "05_clv",
        t(
            "clv.headline",
            model=card["purchase_model"],
            months=clv_horizon_months,
            mean_clv=result.table["clv"].mean(),
            currency=currency,
            predicted=h["predicted_total"],
            actual=h["actual_total"],
            error_pct=h["aggregate_error_pct"],
        ),
        notes=report_notes(card, console=True),
        kpis=kpis(result.table, card),
    )
    return result
