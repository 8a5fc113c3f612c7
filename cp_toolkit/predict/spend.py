"""Next-period spend: revenue in the ``horizon_days`` after a cutoff, chosen among four candidate
pipelines by time-ordered cross-validation on the training window, with two baselines.

Windows follow stage 04: with ``h = horizon_days``, the target of a cutoff ``c`` is the revenue of
the orders in (c, c + h] (whole days: after the end of day ``c`` up to the end of day ``c + h``).

Candidates (:func:`candidate_grid`):

- ``ridge_log``: Ridge on signed-log1p features, fitted to log1p(spend) and mapped back with expm1.
  Chosen over a Tweedie GLM because the selection and the headline metric are the MAE, whose best
  constant is the median: a model of log spend predicts close to the conditional median of a
  skewed, zero-heavy target, while a Tweedie GLM (log link) predicts the mean, which the few heavy
  spenders pull up. The random forest (squared error) and the Poisson boosting below cover the mean.
- ``random_forest``: RandomForestRegressor on the raw (median-imputed) features.
- ``hist_gradient_boosting``: HistGradientBoostingRegressor(loss="poisson") (log link, mean).
- ``hist_gradient_boosting_median``: the same trees on loss="absolute_error", which fits the
  conditional median, the loss the selection scores (on Complete Journey it is the only candidate
  close to the last window's spend).

Baselines: the last window's spend (revenue in (c - h, c], the feature
:func:`~cp_toolkit.predict.windows.last_window_column`) and BG/NBD x Gamma-Gamma's expected
spend over h (:func:`clv_expected_spend`, fitted on the orders up to ``c``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.compose import TransformedTargetRegressor
from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import Ridge
from sklearn.model_selection import GroupKFold, KFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from threadpoolctl import threadpool_limits

from ..clv.models import CLVModel
from ..clv.summary import rfm_summary
from ..config import DEFAULTS
from .windows import signed_log1p, time_folds

__all__ = [
    "CANDIDATES",
    "SpendSelector",
    "candidate_grid",
    "clv_expected_spend",
    "decile_table",
    "spend_metrics",
]

#: Candidate pipelines, in the order that breaks ties of cross-validated MAE.
CANDIDATES = ("ridge_log", "random_forest", "hist_gradient_boosting", "hist_gradient_boosting_median")


def clv_expected_spend(orders: pd.DataFrame, cutoff: pd.Timestamp, horizon_days: int, customers: pd.Index) -> pd.Series:
    """BG/NBD x Gamma-Gamma expected revenue in the ``horizon_days`` after ``cutoff``, fitted on the
    orders up to ``cutoff``: expected purchases (customer-days) over h times expected revenue per purchase.

    Customers without an order up to ``cutoff`` get 0. Raises :class:`cp_toolkit.errors.DataError`
    when the models cannot be fitted (fewer than two repeat buyers, too few distinct histories).
    """
    summary = rfm_summary(orders, cutoff, time_unit="days")
    model = CLVModel("bgnbd", "days", standard_errors=False).fit(summary)
    expected = model.expected_purchases(float(horizon_days), summary) * model.expected_spend(summary)
    return pd.Series(expected, index=summary.index).reindex(customers, fill_value=0.0).rename("spend")


def _log1p_spend(y: np.ndarray) -> np.ndarray:
    """log1p of spend, refunds beyond purchases (negative totals) counted as 0."""
    return np.log1p(np.clip(y, 0, None))


def _ridge_log(alpha: float) -> TransformedTargetRegressor:
    """Ridge on standardized signed-log1p features, fitted to log1p(spend) (negatives clipped to 0)."""
    features = make_pipeline(
        SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
        FunctionTransformer(signed_log1p),
        StandardScaler(),
        Ridge(alpha=alpha),
    )
    return TransformedTargetRegressor(features, func=_log1p_spend, inverse_func=np.expm1, check_inverse=False)


def _random_forest(min_samples_leaf: int, seed: int) -> Pipeline:
    forest = RandomForestRegressor(
        n_estimators=100,
        max_samples=0.5,
        min_samples_leaf=min_samples_leaf,
        max_features=0.5,
        random_state=seed,
        n_jobs=1,
    )
    return make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True), forest)


def _boosting(loss: str, max_leaf_nodes: int, seed: int) -> Pipeline:
    boosting = HistGradientBoostingRegressor(
        loss=loss,
        learning_rate=0.05,
        max_leaf_nodes=max_leaf_nodes,
        max_iter=300,
        early_stopping=False,  # fixed rounds: no random validation split tied to the order of the pseudonyms
        random_state=seed,
    )
    return make_pipeline(boosting)


def candidate_grid(seed: int) -> list[tuple[str, dict[str, Any], BaseEstimator]]:
    """The candidates and their small grids: (candidate, settings, unfitted pipeline), in the order
    of :data:`CANDIDATES`."""
    grid: list[tuple[str, dict[str, Any], BaseEstimator]] = []
    for alpha in (1.0, 10.0, 100.0):
        grid.append(("ridge_log", {"alpha": alpha}, _ridge_log(alpha)))
    for leaf in (20,):
        grid.append(("random_forest", {"min_samples_leaf": leaf}, _random_forest(leaf, seed)))
    for name, loss in (("hist_gradient_boosting", "poisson"), ("hist_gradient_boosting_median", "absolute_error")):
        for leaves in (7, 31):
            grid.append((name, {"loss": loss, "max_leaf_nodes": leaves}, _boosting(loss, leaves, seed)))
    return grid


class SpendSelector(BaseEstimator, RegressorMixin):
    """Next-period spend: the candidate and settings with the lowest time-ordered cross-validated
    MAE (:func:`candidate_grid`), refitted on all training rows (scikit-learn style).

    Parameters
    ----------
    horizon_days : int
        Length of the target window; training rows of a cutoff are used to score a later cutoff
        only when their window has ended by then.
    seed : int
        Seed of the forests, the boosting and of the fallback folds.
    folds : int
        Shuffled K-fold splits (grouped by customer when ``X`` is indexed by one), used only when
        no two cutoffs of ``fit`` lie a horizon apart.
    n_folds : int
        Most time-ordered folds (the latest cutoffs, each scored by the windows before it).
    baseline_column : str, optional
        A column of ``X`` holding the last window's spend: scored in the same folds as candidate
        ``last_window``; when it has the lowest cross-validated MAE it is chosen, and ``predict``
        returns that column (the better of model and baseline, decided on the training window).

    Attributes
    ----------
    candidates_ : DataFrame
        ``candidate``, ``settings``, ``cv_mae`` and ``fold_mae`` of every candidate (and of
        ``last_window`` with a ``baseline_column``).
    chosen_, chosen_settings_ : str, dict
        The lowest cross-validated MAE, ``last_window`` included.
    fitted_, fitted_settings_ : str, dict
        The lowest among the fitted candidates only: ``model_``, what :meth:`predict_model` uses.
    """

    def __init__(
        self,
        horizon_days: int = DEFAULTS["horizon_days"],
        seed: int = DEFAULTS["seed"],
        folds: int = 5,
        baseline_column: str | None = None,
        n_folds: int = 3,
    ) -> None:
        self.horizon_days = horizon_days
        self.seed = seed
        self.folds = folds
        self.n_folds = n_folds
        self.baseline_column = baseline_column

    def fit(self, X: pd.DataFrame, y: pd.Series | np.ndarray, cutoffs: np.ndarray | None = None) -> SpendSelector:
        """Choose on ``X``, ``y`` and refit the choice on all of it; returns ``self``.

        Parameters
        ----------
        X : DataFrame
            Features, one row per customer and cutoff (numeric columns).
        y : array-like
            Revenue in the ``horizon_days`` after each row's cutoff.
        cutoffs : array-like, optional
            Each row's cutoff date. With at least one time-ordered fold
            (:func:`~cp_toolkit.predict.windows.time_folds`) the selection is out of time
            (``cv_scheme_ = "time"``); otherwise shuffled K-fold (``cv_scheme_ = "kfold"``).
        """
        with threadpool_limits(limits=1):  # OpenMP of the boosting crawls on small data when cores are shared
            return self._fit(X, np.asarray(y, dtype=float), cutoffs)

    def _fit(self, X: pd.DataFrame, y: np.ndarray, cutoffs: np.ndarray | None) -> SpendSelector:
        splits = self._splits(X, cutoffs)
        fit_y = np.clip(y, 0, None)  # refunds beyond purchases count as no spend (Poisson needs y >= 0)
        rows = []
        for name, settings, pipeline in candidate_grid(self.seed):
            maes = [
                _mae(y[test], clone(pipeline).fit(X.iloc[train], fit_y[train]).predict(X.iloc[test]))
                for train, test in splits
            ]
            rows.append({"candidate": name, "settings": settings, "cv_mae": float(np.mean(maes)), "fold_mae": maes})
        if self.baseline_column is not None:
            last = X[self.baseline_column].to_numpy(dtype=float)
            maes = [_mae(y[test], last[test]) for _, test in splits]
            rows.append({"candidate": "last_window", "settings": {}, "cv_mae": float(np.mean(maes)), "fold_mae": maes})
        self.candidates_ = pd.DataFrame(rows)
        cv = self.candidates_["cv_mae"].to_numpy()
        best, fitted = int(cv.argmin()), int(cv[: len(rows) - (self.baseline_column is not None)].argmin())
        self.chosen_ = str(self.candidates_.loc[best, "candidate"])  # first of equals: CANDIDATES order
        self.chosen_settings_ = dict(self.candidates_.loc[best, "settings"])
        self.fitted_ = str(self.candidates_.loc[fitted, "candidate"])
        self.fitted_settings_ = dict(self.candidates_.loc[fitted, "settings"])
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.model_ = clone(candidate_grid(self.seed)[fitted][2]).fit(X, fit_y)
        return self

    def _splits(self, X: pd.DataFrame, cutoffs: np.ndarray | None) -> list[tuple[np.ndarray, np.ndarray]]:
        folds = [] if cutoffs is None else time_folds(pd.DatetimeIndex(cutoffs), self.horizon_days, self.n_folds)
        if folds:
            stamps = pd.DatetimeIndex(cutoffs)
            self.cv_scheme_, self.cv_cutoffs_ = "time", [str(stamps[test[0]].date()) for _, test in folds]
            return folds
        # no two windows a horizon apart: shuffled folds, a customer's windows kept in one fold
        self.cv_scheme_, self.cv_cutoffs_ = "kfold", []
        if "customer_id" in X.index.names:
            return list(GroupKFold(self.folds).split(X, groups=X.index.get_level_values("customer_id")))
        return list(KFold(self.folds, shuffle=True, random_state=self.seed).split(X))

    def refit(self, X: pd.DataFrame, y: pd.Series | np.ndarray) -> SpendSelector:
        """Keep the choice, refit the fitted candidate on ``X``, ``y`` (e.g. with a later labelled
        window added); returns ``self``."""
        pipeline = next(p for n, s, p in candidate_grid(self.seed) if (n, s) == (self.fitted_, self.fitted_settings_))
        with threadpool_limits(limits=1):
            self.model_ = clone(pipeline).fit(X[list(self.feature_names_in_)], np.clip(np.asarray(y, float), 0, None))
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Expected revenue in the next window, floored at 0: the baseline column when it was
        chosen, else :meth:`predict_model`."""
        if self.chosen_ == "last_window":
            return np.clip(X[self.baseline_column].to_numpy(dtype=float), 0, None)
        return self.predict_model(X)

    def predict_model(self, X: pd.DataFrame) -> np.ndarray:
        """The best fitted candidate's expected revenue in the next window, floored at 0."""
        with threadpool_limits(limits=1):
            return np.clip(self.model_.predict(X[list(self.feature_names_in_)]), 0, None)


def _mae(y: np.ndarray, prediction: np.ndarray) -> float:
    return float(np.mean(np.abs(np.asarray(y, float) - np.clip(prediction, 0, None))))


def spend_metrics(y: np.ndarray, prediction: np.ndarray) -> dict[str, float]:
    """MAE, RMSE, R2 and Spearman rank correlation of predicted against actual spend.

    R2 is 1 - SS_res / SS_tot around the actual mean (negative when worse than that constant);
    Spearman is missing (NaN) when either side is constant.
    """
    y, prediction = np.asarray(y, float), np.asarray(prediction, float)
    residual = y - prediction
    total = float(np.sum((y - y.mean()) ** 2))
    constant = np.ptp(y) == 0 or np.ptp(prediction) == 0
    return {
        "mae": float(np.mean(np.abs(residual))),
        "rmse": float(np.sqrt(np.mean(residual**2))),
        "r2": float(1 - np.sum(residual**2) / total) if total > 0 else float("nan"),
        "spearman": float("nan") if constant else float(spearmanr(y, prediction).statistic),
    }


def decile_table(y: np.ndarray, prediction: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """Mean predicted and actual spend by decile of the prediction (decile 1 = highest predicted).

    Customers are ordered by prediction, highest first (ties in input order), and cut into
    ``bins`` groups of sizes differing by at most one.

    Returns
    -------
    DataFrame
        One row per decile: ``decile``, ``customers``, ``predicted_mean``, ``actual_mean``,
        ``actual_share`` (of all actual revenue).
    """
    y, prediction = np.asarray(y, float), np.asarray(prediction, float)
    order = np.argsort(-prediction, kind="stable")
    decile = np.empty(len(y), dtype=int)
    decile[order] = np.arange(len(y)) * bins // len(y) + 1
    frame = pd.DataFrame({"decile": decile, "predicted": prediction, "actual": y})
    out = frame.groupby("decile").agg(
        customers=("actual", "size"), predicted_mean=("predicted", "mean"), actual_mean=("actual", "mean")
    )
    out["actual_share"] = frame.groupby("decile")["actual"].sum() / y.sum() if y.sum() else np.nan
    return out.reset_index()
