"""What the 05 report says first: what the customers will be worth, how concentrated, how sure."""

from __future__ import annotations

import numpy as np

from ..display import money
from ..privacy import deciles_allowed
from ..run.artifacts import RunFolder
from ..run.history import since_previous
from ..text import t
from .stage import CLVResult, kpis

__all__ = ["findings", "fit_settings"]


def _value_sentence(result: CLVResult, currency: str, run: RunFolder | None) -> str:
    card = result.model_card["clv"]
    since = since_previous(run, kpis(result.table), "mean_clv")
    return t(
        "clv.finding.value",
        months=card["horizon_months"],
        total=money(card["total"], currency),
        mean=money(card["mean"], currency),
        since=since,
    )


def _concentration_sentence(result: CLVResult) -> str | None:
    clv = np.sort(result.table["clv"].dropna().to_numpy())[::-1]
    if not deciles_allowed(len(clv), result.min_group_size) or clv.sum() <= 0:  # the top tenth is a group
        return None
    top = clv[: max(1, len(clv) // 10)].sum() / clv.sum()
    return t("clv.finding.concentration", share=top)


def _holdout_sentence(result: CLVResult) -> str | None:
    hold = result.model_card.get("holdout") or {}
    if "predicted_total" not in hold:
        return None
    hit = hold["diagnosis"].get("actual_in_interval")
    return t(
        "clv.finding.holdout_hit" if hit else "clv.finding.holdout_miss",
        model=result.model_card["purchase_model"],
        predicted=hold["predicted_total"],
        actual=hold["actual_total"],
        error=hold["aggregate_error_pct"] / 100,
    )


def _alive_sentence(result: CLVResult) -> str | None:
    alive = result.table["p_alive"].dropna() if "p_alive" in result.table else []
    if not len(alive):
        return None
    return t("clv.finding.alive", share=float((alive < 0.5).mean()))


def findings(result: CLVResult, currency: str, run: RunFolder | None = None) -> list[str]:
    """The sentences the 05 report opens with: the value of the base, how concentrated it is,
    whether the model forecast a held-out period, how many customers are probably gone; then
    the model's own notes (a fallback, what the data cannot identify)."""
    if result.model_card.get("skipped"):
        return list(result.skipped.values())
    sentences = [
        _value_sentence(result, currency, run),
        _concentration_sentence(result),
        _holdout_sentence(result),
        _alive_sentence(result),
    ]
    return [s for s in sentences if s]


def fit_settings(result: CLVResult) -> dict[str, object]:
    """Log-likelihood, time unit and the fit settings of both models as one flat mapping
    (``purchases_penalizer``, ``spend_rows`` ...) for :func:`cp_toolkit.display.key_figures`."""
    figures = dict(result.fit_figures)
    fit = figures.pop("fit", {}) or {}
    for model, settings in fit.items():
        figures.update({f"{model}_{name}": value for name, value in (settings or {}).items()})
    return figures
