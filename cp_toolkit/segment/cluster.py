"""Behavioural clustering of customers: K-means with k chosen by silhouette among the k without a
cluster under the smallest size shown (small clusters merged when every k has one), a Gaussian mixture
for comparison, bootstrap stability (adjusted Rand index), lift profiles and a 2-D PCA view."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.metrics import adjusted_rand_score, pairwise_distances_argmin, silhouette_score
from sklearn.mixture import GaussianMixture
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from ..errors import DataError
from ..privacy import suppress_small_groups
from ..text import DEFAULT_LANGUAGE, t

__all__ = ["CLUSTER_FEATURES", "STABLE_ARI", "BehaviourClusters", "by_size", "cluster_labels", "cluster_names",
           "lift_table", "merge_small_clusters", "nearest"]  # fmt: skip

#: Behaviour columns of :func:`cp_toolkit.features.customer_features` the clusters are built on.
CLUSTER_FEATURES = ["recency_days", "frequency", "monetary", "avg_order_value", "avg_lines_per_order", "tenure_days"]


#: Mean bootstrap ARI from which clusters are called stable (0.8: "good" agreement in common practice).
STABLE_ARI = 0.8


class BehaviourClusters(BaseEstimator):
    """K-means on log-transformed, standardized behaviour, with k chosen by silhouette among the k
    whose clusters all hold ``min_cluster_size`` customers or more.

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
    min_cluster_size : int
        Smallest cluster kept: a k whose K-means solution has a smaller cluster is rejected, and
        when every k is, the small clusters of the best one are merged into their neighbours.
    """

    def __init__(
        self,
        k_range: tuple[int, int] = (2, 8),
        n_bootstrap: int = 20,
        silhouette_sample: int = 5000,
        random_state: int = 42,
        min_cluster_size: int = 1,
    ) -> None:
        self.k_range = k_range
        self.n_bootstrap = n_bootstrap
        self.silhouette_sample = silhouette_sample
        self.random_state = random_state
        self.min_cluster_size = min_cluster_size

    def _design(self, X: pd.DataFrame) -> np.ndarray:
        """log1p of the (non-negative) behaviour, then the scaler fitted in :meth:`fit`."""
        return self.scaler_.transform(np.log1p(X.clip(lower=0).fillna(0).to_numpy(dtype=float)))

    @threadpool_limits.wrap(limits=1)  # K-means on a few thousand rows: threads only wait on each other
    def fit(self, X: pd.DataFrame) -> BehaviourClusters:
        """Try every k in ``k_range`` and keep the best by silhouette among the accepted ones; returns ``self``.

        A k is accepted when every cluster of its K-means solution holds ``min_cluster_size``
        customers or more. When no k is, the best k by silhouette is taken and its clusters under
        ``min_cluster_size`` are merged into their neighbours (:func:`merge_small_clusters`); when
        that leaves fewer than two clusters, the next best k is tried (:meth:`_kept_centres`).
        Clusters are numbered by size, largest first.

        Raises :class:`~cp_toolkit.errors.DataError` when the customers show too few distinct
        behaviours for ``k_range[0] + 1`` clusters, or when fewer than two clusters of
        ``min_cluster_size`` remain after merging, from any k. Sets ``scores_`` (per k: inertia, silhouette,
        ``smallest`` cluster and whether it is ``accepted``), ``k_``, ``merged_`` (clusters merged
        away), ``centres_`` (the kept centroids, in the scaled space), ``labels_``, ``silhouette_``
        (of the kept clusters), ``agreement_`` (adjusted Rand index of a Gaussian mixture with
        ``k_`` components against the clusters), ``stability_`` (ARI of bootstrap refits against
        the clusters: mean and minimum; :meth:`_stability`) and ``pca_``.
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
        fits = self._fit_each_k(Z, min(self.k_range[1], len(Z) - 1, distinct - 1))
        self.k_fit_, centres = self._kept_centres(Z, fits)
        self.centres_ = by_size(Z, centres)
        self.k_, self.merged_ = len(self.centres_), self.k_fit_ - len(self.centres_)
        labels = nearest(Z, self.centres_)
        self.silhouette_ = float(silhouette_score(Z, labels, **self._silhouette_sample(Z)))
        mixture = GaussianMixture(self.k_, n_init=3, random_state=self.random_state).fit(Z)
        self.agreement_ = float(adjusted_rand_score(labels, mixture.predict(Z)))
        self.stability_ = self._stability(Z, labels)
        self.pca_ = PCA(2, random_state=self.random_state).fit(Z)
        self.labels_ = self.predict(X)
        return self

    def _silhouette_sample(self, Z: np.ndarray) -> dict[str, int]:
        """The sample size and seed of every silhouette (the same customers for every k)."""
        return {"sample_size": min(self.silhouette_sample, len(Z)), "random_state": self.random_state}

    def _fit_each_k(self, Z: np.ndarray, k_max: int) -> dict[int, KMeans]:
        """K-means for each k from ``k_range[0]`` to ``k_max``; sets ``scores_`` (k, inertia,
        silhouette, size of the smallest cluster, accepted)."""
        fits, rows = {}, []
        for k in range(self.k_range[0], k_max + 1):
            fits[k] = KMeans(n_clusters=k, n_init=10, random_state=self.random_state).fit(Z)
            smallest = int(np.bincount(fits[k].labels_, minlength=k).min())
            silhouette = silhouette_score(Z, fits[k].labels_, **self._silhouette_sample(Z))
            rows.append({"k": k, "inertia": fits[k].inertia_, "silhouette": silhouette, "smallest": smallest,
                         "accepted": smallest >= self.min_cluster_size})  # fmt: skip
        self.scores_ = pd.DataFrame(rows).set_index("k")
        return fits

    def _kept_centres(self, Z: np.ndarray, fits: dict[int, KMeans]) -> tuple[int, np.ndarray]:
        """The k kept and its centroids: the accepted k of highest silhouette; when no k is accepted,
        the k of highest silhouette whose small clusters merge into two or more, its merged centroids
        (a lone outlier is a cluster of one at every k; merged at the best k, often k = 2, it would
        leave a single cluster, while a larger k still holds two groups or more)."""
        accepted = self.scores_[self.scores_["accepted"]]
        ranked = (accepted if len(accepted) else self.scores_)["silhouette"].sort_values(ascending=False, kind="stable")
        problem: DataError | None = None
        for k in ranked.index:
            try:
                return int(k), merge_small_clusters(Z, fits[k].cluster_centers_, self.min_cluster_size)
            except DataError as err:
                problem = problem or err  # the message of the best k
        raise DataError(f"{problem}, whichever k from {ranked.index.min()} to {ranked.index.max()} it starts from")

    def _stability(self, Z: np.ndarray, labels: np.ndarray) -> dict[str, float]:
        """Refit K-means on bootstrap samples and compare its labels of every customer with the clusters.

        Like is compared with like: each refit has as many clusters as the K-means solution the
        clusters came from (``k_fit_``), and each refit cluster is mapped to the kept centroid
        nearest its own centroid, as the merge maps a small cluster to its neighbour. Without a
        merge the mapping is one to one and the ARI is that of the refit's own labels.
        """
        rng = np.random.default_rng(self.random_state)
        scores = []
        for b in range(self.n_bootstrap):
            idx = rng.integers(0, len(Z), len(Z))
            refit = KMeans(n_clusters=self.k_fit_, n_init=10, random_state=self.random_state + b + 1).fit(Z[idx])
            mapped = nearest(refit.cluster_centers_, self.centres_)[refit.predict(Z)]
            scores.append(adjusted_rand_score(labels, mapped))
        return {"ari_mean": float(np.mean(scores)), "ari_min": float(np.min(scores)), "samples": self.n_bootstrap}

    def summary(self) -> dict[str, object]:
        """The chosen k, its silhouette, the bootstrap ARI, the Gaussian-mixture ARI, the smallest
        cluster allowed and the number of clusters merged away to respect it."""
        return {
            "k": self.k_,
            "silhouette": self.silhouette_,
            "bootstrap_ari": self.stability_,
            "gaussian_mixture_ari": self.agreement_,
            "min_cluster_size": self.min_cluster_size,
            "merged": self.merged_,
        }

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Cluster of each customer: the nearest kept centroid."""
        return nearest(self._design(X[self.columns_]), self.centres_)

    def pca_view(self, X: pd.DataFrame) -> pd.DataFrame:
        """The customers on the first two principal components, with their cluster (``C1``, ...)."""
        Z = self._design(X[self.columns_])
        xy = self.pca_.transform(Z)
        clusters = cluster_labels(pd.Series(nearest(Z, self.centres_), index=X.index))
        return pd.DataFrame({"pc1": xy[:, 0], "pc2": xy[:, 1], "cluster": clusters})


def nearest(Z: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Index of the centre nearest each row of ``Z`` (Euclidean; the first on a tie)."""
    return pairwise_distances_argmin(Z, centres)


def merge_small_clusters(Z: np.ndarray, centres: np.ndarray, min_size: int) -> np.ndarray:
    """Centroids whose nearest-centroid clusters all hold ``min_size`` rows or more.

    Repeatedly the smallest cluster under ``min_size`` is dropped: its members go to the nearest
    remaining centroid, and each centroid becomes the mean of its members, old and new.

    Parameters
    ----------
    Z : ndarray
        The rows (customers) in the space of the centroids.
    centres : ndarray
        The starting centroids, one row each.
    min_size : int
        Smallest cluster kept.

    Returns
    -------
    ndarray
        The kept centroids (as many as ``centres`` when no cluster is under ``min_size``).

    Raises
    ------
    DataError
        When fewer than two clusters of ``min_size`` remain.
    """
    centres = np.asarray(centres, dtype=float)
    while True:
        labels = nearest(Z, centres)
        sizes = np.bincount(labels, minlength=len(centres))
        if sizes.min() >= min_size:
            return centres
        if len(centres) <= 2:
            raise DataError(
                f"the customers do not form two behavioural clusters of {min_size} or more: merging every smaller "
                f"cluster into its nearest neighbour leaves {len(centres) - 1}; lower min_group_size (the smallest "
                "cluster shown) or read the RFM segments alone"
            )
        small = int(np.lexsort((np.arange(len(sizes)), sizes))[0])  # the smallest; the first on a tie
        kept = np.delete(np.arange(len(centres)), small)
        moved = labels == small
        labels[moved] = kept[nearest(Z[moved], centres[kept])]
        centres = np.vstack([Z[labels == c].mean(axis=0) if (labels == c).any() else centres[c] for c in kept])


def by_size(Z: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """The centroids ordered by the size of their nearest-centroid cluster, largest first (ties in
    the order of the centroids' coordinates), so that cluster 0 is the largest in every run."""
    sizes = np.bincount(nearest(Z, centres), minlength=len(centres))
    order = np.lexsort((*centres.T[::-1], -sizes))
    return centres[order]


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
