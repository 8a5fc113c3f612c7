"""Next categories (cp_toolkit.prediction.categories): metrics and scores by hand, Complete Journey."""

from __future__ import annotations

import pandas as pd
import pytest

from cp_toolkit.ingest import ingest
from cp_toolkit.prediction import categories as C


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
    table = C.recommendation_table(model, k=2)
    assert list(table.columns) == ["customer_id", "rank", "category", "score"] and len(table) == 4


H = 90
TEST_CUTOFF = pd.Timestamp("2017-12-31") - pd.Timedelta(days=H)


@pytest.fixture(scope="module")
def journey():
    tables = ingest("completejourney", as_of="2017-12-31", key=b"k").tables
    return tables["transactions"], tables["products"]


def _journey(tx: pd.DataFrame, products: pd.DataFrame) -> dict:
    train_cutoff = TEST_CUTOFF - pd.Timedelta(days=H)
    settings, grid = C.select_recommender(
        C.category_blocks(tx, products, train_cutoff, H, 2), C.next_categories(tx, products, train_cutoff, H)
    )
    history = C.category_blocks(tx, products, TEST_CUTOFF, H, 3)
    actual = C.next_categories(tx, products, TEST_CUTOFF, H)
    model = C.CategoryRecommender(*settings).fit(history)
    metrics = {
        "model": C.ranking_metrics(model.top(5), actual),
        "popular": C.ranking_metrics(C.popular_ranking(history), actual),
        "own": C.ranking_metrics(C.own_ranking(history), actual),
    }
    return {"settings": settings, "metrics": metrics, "table": C.recommendation_table(model)}


def test_complete_journey_categories_against_both_baselines(journey):
    run = _journey(*journey)
    m = run["metrics"]
    print("\n", run["settings"], {k: {n: round(v, 4) for n, v in x.items()} for k, x in m.items()})
    assert run["settings"] == (4.0, float("inf"))  # chosen on the training cutoff only
    assert m["model"]["customers"] == m["popular"]["customers"] == m["own"]["customers"]
    assert m["model"]["precision"] > max(m["popular"]["precision"], m["own"]["precision"])
    assert m["model"]["precision"] == pytest.approx(0.7780, abs=1e-4)
    assert m["popular"]["precision"] == pytest.approx(0.7488, abs=1e-4)
    assert m["own"]["precision"] == pytest.approx(0.7028, abs=1e-4)
    assert run["table"]["rank"].tolist()[:3] == [1, 2, 3] and run["table"]["category"].ne("unknown").all()
    again = _journey(*journey)
    assert again["metrics"] == m
    pd.testing.assert_frame_equal(again["table"], run["table"])
