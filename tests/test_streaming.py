"""Streamed ingest: results do not depend on where chunks break, and nothing is left behind."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from cp_toolkit import RunFolder
from cp_toolkit.engine import database
from cp_toolkit.errors import SourceError
from cp_toolkit.ingest import ingest, run_stage

from .conftest import KEY

COLUMNS = {"customer_id": "c", "order_id": "o", "ts": "t", "quantity": "q", "price": "p", "product_id": "s"}
# row: what happens to it (as_of 2020-12-31, cancellations marked by "C")
LINES = """c,o,t,q,p,s
1,A1,2020-01-01 10:00,5,2,X
1,A1,2020-01-01 10:00,5,2,X
2,A2,2020-01-02 11:00,1,3,Y
1,C1,2020-01-03 09:00,-3,2,X
3,A3,2020-01-04 12:00,2,0,Z
2,C2,2020-01-05 12:00,-1,3,Y
2,A4,2021-02-01 12:00,1,3,Y
4,C3,2020-01-06 12:00,-2,1,W
1,A1,2020-01-01 10:00,5,2,X
"""
# 1 kept, reduced from 5 to 2 units by C1 | 2 and 9 repeat 1 | 3 cancelled in full by C2 |
# 4 and 6 netted | 5 zero amount | 7 after as_of | 8 cancels nothing customer 4 bought


@pytest.fixture
def spec(tmp_path: Path) -> dict:
    path = tmp_path / "lines.csv"
    path.write_text(LINES)
    return {"transactions": {"path": str(path), "columns": COLUMNS, "cancellation_prefix": "C"}}


@pytest.mark.parametrize("chunk_rows", [1, 2, 4])
def test_rules_that_compare_rows_work_across_chunks(spec: dict, chunk_rows: int) -> None:
    result = ingest("custom", spec, "2020-12-31", key=KEY, chunk_rows=chunk_rows)
    q = result.quality["tables"]["transactions"]
    assert q["quarantined_by_reason"] == {
        "after_as_of": 1,
        "cancellation_netted": 2,
        "cancellation_unmatched": 1,
        "cancelled": 1,
        "duplicate_row": 2,
        "non_positive_amount": 1,
    }
    assert q["netting"] == {
        "cancellation_lines": 3,
        "cancellation_lines_unmatched": 1,
        "purchase_lines_cancelled": 1,
        "purchase_lines_reduced": 1,
        "quantity_netted": 4.0,
        "quantity_unmatched": 2.0,
        "revenue_netted": 9.0,
    }
    tx = result.tables["transactions"]
    assert len(tx) == 1 and tx.loc[0, "quantity"] == 2 and tx.loc[0, "amount"] == 4
    quarantine = result.quarantine.set_index("row")["reason"].sort_index()
    assert quarantine.to_dict() == {
        2: "duplicate_row",
        3: "cancelled",
        4: "cancellation_netted",
        5: "non_positive_amount",
        6: "cancellation_netted",
        7: "after_as_of",
        8: "cancellation_unmatched",
        9: "duplicate_row",
    }


def test_chunk_size_changes_nothing(spec: dict) -> None:
    one, many = (ingest("custom", spec, "2020-12-31", key=KEY, chunk_rows=n) for n in (1, 1000))
    pd.testing.assert_frame_equal(one.tables["transactions"], many.tables["transactions"])
    pd.testing.assert_frame_equal(one.quarantine, many.quarantine)
    assert one.quality == many.quality


def test_stage_leaves_only_its_artifacts(spec: dict, tmp_path: Path) -> None:
    run = RunFolder(tmp_path / "run")
    run_stage(run, dataset="custom", sources=spec, as_of="2020-12-31")
    assert sorted(p.name for p in run.path.iterdir()) == ["data", "params.json", "stages"]
    written = sorted(p.name for p in run.data.iterdir())
    assert written == [
        "customers.parquet",
        "orders.parquet",
        "products.parquet",
        "quality.json",
        "quarantine.parquet",
        "transactions.parquet",
    ]
    orders = run.load("orders")
    assert orders[["order_id", "amount", "n_lines"]].values.tolist() == [["A1", 4.0, 1]]


def test_duckdb_prints_no_progress_bar_into_logs() -> None:
    with database() as con:
        assert con.execute("SELECT current_setting('enable_progress_bar')").fetchone()[0] is False


def test_each_of_several_sources_nets_its_own_cancellations(spec: dict, tmp_path: Path) -> None:
    other = tmp_path / "store.csv"
    other.write_text("c,o,t,q,p,s\n5,A9,2020-02-01 10:00,1,4,X\n")
    web = {**spec["transactions"], "channel": "web"}
    sources = {"transactions": [web, {**web, "path": str(other), "channel": "store"}]}
    q = ingest("custom", sources, "2020-12-31", key=KEY, chunk_rows=2).quality["tables"]
    assert q["transactions:web"]["netting"]["cancellation_lines"] == 3
    assert q["transactions:web"]["quarantined_by_reason"]["cancellation_netted"] == 2
    assert q["transactions:store"]["rows_kept"] == 1


def test_cancellations_are_netted_on_the_sources_own_ids(tmp_path: Path) -> None:
    """Two web accounts of one person: the second cannot cancel what the first bought."""
    (tmp_path / "identity.csv").write_text("system,local,person\nweb,w1,U1\nweb,w2,U1\n")
    (tmp_path / "web.csv").write_text("c,o,t,q,p,s\nw1,A1,2020-01-01,2,3,X\nw2,C1,2020-01-02,-2,3,X\n")
    sources = {
        "identity": {"path": str(tmp_path / "identity.csv"), "columns": {"source": "system", "source_id": "local",
                                                                          "customer_id": "person"}},
        "transactions": [{"name": "web", "path": str(tmp_path / "web.csv"), "columns": COLUMNS,
                          "cancellation_prefix": "C"}],
    }  # fmt: skip
    result = ingest("custom", sources, "2020-12-31", key=KEY)
    assert result.quality["tables"]["transactions"]["quarantined_by_reason"] == {"cancellation_unmatched": 1}
    assert result.tables["transactions"]["customer_id"].nunique() == 1  # the kept line belongs to U1


def test_duplicates_are_found_when_a_column_changes_type_between_chunks(tmp_path: Path) -> None:
    """A nullable integer column reads as float64 in a chunk with a null and as int64 in the next."""
    path = tmp_path / "lines.parquet"
    with database() as con:
        con.execute(
            "COPY (SELECT * FROM (VALUES ('1', 'A', '2020-01-01', 5.0, NULL), ('2', 'B', '2020-01-02', 3.0, 7), "
            "('1', 'A', '2020-01-01', 5.0, NULL), ('2', 'B', '2020-01-02', 3.0, 7)) v(c, o, t, a, note)) "
            f"TO '{path}'"
        )
    spec = {"transactions": {"path": str(path), "columns": {"customer_id": "c", "order_id": "o", "ts": "t",
                                                             "amount": "a"}}}  # fmt: skip
    q = ingest("custom", spec, "2020-12-31", key=KEY, chunk_rows=2).quality["tables"]["transactions"]
    assert q["quarantined_by_reason"] == {"duplicate_row": 2} and q["rows_kept"] == 2


def test_the_iso_8601_rule_counts_the_whole_source(tmp_path: Path) -> None:
    """Half the dates unreadable, all in one chunk: set aside, not refused (refused only past half)."""
    path = tmp_path / "t.csv"
    path.write_text("c,o,t,a\n1,A,2020-01-01,5\n1,B,2020-01-02,5\n1,C,01/03/2020,5\n1,D,02/03/2020,5\n")
    spec = {"transactions": {"path": str(path), "columns": {"customer_id": "c", "order_id": "o", "ts": "t",
                                                             "amount": "a"}}}  # fmt: skip
    q = ingest("custom", spec, "2020-12-31", key=KEY, chunk_rows=2).quality["tables"]["transactions"]
    assert q["quarantined_by_reason"] == {"invalid_timestamp": 2}
    path.write_text(path.read_text() + "1,E,03/03/2020,5\n")
    with pytest.raises(SourceError, match=r"not ISO 8601 \(row 3: '01/03/2020'\)"):
        ingest("custom", spec, "2020-12-31", key=KEY, chunk_rows=2)


def test_a_failed_rerun_leaves_no_outdated_artifacts(spec: dict, tmp_path: Path) -> None:
    run = RunFolder(tmp_path / "run")
    run_stage(run, dataset="custom", sources=spec, as_of="2020-12-31")
    broken = {"transactions": {**spec["transactions"], "query": "SELECT CAST('a' AS INTEGER) AS c", "path": None}}
    with pytest.raises(SourceError, match="DuckDB cannot run"):
        run_stage(run, dataset="custom", sources=broken, as_of="2020-12-31")
    assert list(run.data.iterdir()) == []


@pytest.mark.parametrize(
    ("read", "message"), [({"engine": "pyarrow"}, "engine: pyarrow cannot read in chunks"), ({}, "cannot read as")]
)
def test_unreadable_sources_give_clear_errors(tmp_path: Path, read: dict, message: str) -> None:
    path = tmp_path / ("t.csv" if read else "t.parquet")
    path.write_text("c,o,t,a\n1,A,2020-01-01,5\n")
    spec = {"transactions": {"path": str(path), "read": read, "columns": {"customer_id": "c", "ts": "t",
                                                                          "amount": "a"}}}  # fmt: skip
    with pytest.raises(SourceError, match=message):
        ingest("custom", spec, "2020-12-31", key=KEY)


def test_discounts_are_read_unsigned_summed_and_netted_in_proportion(tmp_path: Path) -> None:
    """Every line saves 1.00 (stored as -1, as Dunnhumby's files do) and a 0.50 coupon split over two
    columns, one of them blank: the line cut from 5 to 2 units keeps 2/5 of each."""
    rows = LINES.strip().splitlines()
    path = tmp_path / "lines.csv"
    path.write_text("\n".join([rows[0] + ",d,e,f", *(r + ",-1,0.5," for r in rows[1:])]) + "\n")
    columns = {**COLUMNS, "discount": "d", "coupon_discount": ["e", "f"]}
    spec = {"transactions": {"path": str(path), "columns": columns, "cancellation_prefix": "C"}}
    tx = ingest("custom", spec, "2020-12-31", key=KEY, chunk_rows=2).tables["transactions"]
    assert tx[["quantity", "amount", "discount", "coupon_discount"]].values.tolist() == [
        [2.0, 4.0, pytest.approx(0.4), pytest.approx(0.2)]
    ]


def test_discount_parts_are_money_off_whatever_their_sign(tmp_path: Path) -> None:
    path = tmp_path / "lines.csv"
    path.write_text("c,o,t,a,e,f\n1,A1,2020-01-01,10,-1,0.5\n")
    columns = {"customer_id": "c", "order_id": "o", "ts": "t", "amount": "a", "coupon_discount": ["e", "f"]}
    tx = ingest("custom", {"transactions": {"path": str(path), "columns": columns}}, "2020-12-31", key=KEY)
    assert tx.tables["transactions"]["coupon_discount"].tolist() == [1.5]
    with pytest.raises(SourceError, match=r"\['coupon_discount'\] map\(s\) an empty list"):
        ingest("custom", {"transactions": {"path": str(path), "columns": {**columns, "coupon_discount": []}}},
               "2020-12-31", key=KEY)  # fmt: skip
