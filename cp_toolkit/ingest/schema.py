"""The canonical schema as pandera schemas, checked on every table ingest writes.

Cleaning sets aside the rows that break a rule, so a table that still fails its schema means
a source typed in a way the mapping did not foresee; :func:`validate_tables` then stops with the
table, column, check and first offending rows instead of writing a broken artifact.
"""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from ..errors import SchemaError

__all__ = ["SCHEMAS", "validate_tables"]


def _text(nullable: bool = False, unique: bool = False) -> pa.Column:
    return pa.Column(str, nullable=nullable, unique=unique)


SCHEMAS: dict[str, pa.DataFrameSchema] = {
    "transactions": pa.DataFrameSchema(
        {
            "customer_id": _text(),
            "order_id": _text(),
            "ts": pa.Column("datetime64[ns]", nullable=False),
            "amount": pa.Column(float, pa.Check.ge(0), nullable=False),
            "quantity": pa.Column(float, pa.Check.ge(0), nullable=True, required=False),
            "product_id": _text(nullable=True),
            "channel": _text(nullable=True),
            "store_id": _text(nullable=True),
            "discount": pa.Column(float, pa.Check.ge(0), nullable=True, required=False),
            "coupon_discount": pa.Column(float, pa.Check.ge(0), nullable=True, required=False),
        },
        strict=False,
    ).update_columns({c: {"required": False} for c in ("product_id", "channel", "store_id")}),
    "customers": pa.DataFrameSchema({"customer_id": _text(unique=True)}),
    "products": pa.DataFrameSchema(
        {"product_id": _text(unique=True), "category": pa.Column(str, nullable=True, required=False)}
    ),
    "campaigns": pa.DataFrameSchema(
        {"customer_id": _text(), "campaign_id": _text()}, unique=["customer_id", "campaign_id"]
    ),
}


def validate_tables(tables: dict[str, pd.DataFrame], max_examples: int = 5) -> None:
    """Check each canonical table against :data:`SCHEMAS` (all checks, not only the first).

    Raises
    ------
    SchemaError
        Naming, per failed check, the table, column, check, number of failing rows and the
        first ``max_examples`` failing values with their row positions.
    """
    problems = []
    for name, table in tables.items():
        if name not in SCHEMAS or table.empty:
            continue
        try:
            SCHEMAS[name].validate(table, lazy=True)
        except SchemaErrors as err:
            cases = err.failure_cases
            for (column, check), group in cases.groupby(["column", "check"], dropna=False, sort=False):
                first = group.head(max_examples)
                examples = ", ".join(
                    f"table row {i}: {v!r}" for i, v in zip(first["index"], first["failure_case"], strict=True)
                )
                problems.append(f"{name}.{column}: {check} fails on {len(group)} row(s) ({examples})")
    if problems:
        raise SchemaError(
            "canonical tables break the schema; fix the source's mapping or types (e.g. map the right "
            "column, set ts_format or read options):\n  " + "\n  ".join(problems)
        )
