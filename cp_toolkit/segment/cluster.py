"""Behavioural clustering of customers: K-means with k chosen by silhouette, a Gaussian mixture
for comparison, bootstrap stability (adjusted Rand index), lift profiles and a 2-D PCA view."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.metrics import adjusted_rand_score, silhouette_score
from sklearn.mixture import GaussianMixture
from sklearn.preprocessing import StandardScaler

from ..errors import DataError
from ..privacy import suppress_small_groups
from ..text import DEFAULT_LANGUAGE, t

__all__ = ["CLUSTER_FEATURES", "BehaviourClusters", "cluster_labels", "cluster_names", "lift_table"]

#: Behaviour columns of :func:`cp_toolkit.features.customer_features` the clusters are built on.
CLUSTER_FEATURES = ["recency_days", "frequency", "monetary", "avg_order_value", "avg_lines_per_order", "tenure_days"]


class BehaviourClusters(BaseEstimator):
    """K-means on log-transformed, standardized behaviour, with k chosen by silhouette.

    Parameters
    ----------
    k_range : tuple of int
        Smallest and largest k tried.
    n_bootstrap : int
        Bootstrap refits for the stability check.
    silhouette_sample : int
        Customers the silhouette is computed on (all when fewer).
    random_state : int
        Seed of K-means, the mixture, the bootstrap and the silhouette sample.
    """

    def __init__(
        self,
        k_range: tuple[int, int] = (2, 8),
        n_bootstrap: int = 20,
        silhouette_sample: int = 5000,
        random_state: int = 42,
    ) -> None:
        self.k_range = k_range
        self.n_bootstrap = n_bootstrap
        self.silhouette_sample = silhouette_sample
        self.random_state = random_state

    def _design(self, X: pd.DataFrame) -> np.ndarray:
        """log1p of the (non-negative) behaviour, then the scaler fitted in :meth:`fit`."""
        return self.scaler_.transform(np.log1p(X.clip(lower=0).fillna(0).to_numpy(dtype=float)))

    def fit(self, X: pd.DataFrame) -> BehaviourClusters:
        """Try every k in ``k_range`` and keep the best by silhouette; returns ``self``.

        Raises :class:`~cp_toolkit.errors.DataError` when the customers show too few distinct
        behaviours for ``k_range[0] + 1`` clusters. Sets ``scores_`` (k, inertia, silhouette),
        ``k_``, ``labels_``, ``agreement_`` (adjusted Rand index of a Gaussian mixture with k
        components against K-means), ``stability_`` (ARI of bootstrap refits against the full
        fit: mean and minimum) and ``pca_``.
        """
        self.columns_ = list(X.columns)
        self.scaler_ = StandardScaler().fit(np.log1p(X.clip(lower=0).fillna(0).to_numpy(dtype=float)))
        Z = self._design(X)
        Z = Z[np.lexsort(Z.T[::-1])]  # in value order: the same customers in any order (any pseudonyms) fit alike
        distinct = len(np.unique(Z, axis=0))
        if distinct <= self.k_range[0]:
            raise DataError(
                f"clustering needs more than {self.k_range[0]} customers of distinct behaviour; the data have "
                f"{distinct} among {len(Z):,} customers"
            )
        sample = min(self.silhouette_sample, len(Z))
        fits, rows = {}, []
        for k in range(self.k_range[0], min(self.k_range[1], len(Z) - 1, distinct - 1) + 1):
            fits[k] = KMeans(n_clusters=k, n_init=10, random_state=self.random_state).fit(Z)
            silhouette = silhouette_score(Z, fits[k].labels_, sample_size=sample, random_state=self.random_state)
            rows.append({"k": k, "inertia": fits[k].inertia_, "silhouette": silhouette})
        self.scores_ = pd.DataFrame(rows).set_index("k")
        self.k_ = int(self.scores_["silhouette"].idxmax())
        self.kmeans_ = fits[self.k_]
        mixture = GaussianMixture(self.k_, n_init=3, random_state=self.random_state).fit(Z)
        self.agreement_ = float(adjusted_rand_score(self.kmeans_.labels_, mixture.predict(Z)))
        self.stability_ = self._stability(Z)
        self.pca_ = PCA(2, random_state=self.random_state).fit(Z)
        self.labels_ = self.predict(X)
        return self

    def _stability(self, Z: np.ndarray) -> dict[str, float]:
        """Refit K-means on bootstrap samples and compare its labels of every customer with the full fit."""
        rng = np.random.default_rng(self.random_state)
        scores = []
        for b in range(self.n_bootstrap):
            idx = rng.integers(0, len(Z), len(Z))
            refit = KMeans(n_clusters=self.k_, n_init=10, random_state=self.random_state + b + 1).fit(Z[idx])
            scores.append(adjusted_rand_score(self.kmeans_.labels_, refit.predict(Z)))
        return {"ari_mean": float(np.mean(scores)), "ari_min": float(np.min(scores)), "samples": self.n_bootstrap}

    def summary(self) -> dict[str, object]:
        """The chosen k, its silhouette, the bootstrap ARI and the Gaussian-mixture ARI."""
        return {
            "k": self.k_,
            "silhouette": float(self.scores_.loc[self.k_, "silhouette"]),
            "bootstrap_ari": self.stability_,
            "gaussian_mixture_ari": self.agreement_,
        }

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Cluster of each customer."""
        return self.kmeans_.predict(self._design(X[self.columns_]))

    def pca_view(self, X: pd.DataFrame) -> pd.DataFrame:
        """The customers on the first two principal components, with their cluster (``C1``, ...)."""
        Z = self._design(X[self.columns_])
        xy = self.pca_.transform(Z)
        clusters = cluster_labels(pd.Series(self.kmeans_.predict(Z), index=X.index))
        return pd.DataFrame({"pc1": xy[:, 0], "pc2": xy[:, 1], "cluster": clusters})


def lift_table(X: pd.DataFrame, clusters: pd.Series, min_group_size: int) -> pd.DataFrame:
    """Per cluster: size, share and each feature's mean relative to the whole base (1 = average);
    clusters under ``min_group_size`` are suppressed."""
    clusters = cluster_labels(clusters)
    lift = X.groupby(clusters).mean() / X.mean()
    size = clusters.value_counts().reindex(lift.index)
    out = lift.assign(customers=size, customer_share=size / size.sum())[["customers", "customer_share", *X.columns]]
    return suppress_small_groups(out.rename_axis("cluster").reset_index(), "customers", min_group_size)


def cluster_labels(clusters: pd.Series) -> pd.Series:
    """Cluster numbers as labels ``C1``, ``C2``, ... (text, so that suppression never blanks them)."""
    return ("C" + (clusters.astype(int) + 1).astype(str)).rename("cluster")


def cluster_names(lift: pd.DataFrame, features: list[str], language: str = DEFAULT_LANGUAGE) -> dict[str, str]:
    """A name per cluster from its two most distinctive features (largest |log lift|), e.g.
    ``"frequency high, recency_days low"`` (texts ``segment.cluster.*``, in English by default:
    the names are written to ``segments.parquet``, which must not depend on the report language)."""
    names = {}
    for _, row in lift.iterrows():
        logs = np.log(row[features].astype(float).clip(lower=1e-9))
        top = logs.abs().sort_values(ascending=False).index[:2]
        level = {f: t(f"segment.cluster.level.{_level(logs[f])}", language=language) for f in top}
        parts = [t("segment.cluster.part", feature=t(f"column.{f}", language=language), level=level[f],
                   language=language) for f in top]  # fmt: skip
        names[row["cluster"]] = t("segment.cluster.separator", language=language).join(parts)
    return names


def _level(log_lift: float) -> str:
    """``high`` above the base's mean, else ``low`` (the id of the word in the text table)."""
    return "high" if log_lift > 0 else "low"
