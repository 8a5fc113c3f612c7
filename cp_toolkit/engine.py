"""The engine for line-level work: DuckDB connections with bounded memory, and Parquet in SQL."""

from __future__ import annotations

import tempfile
from pathlib import Path

import duckdb

__all__ = ["DUCKDB_MEMORY_LIMIT", "database", "parquet_sql"]

#: Memory DuckDB may use before it spills to disk; keeps ingest bounded whatever the input size.
DUCKDB_MEMORY_LIMIT = "512MB"


def database(path: str | Path = ":memory:", spill: str | Path | None = None, read_only: bool = False):
    """A DuckDB connection that spills to ``spill`` (default: a folder in the system temp dir) past
    :data:`DUCKDB_MEMORY_LIMIT` and shows no progress bar (it would print into notebook reports)."""
    con = duckdb.connect(str(path), read_only=read_only)
    spill = Path(tempfile.gettempdir()) / "cp_toolkit_duckdb" if spill is None else Path(spill)
    con.execute(f"SET memory_limit = '{DUCKDB_MEMORY_LIMIT}'")
    try:
        con.execute("SET enable_progress_bar = false")
    except duckdb.InvalidInputException:  # in Jupyter without ipywidgets DuckDB draws no bar anyway
        pass
    con.execute("SET temp_directory = '" + str(spill).replace("'", "''") + "'")
    return con


def parquet_sql(path: str | Path) -> str:
    """SQL that reads the Parquet file(s) at ``path`` in DuckDB (quotes escaped)."""
    return "read_parquet('" + str(path).replace("'", "''") + "')"
