"""Stage 04: churn (no purchase in the next ``horizon_days``) with an honest out-of-time test.

Time split, with ``h = horizon_days`` and the run's last day ``as_of``::

    train: features up to  as_of - 2h, label from (as_of - 2h, as_of - h]
    test:  features up to  as_of - h,  label from (as_of - h,  as_of]
    score: features up to  as_of       (the model refitted on the test window's labels)

Features only ever use orders up to their cutoff; the test window lies wholly after the
training labels, so the reported metrics are out-of-time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score, roc_curve

from .config import DEFAULTS
from .errors import DataError
from .features import BEHAVIOUR, customer_features
from .run.artifacts import RunFolder
from .run.pipeline import stage, transactions_up_to
from .text import t

__all__ = ["churn_frame", "metrics_table", "roc_by_scorer", "skipped_result", "ChurnModel", "ChurnResult", "run_stage"]

FEATURES = [*BEHAVIOUR, "orders_last_30d", "orders_last_90d", "spend_last_90d"]


def churn_frame(orders: pd.DataFrame, cutoff: pd.Timestamp, horizon_days: int) -> pd.DataFrame:
    """Features as of ``cutoff`` and the churn label over the next ``horizon_days``.

    Parameters
    ----------
    orders : DataFrame
        Basket-level orders (:func:`cp_toolkit.features.orders_from_lines`).
    cutoff : Timestamp
        Last day whose orders the features may use.
    horizon_days : int
        Length of the label window after ``cutoff``.

    Returns
    -------
    DataFrame
        One row per customer with an order up to ``cutoff``: :data:`FEATURES` and
        ``churn`` (1 = no order in the window; missing when the window passes the data).
    """
    end = pd.Timestamp(cutoff).normalize() + pd.Timedelta(days=1)
    df = customer_features(orders, cutoff)
    past = orders[orders["ts"] < end]
    for days in (30, 90):
        recent = past[past["ts"] >= end - pd.Timedelta(days=days)].groupby("customer_id", observed=True)
        df[f"orders_last_{days}d"] = recent.size().reindex(df.index, fill_value=0)
    df["spend_last_90d"] = recent["amount"].sum().reindex(df.index, fill_value=0.0)
    window = orders[(orders["ts"] >= end) & (orders["ts"] < end + pd.Timedelta(days=horizon_days))]
    df["churn"] = (~df.index.isin(window["customer_id"].unique())).astype("int64")
    return df


class ChurnModel:
    """Gradient-boosted churn classifier (scikit-learn style).

    Parameters
    ----------
    seed : int
        Random state of the booster.
    """

    def __init__(self, seed: int = 42) -> None:
        self.seed = seed

    def fit(self, frame: pd.DataFrame) -> ChurnModel:
        """Fit on a :func:`churn_frame`; returns ``self``."""
        _require_both_classes(frame, "training")
        self.model_ = HistGradientBoostingClassifier(
            max_iter=200, learning_rate=0.05, max_leaf_nodes=15, l2_regularization=1.0, random_state=self.seed
        )
        self.model_.fit(frame[FEATURES], frame["churn"])
        return self

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Probability of churn for each row of ``frame``."""
        return self.model_.predict_proba(frame[FEATURES])[:, 1]


def _metrics(y: pd.Series, score: np.ndarray) -> dict[str, float]:
    """ROC AUC, average precision and (for probabilities) the Brier score."""
    out = {"roc_auc": float(roc_auc_score(y, score)), "average_precision": float(average_precision_score(y, score))}
    if np.all((score >= 0) & (score <= 1)):
        out["brier"] = float(brier_score_loss(y, score))
    return out


def metrics_table(metrics: dict[str, Any]) -> pd.DataFrame:
    """Out-of-time metrics, one row per scorer (model and baseline), labelled with the texts
    ``predict.metrics.*`` (the ids of ``prediction_metrics.json`` stay in the artifact)."""
    table = pd.DataFrame({t(f"predict.metrics.row.{k}"): v for k, v in metrics.items() if k != "split"}).T
    table = table.rename(columns={c: t(f"predict.metrics.column.{c}") for c in table.columns})
    return table.rename_axis(t("predict.metrics.scorer"))


def _roc_frame(y: pd.Series, score: np.ndarray) -> pd.DataFrame:
    """False and true positive rates of the ROC curve."""
    fpr, tpr, _ = roc_curve(y, score)
    return pd.DataFrame({"fpr": fpr, "tpr": tpr})


@dataclass
class ChurnResult:
    """Out-of-time evaluation and per-customer scores."""

    metrics: dict[str, Any]
    predictions: pd.DataFrame
    roc: dict[str, pd.DataFrame] = field(default_factory=dict)
    test: pd.DataFrame | None = None
    #: Part of the report -> why it is not shown (what the data lack); empty when all is shown.
    skipped: dict[str, str] = field(default_factory=dict)


def roc_by_scorer(result: ChurnResult) -> tuple[dict[str, pd.DataFrame], dict[str, float]]:
    """The ROC curves and ROC AUCs of each scorer, keyed by its text (``predict.metrics.row.*``),
    as :func:`cp_toolkit.plots.roc_curves` takes them."""
    names = {k: t(f"predict.metrics.row.{k}") for k in result.roc}
    curves = {names[k]: curve for k, curve in result.roc.items()}
    return curves, {names[k]: result.metrics[k]["roc_auc"] for k in result.roc}


def _require_both_classes(frame: pd.DataFrame, window: str) -> None:
    """A clear :class:`~cp_toolkit.errors.DataError` when a window has no customers or only one label."""
    if frame.empty or frame["churn"].nunique() < 2:
        found = "no customers" if frame.empty else f"only churn = {int(frame['churn'].iloc[0])}"
        raise DataError(
            f"the {window} window has {found}; churn needs customers who do and who do not buy again: "
            "choose a shorter horizon_days or an as_of with more history before it"
        )


def _require_recent_orders(orders: pd.DataFrame, last: pd.Timestamp, h: pd.Timedelta) -> None:
    """Refuse an ``as_of`` after the data: with no order in the test window (the last ``h`` days),
    every customer churns there and nothing can be learnt; the message says by how much ``as_of``
    lies past the last transaction."""
    latest = orders["ts"].max().normalize()
    if latest > last - h:
        return
    days = (last - latest).days
    window = "the training window nor the test window" if latest <= last - 2 * h else "the test window"
    raise DataError(
        f"no customer ordered in {window} (training labels {(last - 2 * h + pd.Timedelta(days=1)).date()} to "
        f"{(last - h).date()}, test labels {(last - h + pd.Timedelta(days=1)).date()} to {last.date()}): as_of "
        f"{last.date()} lies {days:,} days ({days / 365.25:.1f} years) after the last transaction ({latest.date()}); "
        f"set as_of to {latest.date()} or a day shortly after it"
    )


def skipped_result(as_of: str, horizon_days: int, reason: str) -> ChurnResult:
    """The result of a stage that could not evaluate churn: no scores, the reason in ``skipped``."""
    predictions = pd.DataFrame(
        {
            "customer_id": pd.Series(dtype="string"),
            "churn_probability": pd.Series(dtype="float64"),
            "churn_risk": pd.Series(dtype="string"),
        }
    )
    split = {"as_of": str(pd.Timestamp(as_of).date()), "horizon_days": horizon_days, "not_evaluated": reason}
    return ChurnResult({"split": split}, predictions, skipped={"churn": t("predict.not_available", reason=reason)})


def evaluate(orders: pd.DataFrame, as_of: str, horizon_days: int, seed: int) -> ChurnResult:
    """Train on the earlier window, test out of time, then score every customer as of ``as_of``."""
    h = pd.Timedelta(days=horizon_days)
    last = pd.Timestamp(as_of).normalize()
    if orders.empty:
        raise DataError("there are no orders up to as_of")
    first = orders["ts"].min().normalize()
    _require_recent_orders(orders, last, h)
    if first > last - 2 * h:
        raise DataError(
            f"churn with horizon_days={horizon_days} needs orders from before {(last - 2 * h).date()} "
            f"(training cutoff), but the data start on {first.date()}: use a shorter horizon or a later as_of"
        )
    train, test = churn_frame(orders, last - 2 * h, horizon_days), churn_frame(orders, last - h, horizon_days)
    _require_both_classes(test, "test")
    model = ChurnModel(seed).fit(train)
    scores = {"model": model.predict_proba(test), "recency_baseline": test["recency_days"].to_numpy()}
    metrics: dict[str, Any] = {name: _metrics(test["churn"], s) for name, s in scores.items()}
    metrics["split"] = {
        "train_cutoff": str((last - 2 * h).date()),
        "test_cutoff": str((last - h).date()),
        "horizon_days": horizon_days,
        "n_train": len(train),
        "n_test": len(test),
        "churn_rate_train": float(train["churn"].mean()),
        "churn_rate_test": float(test["churn"].mean()),
    }
    roc = {name: _roc_frame(test["churn"], s) for name, s in scores.items()}
    current = churn_frame(orders, last, horizon_days)
    final = ChurnModel(seed).fit(test)
    prob = final.predict_proba(current)
    predictions = pd.DataFrame(
        {
            "customer_id": current.index,
            "churn_probability": prob,
            "churn_risk": pd.cut(prob, [-0.01, 0.2, 0.5, 1.0], labels=["low", "medium", "high"]).astype("string"),
        }
    )
    return ChurnResult(metrics, predictions, roc, test.assign(score=scores["model"]))


@stage("04_prediction")
def run_stage(
    run: RunFolder,
    as_of: str = DEFAULTS["as_of"],
    horizon_days: int = DEFAULTS["horizon_days"],
    seed: int = DEFAULTS["seed"],
) -> ChurnResult:
    """Stage 04: write ``predictions.parquet`` and ``prediction_metrics.json``. When the data cannot
    support a churn model (too short a history, an ``as_of`` long after the data, one label only),
    both are written empty of scores, and the report and the stage notes say why."""
    try:
        result = evaluate(transactions_up_to(run, as_of, "orders"), as_of, horizon_days, seed)
    except DataError as err:
        result = skipped_result(as_of, horizon_days, str(err))
    run.save("predictions", result.predictions)
    run.save("prediction_metrics", result.metrics)
    m = result.metrics
    if result.skipped:
        run.record_stage("04_prediction", t("predict.headline_not_evaluated"), notes=list(result.skipped.values()))
        return result
    run.record_stage(
        "04_prediction",
        t(
            "predict.headline",
            horizon_days=horizon_days,
            auc=m["model"]["roc_auc"],
            baseline_auc=m["recency_baseline"]["roc_auc"],
            customers=len(result.predictions),
        ),
    )
    return result
