"""A corpus of malformed inputs: each gives a clear SourceError or a documented quarantine reason."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from cp_toolkit.errors import SourceError
from cp_toolkit.ingest import ingest

from .conftest import KEY

HEADER = "c,o,t,a\n"
COLUMNS = {"customer_id": "c", "order_id": "o", "ts": "t", "amount": "a"}
GOOD = "1,A,2020-01-01,5\n"

# name -> (file content as bytes or str, extra source options, expected)
# expected: ("error", regex) | ("reasons", {reason: count}) with the number of kept rows
CASES: dict[str, tuple[Any, dict[str, Any], tuple]] = {
    "wrong_delimiter": ("c;o;t;a\n1;A;2020-01-01;5\n", {}, ("error", r"read as one column; set read: \{sep")),
    "missing_column": ("c,o,t\n1,A,2020-01-01\n", {}, ("error", r"\['a'\] not found; the file has \['c', 'o', 't'\]")),
    "unparseable_date": (
        HEADER + GOOD + "1,B,2020-13-45,5\n1,C,2020-01-02,5\n",
        {},
        ("reasons", {"invalid_timestamp": 1}, 2),
    ),
    "day_first_dates_without_format": (
        HEADER + "1,A,13/01/2020,5\n",
        {},
        ("error", r"not ISO 8601 \(row 1: '13/01/2020'\)"),
    ),
    "mixed_types_in_amount": (
        HEADER + GOOD + "1,B,2020-01-02,abc\n1,C,2020-01-02,\n",
        {},
        ("reasons", {"invalid_amount": 2}, 1),
    ),
    "infinite_amount": (HEADER + GOOD + "1,B,2020-01-02,inf\n", {}, ("reasons", {"invalid_amount": 1}, 1)),
    "empty_file": ("", {}, ("error", r"the file is empty")),
    "header_only": (HEADER, {}, ("error", r"no transaction row was kept")),
    "utf8_bom": ("\ufeff" + HEADER + GOOD, {}, ("reasons", {}, 1)),
    "latin1_without_encoding": (
        "c,o,t,a,n\n1,A,2020-01-01,5,M\xfcller\n".encode("latin-1"),
        {},
        ("error", r"encoding.*latin-1"),
    ),
    "latin1_with_encoding": (
        "c,o,t,a\n1,\xc4,2020-01-01,5\n".encode("latin-1"),
        {"read": {"encoding": "latin-1"}},
        ("reasons", {}, 1),
    ),
    "duplicated_header": ("c,o,t,a,a\n1,A,2020-01-01,5,6\n", {}, ("error", r"repeats column name\(s\) \['a.1'\]")),
    "timezone_aware": (HEADER + "1,A,2020-12-31T23:30:00+09:00,5\n", {}, ("reasons", {}, 1)),
    "zero_price": (HEADER + GOOD + "1,B,2020-01-02,0\n", {}, ("reasons", {"non_positive_amount": 1}, 1)),
    "negative_price": (HEADER + GOOD + "1,B,2020-01-02,-3.5\n", {}, ("reasons", {"non_positive_amount": 1}, 1)),
    "missing_customer": (HEADER + GOOD + ",B,2020-01-02,3\n", {}, ("reasons", {"missing_customer_id": 1}, 1)),
    "blank_order_id": (HEADER + GOOD + "1, ,2020-01-02,3\n", {}, ("reasons", {"missing_order_id": 1}, 1)),
    "duplicate_rows": (HEADER + GOOD + GOOD, {}, ("reasons", {"duplicate_row": 1}, 1)),
    "after_as_of": (HEADER + GOOD + "1,B,2021-01-01,3\n", {}, ("reasons", {"after_as_of": 1}, 1)),
    "ragged_row": (HEADER + GOOD + "1,B,2020-01-02,3,extra,more\n", {}, ("error", r"cannot parse as CSV")),
    "quoted_delimiter": ('c,o,t,a\n"1,2",A,2020-01-01,5\n', {}, ("reasons", {}, 1)),
    "options_that_drop_lines": (
        HEADER + GOOD,
        {"read": {"on_bad_lines": "skip", "skiprows": [1]}},
        ("error", r"\['on_bad_lines', 'skiprows'\] would drop lines"),
    ),
    "decimal_comma_without_option": (
        'c;o;t;a\n1;A;2020-01-01;"5,5"\n',
        {"read": {"sep": ";"}},
        ("reasons", {"invalid_amount": 1}, 0),
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_malformed_input(tmp_path: Path, name: str) -> None:
    content, options, expected = CASES[name]
    path = tmp_path / "input.csv"
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    spec = {"transactions": {"path": str(path), "columns": COLUMNS, **options}}
    if expected[0] == "error":
        with pytest.raises(SourceError, match=expected[1]) as err:
            ingest("custom", spec, "2020-12-31", key=KEY)
        assert "input.csv" in str(err.value), "the error names the file"
        return
    if expected[2] == 0:
        with pytest.raises(SourceError, match="no transaction row was kept"):
            ingest("custom", spec, "2020-12-31", key=KEY)
        return
    q = ingest("custom", spec, "2020-12-31", key=KEY).quality["tables"]["transactions"]
    assert q["quarantined_by_reason"] == expected[1] and q["rows_kept"] == expected[2]


def test_ids_keep_leading_zeros_and_lose_padding(tmp_path: Path) -> None:
    path = tmp_path / "ids.csv"
    path.write_text(HEADER + "007,A,2020-01-01,5\n7,B,2020-01-01,5\n 7 ,C,2020-01-02,5\n")
    tx = ingest("custom", {"transactions": {"path": str(path), "columns": COLUMNS}}, "2020-12-31", key=KEY)
    assert tx.tables["transactions"]["customer_id"].nunique() == 2


@pytest.mark.parametrize(
    "path, message",
    [("nowhere.csv", r"does not exist"), ("drops/*.csv", r"no file matches"), ("data.json", r"unsupported file type")],
)
def test_unusable_paths(tmp_path: Path, path: str, message: str) -> None:
    (tmp_path / "data.json").write_text("{}")
    spec = {"transactions": {"path": str(tmp_path / path), "columns": COLUMNS}}
    with pytest.raises(SourceError, match=message):
        ingest("custom", spec, "2020-12-31", key=KEY)


def test_glob_of_monthly_drops_names_each_file(tmp_path: Path) -> None:
    (tmp_path / "sales-2020-01.csv").write_text(HEADER + GOOD + "1,B,2020-01-09,0\n")
    (tmp_path / "sales-2020-02.csv").write_text(HEADER + "2,C,2020-02-01,4\n,D,2020-02-02,4\n")
    spec = {"transactions": {"path": str(tmp_path / "sales-*.csv"), "columns": COLUMNS}}
    result = ingest("custom", spec, "2020-12-31", key=KEY)
    assert result.quality["tables"]["transactions"]["rows_in"] == 4
    q = result.quarantine.sort_values("reason")
    assert [Path(f).name for f in q["source"]] == ["sales-2020-02.csv", "sales-2020-01.csv"]
    assert q["row"].tolist() == [2, 2]


def test_excel_source(tmp_path: Path) -> None:
    path = tmp_path / "sales.xlsx"
    frame = pd.DataFrame(
        {
            "c": [17850.0, 17850.0],
            "o": ["536365", "C536366"],
            "t": pd.to_datetime(["2010-12-01 08:26", "2010-12-01 09:00"]),
            "a": [15.3, -15.3],
        }
    )
    frame.to_excel(path, index=False)
    result = ingest("custom", {"transactions": {"path": str(path), "columns": COLUMNS}}, "2010-12-31", key=KEY)
    q = result.quality["tables"]["transactions"]
    assert q["rows_kept"] == 1 and q["quarantined_by_reason"] == {"non_positive_amount": 1}
    assert result.tables["transactions"]["ts"].iloc[0] == pd.Timestamp("2010-12-01 08:26")


def test_excluded_accounts_and_outliers(tmp_path: Path) -> None:
    rows = "".join(f"{i % 7},o{i},2020-01-{1 + i % 28:02d},{10 + i % 5}\n" for i in range(200))
    path = tmp_path / "t.csv"
    path.write_text(HEADER + rows + "9,big,2020-02-01,100000\n" + "TEST,t1,2020-02-01,10\n")
    accounts = tmp_path / "internal_accounts.txt"
    accounts.write_text("# staff and test accounts\nTEST\n")
    spec = {
        "transactions": {
            "path": str(path),
            "columns": COLUMNS,
            "exclude_customers_file": str(accounts),
            "outlier_iqr_k": 3,
        }
    }
    q = ingest("custom", spec, "2020-12-31", key=KEY).quality["tables"]["transactions"]
    # amounts 10..14: log IQR is small, so 100,000 lies far above Q3 + 3 IQR; 14 does not
    assert q["quarantined_by_reason"] == {"excluded_account": 1, "outlier_amount": 1} and q["rows_kept"] == 200


def test_duckdb_database_table_and_query(tmp_path: Path) -> None:
    import duckdb

    db = tmp_path / "shop.duckdb"
    with duckdb.connect(str(db)) as con:
        con.sql("CREATE TABLE sales (c VARCHAR, o VARCHAR, t TIMESTAMP, a DOUBLE)")
        con.sql(
            "INSERT INTO sales VALUES "
            "('1','A','2020-01-01 10:00',5), ('2','B','2020-01-02',0), ('3','C','2021-05-01',1)"
        )
    by_table = ingest(
        "custom", {"transactions": {"path": str(db), "table": "sales", "columns": COLUMNS}}, "2020-12-31", key=KEY
    )
    assert by_table.quality["tables"]["transactions"]["quarantined_by_reason"] == {
        "after_as_of": 1,
        "non_positive_amount": 1,
    }
    query = {"path": str(db), "query": "SELECT * FROM sales WHERE a > 0", "columns": COLUMNS}
    assert ingest("custom", {"transactions": query}, "2021-12-31", key=KEY).quality["rows_kept"] == 2
    csv = tmp_path / "x.csv"
    csv.write_text(HEADER + GOOD)
    on_files = {"query": f"SELECT * FROM read_csv('{csv}', all_varchar = true)", "columns": COLUMNS}
    assert ingest("custom", {"transactions": on_files}, "2020-12-31", key=KEY).quality["rows_kept"] == 1
    with pytest.raises(SourceError, match=r"DuckDB cannot run 'SELECT \* FROM \"nope\"'"):
        ingest(
            "custom", {"transactions": {"path": str(db), "table": "nope", "columns": COLUMNS}}, "2020-12-31", key=KEY
        )


def test_overlapping_drops_are_duplicates(tmp_path: Path) -> None:
    (tmp_path / "2020-01.csv").write_text(HEADER + GOOD + "1,B,2020-01-31,10\n")
    (tmp_path / "2020-02.csv").write_text(HEADER + "1,B,2020-01-31,10\n1,C,2020-02-02,4\n")
    spec = {"transactions": {"path": str(tmp_path / "2020-*.csv"), "columns": COLUMNS}}
    q = ingest("custom", spec, "2020-12-31", key=KEY).quality["tables"]["transactions"]
    assert q["quarantined_by_reason"] == {"duplicate_row": 1} and q["rows_kept"] == 3


def test_negative_quantity_with_positive_amount_is_set_aside(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("c,o,t,q,a\n1,A,2020-01-01,2,5\n1,B,2020-01-02,-1,5\n")
    spec = {"transactions": {"path": str(path), "columns": {**COLUMNS, "quantity": "q"}}}
    q = ingest("custom", spec, "2020-12-31", key=KEY).quality["tables"]["transactions"]
    assert q["quarantined_by_reason"] == {"negative_quantity": 1}


def test_excel_refuses_dropping_options_and_ignores_csv_ones(tmp_path: Path) -> None:
    path = tmp_path / "s.xlsx"
    pd.DataFrame({"c": ["1", "2"], "o": ["A", "B"], "t": ["2020-01-01", "2020-01-02"], "a": [1.0, 2.0]}).to_excel(
        path, index=False
    )
    with pytest.raises(SourceError, match=r"\['nrows'\] would drop lines"):
        ingest(
            "custom",
            {"transactions": {"path": str(path), "columns": COLUMNS, "read": {"nrows": 1}}},
            "2020-12-31",
            key=KEY,
        )
    spec = {"transactions": {"path": str(path), "columns": COLUMNS, "read": {"sep": ";"}}}
    assert ingest("custom", spec, "2020-12-31", key=KEY).quality["rows_kept"] == 2


def test_unmapped_canonical_columns_are_ignored(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("customer_id,loyalty,o,t,a,channel\nraw1,L1,A,2020-01-01,5,\n")
    spec = {"transactions": {"path": str(path), "channel": "web", "columns": {**COLUMNS, "customer_id": "loyalty"}}}
    with pytest.warns(UserWarning, match=r"\['customer_id', 'channel'\] carry canonical names and are ignored"):
        tx = ingest("custom", spec, "2020-12-31", key=KEY).tables["transactions"]
    assert tx["channel"].tolist() == ["web"]
