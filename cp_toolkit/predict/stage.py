"""Stage 04: churn, next-period spend and next categories from one time split, each chosen on the
training windows only, set beside honest baselines on the test window, then scored as of ``as_of``.

With ``h = horizon_days`` (:mod:`cp_toolkit.predict.windows`)::

    history windows: cutoffs every min(h, 30) days up to as_of - 2h  (model choice, time-ordered CV)
    test window:     features up to as_of - h, outcomes in (as_of - h, as_of]   (out of time)
    scores:          features up to as_of    (the chosen scorer refitted with the test window)

A target whose data cannot support it (one outcome only, fewer than :data:`MIN_CUSTOMERS`
customers, a horizon longer than the history, a single category) is left out with its reason;
the others are still written, and later stages go on.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.inspection import permutation_importance
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from ..config import DEFAULTS
from ..errors import CPToolkitWarning, DataError
from ..run.artifacts import RunFolder
from ..run.pipeline import ensure, stage, transactions_up_to
from ..text import t
from . import categories as C
from .churn import ChurnSelector, bgnbd_no_purchase
from .evaluation import classification_metrics, gains_table, paired_bootstrap, reliability_table, top_decile_lift
from .operating import (
    RISK_BANDS,
    RISK_EDGES,
    assign_bands,
    best_contact_count,
    contact_grid,
    contact_limit,
    contact_list,
    profit_curve,
)
from .spend import SpendSelector, clv_expected_spend, decile_table, spend_metrics
from .windows import (
    ProfileSpec,
    TimeSplit,
    features_at,
    history_cutoffs,
    labelled_windows,
    last_window_column,
    profile_spec,
    targets,
    time_split,
)

__all__ = [
    "CHURN_BASELINES",
    "MIN_CUSTOMERS",
    "RISK_EDGES",
    "SPEND_BASELINES",
    "ChurnEvaluation",
    "PredictionResult",
    "evaluate",
    "run_stage",
]

#: Fewest customers a window needs for a model to be chosen and tested on it.
MIN_CUSTOMERS = 50
#: Most history windows used to choose the models (the latest ones).
MAX_WINDOWS = 6
#: Validation windows of the time-ordered cross-validation.
FOLDS = 3
#: Most rows of the stacked history windows the models are chosen and fitted on (a large base is
#: sampled by customer; the test window and the scores always cover every customer).
MAX_HISTORY_ROWS = 40_000
#: Value bands of the contact grid: thirds of the customers' value.
VALUE_BANDS = ("low", "medium", "high")
CHURN_BASELINES = ("recency", "bgnbd")
SPEND_BASELINES = ("last_window", "bgnbd_gamma_gamma")
CATEGORY_BASELINES = ("popular", "own")
#: Resamples of the paired bootstraps.
RESAMPLES = 1000
TOP_CATEGORIES = 5


@dataclass
class Data:
    """What the stage reads: orders, lines (with ``category`` where products exist), products."""

    orders: pd.DataFrame
    lines: pd.DataFrame
    products: pd.DataFrame | None


@dataclass
class Windows:
    """Stacked history windows, the test window and the scoring frame, with the same columns."""

    split: TimeSplit
    X: pd.DataFrame
    Y: pd.DataFrame
    X_test: pd.DataFrame
    Y_test: pd.DataFrame
    X_score: pd.DataFrame


@dataclass
class ChurnEvaluation:
    """Churn on the test window: each scorer's scores and metrics, the comparisons, the choice."""

    y: pd.Series
    scores: dict[str, np.ndarray]
    metrics: dict[str, dict[str, float]]
    comparisons: dict[str, dict[str, dict[str, Any]]]
    best_baseline: str
    scored_with: str
    verdict: str
    selector: ChurnSelector | None = None
    importance: pd.DataFrame | None = None
    model_note: str | None = None
    #: Gains by decile of every scorer, and reliability of those that give probabilities.
    gains: dict[str, pd.DataFrame] = field(default_factory=dict)
    reliability: dict[str, pd.DataFrame] = field(default_factory=dict)


@dataclass
class PredictionResult:
    """Everything stage 04 computed; the report reads it, the artifacts are written from it."""

    metrics: dict[str, Any]
    predictions: pd.DataFrame
    recommendations: pd.DataFrame | None = None
    split: TimeSplit | None = None
    churn: ChurnEvaluation | None = None
    spend: dict[str, Any] | None = None
    categories: dict[str, Any] | None = None
    curve: pd.DataFrame | None = None
    operating: dict[str, Any] | None = None
    grid: pd.DataFrame | None = None
    #: Part of the report -> why it is not shown (what the data lack); empty when all is shown.
    skipped: dict[str, str] = field(default_factory=dict)
    #: Parts the data have nothing for at all (no products): said in the report, not on the console.
    absent: set[str] = field(default_factory=set)
    #: The toolkit's notes on fitting the baselines (kept in ``prediction_metrics.json``).
    fit_notes: list[str] = field(default_factory=list)
    #: The smallest group of customers the report may show (its decile tables need ten such groups).
    min_group_size: int = 1


def read_data(run: RunFolder, as_of: str) -> Data:
    """Orders and lines up to ``as_of``; lines carry the product ``category`` when products have one."""
    orders = transactions_up_to(run, as_of, "orders")
    lines = transactions_up_to(run, as_of)
    products = ensure(run, "products")
    if products is not None and not products.empty and "category" in products and "product_id" in lines:
        lines = lines.merge(products[["product_id", "category"]], on="product_id", how="left")
        lines["category"] = lines["category"].astype("string").fillna(C.UNKNOWN)
    else:
        products = None
    return Data(orders, lines, products)


def build_windows(data: Data, as_of: str, horizon_days: int) -> Windows:
    """The time split and the features and targets of its windows (profile columns included).

    Raises
    ------
    DataError
        A horizon longer than the history, or fewer than :data:`MIN_CUSTOMERS` customers in the
        test window or in every history window.
    """
    split = time_split(data.orders, as_of, horizon_days)
    spec: ProfileSpec = profile_spec(data.lines, split.train_cutoff)
    step = history_step(horizon_days)
    first = data.orders["ts"].min()
    cutoffs = history_cutoffs(split, step, first, min_history_days=step)[-MAX_WINDOWS:]
    X_test = features_at(data.orders, split.test_cutoff, data.lines, spec, horizon_days)
    if len(X_test) < MIN_CUSTOMERS:
        raise DataError(
            t("predict.thin.test", customers=len(X_test), minimum=MIN_CUSTOMERS, cutoff=split.test_cutoff.date())
        )
    X, Y = labelled_windows(data.orders, cutoffs, horizon_days, data.lines, spec)
    sizes = X.groupby(level="cutoff").size()
    large = sizes.index[sizes >= MIN_CUSTOMERS]
    if large.empty:
        raise DataError(
            t(
                "predict.thin.history",
                customers=int(sizes.max()),
                minimum=MIN_CUSTOMERS,
                cutoff=split.train_cutoff.date(),
            )
        )
    keep = X.index.get_level_values("cutoff").isin(large) & _sampled(X, data.orders, MAX_HISTORY_ROWS)
    Y_test = targets(data.orders, split.test_cutoff, horizon_days, X_test.index)
    X_score = features_at(data.orders, split.score_cutoff, data.lines, spec, horizon_days)
    columns = X.columns[X[keep].notna().any()]  # a column without any value (e.g. no other category) says nothing
    return Windows(split, X.loc[keep, columns], Y[keep], X_test[columns], Y_test, X_score[columns])


def _sampled(X: pd.DataFrame, orders: pd.DataFrame, rows: int) -> np.ndarray:
    """Which rows of the stacked history windows to fit on: all, or for a large base an even share
    of its customers (every k-th by first order time, so the sample spans old and new customers
    and does not depend on the pseudonyms) whose windows hold about ``rows`` rows."""
    if len(X) <= rows:
        return np.ones(len(X), dtype=bool)
    first = orders.groupby("customer_id", observed=True)["ts"].min()
    ordered = first.reset_index().sort_values(["ts", "customer_id"], kind="stable")["customer_id"]
    every = int(np.ceil(len(X) / rows))
    return X.index.get_level_values("customer_id").isin(ordered.iloc[::every])


def history_step(horizon_days: int) -> int:
    """Days between two history windows: 30 (or the horizon, when shorter), widened for long
    horizons so that the :data:`MAX_WINDOWS` latest windows still give :data:`FOLDS` validation
    windows, each a horizon after a window to fit on."""
    return max(min(horizon_days, 30), -(-horizon_days // (MAX_WINDOWS - FOLDS)))


def _with_cutoff(X: pd.DataFrame, cutoff: pd.Timestamp) -> pd.DataFrame:
    """A one-window frame indexed by (``cutoff``, ``customer_id``), as the stacked windows are."""
    return pd.concat({pd.Timestamp(cutoff): X}, names=["cutoff"])


def _calibrated_recency(recency: pd.Series, y: pd.Series, score: pd.Series) -> np.ndarray:
    """The recency rule as a probability: a logistic fit of ``y`` on log recency, applied to ``score``."""
    fit = LogisticRegression(C=1e6).fit(np.log1p(recency.to_numpy())[:, None], y.to_numpy())
    return fit.predict_proba(np.log1p(score.to_numpy())[:, None])[:, 1]


def _churn_scorer_metrics(y: pd.Series, score: np.ndarray, probability: bool) -> dict[str, float]:
    """ROC AUC, PR AUC, top-decile lift and, for a probability, the Brier score."""
    out = classification_metrics(y, score, probability)
    out["top_decile_lift"] = top_decile_lift(y, score)
    return out


def _comparison(y: np.ndarray, a: np.ndarray, b: np.ndarray, seed: int) -> dict[str, dict[str, Any]]:
    """Paired bootstrap of the difference in ROC AUC and PR AUC (``a`` minus ``b``)."""
    return {m: paired_bootstrap(y, a, b, m, RESAMPLES, seed) for m in ("roc_auc", "average_precision")}


def verdict(interval: dict[str, Any], higher_is_better: bool = True) -> str:
    """``better``, ``worse`` or ``tie`` for a bootstrap interval of a difference (model minus baseline)."""
    low, high = (interval["low"], interval["high"]) if higher_is_better else (-interval["high"], -interval["low"])
    if low > 0:
        return "better"
    return "worse" if high < 0 else "tie"


def _overall(verdicts: list[str]) -> str:
    """One verdict from several metrics: better on one and worse on none is ``better``; worse on one
    and better on another is ``mixed``; worse on one and better on none is ``worse``; else ``tie``."""
    if "worse" in verdicts:
        return "worse" if "better" not in verdicts else "mixed"
    return "better" if "better" in verdicts else "tie"


def _baseline(fit: Callable[[], pd.Series], notes: list[str]) -> np.ndarray | None:
    """A BTYD baseline's values, or None (the reason in ``notes``) when the model cannot be fitted
    or gives values that are not finite: a baseline that fails leaves the others standing."""
    try:
        values = fit().to_numpy(dtype=float)
    except (DataError, ValueError, ArithmeticError, np.linalg.LinAlgError) as err:
        notes.append(t("predict.baseline_failed", reason=str(err)))
        return None
    if not np.isfinite(values).all():
        notes.append(t("predict.baseline_failed", reason=t("predict.not_finite")))
        return None
    return values


def _scored_with(overall: str, ahead: bool, best: str) -> str:
    """The scorer of the predictions: the model when it beats the best baseline beyond the noise,
    or ties it (or wins one measure and loses the other) and is ahead on the test window; else the baseline."""
    return "model" if overall == "better" or (overall in ("tie", "mixed") and ahead) else best


def evaluate_churn(data: Data, w: Windows, seed: int, notes: list[str]) -> tuple[ChurnEvaluation, pd.Series]:
    """Choose the churn model on the history windows, test it and the baselines, and score ``as_of``.

    Returns
    -------
    evaluation, probabilities
        The test-window evaluation, and each scored customer's probability of no order in the
        next ``h`` days from the scorer the evaluation chose (the model, or the better baseline).
    """
    h = w.split.horizon_days
    y = w.Y_test["churn"]
    if y.nunique() < 2:
        raise DataError(t("predict.thin.one_outcome", share=float(y.mean()), cutoff=w.split.test_cutoff.date()))
    scores = {"recency": w.X_test["recency_days"].to_numpy(dtype=float)}
    bgnbd = _baseline(lambda: bgnbd_no_purchase(data.orders, w.split.test_cutoff, h).reindex(y.index), notes)
    if bgnbd is not None:  # else BG/NBD cannot be fitted on these histories: the recency rule is the baseline
        scores["bgnbd"] = bgnbd
    selector, note = None, None
    try:
        selector = ChurnSelector(horizon_days=h, n_folds=FOLDS, seed=seed).fit(w.X, w.Y["churn"])
        scores = {"model": selector.predict_proba(w.X_test)[:, 1], **scores}
    except DataError as err:
        note = str(err)
    metrics = {k: _churn_scorer_metrics(y, s, k != "recency") for k, s in scores.items()}
    baselines = [b for b in CHURN_BASELINES if b in scores]
    best = max(baselines, key=lambda k: (metrics[k]["roc_auc"], metrics[k]["average_precision"]))
    comparisons, overall, scored_with = {}, "no_model", best
    if selector is not None:
        comparisons = {b: _comparison(y.to_numpy(), scores["model"], scores[b], seed) for b in baselines}
        overall = _overall([verdict(v) for v in comparisons[best].values()])
        scored_with = _scored_with(overall, metrics["model"]["roc_auc"] >= metrics[best]["roc_auc"], best)
    evaluation = ChurnEvaluation(
        y=y,
        scores=scores,
        metrics=metrics,
        comparisons=comparisons,
        best_baseline=best,
        scored_with=scored_with,
        verdict=overall,
        selector=selector,
        importance=None if selector is None else importance(selector, w.X_test, y, seed),
        model_note=note,
        gains={k: gains_table(y, sc) for k, sc in scores.items()},
        reliability={k: reliability_table(y, sc) for k, sc in scores.items() if k != "recency"},
    )
    return evaluation, score_churn(data, w, evaluation, notes)


def score_churn(data: Data, w: Windows, evaluation: ChurnEvaluation, notes: list[str]) -> pd.Series:
    """Probability of no order in the ``h`` days after ``as_of`` for every customer, from the chosen scorer.

    The model is refitted (a copy: the evaluated one is kept) on the history windows and the test
    window, the choice kept and the calibration redone on the test window; BG/NBD is refitted up
    to ``as_of`` (when that fails, the recency rule scores); the recency rule is mapped to a
    probability on the test window.
    """
    h, index = w.split.horizon_days, w.X_score.index
    if evaluation.scored_with == "model":
        X = pd.concat([w.X, _with_cutoff(w.X_test, w.split.test_cutoff)])
        y = pd.concat([w.Y["churn"], w.Y_test["churn"]]).to_numpy()
        p = copy.deepcopy(evaluation.selector).refit(X, y).predict_proba(w.X_score)[:, 1]
        return pd.Series(p, index=index, name="churn_probability")
    if evaluation.scored_with == "bgnbd":
        p = _baseline(lambda: bgnbd_no_purchase(data.orders, w.split.score_cutoff, h).reindex(index), notes)
        if p is not None:
            return pd.Series(p, index=index, name="churn_probability")
    p = _calibrated_recency(w.X_test["recency_days"], evaluation.y, w.X_score["recency_days"])
    return pd.Series(p, index=index, name="churn_probability")


def importance(selector: ChurnSelector, X: pd.DataFrame, y: pd.Series, seed: int) -> pd.DataFrame:
    """Permutation importance on the test window: how much ROC AUC drops when a column is shuffled.

    Returns
    -------
    DataFrame
        ``feature``, ``drop`` (mean fall in ROC AUC) and ``std`` over the repeats, largest first.
    """
    with threadpool_limits(limits=1):
        result = permutation_importance(selector, X, y, scoring="roc_auc", n_repeats=5, random_state=seed)
    table = pd.DataFrame({"feature": X.columns, "drop": result.importances_mean, "std": result.importances_std})
    return table.sort_values("drop", ascending=False, kind="stable").reset_index(drop=True)


def evaluate_spend(data: Data, w: Windows, seed: int, notes: list[str]) -> tuple[dict[str, Any], pd.Series]:
    """Choose the spend model on the history windows (against the last window's spend), test it and
    the baselines, and predict each customer's revenue in the ``h`` days after ``as_of``."""
    h, split, last = w.split.horizon_days, w.split, last_window_column(w.split.horizon_days)
    cutoffs = w.X.index.get_level_values("cutoff").to_numpy()
    selector = SpendSelector(h, seed=seed, baseline_column=last, n_folds=FOLDS).fit(w.X, w.Y["next_spend"], cutoffs)
    y = w.Y_test["next_spend"].to_numpy()
    predictions = {
        "model": selector.predict_model(w.X_test),
        "last_window": np.clip(w.X_test[last].to_numpy(dtype=float), 0, None),
    }
    clv = _baseline(lambda: clv_expected_spend(data.orders, split.test_cutoff, h, w.X_test.index), notes)
    if clv is not None:
        predictions["bgnbd_gamma_gamma"] = clv
    metrics = {k: spend_metrics(y, p) for k, p in predictions.items()}
    baselines = [b for b in SPEND_BASELINES if b in predictions]
    best = min(baselines, key=lambda b: metrics[b]["mae"])
    model = predictions["model"]
    comparisons = {b: paired_bootstrap(y, model, predictions[b], "mae", RESAMPLES, seed) for b in baselines}
    overall = verdict(comparisons[best], higher_is_better=False)
    scored_with = _scored_with(overall, metrics["model"]["mae"] <= metrics[best]["mae"], best)
    result = {
        "y": y,
        "predictions": predictions,
        "metrics": metrics,
        "comparisons": comparisons,
        "best_baseline": best,
        "verdict": overall,
        "scored_with": scored_with,
        "selector": selector,
        "deciles": {k: decile_table(y, p) for k, p in predictions.items()},
    }
    return result, score_spend(data, w, selector, scored_with, notes)


def score_spend(data: Data, w: Windows, selector: SpendSelector, scored_with: str, notes: list[str]) -> pd.Series:
    """Expected revenue in the ``h`` days after ``as_of`` from the chosen predictor: a fitted model
    refitted (a copy) with the test window's outcomes, BG/NBD x Gamma-Gamma refitted up to
    ``as_of`` (when that fails, the last window's spend), or the last window's spend."""
    h, index = w.split.horizon_days, w.X_score.index
    value = None
    if scored_with == "model":
        X = pd.concat([w.X, _with_cutoff(w.X_test, w.split.test_cutoff)])
        y = pd.concat([w.Y["next_spend"], w.Y_test["next_spend"]]).to_numpy()
        value = copy.deepcopy(selector).refit(X, y).predict_model(w.X_score)
    elif scored_with == "bgnbd_gamma_gamma":
        value = _baseline(lambda: clv_expected_spend(data.orders, w.split.score_cutoff, h, index), notes)
    if value is None:
        value = w.X_score[last_window_column(h)].to_numpy(dtype=float)
    return pd.Series(np.clip(value, 0, None), index=index, name="expected_spend")


def _rankings(history: pd.DataFrame, settings: tuple[float, float]) -> dict[str, Callable[[], pd.DataFrame]]:
    """The three category rankers on one history: the recommender and the two baselines."""
    return {
        "model": lambda: C.CategoryRecommender(*settings).fit(history).top(TOP_CATEGORIES),
        "popular": lambda: C.popular_ranking(history, TOP_CATEGORIES),
        "own": lambda: C.own_ranking(history, TOP_CATEGORIES),
    }


def _with_popular_fill(top: pd.DataFrame, history: pd.DataFrame, customers: pd.Index) -> pd.DataFrame:
    """``top`` and, for each of ``customers`` without a known-category purchase in ``history``, the
    most popular categories (their ``score`` missing: the rankers' scores are in other units)."""
    popular = C.popular_ranking(history, TOP_CATEGORIES).drop_duplicates("rank")
    missing = customers.difference(pd.Index(top["customer_id"].unique()))
    fill = popular.loc[np.tile(popular.index, len(missing))].assign(
        customer_id=np.repeat(missing.to_numpy(), len(popular)), score=np.nan
    )
    out = pd.concat([top, fill], ignore_index=True).sort_values(["customer_id", "rank"], kind="stable")
    return C.recommendation_table(out.reset_index(drop=True))


def evaluate_categories(
    data: Data, split: TimeSplit, seed: int, customers: pd.Index
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Choose the recommender's settings on the training cutoff, test it against the popular and own
    categories, and rank the next categories of each of ``customers`` as of ``as_of``.

    Every ranker sees the same number of blocks of ``h`` days before its cutoff (as many as the
    training cutoff has, at most three). Customers without a known-category purchase in the blocks
    before ``as_of`` get the most popular categories.

    Raises
    ------
    DataError
        Without products, or with fewer than two known categories.
    """
    if data.products is None:
        raise DataError(t("predict.thin.no_products"))
    known = data.lines.loc[data.lines["category"] != C.UNKNOWN, "category"].nunique()
    if known < 2:
        raise DataError(t("predict.thin.one_category", categories=known))
    tx, products, h = data.lines.drop(columns="category"), data.products, split.horizon_days
    blocks = max(1, min(3, (split.train_cutoff - data.orders["ts"].min().normalize()).days // h))
    settings, grid = C.select_recommender(
        C.category_blocks(tx, products, split.train_cutoff, h, blocks),
        C.next_categories(tx, products, split.train_cutoff, h),
    )
    history = C.category_blocks(tx, products, split.test_cutoff, h, blocks)
    actual = C.next_categories(tx, products, split.test_cutoff, h)
    rankings = {k: rank() for k, rank in _rankings(history, settings).items()}
    metrics = {k: C.ranking_metrics(r, actual, TOP_CATEGORIES) for k, r in rankings.items()}
    per_customer = {k: C.customer_precision(r, actual, TOP_CATEGORIES) for k, r in rankings.items()}
    comparisons = {
        b: paired_bootstrap(
            np.zeros(len(per_customer[b])), per_customer["model"], per_customer[b], "mean", RESAMPLES, seed
        )
        for b in CATEGORY_BASELINES
    }
    best = max(CATEGORY_BASELINES, key=lambda b: metrics[b]["precision"])
    overall = verdict(comparisons[best])
    scored_with = _scored_with(overall, metrics["model"]["precision"] >= metrics[best]["precision"], best)
    final_history = C.category_blocks(tx, products, split.score_cutoff, h, blocks)
    recommendations = _with_popular_fill(_rankings(final_history, settings)[scored_with](), final_history, customers)
    result = {
        "settings": {"prior_strength": settings[0], "half_life": settings[1]},
        "grid": grid,
        "metrics": metrics,
        "comparisons": comparisons,
        "best_baseline": best,
        "verdict": overall,
        "scored_with": scored_with,
        "blocks": blocks,
    }
    return result, recommendations


def horizon_value(w: Windows) -> pd.Series:
    """What each customer spends in ``h`` days while they stay: revenue per day over their
    tenure (at least ``h`` days) times ``h``; the value at stake if they lapse."""
    h = w.split.horizon_days
    x = w.X_score
    return (x["monetary"].clip(lower=0) * h / x["tenure_days"].clip(lower=h)).rename("value")


def operating_point(
    p: pd.Series, value: pd.Series, params: dict[str, Any]
) -> tuple[pd.DataFrame, dict[str, Any], pd.DataFrame]:
    """The expected-profit curve, the best number to contact within the limits, and the who-to-contact grid.

    Returns
    -------
    curve, summary, grid
        :func:`~cp_toolkit.predict.operating.profit_curve`, the figures of the best point
        (``best_n``, ``limit``, ``expected_profit``, ``expected_saving``, ``cost``) and
        :func:`~cp_toolkit.predict.operating.contact_grid` with risk bands at :data:`RISK_EDGES`
        and value in thirds.
    """
    curve = profit_curve(p, value, params["margin"], params["contact_cost"], params["save_rate"])
    best = best_contact_count(curve, params["contact_share"], params["contact_budget"])
    limit = contact_limit(len(curve), params["contact_share"], params["contact_budget"], params["contact_cost"])
    row = curve.iloc[best - 1] if best else None
    summary = {
        "best_n": best,
        "limit": limit,
        "customers": len(curve),
        "expected_profit": float(row["profit"]) if best else 0.0,
        "expected_saving": float(row["saved_value"]) if best else 0.0,
        "cost": float(row["cost"]) if best else 0.0,
        "revenue_at_stake": float((p * value).sum()),
        **{k: params[k] for k in ("margin", "contact_share", "contact_budget", "contact_cost", "save_rate")},
    }
    grid = contact_grid(p, value, list(RISK_EDGES), len(VALUE_BANDS), params["min_group_size"])
    return curve, summary, grid


def _scored_frame(index: pd.Index) -> pd.DataFrame:
    """The predictions table before any score: one row per customer, every column missing."""
    frame = pd.DataFrame(index=pd.Index(index, name="customer_id", dtype="string"))
    frame["churn_probability"] = np.nan
    frame["churn_risk"] = pd.Series(pd.NA, index=frame.index, dtype="string")
    frame["expected_spend"] = np.nan
    for k in range(1, 4):
        frame[f"next_category_{k}"] = pd.Series(pd.NA, index=frame.index, dtype="string")
    frame["contact"] = False
    return frame


def _risk_band(p: pd.Series) -> pd.Series:
    band, _ = assign_bands(p.to_numpy(), list(RISK_EDGES))
    return pd.Series(np.asarray(RISK_BANDS)[band - 1], index=p.index, dtype="string")


def evaluate(run: RunFolder, as_of: str, horizon_days: int, seed: int, contact: dict[str, Any]) -> PredictionResult:
    """All three targets and the operating point, in memory (nothing is written).

    Parameters
    ----------
    run : RunFolder
        The run folder (its transactions, orders and products are read).
    as_of, horizon_days, seed
        The run's parameters.
    contact : dict
        ``margin``, ``contact_share``, ``contact_budget``, ``contact_cost``, ``save_rate`` and
        ``min_group_size`` (:func:`operating_point`).

    Returns
    -------
    PredictionResult
        A target the data cannot support is left out, with its reason in ``skipped``.
    """
    data = read_data(run, as_of)
    customers = pd.Index(np.sort(data.orders["customer_id"].unique()), name="customer_id")
    result = PredictionResult(
        metrics={}, predictions=_scored_frame(customers), min_group_size=int(contact.get("min_group_size", 1))
    )
    frame = result.predictions
    with threadpool_limits(limits=1):  # OpenMP of the boosting crawls on small data when cores are shared
        try:
            w = build_windows(data, as_of, horizon_days)
        except DataError as err:
            reason = t("predict.not_available", reason=str(err))
            result.skipped = dict.fromkeys(("churn", "spend", "categories", "operating"), reason)
            result.metrics = metrics_json(result, as_of, horizon_days)
            result.predictions = frame.reset_index()
            return result
        result.split = w.split
        churn = _part(result, "churn", lambda: evaluate_churn(data, w, seed, result.fit_notes))
        if churn is not None:
            result.churn, p = churn
            frame["churn_probability"] = p.reindex(frame.index).astype("float64")
            frame["churn_risk"] = _risk_band(frame["churn_probability"].fillna(0.0)).where(
                frame["churn_probability"].notna()
            )
        spend = _part(result, "spend", lambda: evaluate_spend(data, w, seed, result.fit_notes))
        if spend is not None:
            result.spend, value = spend
            frame["expected_spend"] = value.reindex(frame.index).astype("float64")
        if data.products is None:
            result.absent.add("categories")
        categories = _part(result, "categories", lambda: evaluate_categories(data, w.split, seed, customers))
        if categories is not None:
            result.categories, result.recommendations = categories
            top = result.recommendations[result.recommendations["rank"] <= 3]
            wide = top.pivot(index="customer_id", columns="rank", values="category")
            for k in wide.columns:
                frame[f"next_category_{k}"] = wide[k].reindex(frame.index).astype("string")
    if churn is not None:
        scored = frame["churn_probability"].dropna()
        value = horizon_value(w).reindex(scored.index).fillna(0.0)
        result.curve, result.operating, result.grid = operating_point(scored, value, contact)
        frame.loc[contact_list(result.curve, result.operating["best_n"]), "contact"] = True
    else:
        result.skipped["operating"] = t("predict.no_operating_point")
    result.predictions = frame.reset_index()
    result.metrics = metrics_json(result, as_of, horizon_days)
    return result


def _part(result: PredictionResult, part: str, fn: Callable[[], Any]) -> Any:
    """Run one target; a :class:`DataError` leaves it out (None) with its reason in ``skipped``.

    The toolkit's fitting notes (e.g. a BG/NBD baseline refitted with a looser tolerance) are kept
    in ``fit_notes`` rather than shown: they concern a baseline's fit, not the reader's decision.
    Other warnings are shown as usual.
    """
    with warnings.catch_warnings(record=True) as caught:
        try:
            return fn()
        except DataError as err:
            result.skipped[part] = t("predict.not_available_part", part=t(f"predict.part.{part}"), reason=str(err))
            return None
        finally:
            for w in caught:
                if issubclass(w.category, CPToolkitWarning):
                    result.fit_notes.append(str(w.message))
                else:
                    warnings.showwarning(w.message, w.category, w.filename, w.lineno)


def scorer_name(part: str, scorer: str) -> str:
    """A scorer of ``part`` (churn, spend, categories) in words, e.g. "recency rule"."""
    return t(f"predict.scorer.{part}.{scorer}")


def kpis(result: PredictionResult) -> dict[str, float]:
    """The share of all customers expected to lapse in the horizon (their mean churn probability),
    the figure the index compares between runs; empty without churn probabilities."""
    p = result.predictions["churn_probability"] if "churn_probability" in result.predictions else pd.Series()
    return {"share_at_risk": float(p.mean())} if p.notna().any() else {}


def headline(result: PredictionResult) -> str:
    """The stage's one line in ``index.html``: the scorer used, its AUC and top-decile lift, whom to contact."""
    c = result.churn
    if c is None:
        return t("predict.headline_not_evaluated")
    m = c.metrics[c.scored_with]
    return t(
        "predict.headline",
        horizon_days=int(result.metrics["split"]["horizon_days"]),
        scorer=scorer_name("churn", c.scored_with),
        auc=m["roc_auc"],
        lift=m["top_decile_lift"],
        contact=result.operating["best_n"] if result.operating else 0,
        customers=len(result.predictions),
    )


def _records(table: pd.DataFrame | None) -> list[dict[str, Any]]:
    return [] if table is None else table.to_dict(orient="records")


def metrics_json(result: PredictionResult, as_of: str, horizon_days: int) -> dict[str, Any]:
    """The contents of ``prediction_metrics.json``: every figure of every model and baseline.

    Keys: ``split``; ``churn``, ``spend``, ``categories`` (each with ``scorers``, the test-window
    metrics of the model and the baselines, ``comparisons`` with bootstrap intervals, the
    ``best_baseline``, the ``verdict`` against it and the scorer the predictions use,
    ``scored_with``); ``operating`` and ``contact_grid``; ``not_evaluated`` (part -> reason).
    """
    out: dict[str, Any] = {"split": {"as_of": str(pd.Timestamp(as_of).date()), "horizon_days": horizon_days}}
    if result.split is not None:
        out["split"] |= {
            "train_cutoff": str(result.split.train_cutoff.date()),
            "test_cutoff": str(result.split.test_cutoff.date()),
            "customers_scored": len(result.predictions),
        }
    c = result.churn
    if c is not None:
        out["split"] |= {"customers_tested": len(c.y), "churn_rate_test": float(c.y.mean())}
        out["churn"] = {
            "scorers": c.metrics,
            "comparisons": c.comparisons,
            "best_baseline": c.best_baseline,
            "verdict": c.verdict,
            "scored_with": c.scored_with,
            "model": None if c.selector is None else c.selector.chosen_,
            "model_not_fitted": c.model_note,
            "candidates": [] if c.selector is None else _records(c.selector.candidates_),
            "importance": _records(c.importance),
            "gains": {k: _records(g) for k, g in c.gains.items()},
            "reliability": {k: _records(r) for k, r in c.reliability.items()},
        }
    s = result.spend
    if s is not None:
        out["spend"] = {
            "scorers": s["metrics"],
            "comparisons": s["comparisons"],
            "best_baseline": s["best_baseline"],
            "verdict": s["verdict"],
            "scored_with": s["scored_with"],
            "model": {"candidate": s["selector"].fitted_, "settings": s["selector"].fitted_settings_},
            "chosen_on_training_windows": s["selector"].chosen_,
            "cv_scheme": s["selector"].cv_scheme_,
            "candidates": _records(s["selector"].candidates_),
            "deciles": {k: _records(d) for k, d in s["deciles"].items()},
        }
    if result.categories is not None:
        k = result.categories
        out["categories"] = {
            key: k[key]
            for key in ("metrics", "comparisons", "best_baseline", "verdict", "scored_with", "settings", "blocks")
        } | {"grid": _records(k["grid"])}
        out["categories"]["scorers"] = out["categories"].pop("metrics")
    if result.operating is not None:
        out["operating"] = result.operating
        out["contact_grid"] = _records(result.grid)
    out["not_evaluated"] = dict(result.skipped)
    out["fit_notes"] = list(dict.fromkeys(result.fit_notes))
    return out


@stage("04_prediction")
def run_stage(
    run: RunFolder,
    as_of: str = DEFAULTS["as_of"],
    horizon_days: int = DEFAULTS["horizon_days"],
    seed: int = DEFAULTS["seed"],
    margin: float = DEFAULTS["margin"],
    contact_share: float = DEFAULTS["contact_share"],
    contact_budget: float | None = DEFAULTS["contact_budget"],
    contact_cost: float = DEFAULTS["contact_cost"],
    save_rate: float = DEFAULTS["save_rate"],
    min_group_size: int = DEFAULTS["min_group_size"],
) -> PredictionResult:
    """Stage 04: write ``predictions.parquet``, ``prediction_metrics.json`` and, where products
    exist, ``category_recommendations.parquet``.

    A target the data cannot support is left out of the artifacts (its columns missing), with
    the reason in the report and among the stage's notes on the console; later stages go on.
    """
    contact = {
        "margin": margin,
        "contact_share": contact_share,
        "contact_budget": contact_budget,
        "contact_cost": contact_cost,
        "save_rate": save_rate,
        "min_group_size": min_group_size,
    }
    result = evaluate(run, as_of, horizon_days, seed, contact)
    run.save("predictions", result.predictions)
    run.save("prediction_metrics", result.metrics)
    if result.recommendations is not None:
        run.save("category_recommendations", result.recommendations)
    notes = [reason for part, reason in result.skipped.items() if part not in result.absent]
    run.record_stage("04_prediction", headline(result), notes=list(dict.fromkeys(notes)), kpis=kpis(result))
    return result
