"""The data-quality scorecard on hand-made tables and on the real data."""

from __future__ import annotations

import pandas as pd

from cp_toolkit.ingest.quality import scorecard


def _tables() -> dict[str, pd.DataFrame]:
    tx = pd.DataFrame(
        {
            "customer_id": ["a", "a", "b", "c"],
            "order_id": ["1", "1", "2", "2"],
            "ts": pd.to_datetime(["2020-01-01", "2020-01-01", "2020-01-02", "2020-01-03"]),
            "amount": [1.0, 2.0, 3.0, 4.0],
            "product_id": ["p", "q", "p", None],
        }
    )
    products = pd.DataFrame({"product_id": ["p"], "category": ["x"]})
    customers = pd.DataFrame({"customer_id": ["a", "z"], "age": ["30-39", None]})
    return {"transactions": tx, "products": products, "customers": customers}


def test_scorecard_hand_computed() -> None:
    accounting = {
        "transactions": {
            "rows_in": 10,
            "quarantined_by_reason": {"missing_customer_id": 1, "non_positive_amount": 2, "duplicate_row": 1},
        },
        "customers": {"rows_in": 2, "quarantined_by_reason": {}},
    }
    card = scorecard(_tables(), accounting, "2020-01-10").set_index(["table", "column", "dimension"])
    assert card.loc[("transactions", "product_id", "completeness"), "value"] == 0.75
    assert card.loc[("customers", "age", "completeness"), "flag"]
    assert card.loc[("transactions", "amount", "validity"), "value"] == 0.8
    # blanks that were set aside count against completeness of the rows in
    assert card.loc[("transactions", "customer_id", "completeness"), "value"] == 0.9
    assert card.loc[("transactions", "*", "uniqueness"), "value"] == 0.9
    # order 2 spans customers b and c on two days: 1 of 2 orders is consistent
    assert card.loc[("transactions", "order_id", "consistency"), "value"] == 0.5
    assert card.loc[("transactions", "product_id", "consistency"), "value"] == 0.5
    assert card.loc[("customers", "customer_id", "consistency"), "value"] == 0.5
    timeliness = card.loc[("transactions", "ts", "timeliness")]
    assert timeliness["value"] == 8.0 and timeliness["flag"]


def test_completejourney_scorecard(cj_run) -> None:
    card = pd.DataFrame(cj_run.load("quality")["scorecard"])
    flagged = card[card["flag"]]
    # only the two demographic columns with many blanks fall short
    assert sorted(flagged["column"]) == ["home_ownership", "marital_status"]
    assert set(card["dimension"]) == {"completeness", "validity", "uniqueness", "consistency", "timeliness"}
