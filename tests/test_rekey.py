"""``cp-toolkit rekey``: the audience joined back to the key holder's own ids, and its refusals."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

import pandas as pd
import pytest

from cp_toolkit.cli import main
from cp_toolkit.ingest import ingest
from cp_toolkit.privacy import KEY_ENV, KEY_FILE_ENV, pseudonym_key, pseudonymize
from cp_toolkit.text import t

TEST_KEY = "rekey-test-key"
#: Raw CRM ids: leading zeros, a look-alike without them, text, a number.
RAW = ["00123", "123", "A-7", "42", "x9", "1001"]
#: The ids the audience holds (a subset), in audience order.
IN_AUDIENCE = ["A-7", "00123", "1001", "123"]


@pytest.fixture
def key(monkeypatch: pytest.MonkeyPatch) -> bytes:
    """A known key in the environment variable stage 01 reads."""
    monkeypatch.setenv(KEY_ENV, TEST_KEY)
    monkeypatch.delenv(KEY_FILE_ENV, raising=False)
    return pseudonym_key()


def _pseudonyms(ids: list[str], key: bytes) -> list[str]:
    return pseudonymize(pd.Series(ids), key).tolist()


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder, the working folder, with ``reports/`` and a ``crm/`` folder beside it."""
    (tmp_path / "project" / "reports").mkdir(parents=True)
    (tmp_path / "crm").mkdir()
    monkeypatch.chdir(tmp_path / "project")
    return tmp_path


def _run_folder(project: Path, audience: pd.DataFrame) -> Path:
    """``reports/<run>/`` with a manifest and ``data/audience.csv``; returns the audience file."""
    run = project / "project" / "reports" / "2017-12-31_default"
    (run / "data").mkdir(parents=True)
    (run / "manifest.json").write_text(json.dumps({"status": "ok"}))
    path = run / "data" / "audience.csv"
    audience.to_csv(path, index=False)
    return path


@pytest.fixture
def audience_file(project: Path, key: bytes) -> Path:
    """An audience of four known customers and one pseudonym no supplied id has."""
    audience = pd.DataFrame(
        {
            "customer_id": _pseudonyms([*IN_AUDIENCE, "not-in-crm"], key),
            "persona": ["Champions", "Loyal", "At risk", "New", "Loyal"],
            "clv": ["10.50", "3.00", "0.75", "", "8.10"],
        }
    )
    return _run_folder(project, audience)


@pytest.fixture
def ids_file(project: Path) -> Path:
    """The CRM's ids: every raw id, a blank, one repeated and one with spaces around it."""
    path = project / "crm" / "customers.csv"
    rows = ["crm_id,name", *(f"{i},someone" for i in RAW), ",nobody", "A-7,again", " 42 ,padded"]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def _counts(out: str) -> dict[str, int]:
    """The figures of the console summary, by their label id."""
    names = {t(f"rekey.console.label.{k}"): k for k in _LABELS}
    found = {}
    for line in out.splitlines():
        hit = re.fullmatch(r"\s*([\d,]+)  (.+)", line)
        if hit and hit.group(2) in names:
            found[names[hit.group(2)]] = int(hit.group(1).replace(",", ""))
    return found


_LABELS = ("rows", "blank", "duplicates", "supplied", "matched", "no_audience", "no_id", "written")


def _rekey(audience: Path, ids: Path, out: Path, *extra: str) -> int:
    return main(["rekey", str(audience), "--ids", str(ids), "--out", str(out), *extra])


def test_round_trip_maps_every_audience_row_to_its_raw_id(
    audience_file: Path, ids_file: Path, project: Path, key: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    out = project / "crm" / "audience.csv"
    assert _rekey(audience_file, ids_file, out, "--id-column", "crm_id") == 0
    table = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert table.columns.tolist() == ["crm_id", "persona", "clv"]  # the holder's id first, no pseudonym
    assert table["crm_id"].tolist() == IN_AUDIENCE  # audience order, leading zeros kept
    assert table["persona"].tolist() == ["Champions", "Loyal", "At risk", "New"]
    assert table["clv"].tolist() == ["10.50", "3.00", "0.75", ""]  # audience values as written
    audience = pd.read_csv(audience_file, dtype=str)
    assert _pseudonyms(table["crm_id"].tolist(), key) == audience["customer_id"].iloc[:4].tolist()
    printed = capsys.readouterr().out
    assert _counts(printed) == {
        "rows": 9,
        "blank": 1,
        "duplicates": 2,  # "A-7" again and " 42 " (42 once spaces are removed)
        "supplied": 6,
        "matched": 4,
        "no_audience": 2,  # 42 and x9
        "no_id": 1,  # the pseudonym of not-in-crm
        "written": 4,
    }
    assert t("rekey.console.duplicates") in printed.splitlines()
    assert str(out) in printed.splitlines()[-1]
    for raw in RAW:  # counts only: no id on the console
        assert not re.search(rf"(?<![\w/.-]){re.escape(raw)}(?![\w/.-])", printed), raw
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert {p.name for p in out.parent.iterdir()} == {"customers.csv", "audience.csv"}  # no temporary file left


def test_keep_pseudonym_and_parquet_ids(
    audience_file: Path, project: Path, key: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    """Parquet ids typed as integers read as stage 01 reads them (123, not 00123); the pseudonym is kept on request."""
    ids = project / "crm" / "ids.parquet"
    pd.DataFrame({"customer_id": [123, 1001, 7]}).to_parquet(ids, index=False)
    out = project / "crm" / "out.csv"
    assert _rekey(audience_file, ids, out, "--keep-pseudonym") == 0
    table = pd.read_csv(out, dtype=str)
    assert table.columns.tolist() == ["customer_id", "pseudonym", "persona", "clv"]
    assert table["customer_id"].tolist() == ["1001", "123"]
    assert table["pseudonym"].tolist() == _pseudonyms(["1001", "123"], key)
    assert _counts(capsys.readouterr().out)["matched"] == 2


def test_leading_zeros_match_what_stage_01_hashed(project: Path, key: bytes) -> None:
    """Stage 01 itself pseudonymizes a tiny CSV; rekey finds each of its customers from the CRM's ids."""
    source = project / "crm" / "sales.csv"
    source.write_text(
        "cust,order,when,value\n00123,o1,2020-01-01,5\n123,o2,2020-01-02,5\n"
        " 77 ,o3,2020-01-03,5\n17850.0,o4,2020-01-04,5\n"
    )
    columns = {"customer_id": "cust", "order_id": "order", "ts": "when", "amount": "value"}
    tx = ingest("custom", {"transactions": {"path": str(source), "columns": columns}}, "2020-12-31").tables[
        "transactions"
    ]  # key=None: stage 01 reads the key from the environment, as rekey does
    by_order = tx.set_index("order_id")["customer_id"]
    audience = pd.DataFrame({"customer_id": by_order[["o1", "o2", "o3", "o4"]].to_numpy(), "segment": list("abcd")})
    audience_file = _run_folder(project, audience)
    crm = project / "crm" / "crm.csv"
    crm.write_text("id\n00123\n0123\n77\n17850\n")
    out = project / "crm" / "joined.csv"
    assert _rekey(audience_file, crm, out, "--id-column", "id") == 0
    table = pd.read_csv(out, dtype=str)
    assert dict(zip(table["id"], table["segment"], strict=True)) == {"00123": "a", "77": "c", "17850": "d"}
    assert by_order["o1"] == _pseudonyms(["00123"], key)[0] != by_order["o2"]


@pytest.mark.parametrize(
    "where",
    ["reports/2017-12-31_default/out.csv", "reports/2017-12-31_default/data/out.csv", "reports/out.csv",
     "reports/2017-12-31_default/crm/deeper/out.csv"],
)  # fmt: skip
def test_refuses_an_output_inside_the_run_or_reports_folder(
    audience_file: Path, ids_file: Path, project: Path, where: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = project / "project" / where
    out.parent.mkdir(parents=True, exist_ok=True)
    assert _rekey(audience_file, ids_file, out, "--id-column", "crm_id") == 2
    err = capsys.readouterr().err
    assert err.startswith(f"cp-toolkit: --out {out} lies inside ") and "raw customer ids" in err
    assert err.count("\n") == 1 and not out.exists()


def test_refuses_an_output_inside_another_run_folder(
    audience_file: Path, ids_file: Path, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = project / "elsewhere" / "run"
    (other / "data").mkdir(parents=True)
    (other / "params.json").write_text("{}")
    assert _rekey(audience_file, ids_file, other / "out.csv", "--id-column", "crm_id") == 2
    assert f"lies inside the run folder {other}" in capsys.readouterr().err


def test_refuses_to_run_without_a_key(
    audience_file: Path, ids_file: Path, project: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.delenv(KEY_ENV)
    out = project / "crm" / "out.csv"
    assert _rekey(audience_file, ids_file, out, "--id-column", "crm_id") == 2
    err = capsys.readouterr().err
    assert "no pseudonymization key" in err and KEY_ENV in err and KEY_FILE_ENV in err
    assert not out.exists()


def test_reads_the_key_file_as_stage_01_does(
    audience_file: Path, ids_file: Path, project: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    key_file = project / "key.txt"
    key_file.write_text(TEST_KEY + "\n")
    monkeypatch.delenv(KEY_ENV)
    monkeypatch.setenv(KEY_FILE_ENV, str(key_file))
    assert _rekey(audience_file, ids_file, project / "crm" / "out.csv", "--id-column", "crm_id") == 0
    assert _counts(capsys.readouterr().out)["matched"] == 4


def test_refuses_to_overwrite_without_force(
    audience_file: Path, ids_file: Path, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = project / "crm" / "out.csv"
    out.write_text("keep me\n")
    assert _rekey(audience_file, ids_file, out, "--id-column", "crm_id") == 2
    assert "exists; pass --force to replace it" in capsys.readouterr().err
    assert out.read_text() == "keep me\n"
    assert _rekey(audience_file, ids_file, out, "--id-column", "crm_id", "--force") == 0
    assert pd.read_csv(out, dtype=str)["crm_id"].tolist() == IN_AUDIENCE
    assert _rekey(audience_file, ids_file, ids_file, "--id-column", "crm_id", "--force") == 2  # never an input
    assert "is an input file" in capsys.readouterr().err


def test_no_match_warns(audience_file: Path, ids_file: Path, project: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv(KEY_ENV, "another key")
    out = project / "crm" / "out.csv"
    assert _rekey(audience_file, ids_file, out, "--id-column", "crm_id") == 0
    printed = capsys.readouterr().out
    assert _counts(printed)["matched"] == 0 and "warning: no id matched" in printed
    assert pd.read_csv(out).columns.tolist() == ["crm_id", "persona", "clv"]


def test_input_errors_name_the_file_and_column(
    audience_file: Path, ids_file: Path, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = project / "crm" / "out.csv"
    missing = project / "crm" / "nope.csv"
    assert _rekey(audience_file, missing, out) == 1
    err = capsys.readouterr().err
    assert f"ids file {missing} does not exist; pass the file of your customer ids with --ids" in err
    assert _rekey(audience_file, ids_file, out) == 1  # the default column customer_id
    err = capsys.readouterr().err
    assert f"{ids_file}: no column 'customer_id' (columns: ['crm_id', 'name']); name the column" in err
    assert "--id-column" in err
    latin = project / "crm" / "latin.csv"
    latin.write_bytes("crm_id\nM\xfcller\n".encode("latin-1"))
    assert _rekey(audience_file, latin, out, "--id-column", "crm_id") == 1
    assert f"ids file {latin} is not UTF-8 text" in capsys.readouterr().err
    semicolons = project / "crm" / "semi.csv"
    semicolons.write_text("crm_id;name\n1;x\n")
    assert _rekey(audience_file, semicolons, out, "--id-column", "crm_id") == 1
    assert "read as one column: save the file comma-separated" in capsys.readouterr().err
    bad_audience = project / "crm" / "audience_copy.csv"
    bad_audience.write_text("id,persona\nc_1,x\n")
    assert _rekey(bad_audience, ids_file, out, "--id-column", "crm_id") == 1
    assert f"{bad_audience}: no column 'customer_id'" in capsys.readouterr().err
    assert not out.exists()


def test_help_explains_key_ids_and_output(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["rekey", "--help"])
    assert stop.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for words in (KEY_ENV, KEY_FILE_ENV, "leading zeros kept (00123 is not 123)", "--id-column NAME", "--force",
                  "--keep-pseudonym", "refuses to run", "run folder"):  # fmt: skip
        assert words in text, words
