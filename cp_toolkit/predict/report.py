"""What the 04 report shows: the findings in sentences and the tables, from a stage result.

Every text comes from the text table (``predict.*``); these functions only choose and fill them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..display import MISSING
from ..privacy import deciles_allowed
from ..run.artifacts import RunFolder
from ..run.history import since_previous
from ..text import t
from .stage import RISK_BANDS, PredictionResult, kpis
from .stage import scorer_name as _name

__all__ = [
    "category_table",
    "churn_table",
    "contact_grid_table",
    "deciles_table",
    "feature_name",
    "findings",
    "gains_tables",
    "importance_sentence",
    "lift_table",
    "profit_inputs",
    "reliability_tables",
    "spend_table",
]


def _rounded(x: float, digits: int) -> float:
    """``x`` rounded, a negative zero made plain (no "-0.000" in a report)."""
    return round(float(x), digits) + 0.0


def _interval(c: dict[str, Any], digits: int = 3) -> str:
    """``+0.021 (-0.001 to +0.045)``: a difference and its 95 % interval."""
    difference, low, high = (_rounded(c[k], digits) for k in ("difference", "low", "high"))
    return t("predict.interval", digits=digits, difference=difference, low=low, high=high)


def _money(x: Any, digits: int = 0) -> str:
    """An amount with thousands separators and ``digits`` decimals; a dash where it is missing."""
    return MISSING if pd.isna(x) else f"{_rounded(x, digits):,.{digits}f}"


def _share(x: Any) -> str:
    return MISSING if pd.isna(x) else f"{x:.1%}"


def findings(result: PredictionResult, currency: str, run: RunFolder | None = None) -> list[str]:
    """Three to six sentences that open the report: churn against its baselines with intervals
    (and the share of all customers expected to lapse, with its change since the previous run
    beside ``run``), the top-decile lift, how many customers to contact and why, spend and categories."""
    out: list[str] = []
    c, split = result.churn, result.metrics["split"]
    if c is not None:
        out.append(
            t(
                "predict.finding.churn_rate",
                customers=len(c.y),
                cutoff=split["test_cutoff"],
                rate=float(c.y.mean()),
                horizon_days=split["horizon_days"],
            )
            + _expected_clause(result, split["horizon_days"], run)
        )
        out.append(_churn_verdict(c))
        if _deciles_shown(result, len(c.y)):  # the top tenth is a group of customers
            m = c.metrics[c.scored_with]
            gains = c.gains[c.scored_with]["gains"].iloc[0]
            out.append(
                t("predict.finding.lift", scorer=_name("churn", c.scored_with), lift=m["top_decile_lift"], gains=gains)
            )
    if result.operating is not None:
        out.append(_operating_sentence(result.operating, currency))
    if result.spend is not None:
        out.append(_spend_sentence(result.spend, currency, split["horizon_days"]))
    if result.categories is not None:
        out.append(_category_sentence(result.categories))
    return out


def _expected_clause(result: PredictionResult, horizon_days: int, run: RunFolder | None) -> str:
    """The share of all customers expected to lapse (the index's key figure) and its change."""
    figures = kpis(result)
    if not figures:
        return ""
    since = since_previous(run, figures, "share_at_risk")
    return t("predict.finding.expected", share=figures["share_at_risk"], horizon_days=horizon_days, since=since)


def _churn_verdict(c: Any) -> str:
    base = _name("churn", c.best_baseline)
    if c.selector is None:
        return t("predict.finding.churn_no_model", baseline=base, reason=c.model_note)
    model, best = c.metrics["model"], c.metrics[c.best_baseline]
    lead = c.comparisons[c.best_baseline]
    return t(
        f"predict.finding.churn.{c.verdict}",
        baseline=base,
        auc=model["roc_auc"],
        ap=model["average_precision"],
        baseline_auc=best["roc_auc"],
        baseline_ap=best["average_precision"],
        auc_difference=_interval(lead["roc_auc"]),
        ap_difference=_interval(lead["average_precision"]),
        scorer=_name("churn", c.scored_with),
    )


def _operating_sentence(op: dict[str, Any], currency: str) -> str:
    if op["best_n"] == 0:
        return t("predict.finding.contact_none", cost=op["contact_cost"], save_rate=op["save_rate"], currency=currency)
    return t(
        "predict.finding.contact",
        n=op["best_n"],
        customers=op["customers"],
        limit=op["limit"],
        saving=op["expected_saving"],
        cost=op["cost"],
        profit=op["expected_profit"],
        currency=currency,
    )


def _spend_sentence(s: dict[str, Any], currency: str, horizon_days: int) -> str:
    chosen, best, m = s["scored_with"], s["best_baseline"], s["metrics"]
    sentence = t(
        f"predict.finding.spend.{s['verdict']}",
        horizon_days=horizon_days,
        scorer=_name("spend", chosen),
        mae=m[chosen]["mae"],
        baseline=_name("spend", best),
        baseline_mae=m[best]["mae"],
        difference=_interval(s["comparisons"][best], 2),
        currency=currency,
        model_mae=m["model"]["mae"],
    )
    if s["selector"].chosen_ == "last_window":
        sentence += " " + t("predict.finding.spend_training", baseline=_name("spend", "last_window"))
    return sentence


def _category_sentence(k: dict[str, Any]) -> str:
    m, best = k["metrics"], k["best_baseline"]
    return t(
        f"predict.finding.categories.{k['verdict']}",
        precision=m["model"]["precision"],
        hit_rate=m["model"]["hit_rate"],
        baseline=_name("categories", best),
        baseline_precision=m[best]["precision"],
        difference=_interval(k["comparisons"][best]),
        scorer=_name("categories", k["scored_with"]),
    )


def _row_name(part: str, scorer: str, model: str) -> str:
    """A scorer's row label; the model's names its kind ("model: logistic regression")."""
    if scorer != "model" or not model:
        return _name(part, scorer)
    return t("predict.model_row", scorer=_name(part, scorer), model=t(f"predict.model.{model}"))


def churn_table(result: PredictionResult) -> pd.DataFrame:
    """One row per churn scorer: ROC AUC, PR AUC, Brier score, top-decile lift, and for each
    baseline the model's lead with its 95 % interval; the scorer the predictions use is marked."""
    c = result.churn
    if c is None:
        return pd.DataFrame()
    rows = {}
    for scorer, m in c.metrics.items():
        row = {t(f"predict.column.{k}"): m.get(k) for k in ("roc_auc", "average_precision", "brier", "top_decile_lift")}
        comparison = c.comparisons.get(scorer, {})
        for k in ("roc_auc", "average_precision"):
            row[t(f"predict.column.lead_{k}")] = _interval(comparison[k]) if k in comparison else ""
        row[t("predict.column.used")] = "✓" if scorer == c.scored_with else ""
        rows[_row_name("churn", scorer, c.selector.chosen_["model"] if c.selector else "")] = row
    return pd.DataFrame(rows).T.rename_axis(t("predict.column.scorer"))


def _deciles_shown(result: PredictionResult, customers: int) -> bool:
    """Whether each tenth of the tested customers holds at least the smallest group shown."""
    return deciles_allowed(customers, result.min_group_size)


def lift_table(result: PredictionResult) -> pd.DataFrame:
    """Gains and lift by decile of the churn scorer the predictions use (10 = highest risk first)."""
    c = result.churn
    if c is None or not _deciles_shown(result, len(c.y)):
        return pd.DataFrame()
    g = c.gains[c.scored_with]
    table = pd.DataFrame(
        {
            t("predict.column.customers"): g["customers"].to_numpy(),
            t("predict.column.lapse_rate"): g["positive_rate"].map(_share).to_numpy(),
            t("predict.column.lift"): g["lift"].map(lambda x: f"{x:.1f}").to_numpy(),
            t("predict.column.gains"): g["gains"].map(_share).to_numpy(),
        },
        index=pd.Index(np.arange(1, len(g) + 1), name=t("predict.column.risk_decile")),
    )
    return table


def spend_table(result: PredictionResult, currency: str) -> pd.DataFrame:
    """One row per spend predictor: MAE, RMSE, R², Spearman and the model's MAE minus the baseline's."""
    s = result.spend
    if s is None:
        return pd.DataFrame()
    rows = {}
    for scorer, m in s["metrics"].items():
        row = {t(f"predict.money.{k}", currency=currency): _money(m[k], 2) for k in ("mae", "rmse")}
        row |= {t(f"predict.column.{k}"): m[k] for k in ("r2", "spearman")}
        row[t("predict.column.lead_mae")] = _interval(s["comparisons"][scorer], 2) if scorer in s["comparisons"] else ""
        row[t("predict.column.used")] = "✓" if scorer == s["scored_with"] else ""
        rows[_row_name("spend", scorer, s["selector"].fitted_)] = row
    return pd.DataFrame(rows).T.rename_axis(t("predict.column.scorer"))


def category_table(result: PredictionResult) -> pd.DataFrame:
    """One row per category ranking: precision and recall at 5, hit rate, and the model's lead in precision."""
    k = result.categories
    if k is None:
        return pd.DataFrame()
    rows = {}
    for scorer, m in k["metrics"].items():
        row = {t(f"predict.column.{key}"): _share(m[key]) for key in ("precision", "recall", "hit_rate")}
        row[t("predict.column.lead_precision")] = (
            _interval(k["comparisons"][scorer]) if scorer in k["comparisons"] else ""
        )
        row[t("predict.column.used")] = "✓" if scorer == k["scored_with"] else ""
        rows[_name("categories", scorer)] = row
    return pd.DataFrame(rows).T.rename_axis(t("predict.column.scorer"))


def deciles_table(result: PredictionResult, currency: str) -> pd.DataFrame:
    """Predicted against actual mean spend by decile of the prediction used (1 = highest predicted)."""
    s = result.spend
    if s is None or not _deciles_shown(result, len(s["y"])):
        return pd.DataFrame()
    table = s["deciles"][s["scored_with"]].set_index("decile")
    table = table.assign(
        predicted_mean=table["predicted_mean"].map(lambda x: _money(x, 2)),
        actual_mean=table["actual_mean"].map(lambda x: _money(x, 2)),
        actual_share=table["actual_share"].map(_share),
    )
    names = {
        "customers": t("predict.column.decile_customers"),
        "predicted_mean": t("predict.money.decile_predicted_mean", currency=currency),
        "actual_mean": t("predict.money.decile_actual_mean", currency=currency),
        "actual_share": t("predict.column.decile_actual_share"),
    }
    return table.rename(columns=names).rename_axis(t("predict.column.decile"))


def _band(low: float, high: float, fmt: str) -> str:
    """A band by its edges: ``under 20%``, ``20% to 50%``, ``50% and more``; an infinite edge, or
    a probability edge at 0 or 1, is left open."""
    share = fmt.endswith("%")
    open_low = low == float("-inf") or (share and low <= 0)
    open_high = high == float("inf") or (share and high >= 1)
    lo, hi = format(low, fmt), format(high, fmt)
    if open_low and open_high:
        return t("predict.band.all")
    if open_low:
        return t("predict.band.under", high=hi)
    return t("predict.band.over", low=lo) if open_high else t("predict.band.between", low=lo, high=hi)


def contact_grid_table(result: PredictionResult, currency: str) -> pd.DataFrame:
    """Who to contact: customers, value and revenue at stake by churn-risk band and value band
    (small cells suppressed)."""
    if result.grid is None:
        return pd.DataFrame()
    g = result.grid
    risk = [
        t(f"predict.band.risk.{RISK_BANDS[b - 1]}", edges=_band(lo, hi, ".0%"))
        for b, lo, hi in zip(g["risk_band"], g["risk_low"], g["risk_high"], strict=True)
    ]
    value = [_band(lo, hi, ",.0f") for lo, hi in zip(g["value_low"], g["value_high"], strict=True)]
    columns = {
        "customers": t("predict.column.customers"),
        "value": t("predict.money.value", currency=currency),
        "revenue_at_stake": t("predict.money.revenue_at_stake", currency=currency),
    }
    table = g[list(columns)].assign(value=g["value"].map(_money), revenue_at_stake=g["revenue_at_stake"].map(_money))
    table = table.rename(columns=columns)
    table.index = pd.MultiIndex.from_arrays(
        [risk, value], names=[t("predict.column.risk_band"), t("predict.money.value_band", currency=currency)]
    )
    return table


def feature_name(column: str) -> str:
    """A feature column in words (the data dictionary's meaning, or the prediction texts)."""
    if column.startswith("category_share_") and column != "category_share_other":
        return t("predict.category_share_feature", category=column.removeprefix("category_share_").replace("_", " "))
    if column.startswith("channel_share_"):
        return t("features.meaning.channel_share", channel=column.removeprefix("channel_share_"))
    return t(f"predict.feature.{column}")


def importance_sentence(result: PredictionResult, top: int = 3, floor: float = 0.002) -> str | None:
    """The model's most telling features in words: how much its ROC AUC falls on the test window
    when each is shuffled (permutation importance); None without a fitted model."""
    c = result.churn
    if c is None or c.importance is None:
        return None
    table = c.importance[c.importance["drop"] > floor].head(top)
    if table.empty:
        return t("predict.importance_none", floor=floor)
    parts = [
        t("predict.importance_part", feature=feature_name(f), drop=d)
        for f, d in zip(table["feature"], table["drop"], strict=True)
    ]
    return t(
        "predict.importance",
        parts="; ".join(parts),
        model=t(f"predict.model.{c.selector.chosen_['model']}"),
        others=len(c.importance) - len(table),
        floor=floor,
    )


def gains_tables(result: PredictionResult) -> dict[str, pd.DataFrame]:
    """The churn gains table of each scorer by its name (for :func:`cp_toolkit.plots.gains_chart`)."""
    c = result.churn
    if c is None or not _deciles_shown(result, len(c.y)):
        return {}
    return {_name("churn", k): g for k, g in c.gains.items()}


def reliability_tables(result: PredictionResult) -> dict[str, pd.DataFrame]:
    """The reliability table of each churn scorer that gives probabilities (the recency rule does not)."""
    c = result.churn
    if c is None or not _deciles_shown(result, len(c.y)):
        return {}
    return {_name("churn", k): r for k, r in c.reliability.items()}


def profit_inputs(result: PredictionResult) -> tuple[pd.DataFrame | None, int, int | None]:
    """The profit curve, the best number to contact and the most allowed (for
    :func:`cp_toolkit.plots.profit_curve`); no curve without churn probabilities."""
    if result.operating is None:
        return None, 0, None
    return result.curve, result.operating["best_n"], result.operating["limit"]
