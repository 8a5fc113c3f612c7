"""Join a run's audience to the key holder's own customer ids (``cp-toolkit rekey``).

Reports and artifacts hold pseudonyms only (``c_<16 hex>``, :func:`~cp_toolkit.privacy.pseudonymize`).
Whoever holds the pseudonymization key can compute the pseudonym of each of their own customer
ids and so find their rows in ``<run>/data/audience.csv``; nothing maps pseudonyms back. Ids are
read as stage 01 reads them (:func:`~cp_toolkit.privacy.as_id`): every value as text, surrounding
spaces removed, leading zeros kept (``00123`` is not ``123``), a whole number written as a float
(``17850.0``) read as ``17850``. Where stage 01 used an identity map, the ids it hashed are the
map's unified ``customer_id`` values, so those are the ids to supply.

The output holds raw ids: it must lie outside the run folder and any ``reports/`` folder
(:func:`check_output`), it is written atomically, readable by its owner only, and the console
shows counts, never ids.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .errors import OutputFolderError, ParameterError, SourceError
from .privacy import KEY_ENV, KEY_FILE_ENV, as_id, pseudonym_key, pseudonymize
from .run.artifacts import replacing
from .text import labels, t

__all__ = [
    "AUDIENCE_ID",
    "KEPT_PSEUDONYM",
    "RekeyCounts",
    "check_output",
    "distinct_ids",
    "join_audience",
    "protected_folders",
    "read_audience",
    "read_ids",
    "rekey",
    "required_key",
    "summary_lines",
    "write_atomically",
]

#: The pseudonym column of ``audience.csv``.
AUDIENCE_ID = "customer_id"
#: Name of the pseudonym column in the output when it is kept (``--keep-pseudonym``).
KEPT_PSEUDONYM = "pseudonym"
#: Delimiter of each text suffix of an ids file (read as stage 01 reads CSV).
TEXT_SEPARATORS = {".csv": ",", ".txt": ",", ".tsv": "\t"}
PARQUET_SUFFIXES = {".parquet", ".pq"}


@dataclass(frozen=True)
class RekeyCounts:
    """What a rekey matched (counts only, never ids) and where it wrote.

    Attributes
    ----------
    rows : int
        Data rows of the ids file.
    blank : int
        Rows with a blank id (skipped).
    duplicates : int
        Rows repeating an id of an earlier row (each id is kept once).
    supplied : int
        Distinct ids supplied.
    matched : int
        Supplied ids that have an audience row.
    audience : int
        Rows of the audience.
    audience_unmatched : int
        Audience rows whose pseudonym is not that of a supplied id (left out of the output).
    out : Path
        The file written.
    """

    rows: int
    blank: int
    duplicates: int
    supplied: int
    matched: int
    audience: int
    audience_unmatched: int
    out: Path

    @property
    def supplied_unmatched(self) -> int:
        """Supplied ids without an audience row."""
        return self.supplied - self.matched

    @property
    def written(self) -> int:
        """Rows of the output: the audience rows that matched a supplied id."""
        return self.audience - self.audience_unmatched


def required_key() -> bytes:
    """The pseudonymization key as stage 01 reads it, refusing to run without one.

    Returns
    -------
    bytes
        The key of :func:`~cp_toolkit.privacy.pseudonym_key`.

    Raises
    ------
    ParameterError
        When neither environment variable is set (a random key would match nothing) or the key is empty.
    """
    if not (os.environ.get(KEY_ENV) or os.environ.get(KEY_FILE_ENV)):
        raise ParameterError(
            f"no pseudonymization key: set {KEY_ENV} (or {KEY_FILE_ENV}, the path of the key file) to the key "
            "the run used; rekey needs the same key as stage 01"
        )
    key = pseudonym_key()
    if not key:
        raise ParameterError(f"the key file {os.environ[KEY_FILE_ENV]} is empty; point {KEY_FILE_ENV} at the key")
    return key


def _missing_file(path: Path, what: str, hint: str) -> SourceError | None:
    """An error when ``path`` is not a file, else None."""
    if path.is_file():
        return None
    state = "is a folder" if path.is_dir() else "does not exist"
    return SourceError(f"{what} {path} {state}; {hint}")


def _read_text_table(path: Path, sep: str, what: str) -> pd.DataFrame:
    """A delimited text file, every value as text as written (stage 01 reads CSV the same way)."""
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, sep=sep, encoding="utf-8-sig")
    except pd.errors.EmptyDataError as err:
        raise SourceError(f"{what} {path} is empty; it needs a header row and data rows") from err
    except UnicodeDecodeError as err:
        raise SourceError(f"{what} {path} is not UTF-8 text ({err.reason}); save it as UTF-8 CSV") from err
    except pd.errors.ParserError as err:
        raise SourceError(f"{what} {path} cannot be read as CSV ({err}); save it as comma-separated UTF-8") from err


def _missing_column(path: Path, column: str, columns: list[str], option: str) -> SourceError:
    """The error for a column the file does not have, with the columns it has."""
    hint = f"name the column of your ids with {option}" if option else "pass the audience.csv of stage 06"
    if len(columns) == 1 and any(ch in columns[0] for ch in ";|\t"):
        hint = "the header was read as one column: save the file comma-separated"
    return SourceError(f"{path}: no column {column!r} (columns: {columns}); {hint}")


def read_ids(path: Path, column: str) -> pd.Series:
    """The key holder's raw ids, as stage 01 reads a source: CSV values as written, Parquet as typed.

    Parameters
    ----------
    path : Path
        CSV (``.csv``, ``.txt``; ``.tsv`` tab-separated) or Parquet file.
    column : str
        Column holding the ids.

    Returns
    -------
    Series
        The column, one value per data row (not yet cleaned: see :func:`distinct_ids`).
    """
    missing = _missing_file(path, "ids file", "pass the file of your customer ids with --ids")
    if missing:
        raise missing
    suffix = path.suffix.lower()
    if suffix in PARQUET_SUFFIXES:
        return _read_parquet_column(path, column)
    if suffix not in TEXT_SEPARATORS:
        raise SourceError(f"ids file {path}: unsupported file type {suffix!r}; use CSV (.csv, .tsv) or Parquet")
    table = _read_text_table(path, TEXT_SEPARATORS[suffix], "ids file")
    if column not in table.columns:
        raise _missing_column(path, column, [str(c) for c in table.columns], "--id-column")
    return table[column]


def _read_parquet_column(path: Path, column: str) -> pd.Series:
    """One column of a Parquet file, converted as stage 01 converts Parquet batches."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        names = pq.read_schema(path).names
        if column not in names:
            raise _missing_column(path, column, names, "--id-column")
        return pq.read_table(path, columns=[column]).to_pandas()[column]
    except (OSError, pa.ArrowException) as err:
        raise SourceError(
            f"ids file {path} cannot be read as Parquet ({err}); check that the file is complete"
        ) from err


def distinct_ids(raw: pd.Series) -> tuple[pd.Series, int, int]:
    """The distinct ids as stage 01 hashes them, with the blanks and repeats left out.

    Parameters
    ----------
    raw : Series
        Ids as read by :func:`read_ids`.

    Returns
    -------
    ids : Series of string
        Each distinct non-blank id once, in order of first appearance.
    blank : int
        Values that are blank or missing.
    duplicates : int
        Non-blank values that repeat an earlier one (after spaces are removed).
    """
    ids = as_id(raw)
    present = ids.dropna()
    repeated = present.duplicated()
    return present[~repeated].reset_index(drop=True), int(ids.isna().sum()), int(repeated.sum())


def read_audience(path: Path) -> pd.DataFrame:
    """``audience.csv`` of stage 06, every value as text as written.

    Parameters
    ----------
    path : Path
        The audience file; its ``customer_id`` column holds the pseudonyms.

    Returns
    -------
    DataFrame
    """
    missing = _missing_file(path, "audience file", "pass <run>/data/audience.csv, written by stage 06")
    if missing:
        raise missing
    audience = _read_text_table(path, ",", "audience file")
    if AUDIENCE_ID not in audience.columns:
        raise _missing_column(path, AUDIENCE_ID, [str(c) for c in audience.columns], "")
    return audience


def _looks_like_run(folder: Path) -> bool:
    """Whether ``folder`` is a run folder: it holds ``manifest.json`` or ``params.json``."""
    return (folder / "manifest.json").is_file() or (folder / "params.json").is_file()


def _ancestors(path: Path) -> Iterator[Path]:
    """``path`` and every folder above it."""
    yield path
    yield from path.parents


def protected_folders(audience: Path) -> list[Path]:
    """Folders the output of a rekey must stay out of (absolute paths).

    Parameters
    ----------
    audience : Path
        The audience file.

    Returns
    -------
    list of Path
        The audience's run folder (the folder above ``data/``, when it looks like a run) and the
        ``reports/`` folders of the project: in the working folder, beside the package source, and
        the one holding the audience's run.
    """
    run = audience.resolve().parent.parent
    project = Path(__file__).resolve().parent.parent
    folders = [Path.cwd().resolve() / "reports", project / "reports"]
    if _looks_like_run(run):
        folders.append(run)
        if run.parent.name == "reports":
            folders.append(run.parent)
    return list(dict.fromkeys(folders))


def _refuse_inside(out: Path, audience: Path) -> None:
    """Refuse an output inside a protected folder or inside any run folder."""
    for folder in protected_folders(audience):
        if out.is_relative_to(folder):
            raise OutputFolderError(
                f"--out {out} lies inside {folder}, a run or reports folder; the output holds raw customer ids, "
                "so write it outside the run and reports folders (e.g. where you keep your CRM exports)"
            )
    for folder in _ancestors(out.parent):
        if _looks_like_run(folder) and (folder / "data").is_dir():
            raise OutputFolderError(
                f"--out {out} lies inside the run folder {folder}; the output holds raw customer ids, so write "
                "it outside every run folder"
            )


def check_output(out: Path, audience: Path, ids: Path, force: bool = False) -> Path:
    """The absolute output path, once it is safe to write.

    Parameters
    ----------
    out : Path
        The requested output (CSV).
    audience, ids : Path
        The input files (never overwritten, even with ``force``).
    force : bool
        Whether an existing output may be replaced.

    Returns
    -------
    Path
        ``out`` resolved.

    Raises
    ------
    OutputFolderError
        When ``out`` lies inside a run or reports folder (:func:`protected_folders`), is an input,
        a folder, not a ``.csv`` name, in a folder that does not exist, or exists without ``force``.
    """
    out = out.expanduser().resolve()
    _refuse_inside(out, audience)
    if out in (audience.resolve(), ids.resolve()):
        raise OutputFolderError(f"--out {out} is an input file; choose a new file name")
    if out.suffix.lower() != ".csv":
        raise OutputFolderError(f"--out {out}: the output is CSV; give it a .csv name")
    if out.is_dir():
        raise OutputFolderError(f"--out {out} is a folder; give the path of a .csv file")
    if not out.parent.is_dir():
        raise OutputFolderError(f"--out {out}: the folder {out.parent} does not exist; create it first")
    if out.exists() and not force:
        raise OutputFolderError(f"--out {out} exists; pass --force to replace it, or choose another file name")
    return out


def join_audience(
    audience: pd.DataFrame, ids: pd.Series, key: bytes, id_column: str, keep_pseudonym: bool = False
) -> tuple[pd.DataFrame, int]:
    """The audience rows of the supplied ids, with the holder's id first.

    Parameters
    ----------
    audience : DataFrame
        ``audience.csv``, pseudonyms in ``customer_id``.
    ids : Series of string
        Distinct raw ids (:func:`distinct_ids`).
    key : bytes
        The key stage 01 used.
    id_column : str
        Name of the holder's id column in the output.
    keep_pseudonym : bool
        Keep the pseudonym, as column ``pseudonym``, after the holder's id.

    Returns
    -------
    table : DataFrame
        Matched audience rows in audience order: ``id_column``, [``pseudonym``], the other audience columns.
    matched : int
        Supplied ids that have an audience row.
    """
    rest = [c for c in audience.columns if c != AUDIENCE_ID]
    for name in (id_column, KEPT_PSEUDONYM if keep_pseudonym else None):
        if name in rest:
            raise ParameterError(
                f"the output column {name!r} is also a column of the audience; rename the id column of your "
                "file (and pass its new name with --id-column)"
            )
    pseudonyms = pseudonymize(ids, key)
    holder = audience[AUDIENCE_ID].map(dict(zip(pseudonyms, ids, strict=True)))
    found = holder.notna()
    table = audience.loc[found, rest].reset_index(drop=True)
    if keep_pseudonym:
        table.insert(0, KEPT_PSEUDONYM, audience.loc[found, AUDIENCE_ID].to_numpy())
    table.insert(0, id_column, holder[found].to_numpy())
    return table, int(pseudonyms.isin(set(audience[AUDIENCE_ID])).sum())


def write_atomically(table: pd.DataFrame, out: Path) -> None:
    """Write ``table`` as CSV to a temporary file beside ``out``, then rename it to ``out``.

    The file is readable and writable by its owner only (it holds raw ids). A failure leaves
    ``out`` as it was and no temporary file behind.
    """
    try:
        with replacing(out) as tmp:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # raw ids: the owner's only
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as stream:
                table.to_csv(stream, index=False)
    except OSError as err:
        raise OutputFolderError(f"cannot write {out}: {err.strerror or err}; choose a folder you can write to") from err


def rekey(
    audience_file: Path,
    ids_file: Path,
    out: Path,
    id_column: str = "customer_id",
    keep_pseudonym: bool = False,
    force: bool = False,
) -> RekeyCounts:
    """Write the audience rows of the holder's ids to ``out``, the holder's id first.

    Parameters
    ----------
    audience_file : Path
        ``<run>/data/audience.csv`` of stage 06.
    ids_file : Path
        The holder's raw customer ids (CSV or Parquet), in ``id_column``.
    out : Path
        The output CSV, outside the run and reports folders (:func:`check_output`).
    id_column : str
        Column of ``ids_file`` holding the ids; the output's first column has this name.
    keep_pseudonym : bool
        Keep the pseudonym as column ``pseudonym``.
    force : bool
        Replace an existing ``out``.

    Returns
    -------
    RekeyCounts
    """
    key = required_key()
    audience_file, ids_file = audience_file.expanduser(), ids_file.expanduser()
    out = check_output(out, audience_file, ids_file, force)
    raw = read_ids(ids_file, id_column)
    ids, blank, duplicates = distinct_ids(raw)
    audience = read_audience(audience_file)
    table, matched = join_audience(audience, ids, key, id_column, keep_pseudonym)
    write_atomically(table, out)
    unmatched = len(audience) - len(table)
    return RekeyCounts(len(raw), blank, duplicates, len(ids), matched, len(audience), unmatched, out)


def summary_lines(counts: RekeyCounts, ids_file: Path) -> list[str]:
    """The console summary of a rekey: counts and file paths, never an id.

    Parameters
    ----------
    counts : RekeyCounts
    ids_file : Path
        The ids file read.

    Returns
    -------
    list of str
        A heading, one line per count (a warning after repeated ids, and when nothing matched) and
        the output path.
    """
    names = labels("rekey.console.label")
    figures = {
        "rows": counts.rows,
        "blank": counts.blank,
        "duplicates": counts.duplicates,
        "supplied": counts.supplied,
        "matched": counts.matched,
        "no_audience": counts.supplied_unmatched,
        "no_id": counts.audience_unmatched,
        "written": counts.written,
    }
    lines = [t("rekey.console.start", ids_file=ids_file, audience=counts.audience)]
    for name, value in figures.items():
        lines.append(t("rekey.console.count", value=value, label=names[name]))
        if name == "duplicates" and value:
            lines.append(t("rekey.console.duplicates"))
    if counts.supplied and not counts.matched:
        lines.append(t("rekey.console.none_matched", key_env=KEY_ENV, key_file_env=KEY_FILE_ENV))
    lines.append(t("rekey.console.done", out=counts.out))
    return lines
