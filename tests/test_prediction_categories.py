"""Next categories (cp_toolkit.predict.categories): metrics and scores by hand, Complete Journey."""

from __future__ import annotations

import pandas as pd
import pytest

from cp_toolkit.predict import categories as C


def test_ranking_metrics_by_hand():
    top = pd.DataFrame(
        {
            "customer_id": ["a"] * 5 + ["b"] * 5 + ["c"] * 5,
            "rank": [1, 2, 3, 4, 5] * 3,
            "category": list("vwxyz") + list("vwxyz") + list("vwxyz"),
        }
    )
    actual = pd.DataFrame({"customer_id": ["a", "a", "a", "b", "b", "d"], "category": ["v", "w", "q", "q", "r", "v"]})
    m = C.ranking_metrics(top, actual, k=5)
    # a: 2 of 5 hit, 2 of 3 bought; b: none; c bought nothing and d has no recommendations: not counted
    assert m["customers"] == 2
    assert m["precision"] == pytest.approx((2 / 5 + 0) / 2)
    assert m["recall"] == pytest.approx((2 / 3 + 0) / 2)
    assert m["hit_rate"] == pytest.approx(0.5)
    assert C.ranking_metrics(top, actual, k=1)["precision"] == pytest.approx(0.5)


def _history() -> pd.DataFrame:
    rows = [
        ("a", "milk", 0, 5.0),
        ("a", "milk", 1, 5.0),
        ("a", "tea", 1, 50.0),
        ("b", "milk", 0, 1.0),
        ("b", "jam", 0, 2.0),
    ]
    return pd.DataFrame(rows, columns=["customer_id", "category", "block", "revenue"])


def test_recommender_scores_by_hand():
    history = _history()
    assert C.popularity_ranking(history).to_dict() == {"milk": 1.0, "jam": 0.5}  # block 0 buyers: a, b
    model = C.CategoryRecommender(prior_strength=1.0, half_life=1.0).fit(history)
    # weights 1 and 0.5; a: milk (1 + 0.5 + 1 * 1) / 2.5, tea (0.5 + 0) / 2.5, jam (0 + 0.5) / 2.5
    scores = pd.DataFrame(model.scores_, index=model.customers_, columns=model.categories_)
    assert scores.loc["a"].to_dict() == pytest.approx({"jam": 0.2, "milk": 1.0, "tea": 0.2})
    top = model.top(3)
    assert top[top["customer_id"] == "a"]["category"].tolist() == ["milk", "jam", "tea"]  # tie: jam more popular
    own = C.own_ranking(history, k=2)
    assert own[own["customer_id"] == "a"]["category"].tolist() == ["tea", "milk"]  # by revenue 50 > 10
    assert C.popular_ranking(history, k=2)["category"].tolist() == ["milk", "jam"] * 2
    table = C.recommendation_table(model.top(2))
    assert list(table.columns) == ["customer_id", "rank", "category", "score"] and len(table) == 4
