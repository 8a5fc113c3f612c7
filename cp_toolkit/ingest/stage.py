"""Stage 01: read the sources, map them onto the canonical schema, clean and pseudonymize.

Every input row ends either in a canonical table or in the quarantine with one reason code,
and ``rows_in == rows_kept + rows_quarantined`` holds for every source (checked here: a mismatch
is a bug of the toolkit and stops the run).

Transactions are streamed, so that memory does not grow with the input: each source is read
:data:`~cp_toolkit.ingest.sources.CHUNK_ROWS` rows at a time, typed, checked row by row and
pseudonymized, and staged to Parquet; the rules that compare rows across the whole source
(duplicates, cancellation netting, outliers; :func:`cp_toolkit.ingest.cleaning.settle_reasons`) then
run in a DuckDB database on disk under a memory limit, and the kept lines, the orders, the
quarantine and the scorecard are written and computed from there batch by batch. The small keyed tables
(customers, products, campaigns, identity map) are read whole. Source descriptions are in
:mod:`cp_toolkit.ingest.sources`.
"""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pandas.api.types import is_bool_dtype, is_datetime64_any_dtype, is_numeric_dtype

from ..config import CHOICES, DEFAULTS
from ..engine import database, parquet_sql
from ..errors import CPToolkitWarning
from ..features import DISCOUNT_COLUMNS, ORDER_TYPES, ORDERS_SQL
from ..privacy import identifier_columns, pseudonym_key, pseudonymize
from ..run.artifacts import RunFolder
from ..run.pipeline import stage
from ..text import t
from ..timezones import time_zones
from .cleaning import excluded_accounts, row_reasons, settle_reasons
from .quality import scorecard
from .report import kpis
from .schema import SchemaError, validate_tables
from .sources import (
    CHUNK_ROWS,
    KEYS,
    PRESETS,
    REQUIRED,
    TRANSACTION_COLUMNS,
    SourceError,
    as_id,
    coerce_transactions,
    decimal_comma_hint,
    iso_check,
    iter_chunks,
    map_columns,
    parse_timestamps,
    read_source,
    resolve_sources,
    source_label,
    source_list,
    where,
)

__all__ = [
    "PRESETS",
    "IngestResult",
    "ingest",
    "ingest_into",
    "run_stage",
]

#: The canonical tables ingest writes.
TABLES = ("transactions", "customers", "products", "campaigns")
#: Text columns of the canonical transactions.
TEXT_COLUMNS = ("customer_id", "order_id", "product_id", "channel", "store_id")


@dataclass
class IngestResult:
    """Canonical tables, the quarantine and the row accounting of one ingest, in memory."""

    tables: dict[str, pd.DataFrame]
    quarantine: pd.DataFrame
    quality: dict[str, Any] = field(default_factory=dict)

    @property
    def scorecard(self) -> pd.DataFrame:
        """The data-quality scorecard (:func:`cp_toolkit.ingest.quality.scorecard`) as a table."""
        return pd.DataFrame(self.quality["scorecard"])


def ingest(
    dataset: str = DEFAULTS["dataset"],
    sources: Mapping[str, Any] | None = None,
    as_of: str = DEFAULTS["as_of"],
    key: bytes | None = None,
    chunk_rows: int = CHUNK_ROWS,
    zero_amount: str = DEFAULTS["zero_amount"],
    allow_identifiers: Collection[str] = DEFAULTS["allow_identifiers"],
) -> IngestResult:
    """Ingest into a temporary folder and return the tables in memory (for exploring and tests).

    Parameters
    ----------
    dataset : str
        Preset name (see :data:`~cp_toolkit.ingest.sources.PRESETS`) or ``"custom"``.
    sources : mapping, optional
        Source descriptions that add to or replace the preset's tables.
    as_of : str
        Last day of data in this run.
    key : bytes, optional
        HMAC key for pseudonyms; default from :func:`cp_toolkit.privacy.pseudonym_key`.
    chunk_rows : int
        Rows read at a time from a transaction source.
    zero_amount : {"set_aside", "purchase"}
        Lines of amount 0: quarantined, or kept as purchases without revenue.
    allow_identifiers : collection of str
        Customer attribute columns kept (pseudonymized) although they look like direct identifiers.

    Returns
    -------
    IngestResult
    """
    with tempfile.TemporaryDirectory(prefix="cp-ingest-") as tmp:
        folder = RunFolder(tmp)
        quality = ingest_into(folder, dataset, sources, as_of, key, chunk_rows, zero_amount, allow_identifiers)
        tables = {name: folder.load(name) for name in TABLES if folder.has(name)}
        return IngestResult(tables, folder.load("quarantine"), quality)


def ingest_into(
    run: RunFolder,
    dataset: str = DEFAULTS["dataset"],
    sources: Mapping[str, Any] | None = None,
    as_of: str = DEFAULTS["as_of"],
    key: bytes | None = None,
    chunk_rows: int = CHUNK_ROWS,
    zero_amount: str = DEFAULTS["zero_amount"],
    allow_identifiers: Collection[str] = DEFAULTS["allow_identifiers"],
) -> dict[str, Any]:
    """Read every source, clean it, pseudonymize customer ids and write the canonical tables,
    ``orders.parquet``, ``quarantine.parquet`` and ``quality.json`` to ``run``, in memory bounded
    by ``chunk_rows`` and :data:`~cp_toolkit.engine.DUCKDB_MEMORY_LIMIT` (parameters as in
    :func:`ingest`). ``zero_amount`` is how transaction lines of amount 0 are treated unless a
    source says ``allow_zero_amount``: ``set_aside`` (quarantined as ``non_positive_amount``) or
    ``purchase`` (kept: a purchase without revenue). A source that sets aside more than 5 % of its
    rows is named in a warning (:func:`set_aside_notes`).

    Returns
    -------
    dict
        The content of ``quality.json``: row accounting, coverage and the scorecard.
    """
    spec = resolve_sources(dataset, sources)
    spec["transactions"] = _zero_amount_default(spec["transactions"], zero_amount)
    key = pseudonym_key() if key is None else key
    for name in (*TABLES, "orders", "quarantine", "quality"):  # a failure leaves no outdated mix behind
        run.file(name).unlink(missing_ok=True)
    accounting: dict[str, Any] = {}
    keyed: dict[str, list[pd.DataFrame]] = {}
    labels: list[str] = []
    streams: list[_TransactionStream] = []
    n_tx = len(source_list(spec["transactions"]))
    with (
        run.staging("ingest") as tmp,  # removed on every path; the runner sweeps one a killed kernel left
        database(Path(tmp) / "ingest.duckdb", spill=Path(tmp) / "spill") as con,
        _ParquetAppender(run.file("quarantine"), QUARANTINE_SCHEMA) as quarantine,
    ):
        identity = None
        if "identity" in spec:
            good, bad, accounting["identity"] = _keyed_source("identity", spec["identity"], key, ())
            quarantine.write(_quarantine_rows(bad.assign(**_pseudonymized(bad, key)), "identity"))
            identity = {name: g.set_index("source_id")["customer_id"] for name, g in good.groupby("source")}
        for table, entry in ((t, e) for t, e in spec.items() if t != "identity"):
            entries = source_list(entry)
            for i, source in enumerate(entries):
                label = source_label(table, source, i, len(entries))
                label = label if label not in accounting else f"{label}:{i + 1}"
                if table == "transactions":
                    stream = _TransactionStream(label, source, len(labels), label if n_tx > 1 else None)
                    accounting[label] = stream.run(con, Path(tmp), as_of, key, identity, chunk_rows, quarantine)
                    labels.append(label)
                    streams.append(stream)
                    continue
                good, bad, accounting[label] = _keyed_source(table, source, key, allow_identifiers)
                quarantine.write(_quarantine_rows(bad.assign(**_pseudonymized(bad, key)), label))
                keyed.setdefault(table, []).append(good.assign(**_pseudonymized(good, key)))
        if not sum(accounting[label]["rows_kept"] for label in labels):
            kept_by = {label: accounting[label] for label in labels}
            raise SourceError(_nothing_kept(spec["transactions"], kept_by, streams, as_of))
        tables = _keyed_tables(keyed, as_of)
        try:
            validate_tables(tables)
        except SchemaError as err:
            raise SourceError(str(err)) from err
        overlap = _source_overlap(con, labels, identity)
        _write_transactions(con, len(labels), run.file("transactions"), chunk_rows)
        orders = ORDERS_SQL.format(lines=parquet_sql(run.file("transactions")))
        _write_batches(con, orders, run.file("orders"), chunk_rows, ORDER_TYPES)
    for name, table in tables.items():
        run.save(name, table)
    tables = {"transactions": run.file("transactions"), **tables}
    card = scorecard(tables, accounting, as_of)
    _warn_unmatched_customers(card, spec)
    quality = {
        **_quality_summary(accounting, run.file("transactions"), as_of),
        "zero_amount": _zero_amount_used(spec["transactions"]),
        **({"sources_overlap": overlap} if overlap else {}),
        "scorecard": card.to_dict("records"),
    }
    run.save("quality", quality)
    for note in set_aside_notes(quality):
        warnings.warn(note, CPToolkitWarning, stacklevel=2)
    return quality


#: Share of a source's rows set aside (for reasons other than ``after_as_of``) above which a note says so.
SET_ASIDE_NOTE_SHARE = 0.05


def set_aside_notes(quality: Mapping[str, Any]) -> list[str]:
    """One sentence per source that set aside more than :data:`SET_ASIDE_NOTE_SHARE` of its rows
    (rows after ``as_of`` are kept out of the run, not faults, and do not count): the source,
    the share and the most frequent reason."""
    notes = []
    for label, entry in quality["tables"].items():
        reasons = {r: n for r, n in entry["quarantined_by_reason"].items() if r != "after_as_of"}
        share = sum(reasons.values()) / max(entry["rows_in"], 1)
        if share > SET_ASIDE_NOTE_SHARE:
            top, n = max(reasons.items(), key=lambda item: (item[1], item[0]))
            notes.append(
                t(
                    "ingest.warning.set_aside",
                    label=label,
                    source=entry["source"],
                    share=share,
                    rows_in=entry["rows_in"],
                    reason=top,
                    rows=n,
                )
            )
    return notes


def _nothing_kept(
    entry: Any, accounting: Mapping[str, dict[str, Any]], streams: list[_TransactionStream], as_of: str
) -> str:
    """Why no transaction row was kept, with the fix that applies: a file without data rows, rows
    after ``as_of`` (with the dates they span), decimal commas, or the mapping and formats."""
    paths = [where(s) for s in source_list(entry)]
    if not sum(a["rows_in"] for a in accounting.values()):
        return (
            f"{paths}: no transaction row was kept: the file has no data rows, only a header; point path at a "
            "file that holds the transactions"
        )
    counted: dict[str, int] = {}
    for a in accounting.values():
        for reason, n in a["quarantined_by_reason"].items():
            counted[reason] = counted.get(reason, 0) + n
    top = max(counted, key=lambda r: (counted[r], r))
    dated = [s.span for s in streams if s.span[0] is not None]
    span = f" ({min(d[0] for d in dated).date()} to {max(d[1] for d in dated).date()})" if dated else ""
    fix = {
        "after_as_of": f"every dated row{span} lies after as_of {as_of}: set as_of to a day within the data",
        "invalid_timestamp": "the dates could not be read: check ts_format and the column mapped to ts",
        "invalid_amount": "the amounts could not be read as numbers: check the column mapped to amount and "
        "read: {decimal: ...}",
        "missing_customer_id": "no row has a customer id: check the column mapped to customer_id",
    }.get(top, "check as_of, ts_format and the column mapping")
    reasons = {label: a["quarantined_by_reason"] for label, a in accounting.items()}
    hints = [s.hint for s in streams if s.hint]
    return f"{paths}: no transaction row was kept ({reasons}); " + "; ".join([*hints, fix])


def _zero_amount_default(entry: Any, zero_amount: str) -> Any:
    """Transaction source(s) with ``allow_zero_amount`` set from ``zero_amount`` where they do not set it."""
    if zero_amount not in CHOICES["zero_amount"]:
        raise SourceError(f"zero_amount {zero_amount!r} is not one of {list(CHOICES['zero_amount'])}")
    allow = zero_amount == "purchase"
    sources = [{"allow_zero_amount": allow, **s} for s in source_list(entry)]
    return sources if isinstance(entry, list) else sources[0]


def _zero_amount_used(entry: Any) -> str:
    """How the transaction sources treated amount 0: ``purchase`` (all kept it), ``set_aside`` (none
    did) or ``mixed``; a source's own ``allow_zero_amount`` wins over the parameter."""
    kept = {bool(s.get("allow_zero_amount")) for s in source_list(entry)}
    return "mixed" if len(kept) > 1 else ("purchase" if kept.pop() else "set_aside")


def _batches(con: duckdb.DuckDBPyConnection, sql: str, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """The result of ``sql`` as DataFrames of at most ``chunk_rows`` rows."""
    for batch in con.sql(sql).to_arrow_reader(chunk_rows):
        yield batch.to_pandas()


class _ParquetAppender:
    """Append DataFrames of one layout to a Parquet file; the layout is ``schema``, or the first
    frame's. With a ``schema``, the file is written even when no frame comes; it is removed when
    the block it serves fails."""

    def __init__(self, path: Path, schema: pa.Schema | None = None) -> None:
        self.path, self.schema, self.writer = path, schema, None

    def write(self, frame: pd.DataFrame) -> None:
        table = pa.Table.from_pandas(frame, preserve_index=False, schema=self.schema)
        if self.writer is None:
            self.schema = table.schema
            self.writer = pq.ParquetWriter(self.path, table.schema)
        self.writer.write_table(table)

    def __enter__(self) -> _ParquetAppender:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.writer is not None:
            self.writer.close()
        elif self.schema is not None and exc[0] is None:
            pq.write_table(self.schema.empty_table(), self.path)
        if exc[0] is not None:  # no half-written artifact after a failure
            self.path.unlink(missing_ok=True)


#: Columns of ``quarantine.parquet`` (:func:`_quarantine_rows`).
QUARANTINE_SCHEMA = pa.schema(
    [("table", pa.string()), ("source", pa.string()), ("row", pa.int64()), ("reason", pa.string()),
     ("values", pa.string())]
)  # fmt: skip


@dataclass
class _TransactionStream:
    """One transaction source on its way through ingest.

    ``index`` orders the sources (ties in time keep source order); ``namespace`` prefixes order
    ids when several sources could reuse the same numbers.
    """

    label: str
    source: Mapping[str, Any]
    index: int
    namespace: str | None
    hint: str | None = None
    span: tuple[pd.Timestamp | None, pd.Timestamp | None] = (None, None)

    def run(
        self,
        con: duckdb.DuckDBPyConnection,
        tmp: Path,
        as_of: str,
        key: bytes,
        identity: dict[str, pd.Series] | None,
        chunk_rows: int,
        quarantine: _ParquetAppender,
    ) -> dict[str, Any]:
        """Stage, settle and split the source: its set-aside rows go to ``quarantine``, its kept
        rows to the table ``kept_<index>``. Returns its accounting."""
        staged = tmp / f"staged_{self.index}.parquet"
        tally = _Tally()
        with _ParquetAppender(staged) as out:
            for chunk in self.chunks(as_of, key, identity, chunk_rows, tally):
                out.write(chunk.assign(_seq=np.arange(tally.rows, tally.rows + len(chunk), dtype="int64")))
                tally.rows += len(chunk)
        tally.check(self.source)
        try:
            netting = settle_reasons(con, parquet_sql(staged), self.source)
        except ValueError as err:
            raise SourceError(f"{where(self.source)}: {err}") from err
        for batch in _batches(
            con, "SELECT * EXCLUDE (_seq) FROM settled WHERE reason IS NOT NULL ORDER BY _seq", chunk_rows
        ):
            quarantine.write(_quarantine_rows(batch.drop(columns="_net_customer", errors="ignore"), self.label))
        con.execute(
            f"CREATE TABLE kept_{self.index} AS SELECT * EXCLUDE (reason, _row, _file{', order_id' * self.has_orders}"
            f"{', _net_customer' * tally.net_customer}), {self.order_id_sql()} AS order_id, {self.index} AS _src "
            "FROM settled WHERE reason IS NULL"
        )
        by_reason = dict(con.execute("SELECT reason, count(*) FROM settled GROUP BY reason ORDER BY reason").fetchall())
        con.execute("DROP TABLE settled")
        staged.unlink()
        rows_kept = by_reason.pop(None, 0)
        self.hint = decimal_comma_hint(tally.numbers, f"{where(self.source)} (transactions)")
        if self.hint:
            warnings.warn(self.hint, CPToolkitWarning, stacklevel=3)
        zones = {"timezone": time_zones(self.source.get("timezone"))}
        return _accounting(
            self.source, tally.rows, rows_kept, by_reason, **zones, **({"netting": netting} if netting else {})
        )

    @property
    def has_orders(self) -> bool:
        """Whether the source maps an order id."""
        return "order_id" in dict(self.source.get("columns", {}))

    def order_id_sql(self) -> str:
        """Order ids of the kept rows: the source's own, or one order per customer and day when it has
        none; prefixed with the source's label when several sources could reuse the same numbers."""
        order = "order_id" if self.has_orders else "customer_id || '|' || strftime(ts, '%Y-%m-%d')"
        if self.namespace is None:
            return order
        return "'" + self.namespace.replace("'", "''") + "|' || " + order

    def chunks(
        self, as_of: str, key: bytes, identity: dict[str, pd.Series] | None, chunk_rows: int, tally: _Tally
    ) -> Iterator[pd.DataFrame]:
        """Typed, row-checked and pseudonymized chunks with ``reason`` (rules 1-2) and ``_hash``
        (of the whole typed source row, for duplicates across chunks). Cancellations are netted on
        the source's own customer ids (``_net_customer``) where an identity map changes them."""
        excluded = excluded_accounts(self.source)  # read once per source, not per chunk
        for raw in iter_chunks(self.source, chunk_rows):
            mapped = map_columns(raw, self.source, "transactions")
            df = coerce_transactions(mapped, self.source, tally.timestamps, tally.numbers)
            reason = row_reasons(df, pd.Timestamp(as_of), excluded)
            row_hash = _row_hash(df.drop(columns=["_row", "_file"]))
            self.span = _widen(self.span, df["ts"])
            df = df[["_row", "_file", *(c for c in TRANSACTION_COLUMNS if c in df.columns)]]
            ids = df["customer_id"]
            unified = _unify_ids(ids, self.source, identity, tally)
            if unified is not ids and self.source.get("cancellation_prefix"):
                df = df.assign(_net_customer=pseudonymize(df["customer_id"], key))
                tally.net_customer = True
            yield df.assign(customer_id=pseudonymize(unified, key), reason=reason, _hash=row_hash)


def _widen(
    span: tuple[pd.Timestamp | None, pd.Timestamp | None], ts: pd.Series
) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    """The first and last timestamp of ``span`` and ``ts`` together (missing ones ignored)."""
    ts = ts.dropna()
    if ts.empty:
        return span
    low, high = ts.min(), ts.max()
    return (low if span[0] is None else min(span[0], low), high if span[1] is None else max(span[1], high))


@dataclass
class _Tally:
    """Counts that span the chunks of one source: rows, timestamp parsing, identity-map matches."""

    rows: int = 0
    timestamps: dict[str, Any] = field(default_factory=lambda: {"failed": 0, "values": 0, "first": None})
    numbers: dict[str, Any] = field(default_factory=dict)
    matched: int = 0
    looked_up: int = 0
    net_customer: bool = False

    def check(self, source: Mapping[str, Any]) -> None:
        """Refuse a source whose dates are mostly not ISO 8601; warn when its ids hardly meet the identity map."""
        iso_check(self.timestamps, source.get("ts_format"), f"{where(source)} (transactions)")
        if self.looked_up and self.matched / self.looked_up < 0.1:
            warnings.warn(
                t(
                    "ingest.warning.identity_map",
                    where=where(source),
                    share=self.matched / self.looked_up,
                    name=source.get("name"),
                ),
                CPToolkitWarning,
                stacklevel=4,
            )


def _row_hash(frame: pd.DataFrame) -> np.ndarray:
    """A 64-bit hash of each row, the same for equal rows in any chunk: numbers are hashed as
    float64 and text as strings, whatever type a chunk's reader gave them."""
    normal = {
        c: "float64" if is_numeric_dtype(t) and not is_bool_dtype(t) else "string"
        for c, t in frame.dtypes.items()
        if not is_datetime64_any_dtype(t)
    }
    return pd.util.hash_pandas_object(frame.astype(normal), index=False).to_numpy()


def _write_transactions(con: duckdb.DuckDBPyConnection, n_sources: int, path: Path, chunk_rows: int) -> None:
    """Write the kept lines of every source in time order, each batch checked against the schema."""
    union = " UNION ALL BY NAME ".join(f"SELECT * FROM kept_{i}" for i in range(n_sources))
    present = {row[0] for row in con.execute(f"DESCRIBE {union}").fetchall()}
    columns = ["customer_id", "order_id", "ts", "amount"] + [
        c for c in ("quantity", "product_id", "channel", "store_id", *DISCOUNT_COLUMNS) if c in present
    ]
    sql = f"SELECT {', '.join(columns)} FROM ({union}) ORDER BY ts, order_id, _src, _seq"
    types = {c: "string" for c in TEXT_COLUMNS if c in columns} | {"ts": "datetime64[ns]"}
    _write_batches(con, sql, path, chunk_rows, types, check="transactions")


def _write_batches(
    con: duckdb.DuckDBPyConnection,
    sql: str,
    path: Path,
    chunk_rows: int,
    types: Mapping[str, str],
    check: str | None = None,
) -> None:
    """Write the result of ``sql`` to Parquet batch by batch, typed as ``types`` and, with ``check``,
    validated against that table's schema (row numbers in errors count from the table's start)."""
    with _ParquetAppender(path) as out:
        start = 0
        for batch in _batches(con, sql, chunk_rows):
            batch = batch.astype(dict(types))
            batch.index = pd.RangeIndex(start, start + len(batch))
            if check:
                try:
                    validate_tables({check: batch})
                except SchemaError as err:
                    raise SourceError(str(err)) from err
            out.write(batch)
            start += len(batch)


def _keyed_source(
    table: str, source: Mapping[str, Any], key: bytes, allow_identifiers: Collection[str]
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Read, map and clean one keyed source; returns kept rows, set-aside rows (the identifier
    columns kept under ``allow_identifiers`` pseudonymized in both, prefix ``id``) and its accounting."""
    raw = read_source(source)
    good, bad, identifiers = _clean_keyed(raw, source, table, allow_identifiers)
    by_reason = {str(k): int(v) for k, v in bad["reason"].value_counts().sort_index().items()}
    good, bad = (df.assign(**{c: pseudonymize(df[c], key, prefix="id") for c in identifiers}) for df in (good, bad))
    return good, bad, _accounting(source, len(raw), len(good), by_reason)


def _accounting(
    source: Mapping[str, Any], rows_in: int, rows_kept: int, by_reason: dict[str, int], **extra: Any
) -> dict[str, Any]:
    """The row accounting of one source; kept and set-aside rows must add up to the rows read."""
    entry = {
        "source": where(source),
        "rows_in": rows_in,
        "rows_kept": rows_kept,
        "rows_quarantined": sum(by_reason.values()),
        "quarantined_by_reason": by_reason,
        **extra,
    }
    if rows_kept + entry["rows_quarantined"] != rows_in:  # an invariant of the toolkit, not of the input
        raise RuntimeError(
            f"{where(source)}: {rows_in:,} rows in, {rows_kept:,} kept and {entry['rows_quarantined']:,} "
            "set aside; please report this"
        )
    return entry


def _pseudonymized(df: pd.DataFrame, key: bytes) -> dict[str, pd.Series]:
    """Pseudonyms for the customer identifiers of a frame (``customer_id``, and the identity
    map's ``source_id``), to assign before anything is written."""
    return {c: pseudonymize(df[c], key) for c in ("customer_id", "source_id") if c in df.columns}


def _keyed_tables(kept: dict[str, list[pd.DataFrame]], as_of: str) -> dict[str, pd.DataFrame]:
    """Customers, products and campaigns; customers and products get their canonical empty shape when absent."""
    frames = {t: pd.concat(p, ignore_index=True).drop(columns=["_row", "_file"]) for t, p in kept.items()}
    tables = {
        "customers": frames.get("customers", pd.DataFrame({"customer_id": pd.Series(dtype="string")})),
        "products": frames.get(
            "products",
            pd.DataFrame({"product_id": pd.Series(dtype="string"), "category": pd.Series(dtype="string")}),
        ),
    }
    if "campaigns" in frames:
        tables["campaigns"] = _campaign_table(frames["campaigns"], frames.get("responses"), as_of)
    return tables


def _source_overlap(
    con: duckdb.DuckDBPyConnection, labels: list[str], identity: dict[str, pd.Series] | None
) -> dict[str, Any]:
    """Customers per transaction source and how many buy in several (empty for a single source)."""
    if len(labels) < 2:
        return {}
    pairs = " UNION ALL ".join(f"SELECT DISTINCT customer_id, {i} AS _src FROM kept_{i}" for i in range(len(labels)))
    per_source = con.execute(f"SELECT _src, count(*) FROM ({pairs}) GROUP BY _src").fetchall()
    if len(per_source) < 2:  # only one source kept any line
        return {}
    several, customers = con.execute(
        "SELECT count(*) FILTER (WHERE n > 1), count(*) "
        f"FROM (SELECT count(*) AS n FROM ({pairs}) GROUP BY customer_id)"
    ).fetchone()
    return {
        "customers_per_source": {labels[i]: int(n) for i, n in sorted(per_source, key=lambda p: labels[p[0]])},
        "customers_in_several_sources": int(several),
        "customers": int(customers),
        "identity_map_entries": int(sum(len(v) for v in identity.values())) if identity else 0,
    }


def _warn_unmatched_customers(card: pd.DataFrame, spec: Mapping[str, Any]) -> None:
    """Warn when the customer table's ids hardly meet the transactions' (a mismatch of id formats)."""
    match = card[(card["table"] == "customers") & (card["dimension"] == "consistency")]["value"]
    if "customers" in spec and len(match) and match.iloc[0] < 0.1:
        where_ = ", ".join(where(s) for s in source_list(spec["customers"]))
        warnings.warn(
            t("ingest.warning.customers_unmatched", where=where_, share=match.iloc[0]),
            CPToolkitWarning,
            stacklevel=3,
        )


def _quality_summary(accounting: dict[str, Any], transactions: Path, as_of: str) -> dict[str, Any]:
    """Totals, per-table accounting and the coverage of the kept transactions."""
    with database() as con:
        customers, orders, first, last = con.execute(
            "SELECT count(DISTINCT customer_id), count(DISTINCT order_id), min(ts), max(ts) "
            f"FROM {parquet_sql(transactions)}"
        ).fetchone()
    return {
        "as_of": str(as_of),
        "rows_in": sum(t["rows_in"] for t in accounting.values()),
        "rows_kept": sum(t["rows_kept"] for t in accounting.values()),
        "rows_quarantined": sum(t["rows_quarantined"] for t in accounting.values()),
        "tables": accounting,
        "transactions": {
            "customers": int(customers),
            "orders": int(orders),
            "first_ts": str(pd.Timestamp(first)),
            "last_ts": str(pd.Timestamp(last)),
        },
    }


def _clean_keyed(
    raw: pd.DataFrame, spec: Mapping[str, Any], table: str, allow_identifiers: Collection[str]
) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Map and clean a keyed table: rows without a key or repeating a key are quarantined.

    Only mapped columns are kept, except in ``customers``, whose other columns become
    attributes once direct identifiers are removed (:func:`cp_toolkit.privacy.identifier_columns`)
    unless ``allow_identifiers`` names them. Returns the kept rows, the set-aside rows and the
    identifier columns kept (to pseudonymize).
    """
    df = map_columns(raw, spec, table)
    keep = ["_row", "_file", *dict(spec.get("columns", {}))]
    identifiers: list[str] = []
    if table == "customers":
        attributes, identifiers = _attribute_columns(df, spec, allow_identifiers)
        keep += attributes
    df = df[list(dict.fromkeys(keep))]
    for col in REQUIRED[table]:
        df[col] = as_id(df[col])
    if "ts" in df.columns:
        df["ts"] = parse_timestamps(df["ts"], spec.get("ts_format"), f"{where(spec)} ({table})", df["_row"])
    reason = pd.Series(pd.NA, index=df.index, dtype="string")
    for col in REQUIRED[table]:
        reason = reason.mask(reason.isna() & df[col].isna(), f"missing_{col}")
    if table in KEYS:
        reason = reason.mask(reason.isna() & df.duplicated(subset=KEYS[table], keep="first"), "duplicate_key")
    df["reason"] = reason
    return df[reason.isna()].drop(columns="reason"), df[reason.notna()], identifiers


def _attribute_columns(
    df: pd.DataFrame, spec: Mapping[str, Any], allow_identifiers: Collection[str]
) -> tuple[list[str], list[str]]:
    """Customer attribute columns and, among them, the identifiers kept because ``allow_identifiers``
    names them (to be pseudonymized).

    The attributes are ``attributes:`` when given, else every unmapped column. A column that looks
    like a direct identifier (:func:`cp_toolkit.privacy.identifier_columns`: e-mail, phone, name,
    or text unique per customer) is refused when listed under ``attributes:`` and dropped with a
    warning otherwise, unless ``allow_identifiers`` names it; an allowed one is kept with a warning.
    """
    mapped = set(dict(spec.get("columns", {}))) | {"_row", "_file"}
    candidates = [c for c in df.columns if c not in mapped]
    listed = list(spec.get("attributes", candidates))
    missing = [c for c in listed if c not in candidates]
    if missing:
        raise SourceError(f"{where(spec)} (customers): attribute column(s) {missing} not found")
    flagged = [c for c in identifier_columns(df[listed]) if c not in allow_identifiers]
    if flagged and "attributes" in spec:
        raise SourceError(
            f"{where(spec)} (customers): attribute column(s) {flagged} look like direct identifiers (e-mail, phone, "
            "name, or a value unique per customer); remove them from 'attributes:', or list them under the "
            f"parameter allow_identifiers (allow_identifiers: {flagged}) to keep them pseudonymized"
        )
    if flagged:
        warnings.warn(
            t("ingest.warning.identifiers_dropped", where=where(spec), columns=flagged),
            CPToolkitWarning,
            stacklevel=5,
        )
    kept = [c for c in listed if c not in flagged]
    allowed = [c for c in kept if c in allow_identifiers]
    if allowed:
        warnings.warn(identifier_note(where(spec), allowed), CPToolkitWarning, stacklevel=5)
    return kept, allowed


def identifier_note(source: str, columns: list[str]) -> str:
    """The warning for identifier columns kept because ``allow_identifiers`` names them."""
    return t("ingest.warning.identifiers_kept", where=source, columns=columns)


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


def _unify_ids(
    ids: pd.Series, source: Mapping[str, Any], identity: dict[str, pd.Series] | None, tally: _Tally
) -> pd.Series:
    """Replace a source's own customer ids by the identity map's unified ids.

    Applies to sources whose ``name`` appears in the identity map's ``source`` column; their
    ids missing from the map become ``<name>:<id>`` so that they cannot collide with another
    source's ids. Returns ``ids`` itself when the map does not apply.
    """
    name = source.get("name")
    if identity is None or name not in identity:
        return ids
    unified = ids.map(identity[name])
    tally.matched += int(unified.notna().sum())
    tally.looked_up += len(ids)
    return unified.fillna(f"{name}:" + ids)


@stage("01_ingest")
def run_stage(
    run: RunFolder,
    dataset: str = DEFAULTS["dataset"],
    sources: Mapping[str, Any] | None = None,
    as_of: str = DEFAULTS["as_of"],
    zero_amount: str = DEFAULTS["zero_amount"],
    allow_identifiers: list[str] = DEFAULTS["allow_identifiers"],
) -> dict[str, Any]:
    """Stage 01: ingest into the run folder (:func:`ingest_into`). The warnings that matter (a source
    setting aside more than 5 % of its rows, decimal commas, identifier columns kept or dropped, ids
    that hardly match, no pseudonymization key) are :class:`~cp_toolkit.errors.CPToolkitWarning`, so
    they become the stage's notes, printed on the console (:meth:`RunFolder.noting`).

    Returns
    -------
    dict
        The content of ``quality.json``.
    """
    q = ingest_into(run, dataset, sources, as_of, zero_amount=zero_amount, allow_identifiers=list(allow_identifiers))
    tx = [v for t, v in q["tables"].items() if t.split(":")[0] == "transactions"]
    run.record_stage(
        "01_ingest",
        t(
            "ingest.headline",
            lines_in=sum(v["rows_in"] for v in tx),
            kept=sum(v["rows_kept"] for v in tx),
            set_aside=sum(v["rows_quarantined"] for v in tx),
            customers=q["transactions"]["customers"],
            rows_in=q["rows_in"],
        ),
        rows={t: v["rows_kept"] for t, v in q["tables"].items()},
        kpis=kpis(q),
    )
    return q
