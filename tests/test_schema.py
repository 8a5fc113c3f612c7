"""The canonical schema (pandera) on broken tables and on every real dataset's ingest."""

from __future__ import annotations

import pandas as pd
import pytest

from cp_toolkit.errors import SchemaError
from cp_toolkit.ingest.schema import validate_tables


def test_every_failed_check_is_named() -> None:
    tx = pd.DataFrame(
        {
            "customer_id": pd.array(["a", None], dtype="string"),
            "order_id": pd.array(["1", "2"], dtype="string"),
            "ts": pd.to_datetime(["2020-01-01", "2020-01-02"]),
            "amount": [1.0, -2.0],
        }
    )
    customers = pd.DataFrame({"customer_id": pd.array(["a", "a"], dtype="string")})
    with pytest.raises(SchemaError) as err:
        validate_tables({"transactions": tx, "customers": customers})
    text = str(err.value)
    assert "transactions.customer_id: not_nullable fails on 1 row(s) (table row 1: <NA>)" in text
    assert "transactions.amount: greater_than_or_equal_to(0) fails on 1 row(s) (table row 1: -2.0)" in text
    assert "customers.customer_id: field_uniqueness fails on 2 row(s)" in text


def test_wrongly_typed_tables_are_refused() -> None:
    tx = pd.DataFrame({"customer_id": ["a"], "order_id": ["1"], "ts": ["2020-01-01"], "amount": [1.0]})
    with pytest.raises(SchemaError, match=r"transactions.ts: dtype\('datetime64\[ns\]'\)"):
        validate_tables({"transactions": tx})


def test_default_run_tables_hold_the_schema(cj_run) -> None:
    validate_tables({name: cj_run.load(name) for name in ("transactions", "customers", "products", "campaigns")})
