"""Model-agnostic evaluation and the operating point (issue 12, items 4 and 5): hand-computed
gains, lift, reliability bins and profit curve; a paired bootstrap that finds a real difference
and no difference between identical scorers; the contact grid's sums and suppression."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cp_toolkit.errors import DataError
from cp_toolkit.predict.evaluation import (
    classification_metrics,
    gains_table,
    paired_bootstrap,
    reliability_table,
    top_decile_lift,
)
from cp_toolkit.predict.operating import (
    assign_bands,
    best_contact_count,
    contact_grid,
    contact_list,
    profit_curve,
)

#: 20 customers ranked by score (20 = highest first); 6 positives, base rate 0.3.
Y_RANKED = [1, 1, 1, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0]


def test_gains_and_lift_on_20_customers_by_hand() -> None:
    score = np.arange(20, 0, -1)
    shuffle = np.random.default_rng(0).permutation(20)  # the row order does not matter
    table = gains_table(np.array(Y_RANKED)[shuffle], score[shuffle])
    assert table["decile"].tolist() == list(range(10, 0, -1))
    assert table["customers"].tolist() == [2] * 10
    assert table["positives"].tolist() == [2, 1, 1, 0, 1, 0, 0, 0, 1, 0]
    assert table["lift"].tolist() == pytest.approx([1 / 0.3, 0.5 / 0.3, 0.5 / 0.3, 0, 0.5 / 0.3, 0, 0, 0, 0.5 / 0.3, 0])
    assert table["gains"].tolist() == pytest.approx([2 / 6, 3 / 6, 4 / 6, 4 / 6, 5 / 6, 5 / 6, 5 / 6, 5 / 6, 1, 1])
    assert table["customer_share"].tolist() == pytest.approx([0.1 * k for k in range(1, 11)])
    assert table["cumulative_lift"].iloc[:3].tolist() == pytest.approx([10 / 3, 2.5, (4 / 6) / 0.3])
    assert table["cumulative_lift"].iloc[-1] == pytest.approx(1.0)
    assert top_decile_lift(Y_RANKED, score) == pytest.approx(10 / 3)


def test_tied_scores_share_their_outcome() -> None:
    """A constant score has lift 1 in every decile, whatever the row order; a tie straddling two
    deciles splits its positives between them."""
    flat = gains_table(Y_RANKED, np.zeros(20))
    assert flat["positives"].tolist() == pytest.approx([0.6] * 10) and flat["lift"].tolist() == pytest.approx([1] * 10)
    score = np.r_[3, 2, 2, 1, np.zeros(16)]  # ranks 2-3 tie across deciles 10 and 9: outcomes 1 and 1
    y = np.r_[0, 1, 0, 1, np.zeros(16)]  # the tie holds one positive of two: 0.5 each
    table = gains_table(y, score)
    assert table["positives"].iloc[:2].tolist() == pytest.approx([0.5, 1.5])


def test_gains_refuse_data_without_positives() -> None:
    with pytest.raises(DataError, match="no positive outcome"):
        gains_table(np.zeros(20), np.arange(20))


def test_reliability_bins_by_hand() -> None:
    p = [0.1, 0.1, 0.2, 0.2, 0.7, 0.8, 0.9, 0.9]
    y = [0, 0, 0, 1, 1, 0, 1, 1]
    uniform = reliability_table(y, p, n_bins=5, strategy="uniform")
    assert uniform["bin"].tolist() == [1, 2, 4, 5]  # bin 3 (0.4 to 0.6) is empty and left out
    assert uniform["customers"].tolist() == [2, 2, 1, 3]
    assert uniform["observed_rate"].tolist() == pytest.approx([0, 0.5, 1, 2 / 3])
    assert uniform["mean_predicted"].tolist() == pytest.approx([0.1, 0.2, 0.7, 2.6 / 3])
    assert uniform["p_low"].tolist() == pytest.approx([0, 0.2, 0.6, 0.8])
    halves = reliability_table(y, p, n_bins=2)  # quantile edges: 0.1, 0.45, 0.9
    assert halves["customers"].tolist() == [4, 4] and halves["observed_rate"].tolist() == [0.25, 0.75]
    assert halves["p_high"].tolist() == pytest.approx([0.45, 0.9])


def test_classification_metrics_by_hand() -> None:
    m = classification_metrics([0, 0, 1, 1], [0.1, 0.6, 0.4, 0.8])
    assert m["roc_auc"] == pytest.approx(0.75)  # 3 of 4 (positive, negative) pairs in order
    assert m["average_precision"] == pytest.approx((1 + 2 / 3) / 2)
    assert m["brier"] == pytest.approx((0.01 + 0.36 + 0.36 + 0.04) / 4)
    assert m["base_rate"] == 0.5 and m["customers"] == 4
    with pytest.raises(DataError, match="need both outcomes"):
        classification_metrics([1, 1, 1], [0.2, 0.3, 0.4])


@pytest.fixture(scope="module")
def outcomes() -> tuple[np.ndarray, np.ndarray]:
    """400 customers, 30 % positive, and a random score."""
    rng = np.random.default_rng(7)
    return (rng.random(400) < 0.3).astype(int), rng.random(400)


@pytest.mark.parametrize("metric", ["roc_auc", "average_precision"])
def test_bootstrap_of_identical_scorers_contains_zero(outcomes, metric: str) -> None:
    y, score = outcomes
    out = paired_bootstrap(y, score, score.copy(), metric, n=200, seed=1)
    assert out["difference"] == 0 and out["low"] <= 0 <= out["high"] and out["resamples"] == 200


@pytest.mark.parametrize("metric", ["roc_auc", "average_precision"])
def test_bootstrap_of_perfect_against_random_excludes_zero(outcomes, metric: str) -> None:
    y, score = outcomes
    out = paired_bootstrap(y, y + 0.01 * score, score, metric, n=200, seed=1)
    assert out["a"] == pytest.approx(1.0) and 0 < out["low"] <= out["difference"] <= out["high"]
    assert out == paired_bootstrap(y, y + 0.01 * score, score, metric, n=200, seed=1)  # seeded


def test_bootstrap_of_mae_finds_the_better_prediction() -> None:
    rng = np.random.default_rng(3)
    spend = rng.gamma(2.0, 50.0, 300)
    close, far = spend + rng.normal(0, 5, 300), spend + rng.normal(0, 40, 300)
    out = paired_bootstrap(spend, close, far, "mae", n=200, seed=2)
    assert out["metric"] == "mae" and out["low"] <= out["difference"] <= out["high"] < 0  # a: lower error
    same = paired_bootstrap(spend, close, close, "mae", n=50, seed=2)
    assert same["low"] == same["high"] == 0


def test_profit_curve_and_best_n_on_5_customers_by_hand() -> None:
    p = pd.Series([0.5, 0.1, 0.8, 0.3, 0.9], index=list("abcde"))
    value = [100, 200, 50, 20, 10]
    # expected saving p x value x margin 0.5 x save rate 0.2: a 5, b 2, c 4, d 0.6, e 0.9
    curve = profit_curve(p, value, margin=0.5, contact_cost=2.0, save_rate=0.2)
    assert curve["customer"].tolist() == ["a", "c", "b", "e", "d"]
    assert curve["saved_value"].tolist() == pytest.approx([5, 9, 11, 11.9, 12.5])
    assert curve["cost"].tolist() == [2, 4, 6, 8, 10]
    assert curve["profit"].tolist() == pytest.approx([3, 5, 5, 3.9, 2.5])
    assert best_contact_count(curve, contact_share=1.0) == 2  # 2 and 3 tie at 5: the fewer contacts
    assert best_contact_count(curve, contact_share=0.2) == 1  # at most 1 of 5
    assert best_contact_count(curve, contact_share=1.0, contact_budget=3.0) == 1  # one contact of cost 2
    assert contact_list(curve, 2).tolist() == ["a", "c"]
    dear = profit_curve(p, value, margin=0.5, contact_cost=6.0, save_rate=0.2)
    assert dear["profit"].max() < 0 and best_contact_count(dear, contact_share=1.0) == 0


def _grid_customers() -> tuple[np.ndarray, np.ndarray]:
    """40 low risk x low value, 30 low x high, 27 high x low, 3 high x high."""
    cells = [(0.1, 50.0, 40), (0.2, 500.0, 30), (0.7, 20.0, 27), (0.9, 1000.0, 3)]
    p = np.concatenate([[r] * n for r, _, n in cells])
    v = np.concatenate([[x] * n for _, x, n in cells])
    return p, v


def test_contact_grid_sums_and_suppression() -> None:
    p, v = _grid_customers()
    full = contact_grid(p, v, risk_bands=(0, 0.5, 1), value_bands=(0, 100, np.inf), min_group_size=1)
    assert full[["risk_band", "value_band"]].values.tolist() == [[1, 1], [1, 2], [2, 1], [2, 2]]
    assert full["customers"].tolist() == [40, 30, 27, 3] and full["customers"].sum() == 100
    assert full["value"].tolist() == pytest.approx([2000, 15000, 540, 3000])
    assert full["revenue_at_stake"].sum() == pytest.approx((p * v).sum())
    assert full["revenue_at_stake"].tolist() == pytest.approx([200, 3000, 378, 2700])
    assert not full["suppressed"].any()
    shown = contact_grid(p, v, risk_bands=(0, 0.5, 1), value_bands=(0, 100, np.inf), min_group_size=10)
    # the cell of 3 is hidden, and with it the smallest cell shown (27), or 100 - 40 - 30 would give it away
    assert shown["suppressed"].tolist() == [False, False, True, True]
    assert shown["customers"].iloc[:2].tolist() == [40, 30] and shown["customers"].iloc[2:].isna().all()
    assert shown["revenue_at_stake"].iloc[2:].isna().all() and shown["risk_band"].tolist() == [1, 1, 2, 2]


def test_quantile_bands_hide_the_extremes() -> None:
    band, edges = assign_bands([1.0, 2.0, 3.0, 4.0, 100.0], 2)
    assert band.tolist() == [1, 1, 2, 2, 2] and edges.tolist() == [-np.inf, 3.0, np.inf]
    band, edges = assign_bands([5.0, 5.0, 5.0], 4)  # all equal: one band
    assert band.tolist() == [1, 1, 1] and edges.tolist() == [-np.inf, np.inf]


def test_plots_draw_the_tables_with_the_texts_of_the_table() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cp_toolkit import plots
    from cp_toolkit.text import labels

    score = np.arange(20, 0, -1)
    gains = {"model": gains_table(Y_RANKED, score), "recency rule": gains_table(Y_RANKED, np.zeros(20))}
    ax = plots.gains_chart(gains, **labels("plots.gains_chart"))
    assert [line.get_label() for line in ax.get_lines()] == [
        "model (top-decile lift 3.3)",
        "recency rule (top-decile lift 1.0)",
        "random order",
    ]
    assert ax.get_lines()[0].get_ydata()[:3].tolist() == pytest.approx([0, 2 / 6, 3 / 6])  # from (0, 0)
    p = [0.1, 0.1, 0.2, 0.2, 0.7, 0.8, 0.9, 0.9]
    ax = plots.reliability_diagram({"model": reliability_table([0, 0, 0, 1, 1, 0, 1, 1], p, 5, "uniform")},
                                   **labels("plots.reliability_diagram"))  # fmt: skip
    assert ax.get_lines()[0].get_xdata().tolist() == pytest.approx([0.1, 0.2, 0.7, 2.6 / 3])
    curve = profit_curve(pd.Series([0.5, 0.1, 0.8, 0.3, 0.9]), [100, 200, 50, 20, 10], 0.5, 2.0, 0.2)
    ax = plots.profit_curve(curve, 2, 4, **labels("plots.profit_curve", currency="USD"))
    assert ax.get_legend_handles_labels()[1] == [
        "best: 2 customers, 5 USD",
        "most allowed by the contact share or budget: 4",
    ]
    assert ax.get_ylabel() == "expected profit (USD)" and ax.get_lines()[0].get_ydata()[:3].tolist() == [0, 3, 5]
    assert plots.gains_chart({}, **labels("plots.gains_chart")) is None
    plt.close("all")


@pytest.mark.parametrize("seed", range(5))
def test_fast_auc_and_average_precision_equal_scikit_learn(seed: int) -> None:
    """The bootstrap's own ROC AUC and average precision give scikit-learn's values, ties included."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    from cp_toolkit.predict.evaluation import rank_auc, step_average_precision

    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 300)
    for score in (rng.random(300), rng.integers(0, 7, 300).astype(float), y + rng.normal(0, 1, 300)):
        assert rank_auc(y, score) == pytest.approx(roc_auc_score(y, score), abs=1e-12)
        assert step_average_precision(y, score) == pytest.approx(average_precision_score(y, score), abs=1e-12)


def test_reliability_of_one_probability_for_all_is_one_bin() -> None:
    table = reliability_table([0, 1, 1, 0], [0.4, 0.4, 0.4, 0.4])
    assert table[["customers", "mean_predicted", "observed_rate"]].values.tolist() == [[4, 0.4, 0.5]]


def test_contact_limit_by_share_and_budget() -> None:
    from cp_toolkit.predict.operating import contact_limit

    assert contact_limit(2_469, 0.2) == 493 and contact_limit(2_469, 0.2, 100.0, 1.0) == 100
    assert contact_limit(10, 1.0, 25.0, 2.0) == 10 and contact_limit(10, 0.5, None, 3.0) == 5


def test_bootstrap_by_weights_equals_the_resampled_rows() -> None:
    """A named metric computed from resample counts gives what the metric gives on the resampled rows."""
    from sklearn.metrics import average_precision_score, mean_absolute_error, roc_auc_score

    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, 200)
    a, b = y + rng.normal(0, 1, 200), np.round(rng.normal(0, 1, 200), 1)  # ties in b
    for name, fn in (("roc_auc", roc_auc_score), ("average_precision", average_precision_score),
                     ("mae", mean_absolute_error)):  # fmt: skip
        fast, slow = paired_bootstrap(y, a, b, name, 50, 3), paired_bootstrap(y, a, b, fn, 50, 3)
        assert fast["resamples"] == slow["resamples"] and (fast["low"], fast["high"]) == pytest.approx(
            (slow["low"], slow["high"]), abs=1e-12
        )
