"""Churn: candidate models chosen by time-ordered cross-validation on the training window,
calibrated, and set beside the recency rule and BG/NBD on the test window.

:class:`ChurnSelector` takes window features stacked by cutoff
(:func:`~cp_toolkit.predict.windows.labelled_windows`): each validation cutoff (the latest
``n_folds``) is scored by models fitted on the windows whose targets end by it, so no fold sees
its own future and the test window is never looked at. The chosen candidate is refitted on every
window given, and its scores are mapped to probabilities by a calibrator fitted on its scores of
the latest validation fold.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from ..clv.models import CLVModel
from ..clv.summary import rfm_summary
from ..config import DEFAULTS
from ..errors import DataError, ParameterError
from .evaluation import classification_metrics
from .windows import WINDOW_FEATURES, signed_log1p, time_folds

ArrayLike = np.ndarray | pd.Series

__all__ = [
    "GRID",
    "ChurnSelector",
    "bgnbd_no_purchase",
    "candidate",
]

#: Candidate models and their small hyperparameter grids, simplest first (the order the
#: one-standard-error rule prefers). ``features`` of a logistic candidate:
#: ``window`` (the window features and the last window's spend only) or ``all`` (with the
#: profile columns of stage 03); the trees always see every column.
GRID: dict[str, list[dict[str, Any]]] = {
    "logistic": [{"C": c, "features": f} for f in ("window", "all") for c in (0.01, 0.1, 1.0)],
    "random_forest": [{"min_samples_leaf": 20, "max_features": 0.5}],
    "hist_gradient_boosting": [
        {"learning_rate": rate, "max_leaf_nodes": leaves} for rate in (0.03, 0.1) for leaves in (7, 15)
    ],
}


def candidate(name: str, params: dict[str, Any], seed: int) -> Pipeline:
    """The scikit-learn pipeline of one candidate.

    Parameters
    ----------
    name : {"logistic", "random_forest", "hist_gradient_boosting"}
        The model: L2-regularized logistic regression on standardized log-scaled features (missing
        values imputed by the median, with indicators), a random forest (missing values imputed
        likewise) or histogram gradient boosting (missing values handled natively).
    params : dict
        Hyperparameters of the final estimator.
    seed : int
        Random state of the estimators that have one.

    Returns
    -------
    Pipeline
    """
    impute = SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True)
    if name == "logistic":
        params = dict(params)
        columns = FunctionTransformer(_window_columns if params.pop("features", "all") == "window" else None)
        log = FunctionTransformer(signed_log1p)
        return make_pipeline(columns, impute, log, StandardScaler(), LogisticRegression(max_iter=2000, **params))
    if name == "random_forest":
        forest = RandomForestClassifier(n_estimators=100, max_samples=0.5, random_state=seed, n_jobs=1, **params)
        return make_pipeline(impute, forest)
    if name == "hist_gradient_boosting":
        # a fixed number of rounds: early stopping's random validation split would tie the fit to the
        # order of the rows, which follows the pseudonyms and so the run's key
        booster = HistGradientBoostingClassifier(
            max_iter=200, l2_regularization=1.0, early_stopping=False, random_state=seed, **params
        )
        return make_pipeline(booster)
    raise ParameterError(f"unknown churn model {name!r}; one of {sorted(GRID)}")


def _window_columns(X: pd.DataFrame) -> pd.DataFrame:
    """The columns of :data:`~cp_toolkit.predict.windows.WINDOW_FEATURES` (and ``spend_last_window``) in ``X``."""
    return X[[c for c in X.columns if c in WINDOW_FEATURES or c == "spend_last_window"]]


class _Platt:
    """Sigmoid calibration on the log-odds of a score: monotone, so ranks are kept (reversed only
    if the latest fold ranked churners below stayers, which the AUC of the choice would show)."""

    def fit(self, p: np.ndarray, y: np.ndarray) -> _Platt:
        self.lr_ = LogisticRegression(C=1e6).fit(_logit(p)[:, None], y)
        return self

    def predict(self, p: np.ndarray) -> np.ndarray:
        return self.lr_.predict_proba(_logit(p)[:, None])[:, 1]


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


class ChurnSelector(ClassifierMixin, BaseEstimator):
    """The churn model chosen among :data:`GRID` by time-ordered cross-validation, calibrated.

    Parameters
    ----------
    horizon_days : int
        Length of the target windows (a fold trains only on windows whose targets end by its cutoff).
    n_folds : int
        Number of validation cutoffs (the latest ones in ``X``).
    scoring : {"roc_auc", "average_precision"}
        Mean fold score that chooses; the other one breaks ties.
    rule : {"one_se", "best"}
        ``one_se``: the simplest candidate within one standard error of the best mean score
        (candidates are listed simplest first); ``best``: the best mean score.
    calibration : {"sigmoid", "isotonic"}
        Map from scores to probabilities, fitted on the latest fold (sigmoid keeps the ranking).
    grid : dict, optional
        Candidates and hyperparameters (default :data:`GRID`).
    seed : int
        Random state of every candidate.

    Attributes
    ----------
    candidates_ : DataFrame
        One row per candidate and setting: ``model``, ``params``, mean and per-fold ``roc_auc``
        and ``average_precision``, the standard error ``se`` of the choosing score, ``within_one_se``
        and ``rank`` (1 = chosen).
    chosen_ : dict
        ``model`` and ``params`` of the chosen candidate.
    model_ : Pipeline
        The chosen pipeline refitted on all of ``X``.
    calibrator_ : object
        The score-to-probability map.
    """

    def __init__(
        self,
        horizon_days: int = DEFAULTS["horizon_days"],
        n_folds: int = 3,
        scoring: str = "roc_auc",
        rule: str = "one_se",
        calibration: str = "sigmoid",
        grid: dict[str, list[dict[str, Any]]] | None = None,
        seed: int = DEFAULTS["seed"],
    ) -> None:
        self.horizon_days = horizon_days
        self.n_folds = n_folds
        self.scoring = scoring
        self.rule = rule
        self.calibration = calibration
        self.grid = grid
        self.seed = seed

    def fit(self, X: pd.DataFrame, y: ArrayLike) -> ChurnSelector:
        """Choose, calibrate and refit on stacked windows ``X`` (index level ``cutoff``); returns ``self``."""
        y = np.asarray(y, dtype="int64")
        folds = time_folds(X.index.get_level_values("cutoff"), self.horizon_days, self.n_folds)
        _check_folds(folds, y)
        rows, last_scores = [], {}
        for name, settings in (self.grid or GRID).items():
            for params in settings:
                scores, oof = _cross_validate(candidate(name, params, self.seed), X, y, folds)
                rows.append({"model": name, "params": params, **scores})
                last_scores[len(rows) - 1] = oof
        self.candidates_ = _ranked(pd.DataFrame(rows), self.scoring, self.rule)
        best = int(self.candidates_.index[0])
        self.chosen_ = {"model": self.candidates_.loc[best, "model"], "params": self.candidates_.loc[best, "params"]}
        self.calibrator_ = _calibrator(self.calibration).fit(last_scores[best], y[folds[-1][1]])
        self.model_ = candidate(self.chosen_["model"], self.chosen_["params"], self.seed).fit(X, y)
        self.classes_ = np.array([0, 1])
        return self

    def refit(self, X: pd.DataFrame, y: ArrayLike) -> ChurnSelector:
        """Keep the chosen candidate; recalibrate it on the latest window of ``X`` (scored by a fit
        on the earlier ones) and refit it on all of ``X``: the final model once a later labelled
        window is known. Returns ``self``."""
        y = np.asarray(y, dtype="int64")
        folds = time_folds(X.index.get_level_values("cutoff"), self.horizon_days, 1)
        _check_folds(folds, y)
        model = candidate(self.chosen_["model"], self.chosen_["params"], self.seed)
        train, valid = folds[-1]
        scores = clone(model).fit(X.iloc[train], y[train]).predict_proba(X.iloc[valid])[:, 1]
        self.calibrator_ = _calibrator(self.calibration).fit(scores, y[valid])
        self.model_ = model.fit(X, y)
        return self

    def decision_function(self, X: pd.DataFrame) -> np.ndarray:
        """The chosen model's uncalibrated churn score."""
        return self.model_.predict_proba(X)[:, 1]

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Calibrated probabilities of staying (column 0) and churning (column 1)."""
        p = np.clip(self.calibrator_.predict(self.decision_function(X)), 0.0, 1.0)
        return np.column_stack([1 - p, p])


def _check_folds(folds: list, y: np.ndarray) -> None:
    """A :class:`DataError` when there is no fold, or a fold with one label only."""
    if not folds:
        raise DataError(
            "model choice needs at least two training windows a horizon apart (one to fit, a later one to "
            "validate); the history before the training cutoff is too short: choose a shorter horizon_days"
        )
    for train, valid in folds:
        if len(np.unique(y[train])) < 2 or len(np.unique(y[valid])) < 2:
            raise DataError(
                "a training window has customers who all churn or none who do: churn cannot be modelled; "
                "choose another horizon_days"
            )


def _cross_validate(model: Pipeline, X: pd.DataFrame, y: np.ndarray, folds: list) -> tuple[dict, np.ndarray]:
    """Mean and per-fold AUC and AP of a pipeline over the folds; its scores on the last fold."""
    out: dict[str, Any] = {}
    per_fold: dict[str, list[float]] = {"roc_auc": [], "average_precision": []}
    for train, valid in folds:
        score = clone(model).fit(X.iloc[train], y[train]).predict_proba(X.iloc[valid])[:, 1]
        for k, v in classification_metrics(y[valid], score).items():
            if k in per_fold:
                per_fold[k].append(v)
    for k, values in per_fold.items():
        out[k] = float(np.mean(values))
        out[f"{k}_folds"] = values
    return out, score


def _ranked(table: pd.DataFrame, scoring: str, rule: str) -> pd.DataFrame:
    """Candidates with the chosen one first (rank 1), the others by the mean ``scoring``.

    ``rule="best"`` chooses the highest mean ``scoring`` (ties broken by the other metric).
    ``rule="one_se"`` chooses the simplest candidate (the first in the table, which lists them
    simplest first, as :data:`GRID` does) whose mean lies within one standard error of the best
    one's (the spread of its fold scores over the square root of the folds): the one-standard-
    error rule, which does not pay for complexity with a lead the folds cannot tell from noise.
    """
    if scoring not in ("roc_auc", "average_precision"):
        raise ParameterError(f"scoring must be 'roc_auc' or 'average_precision', got {scoring!r}")
    if rule not in ("best", "one_se"):
        raise ParameterError(f"rule must be 'best' or 'one_se', got {rule!r}")
    other = "average_precision" if scoring == "roc_auc" else "roc_auc"
    folds = table[f"{scoring}_folds"].map(np.asarray)
    table = table.assign(se=folds.map(lambda f: float(np.std(f, ddof=1) / np.sqrt(len(f))) if len(f) > 1 else 0.0))
    ordered = table.sort_values([scoring, other], ascending=False, kind="stable")
    best = ordered.iloc[0]
    table["within_one_se"] = table[scoring] >= best[scoring] - best["se"]
    chosen = table.index[table["within_one_se"]][0] if rule == "one_se" else ordered.index[0]
    ranked = pd.concat([table.loc[[chosen]], ordered.drop(index=chosen)])
    return ranked.assign(rank=np.arange(1, len(ranked) + 1))


def _calibrator(method: str) -> Any:
    if method == "sigmoid":
        return _Platt()
    if method == "isotonic":
        return IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
    raise ParameterError(f"calibration must be 'sigmoid' or 'isotonic', got {method!r}")


def bgnbd_no_purchase(orders: pd.DataFrame, cutoff: str | pd.Timestamp, horizon_days: int) -> pd.Series:
    """BG/NBD's probability that each customer buys nothing in the ``horizon_days`` after ``cutoff``.

    The model is fitted on the customer-days up to ``cutoff`` (:func:`cp_toolkit.clv.rfm_summary`).
    Given the history (x, t_x, T), a customer is alive with probability ``P(alive)`` and then buys
    at a rate distributed Gamma(r + x, alpha + T), so
    ``P(no purchase in t) = 1 - P(alive) + P(alive) ((alpha + T) / (alpha + T + t))^(r + x)``.

    Parameters
    ----------
    orders : DataFrame
        Orders with ``customer_id``, ``ts`` and ``amount``.
    cutoff : str or Timestamp
        Last day observed.
    horizon_days : int
        Length of the window.

    Returns
    -------
    Series
        Indexed by ``customer_id`` (sorted).
    """
    summary = rfm_summary(orders, cutoff, "days").sort_index()
    model = CLVModel("bgnbd", "days", standard_errors=False).fit(summary, spend=False)
    alive = model.p_alive(summary)
    r, alpha = model.params_["r"], model.params_["alpha"]
    x, T = summary["frequency"].to_numpy(), summary["T"].to_numpy()
    silent = ((alpha + T) / (alpha + T + horizon_days)) ** (r + x)
    return pd.Series(1 - alive + alive * silent, index=summary.index, name="bgnbd_no_purchase")
