"""Stage 01 on the real embedded data and on small hand-made sources."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from cp_toolkit.errors import SourceError
from cp_toolkit.ingest import ingest
from cp_toolkit.ingest.sources import resolve_paths, resolve_sources
from cp_toolkit.privacy import SUPPRESSED, pseudonymize

from .conftest import KEY

PSEUDONYM = r"c_[0-9a-f]{16}"


@pytest.fixture(scope="module")
def cj():
    return ingest("completejourney", None, "2017-12-31", key=KEY)


def test_completejourney_row_accounting(cj) -> None:
    tx = cj.quality["tables"]["transactions"]
    assert tx["rows_in"] == 1_469_307
    # 534 lines of 2018-01-01 lie after as_of; 11,217 earlier lines have a sales value of 0
    assert tx["quarantined_by_reason"] == {"non_positive_amount": 11_217, "after_as_of": 534}
    assert tx["rows_kept"] == 1_469_307 - 11_217 - 534 == len(cj.tables["transactions"])
    for table in cj.quality["tables"].values():
        assert table["rows_kept"] + table["rows_quarantined"] == table["rows_in"]
    assert cj.quality["rows_quarantined"] == len(cj.quarantine)


def test_completejourney_tables(cj) -> None:
    tx = cj.tables["transactions"]
    assert tx["customer_id"].nunique() == 2_469
    assert tx["ts"].max() < pd.Timestamp("2018-01-01")
    assert (tx["amount"] > 0).all()
    assert len(cj.tables["customers"]) == 801 and len(cj.tables["products"]) == 92_331
    campaigns = cj.tables["campaigns"]
    assert len(campaigns) == 6_589 and campaigns["response"].dtype == bool and campaigns["response"].any()


def test_completejourney_discounts_add_up(cj) -> None:
    """Kept lines carry the loyalty discount and both coupon columns of exactly the raw lines kept
    (sales value above 0, before 2018)."""
    raw = pd.read_parquet(resolve_paths(resolve_sources("completejourney", None)["transactions"]["path"])[0])
    kept = raw[(raw["sales_value"] > 0) & (raw["transaction_timestamp"] < "2018-01-01")]
    tx = cj.tables["transactions"]
    assert tx["discount"].sum() == pytest.approx(kept["retail_disc"].sum())
    assert tx["coupon_discount"].sum() == pytest.approx((kept["coupon_disc"] + kept["coupon_match_disc"]).sum())
    assert (tx["discount"] > 0).sum() == (kept["retail_disc"] > 0).sum()


def test_customer_ids_are_pseudonyms(cj) -> None:
    for name in ("transactions", "customers", "campaigns"):
        assert cj.tables[name]["customer_id"].str.fullmatch(PSEUDONYM).all(), name
    assert cj.quarantine["values"].str.contains(r"customer_id=c_[0-9a-f]{16}").all()
    # the pseudonym of household 900 (first raw row) is the keyed hash, not the raw id
    first = pseudonymize(pd.Series(["900"]), KEY).iloc[0]
    assert first in set(cj.tables["transactions"]["customer_id"])


def test_cdnow_preset() -> None:
    result = ingest("cdnow", None, "1998-06-30", key=KEY)
    q = result.quality["tables"]["transactions"]
    assert q["rows_in"] == 69_659 == q["rows_kept"]  # $0 records and same-day repeats are purchases in CDNOW
    tx = result.tables["transactions"]
    assert tx["customer_id"].nunique() == 23_570 and (tx["amount"] == 0).sum() == 80
    assert round(tx["amount"].sum(), 2) == 2_500_315.63


def test_custom_csv_with_mapping(tmp_path: Path) -> None:
    src = tmp_path / "sales.csv"
    src.write_text(
        "Kunde;Beleg;Datum;Menge;Preis\n"
        "007;A1;01.02.2020;2;1,50\n"
        "007;A1;01.02.2020;2;1,50\n"  # exact duplicate
        ";A2;02.02.2020;1;3,00\n"  # no customer
        "008;A3;kaputt;1;3,00\n"  # bad date
        "008;A4;03.02.2020;1;0\n"  # zero amount
        "009;A5;05.03.2020;1;2,00\n",
        encoding="utf-8",
    )  # after as_of
    spec = {
        "transactions": {
            "path": str(src),
            "read": {"sep": ";", "decimal": ","},
            "ts_format": "%d.%m.%Y",
            "columns": {
                "customer_id": "Kunde",
                "order_id": "Beleg",
                "ts": "Datum",
                "quantity": "Menge",
                "price": "Preis",
            },
        }
    }
    result = ingest("custom", spec, "2020-02-29", key=KEY)
    q = result.quality["tables"]["transactions"]
    assert q["rows_in"] == 6 and q["rows_kept"] == 1
    assert q["quarantined_by_reason"] == {
        "after_as_of": 1,
        "duplicate_row": 1,
        "invalid_timestamp": 1,
        "missing_customer_id": 1,
        "non_positive_amount": 1,
    }
    tx = result.tables["transactions"]
    assert tx["amount"].tolist() == [3.0]
    assert sorted(result.quarantine["row"]) == [2, 3, 4, 5, 6]
    # the leading zero of "007" survives: its pseudonym is that of "007", not of "7"
    assert tx["customer_id"].iloc[0] == pseudonymize(pd.Series(["007"]), KEY).iloc[0]


def test_missing_column_names_file_and_column(tmp_path: Path) -> None:
    src = tmp_path / "x.csv"
    src.write_text("id,when,value\n1,2020-01-01,3\n")
    spec = {"transactions": {"path": str(src), "columns": {"customer_id": "id", "ts": "date", "amount": "value"}}}
    with pytest.raises(SourceError, match=r"x\.csv.*\['date'\] not found.*\['id', 'when', 'value'\]"):
        ingest("custom", spec, "2020-12-31", key=KEY)


def test_unknown_preset_and_missing_transactions() -> None:
    with pytest.raises(SourceError, match="not a preset"):
        resolve_sources("nope", None)
    with pytest.raises(SourceError, match="'transactions' source is required"):
        resolve_sources("custom", {})


def test_pseudonyms_are_keyed_and_stable() -> None:
    ids = pd.Series(["1", "2", "1", None])
    a, b = pseudonymize(ids, b"k1"), pseudonymize(ids, b"k2")
    assert a.iloc[0] == a.iloc[2] != a.iloc[1] and pd.isna(a.iloc[3])
    assert a.iloc[0] != b.iloc[0]
    # HMAC-SHA256("k1", "1"), first 16 hex digits, computed independently
    import hashlib
    import hmac

    assert a.iloc[0] == "c_" + hmac.new(b"k1", b"1", hashlib.sha256).hexdigest()[:16]


def _csv(tmp_path: Path, text: str, name: str = "t.csv") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


TX_COLUMNS = {"customer_id": "c", "order_id": "o", "ts": "t", "amount": "a"}


def test_blank_order_id_is_quarantined_not_lost(tmp_path: Path) -> None:
    path = _csv(tmp_path, "c,o,t,a\n1,A,2020-01-01,5\n2,,2020-01-02,7\n2, ,2020-01-03,9\n")
    result = ingest("custom", {"transactions": {"path": path, "columns": TX_COLUMNS}}, "2020-12-31", key=KEY)
    assert result.quality["tables"]["transactions"]["quarantined_by_reason"] == {"missing_order_id": 2}


def test_keyed_table_reason_names_the_missing_column(tmp_path: Path) -> None:
    tx = _csv(tmp_path, "c,o,t,a\n1,A,2020-01-01,5\n")
    camp = _csv(tmp_path, "cust,camp\n,7\n1,\n1,7\n1,7\n", "camp.csv")
    spec = {
        "transactions": {"path": tx, "columns": TX_COLUMNS},
        "campaigns": {"path": camp, "columns": {"customer_id": "cust", "campaign_id": "camp"}},
    }
    q = ingest("custom", spec, "2020-12-31", key=KEY).quality["tables"]["campaigns"]
    assert q["quarantined_by_reason"] == {"missing_customer_id": 1, "missing_campaign_id": 1, "duplicate_key": 1}


def test_nothing_kept_is_an_error(tmp_path: Path) -> None:
    path = _csv(tmp_path, "c,o,t,a\n1,A,2021-01-01,5\n")
    with pytest.raises(SourceError, match=r"no transaction row was kept \({'transactions': {'after_as_of': 1}}\)"):
        ingest("custom", {"transactions": {"path": path, "columns": TX_COLUMNS}}, "2020-12-31", key=KEY)


def test_dates_are_never_guessed(tmp_path: Path) -> None:
    path = _csv(tmp_path, "c,o,t,a\n1,A,01/02/2020,5\n1,B,13/02/2020,5\n")
    with pytest.raises(SourceError, match=r"not ISO 8601 \(row 1: '01/02/2020'\); add ts_format"):
        ingest("custom", {"transactions": {"path": path, "columns": TX_COLUMNS}}, "2020-12-31", key=KEY)
    spec = {"transactions": {"path": path, "columns": TX_COLUMNS, "ts_format": "%d/%m/%Y"}}
    ts = ingest("custom", spec, "2020-12-31", key=KEY).tables["transactions"]["ts"]
    assert ts.tolist() == [pd.Timestamp("2020-02-01"), pd.Timestamp("2020-02-13")]


def test_time_zones_keep_local_wall_time(tmp_path: Path) -> None:
    path = _csv(tmp_path, "c,o,t,a\n1,A,2020-12-31T20:00:00-05:00,5\n1,B,2021-01-01T00:30:00-05:00,5\n")
    result = ingest("custom", {"transactions": {"path": path, "columns": TX_COLUMNS}}, "2020-12-31", key=KEY)
    assert result.tables["transactions"]["ts"].tolist() == [pd.Timestamp("2020-12-31 20:00")]
    assert result.quality["tables"]["transactions"]["quarantined_by_reason"] == {"after_as_of": 1}


def test_text_ids_with_trailing_zero_decimals(tmp_path: Path) -> None:
    path = _csv(tmp_path, "c,o,t,a\n17850.0,A,2020-01-01,5\n")
    result = ingest("custom", {"transactions": {"path": path, "columns": TX_COLUMNS}}, "2020-12-31", key=KEY)
    assert result.tables["transactions"]["customer_id"].iloc[0] == pseudonymize(pd.Series(["17850"]), KEY).iloc[0]


def test_direct_identifiers_never_leave_ingest(tmp_path: Path) -> None:
    tx = _csv(tmp_path, "c,o,t,a,email\n1,A,2020-01-01,5,a@x.org\n2,B,2020-01-02,-1,b@x.org\n")
    rows = "".join(f"{i},p{i}@mail.com,+44 20 7946 {i:04d},Person {i},{'NS'[i % 2]}\n" for i in range(1, 31))
    cust = _csv(tmp_path, "id,contact,mob,full,region\n" + rows, "cust.csv")
    spec = {
        "transactions": {"path": tx, "columns": TX_COLUMNS},
        "customers": {"path": cust, "columns": {"customer_id": "id"}},
    }
    with pytest.warns(UserWarning, match=r"dropped direct identifier column\(s\) \['contact', 'mob', 'full'\]"):
        result = ingest("custom", spec, "2020-12-31", key=KEY)
    assert list(result.tables["customers"].columns) == ["customer_id", "region"]
    assert "@" not in " ".join(result.quarantine["values"]) and "email" not in " ".join(result.quarantine["values"])


def test_cancellations_netted_by_hand(tmp_path: Path) -> None:
    path = _csv(
        tmp_path,
        "c,o,t,p,q,price\n"
        "A,1,2020-01-01,p1,5,2\n"  # reduced by 1 -> 4 units, amount 8
        "A,2,2020-01-02,p1,3,2\n"  # cancelled in full (latest first)
        "A,3,2020-01-01,p2,1,7\n"  # cancelled in full
        "A,C4,2020-01-03,p1,-4,2\n"  # netted: 3 + 1
        "A,C5,2020-01-04,p2,-2,7\n"  # 1 of 2 units matched -> unmatched
        "B,C6,2019-12-31,p1,-1,2\n"  # before any purchase -> unmatched
        "B,7,2020-01-05,p1,1,2\n",  # kept: the cancellation came earlier
    )
    columns = {"customer_id": "c", "order_id": "o", "ts": "t", "product_id": "p", "quantity": "q", "price": "price"}
    spec = {"transactions": {"path": path, "columns": columns, "cancellation_prefix": "C"}}
    result = ingest("custom", spec, "2020-12-31", key=KEY)
    q = result.quality["tables"]["transactions"]
    assert q["quarantined_by_reason"] == {"cancellation_netted": 1, "cancellation_unmatched": 2, "cancelled": 2}
    assert q["netting"] == {
        "cancellation_lines": 3,
        "cancellation_lines_unmatched": 2,
        "purchase_lines_cancelled": 2,
        "purchase_lines_reduced": 1,
        "quantity_netted": 5.0,
        "quantity_unmatched": 2.0,
        "revenue_netted": 15.0,
    }
    tx = result.tables["transactions"].sort_values("order_id")
    assert tx["order_id"].tolist() == ["1", "7"] and tx["quantity"].tolist() == [4.0, 1.0]
    assert tx["amount"].tolist() == [8.0, 2.0]


def test_preset_needs_a_path() -> None:
    with pytest.raises(SourceError, match="transactions has no 'path'"):
        resolve_sources("online_retail", None)


def test_several_sources_and_an_identity_map(tmp_path: Path) -> None:
    web = _csv(tmp_path, "c,o,t,a\nw1,A,2020-01-01,5\nw2,B,2020-01-02,6\n,C,2020-01-03,7\n", "web.csv")
    store = _csv(tmp_path, "c,o,t,a\ns1,D,2020-01-01,5\ns2,E,2020-01-02,6\ns3,F,2020-01-03,7\n", "store.csv")
    ident = _csv(tmp_path, "src,local,person\nweb,w1,P1\nstore,s1,P1\nweb,w2,P2\nstore,s2,P2\nweb,w2,P9\n", "id.csv")
    spec = {
        "transactions": [
            {"name": "web", "path": web, "columns": TX_COLUMNS, "channel": "web"},
            {"name": "store", "path": store, "columns": TX_COLUMNS, "channel": "store"},
        ],
        "identity": {"path": ident, "columns": {"source": "src", "source_id": "local", "customer_id": "person"}},
    }
    result = ingest("custom", spec, "2020-12-31", key=KEY)
    q = result.quality
    assert q["tables"]["transactions:web"]["quarantined_by_reason"] == {"missing_customer_id": 1}
    assert q["tables"]["identity"]["quarantined_by_reason"] == {"duplicate_key": 1}  # w2 mapped twice
    assert q["sources_overlap"] == {
        "customers_per_source": {"transactions:store": 3, "transactions:web": 2},
        "customers_in_several_sources": 2,
        "customers": 3,
        "identity_map_entries": 4,
    }
    tx = result.tables["transactions"]
    expected = {pseudonymize(pd.Series([i]), KEY).iloc[0]: n for i, n in [("P1", 2), ("P2", 2), ("store:s3", 1)]}
    assert tx["customer_id"].value_counts().to_dict() == expected
    assert sorted(tx["channel"].unique()) == ["store", "web"]
    assert q["rows_in"] == 3 + 3 + 5 and q["rows_kept"] + q["rows_quarantined"] == q["rows_in"]


def test_sources_sharing_a_channel_and_order_numbers_stay_apart(tmp_path: Path) -> None:
    a = _csv(tmp_path, "c,o,t,a\n1,1001,2020-01-01,5\n2,1002,2020-01-02,6\n", "a.csv")
    b = _csv(tmp_path, "c,t,a\n3,2020-01-01,5\n4,2020-01-02,6\n5,2020-01-02,7\n", "b.csv")  # no order ids
    spec = {
        "transactions": [
            {"path": a, "columns": TX_COLUMNS, "channel": "web"},
            {"path": b, "columns": {"customer_id": "c", "ts": "t", "amount": "a"}, "channel": "web"},
        ]
    }
    result = ingest("custom", spec, "2020-12-31", key=KEY)
    assert sorted(result.quality["tables"]) == ["transactions:web", "transactions:web:2"]
    assert result.quality["tables"]["transactions:web:2"]["rows_kept"] == 3
    assert result.tables["transactions"]["order_id"].nunique() == 5
    assert result.tables["transactions"]["order_id"].str.startswith("transactions:web").all()


def test_identity_quarantine_holds_no_raw_source_id(tmp_path: Path) -> None:
    tx = _csv(tmp_path, "c,o,t,a\nalice@example.com,A,2020-01-01,5\n", "web.csv")
    ident = _csv(tmp_path, "src,local,person\nweb,alice@example.com,U1\nweb,alice@example.com,U9\n", "id.csv")
    spec = {
        "transactions": {"name": "web", "path": tx, "columns": TX_COLUMNS},
        "identity": {"path": ident, "columns": {"source": "src", "source_id": "local", "customer_id": "person"}},
    }
    result = ingest("custom", spec, "2020-12-31", key=KEY)
    assert "@" not in " ".join(result.quarantine["values"])
    assert result.tables["transactions"]["customer_id"].iloc[0] == pseudonymize(pd.Series(["U1"]), KEY).iloc[0]


def test_identifier_detection_edge_cases() -> None:
    from cp_toolkit.privacy import identifier_columns

    table = pd.DataFrame(
        {
            "contact": ["a@x.org", "", "b@y.org", " ", "c@z.org"],  # e-mails among blanks
            "signup": ["2019-01-10", "2019-02-11", "2019-03-12", "2019-01-10", "2019-02-11"],  # dates, not phones
            "client": [f"Person {i}" for i in range(5)],  # names in a small file
            "region": ["N", "S", "N", "S", "N"],
        }
    )
    assert identifier_columns(table) == ["contact", "client"]


def test_pooled_small_group_cannot_be_recovered() -> None:
    from cp_toolkit.eda import attribute_profile

    customers = pd.DataFrame(
        {"customer_id": [str(i) for i in range(103)], "gender": ["F"] * 60 + ["M"] * 40 + ["X"] * 3}
    )
    profile = attribute_profile(customers, min_group_size=10)
    # X alone (3) would follow from the total, so M, the smallest value shown, is pooled with it
    assert profile["value"].tolist() == ["F", SUPPRESSED] and profile["customers"].tolist() == [60, 43]
    assert profile["share"].tolist() == pytest.approx([60 / 103, 43 / 103])
    customers.loc[:7, "gender"] = "Y"  # F 52, M 40, X 3, Y 8: X and Y together make 11
    profile = attribute_profile(customers, min_group_size=10)
    assert profile["value"].tolist() == ["F", "M", SUPPRESSED] and profile["customers"].tolist() == [52, 40, 11]


def test_a_suppressed_group_does_not_follow_from_the_total() -> None:
    from cp_toolkit.privacy import suppress_small_groups

    table = pd.DataFrame({"segment": ["A", "B", "C"], "customers": [30, 25, 4], "revenue": [300.0, 250, 40]})
    partition = suppress_small_groups(table, "customers", 10)
    assert partition["suppressed"].tolist() == [False, True, True]  # 59 - 30 = 29 hides C's 4
    assert partition["revenue"].isna().tolist() == [False, True, True]
    assert suppress_small_groups(table, "customers", 10, partition=False)["suppressed"].tolist() == [False, False, True]
