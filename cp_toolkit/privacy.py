"""Pseudonymization of customer identifiers with a keyed hash (HMAC-SHA256).

The key comes from the environment variable ``CP_TOOLKIT_PSEUDONYM_KEY`` or from the file
named by ``CP_TOOLKIT_PSEUDONYM_KEY_FILE`` (keep it outside the repository). Without one, a
random key is drawn for the run and a warning says that pseudonyms will not be comparable
across runs. No mapping back to raw identifiers is ever written.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .errors import CPToolkitWarning, ParameterError
from .text import t

__all__ = [
    "as_id",
    "complementary_suppression",
    "deciles_allowed",
    "SUPPRESSED",
    "identifier_columns",
    "pool_small_counts",
    "values_to_pool",
    "shares_of_shown",
    "pseudonym_key",
    "pseudonymize",
    "suppress_small_groups",
]

KEY_ENV = "CP_TOOLKIT_PSEUDONYM_KEY"
KEY_FILE_ENV = "CP_TOOLKIT_PSEUDONYM_KEY_FILE"


#: Column names of direct identifiers (matched case-insensitively anywhere in the name).
IDENTIFIER_NAMES = r"name|e-?mail|phone|mobile|cell|fax|address|street|zip|post_?code|ssn|passport|iban|card"
#: Content patterns of direct identifiers: e-mail addresses and phone numbers.
IDENTIFIER_VALUES = {
    "e-mail": r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}",
    "phone": r"\+?[\d\s().-]{7,20}",
}


def identifier_columns(table: pd.DataFrame, sample: int = 1000) -> list[str]:
    """Columns that look like direct identifiers: by name, by content, or free text unique per row.

    Parameters
    ----------
    table : DataFrame
        Candidate attribute columns.
    sample : int
        Number of non-blank values inspected per column.

    Returns
    -------
    list of str
        Columns whose name matches :data:`IDENTIFIER_NAMES`; text columns whose non-blank values
        mostly (>50%) look like e-mail addresses or phone numbers (7 to 15 digits, not a date);
        and text columns distinct on nearly every row (>90% of 5 or more values, or >50% of 20
        or more): names and free text. Numeric, boolean and date columns are kept unless named.
    """
    return [col for col in table.columns if _looks_identifying(str(col), table[col], sample)]


def _looks_identifying(name: str, values: pd.Series, sample: int) -> bool:
    """Whether one column is a direct identifier (see :func:`identifier_columns`)."""
    if re.search(IDENTIFIER_NAMES, name, re.IGNORECASE):
        return True
    if not (pd.api.types.is_string_dtype(values) or pd.api.types.is_object_dtype(values)):
        return False
    text = values.astype("string").str.strip()
    text = text[text.notna() & (text != "")]
    if text.empty:
        return False
    head = text.head(sample)
    email = head.str.fullmatch(IDENTIFIER_VALUES["e-mail"]).mean() > 0.5
    digits = head.str.count(r"\d")
    dates = pd.to_datetime(head, errors="coerce", format="ISO8601").notna()
    phone = (head.str.fullmatch(IDENTIFIER_VALUES["phone"]) & digits.between(7, 15) & ~dates).mean() > 0.5
    distinct = text.nunique() / len(text)
    unique_text = (len(text) >= 5 and distinct > 0.9) or (len(text) >= 20 and distinct > 0.5)
    return bool(email or phone or unique_text)


def as_id(values: pd.Series) -> pd.Series:
    """Identifiers as stripped strings; empty strings become missing.

    Whole numbers stored as floats (spreadsheet exports write ``17850`` as ``17850.0``, as a
    number or as text) lose the ``.0``, value by value, so one customer has one id in every
    source; leading zeros and other text stay as they are. Stage 01 pseudonymizes these strings,
    and ``cp-toolkit rekey`` reads a key holder's ids through the same function, so that both
    hash the same text.

    Parameters
    ----------
    values : Series
        Raw identifiers as read (text, integers, or floats).

    Returns
    -------
    Series of string
        The identifiers as text; blank or missing ones are missing.
    """
    if pd.api.types.is_float_dtype(values):
        finite = values[np.isfinite(values)]
        if len(finite) == values.notna().sum() and (finite == np.round(finite)).all():
            values = values.astype("Int64")
    out = values.astype("string").str.strip()
    dotted = out.str.contains(".", regex=False).fillna(False)
    if dotted.any():
        out = out.mask(dotted, out[dotted].str.replace(r"^(\d+)\.0+$", r"\1", regex=True))
    return out.mask(out == "")


def pseudonym_key() -> bytes:
    """Return the pseudonymization key from the environment, or a random one with a warning.

    Returns
    -------
    bytes
        The HMAC key.
    """
    if os.environ.get(KEY_ENV):
        return os.environ[KEY_ENV].encode("utf-8")
    if os.environ.get(KEY_FILE_ENV):
        path = Path(os.environ[KEY_FILE_ENV]).expanduser()
        if not path.is_file():
            raise ParameterError(f"{KEY_FILE_ENV}={path} does not exist; point it at the key file")
        return path.read_bytes().strip()
    warnings.warn(
        t("privacy.no_key", key_env=KEY_ENV, key_file_env=KEY_FILE_ENV),
        CPToolkitWarning,
        stacklevel=2,
    )
    return secrets.token_bytes(32)


def pseudonymize(ids: pd.Series, key: bytes, prefix: str = "c") -> pd.Series:
    """Replace identifiers by ``<prefix>_<first 16 hex digits of HMAC-SHA256(key, id)>``.

    Parameters
    ----------
    ids : Series
        Raw identifiers (converted to str; missing values stay missing).
    key : bytes
        The HMAC key.
    prefix : str
        Marks the pseudonym's kind, e.g. ``c`` for customers.

    Returns
    -------
    Series
        Pseudonyms aligned with ``ids``; each distinct id is hashed once.
    """
    codes, uniques = pd.factorize(ids.astype("string"), use_na_sentinel=True)
    hashed = [f"{prefix}_" + hmac.new(key, str(u).encode("utf-8"), hashlib.sha256).hexdigest()[:16] for u in uniques]
    # code -1 (a missing id) picks the trailing None
    return pd.Series(np.array([*hashed, None], dtype=object)[codes], index=ids.index, dtype="string")


def suppress_small_groups(table: pd.DataFrame, count_col: str, min_size: int, partition: bool = True) -> pd.DataFrame:
    """Blank out every statistic of groups with fewer than ``min_size`` members.

    When the rows partition customers whose total is known elsewhere (``partition``), the
    suppressed rows together must hold ``min_size`` or more, or the total minus the rows shown would
    give them away: the smallest rows shown are suppressed with them (:func:`values_to_pool`).

    Parameters
    ----------
    table : DataFrame
        One row per group, with the group size in ``count_col``.
    count_col : str
        Column holding the number of customers of the group.
    min_size : int
        Smallest group that may be shown.
    partition : bool
        Whether the rows partition a known total (else only the small rows are suppressed).

    Returns
    -------
    DataFrame
        A copy where small groups keep only their label columns (non-numeric) and get
        ``suppressed = True``; their numbers are missing.
    """
    out = table.copy()
    counts = out[count_col].reset_index(drop=True)
    hidden = counts.index.isin(values_to_pool(counts, min_size)) if partition else (counts < min_size).to_numpy()
    small = pd.Series(hidden, index=out.index)
    numeric = out.select_dtypes("number").columns
    out[numeric] = out[numeric].astype("float64").mask(small, np.nan)
    out[count_col] = out[count_col].astype("Int64")
    out["suppressed"] = hidden
    return out


SUPPRESSED = "other (small groups)"


def complementary_suppression(
    counts: pd.DataFrame, hidden: pd.DataFrame, totals: list[list[tuple[Any, Any]]]
) -> pd.DataFrame:
    """Hide more cells of a table of counts until no published total gives a hidden cell away.

    Each total is a list of cells (row label, column label) whose sum is known elsewhere (a row, a
    column, a segment made of several cells). A total with exactly one hidden cell would reveal it,
    so its smallest shown non-empty cell is hidden too, repeatedly, until no total has exactly one.

    Parameters
    ----------
    counts : DataFrame
        Customers per cell.
    hidden : DataFrame of bool
        The cells hidden so far (same shape).
    totals : list of list of (row, column)
        The cells of every total a reader can know.

    Returns
    -------
    DataFrame of bool
        The cells to hide.
    """
    hidden = hidden.copy()
    changed = True
    while changed:
        changed = False
        for cells in totals:
            blank = [c for c in cells if hidden.loc[c]]
            shown = [c for c in cells if not hidden.loc[c] and counts.loc[c] > 0]
            if len(blank) == 1 and shown:
                hidden.loc[min(shown, key=lambda c: counts.loc[c])] = True
                changed = True
    return hidden


def deciles_allowed(customers: int, min_size: int, groups: int = 10) -> bool:
    """Whether a table of ``groups`` quantile groups of ``customers`` holds ``min_size`` or more in each."""
    return customers >= groups * min_size


def values_to_pool(counts: pd.Series, min_size: int) -> pd.Index:
    """The values to pool so that no group under ``min_size`` can be seen or worked out.

    Values with fewer than ``min_size`` members are pooled; while the pool is still smaller than
    ``min_size``, the smallest value shown joins it, since the total minus the counts shown would
    otherwise give the pool away (complementary suppression).
    """
    order = counts.sort_values(kind="stable")
    n = int((order < min_size).sum())
    while 0 < order.iloc[:n].sum() < min_size and n < len(order):
        n += 1
    return order.index[:n]


def pool_small_counts(counts: pd.Series, min_size: int) -> pd.Series:
    """Pool the categories of :func:`values_to_pool` into one :data:`SUPPRESSED` row.

    Their labels are not shown (a rare value can identify a person); the pooled count is missing
    when even all categories together stay below ``min_size``.
    """
    pooled = values_to_pool(counts, min_size)
    if pooled.empty:
        return counts
    total = counts[pooled].sum()
    out = pd.concat([counts.drop(pooled), pd.Series({SUPPRESSED: total})]).astype("float64")
    if total < min_size:
        out[SUPPRESSED] = np.nan
    return out


def shares_of_shown(counts: pd.Series) -> pd.Series:
    """Each count's share of the counts that are shown (missing counts get a missing share)."""
    return counts / counts.sum(skipna=True)
