"""Behavioural clusters recover planted groups, deterministically; migration between two months adds up."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from cp_toolkit import RunFolder, ensure
from cp_toolkit.errors import DataError
from cp_toolkit.segment import CLUSTER_FEATURES, BehaviourClusters, lift_table, migration, run_stage
from cp_toolkit.segment.cluster import by_size, merge_small_clusters, nearest


def planted(seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Three groups of 300 customers whose behaviour differs by factors of 2.5 to 20 per feature."""
    rng = np.random.default_rng(seed)
    centres = np.log([[10, 30, 3000, 100, 3, 700], [300, 2, 60, 30, 3, 100], [60, 3, 2000, 700, 60, 700]])
    truth = np.repeat([0, 1, 2], 300)
    values = np.exp(centres[truth] + rng.normal(0, 0.25, (len(truth), len(CLUSTER_FEATURES))))
    return pd.DataFrame(values, columns=CLUSTER_FEATURES), truth


def test_recovers_planted_groups() -> None:
    X, truth = planted()
    model = BehaviourClusters(n_bootstrap=5).fit(X)
    assert model.k_ == 3
    assert adjusted_rand_score(truth, model.labels_) >= 0.9
    assert model.stability_["ari_mean"] >= 0.9 and model.agreement_ >= 0.9
    assert model.scores_["silhouette"].idxmax() == 3 and list(model.scores_.index) == list(range(2, 9))


def test_deterministic_under_a_seed() -> None:
    X, _ = planted(1)
    one, two = (BehaviourClusters(n_bootstrap=3, random_state=7).fit(X) for _ in range(2))
    assert (one.labels_ == two.labels_).all() and one.stability_ == two.stability_
    pd.testing.assert_frame_equal(one.scores_, two.scores_)


def test_customer_order_does_not_matter() -> None:
    """Pseudonyms from another key reorder the customers; the clusters and checks stay the same."""
    X, _ = planted(2)
    shuffled = X.sample(frac=1, random_state=3)
    one, two = (BehaviourClusters(n_bootstrap=3).fit(data) for data in (X, shuffled))
    assert adjusted_rand_score(one.labels_, pd.Series(two.labels_, index=shuffled.index)[X.index]) == 1.0
    assert one.stability_ == two.stability_ and one.agreement_ == two.agreement_
    pd.testing.assert_frame_equal(one.scores_, two.scores_)


def with_outliers(seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Three groups of 200 customers (as :func:`planted`) and two customers far from all of them."""
    rng = np.random.default_rng(seed)
    centres = np.log([[10, 30, 3000, 100, 3, 700], [300, 2, 60, 30, 3, 100], [60, 3, 2000, 700, 60, 700]])
    truth = np.repeat([0, 1, 2], 200)
    values = np.exp(centres[truth] + rng.normal(0, 0.25, (len(truth), len(CLUSTER_FEATURES))))
    far = [[5000, 900, 1e6, 1e5, 900, 5000], [1, 900, 1, 1e5, 1, 1]]
    return pd.DataFrame(np.vstack([values, far]), columns=CLUSTER_FEATURES), truth


def test_no_cluster_under_the_minimum_size() -> None:
    """Without a minimum, the two outliers form clusters of one customer each; with one of 10, every
    k that has such a cluster is rejected and the three planted groups come back."""
    X, truth = with_outliers()
    free = BehaviourClusters(n_bootstrap=3).fit(X)
    assert free.scores_["smallest"].min() == 1 and np.bincount(free.labels_).min() == 1  # what the minimum prevents
    model = BehaviourClusters(n_bootstrap=3, min_cluster_size=10).fit(X)
    sizes = np.bincount(model.labels_)
    assert model.k_ == 3 and sizes.min() >= 10 and (np.diff(sizes) <= 0).all()  # numbered largest first
    assert adjusted_rand_score(truth, model.labels_[:600]) >= 0.9
    assert (model.labels_ == model.predict(X)).all()
    scores = model.scores_
    assert (scores["accepted"] == (scores["smallest"] >= 10)).all() and scores["accepted"].dtype == bool
    assert model.k_ == scores.loc[scores["accepted"], "silhouette"].idxmax() != scores["silhouette"].idxmax()
    summary = model.summary()
    assert summary["merged"] == 0 and summary["min_cluster_size"] == 10 and summary["k"] == 3
    assert model.stability_["ari_mean"] >= 0.9


def test_small_clusters_are_merged_when_every_k_has_one() -> None:
    """k = 5 and 6 both split off the outliers: the best of them is kept, and its small clusters
    are merged into their nearest neighbours until none is under the minimum."""
    X, truth = with_outliers()
    model = BehaviourClusters(k_range=(5, 6), n_bootstrap=3, min_cluster_size=10).fit(X)
    assert not model.scores_["accepted"].any()
    sizes = np.bincount(model.labels_)
    assert sizes.min() >= 10 and len(sizes) == model.k_ and (np.diff(sizes) <= 0).all()
    assert model.summary()["merged"] == model.k_fit_ - model.k_ >= 2
    assert (model.labels_ == model.predict(X)).all()
    assert adjusted_rand_score(truth, model.labels_[:600]) >= 0.9
    assert model.stability_["ari_mean"] >= 0.9  # refits are mapped to the kept centroids: like with like


def test_a_lone_outlier_does_not_leave_a_single_cluster() -> None:
    """Two groups of 40 and one customer far away: k = 2 (the outlier against the rest) has the best
    silhouette, but merging its cluster of one leaves a single cluster; the next best, k = 3, merges
    into the two planted groups."""
    rng = np.random.default_rng(0)
    centres = np.log([[10, 30, 3000, 100, 3, 700], [300, 2, 60, 30, 3, 100]])
    truth = np.repeat([0, 1], 40)
    values = np.exp(centres[truth] + rng.normal(0, 0.25, (80, len(CLUSTER_FEATURES))))
    X = pd.DataFrame(np.vstack([values, [[1e6, 1e5, 1e9, 1e8, 1e4, 1e6]]]), columns=CLUSTER_FEATURES)
    model = BehaviourClusters(k_range=(2, 4), n_bootstrap=3, min_cluster_size=10).fit(X)
    assert model.scores_["silhouette"].idxmax() == 2 and not model.scores_["accepted"].any()
    assert model.k_fit_ == 3 and model.k_ == 2 and model.merged_ == 1
    assert np.bincount(model.labels_).min() >= 10 and adjusted_rand_score(truth, model.labels_[:80]) == 1.0


def test_too_few_clusters_after_merging_is_a_data_error() -> None:
    X, _ = with_outliers()
    with pytest.raises(DataError, match="do not form two behavioural clusters of 500 or more.*whichever k from 2 to 8"):
        BehaviourClusters(n_bootstrap=1, min_cluster_size=500).fit(X)


def test_merging_by_hand() -> None:
    """Rows on a line: clusters {0, 1}, {10, 11, 12} and {30}. The single row is the smallest cluster
    under 2: it joins its nearest centroid (11), which becomes the mean of 10, 11, 12 and 30."""
    Z = np.array([[0.0], [1.0], [10.0], [11.0], [12.0], [30.0]])
    kept = merge_small_clusters(Z, np.array([[0.5], [11.0], [30.0]]), 2)
    assert kept.ravel().tolist() == [0.5, 15.75]
    assert by_size(Z, kept).ravel().tolist() == [15.75, 0.5]  # the larger cluster first
    assert nearest(Z, kept).tolist() == [0, 0, 1, 1, 1, 1]


def test_lift_profiles_and_suppression() -> None:
    X, truth = planted()
    lift = lift_table(X, pd.Series(truth), min_group_size=301)
    assert lift["suppressed"].all() and lift["frequency"].isna().all()  # every group has 300 < 301
    lift = lift_table(X, pd.Series(truth), min_group_size=10).set_index("cluster")
    assert lift.loc["C1", "frequency"] > 1.5 > 0.5 > lift.loc["C2", "frequency"]
    assert lift["customers"].sum() == 900 and lift["customer_share"].sum() == pytest.approx(1)


def test_migration_rows_add_up_to_the_earlier_counts() -> None:
    before = pd.DataFrame(
        {"rfm_segment": ["A"] * 12 + ["B"] * 5 + ["C"] * 3, "monetary": 10.0}, index=[f"c{i}" for i in range(20)]
    )
    after = pd.DataFrame(
        {"rfm_segment": ["A"] * 10 + ["B"] * 7 + ["A"] * 4, "monetary": 20.0},
        index=[f"c{i}" for i in range(17)] + ["n1", "n2", "n3", "n4"],
    )
    m = migration(before, after, min_group_size=3)
    counts = m["counts"]
    assert counts.drop(index="(new)").sum(axis=1).to_dict() == {"A": 12, "B": 5, "C": 3}
    assert counts.loc["(new)", "A"] == 4 and counts.loc["C", "(lapsed)"] == 3
    shown = m["shown"]
    assert np.isnan(shown.loc["A", "B"]) and shown.loc["A", "A"] == 10  # 2 moves < 3: blank
    # A's total is known (12), so its smallest other cell, A -> (lapsed) = 0, is blanked as well;
    # then column B gets (new) -> B and column (lapsed) gets (new) -> (lapsed), both 0
    assert shown.isna().sum().sum() == 4 and np.isnan(shown.loc["A", "(lapsed)"])
    assert np.isnan(shown.loc["(new)", "B"]) and np.isnan(shown.loc["(new)", "(lapsed)"])
    assert shown.loc["B", "A"] == 0 and m["row_shares"].loc["B", "A"] == 0  # no move is no secret
    flows = m["flows"].loc["A"]
    assert flows[["earlier", "now", "stayed", "entered", "left", "new"]].tolist() == [12, 14, 10, 4, 2, 4]
    assert pd.isna(flows["lapsed"]) and str(flows.dtype) == "Int64"  # a hidden cell
    assert m["revenue"].loc["(new)", "A"] == 80.0 and m["revenue"].loc["A", "A"] == 100.0


def test_two_consecutive_months_show_the_migration(tmp_path) -> None:
    november = RunFolder(tmp_path / "2017-11-30_default")
    november.record_params({"as_of": "2017-11-30"})
    earlier = ensure(november, "segments")
    december = RunFolder(tmp_path / "2017-12-31_default")
    december.record_params({"as_of": "2017-12-31"})
    ensure(december, "orders")
    result = run_stage(december, as_of="2017-12-31")
    assert result.migration_note == "compared with the run as of 2017-11-30 (2017-11-30_default)"
    counts = result.migration["counts"]
    by_segment = earlier["rfm_segment"].value_counts()
    assert counts.drop(index="(new)", errors="ignore").sum(axis=1).to_dict() == by_segment.to_dict()
    assert counts.sum().sum() == len(result.segments)  # no one lapses: the data keep every customer
    shown = result.migration["shown"]
    assert (shown.isna() >= ((counts > 0) & (counts < 10))).all().all() and (shown == 0).any().any()
    # no row or column has a single blank, which its known total would give away
    assert not (shown.isna().sum(axis=0) == 1).any() and not (shown.isna().sum(axis=1) == 1).any()


def test_runs_with_different_keys_show_no_migration(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pseudonyms of two keys never match: the stage says so instead of showing everyone as lapsed."""
    from cp_toolkit import segment

    earlier = RunFolder(tmp_path / "2017-11-30_default")
    earlier.record_params({"as_of": "2017-11-30"})
    ensure(earlier, "segments")
    december = RunFolder(tmp_path / "2017-12-31_default")
    december.record_params({"as_of": "2017-12-31"})
    ensure(december, "orders")
    renamed = earlier.load("segments").assign(customer_id=lambda d: "x" + d["customer_id"])
    earlier.save("segments", renamed)
    with pytest.warns(UserWarning, match="different pseudonymization keys"):
        result = segment.run_stage(december, as_of="2017-12-31")
    assert result.migration == {} and result.migration_note.startswith("only 0% of the customers")
