"""Pseudonymization of customer identifiers with a keyed hash (HMAC-SHA256).

The key comes from the environment variable ``CP_TOOLKIT_PSEUDONYM_KEY`` or from the file
named by ``CP_TOOLKIT_PSEUDONYM_KEY_FILE`` (keep it outside the repository). Without one, a
random key is drawn for the run and a warning says that pseudonyms will not be comparable
across runs. No mapping back to raw identifiers is ever written.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import hmac
import os
import re
import secrets
import sys
import warnings
from collections.abc import Iterator
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
    "protect_cells",
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


def protect_cells(parts: pd.Series, hidden: pd.DataFrame, totals: list[list[Any]], min_size: int) -> pd.DataFrame:
    """Hide more cells of a table of counts until what is published about it pins down no group of
    1 to ``min_size - 1`` customers, however many figures a reader adds up or subtracts.

    The cells split into parts, the customers of each group in the cell (a segment's customers in
    an R x F cell); a cell may hold several groups. Published are the shown cells, the total of
    every row and of every column, and the combined customers of each list of groups in
    ``totals``; a reader knows which parts there can be (those of ``parts``, empty ones included)
    and that no other part holds anyone. The small groups are the hidden cells, the parts of cells
    shared by several groups, and the hidden share of each row, column and total, that hold 1 to
    ``min_size - 1`` customers. One is protected when some table of whole, non-negative numbers
    giving the same published figures has it empty, or holding ``min_size`` or more: the reader
    cannot even tell that it is a small group. For each one that is not, integer programming finds
    the shown cells that protect it at the least cost (customers hidden), customers then moving
    between parts without changing a published figure. Hiding a cell publishes less, so a group
    once protected stays so; the loop ends when all are.

    Parameters
    ----------
    parts : Series
        Customers per (row, column, group): every part there can be, empty or not.
    hidden : DataFrame of bool
        The cells hidden so far (indexed by the rows and columns of ``parts``).
    totals : list of list
        Groups whose combined customers are published (one group, or several pooled).
    min_size : int
        Smallest group a reader may know of.

    Returns
    -------
    DataFrame of bool
        The cells to hide: every cell when the row, column and group totals alone pin a small
        group down (the table cannot protect it; blank, at least it adds nothing).
    """
    from scipy.optimize import Bounds, LinearConstraint, milp

    hidden = hidden.copy()
    if parts.empty:
        return hidden
    keys = list(parts.index)
    values = parts.to_numpy(dtype="float64")
    cells = list(dict.fromkeys(key[:2] for key in keys))
    member = {cell: np.array([key[:2] == cell for key in keys]) for cell in cells}
    lines = [(i, label) for i in (0, 1) for label in dict.fromkeys(key[i] for key in keys)]
    laws = [np.array([key[i] == label for key in keys]) for i, label in lines]
    # a cell, and so each of its parts, holds at most the customers of its row and of its column
    line = {key: values[law].sum() for key, law in zip(lines, laws, strict=True)}
    most = {cell: min(line[0, cell[0]], line[1, cell[1]]) for cell in cells}
    laws += [np.array([key[2] in names for key in keys]) for names in map(set, totals) if names]
    fixed = np.array(laws, dtype="float64")
    n = len(keys)
    shared = {cell for cell in cells if (values[member[cell]] > 0).sum() > 1}  # customers of several groups

    def cheapest(small: np.ndarray) -> list[tuple[Any, Any]] | None:
        """The shown cells of least customers to hide so that a table with the same published figures
        has 0, or ``min_size`` or more, customers in ``small``; None if even hiding all does not."""
        shown = [cell for cell in cells if not hidden.loc[cell]]
        m = len(shown)
        flow, switch = np.zeros((m, n + m)), np.zeros((m, n + m))
        for j, cell in enumerate(shown):  # the moves in a shown cell add up to 0 unless it is hidden
            flow[j, :n], switch[j, n + j] = member[cell], most[cell]
        rules = [
            LinearConstraint(np.hstack([fixed, np.zeros((len(fixed), m))]), 0, 0),
            LinearConstraint(flow + switch, lb=0),
            LinearConstraint(flow - switch, ub=0),
        ]
        cost = np.concatenate([np.zeros(n), [values[member[cell]].sum() for cell in shown]])
        cap = np.array([most[key[:2]] for key in keys])
        bounds = Bounds(np.concatenate([-values, np.zeros(m)]), np.concatenate([cap - values, np.ones(m)]))
        held = small @ values
        best = None
        for low, high in ((min_size - held, np.inf), (-held, -held)):  # to min_size or more, or to none
            goal = LinearConstraint(np.concatenate([small, np.zeros(m)]), low, high)
            with _quiet_stdout():
                found = milp(cost, constraints=[*rules, goal], integrality=np.ones(n + m), bounds=bounds)
            if found.status == 0 and (best is None or found.fun < best.fun):
                best = found
        return None if best is None else [cell for j, cell in enumerate(shown) if best.x[n + j] > 0.5]

    while True:
        covered = np.array([bool(hidden.loc[key[:2]]) for key in keys])
        groups = [member[cell] for cell in cells if hidden.loc[cell]]
        groups += [np.array([other == key for other in keys]) for key in keys if key[:2] in shared]
        groups += [law & covered for law in laws]
        more = False
        for group in groups:
            if not 0 < values[group].sum() < min_size:
                continue
            extra = cheapest(group.astype("float64"))
            if extra is None:
                return hidden | True
            for cell in extra:
                hidden.loc[cell] = more = True
        if not more:
            return hidden


@contextlib.contextmanager
def _quiet_stdout() -> Iterator[None]:
    """Send what C code prints to the standard output to the null device meanwhile: HiGHS 1.12
    (the solver of :func:`scipy.optimize.milp`) prints a debugging line from some problems."""
    sys.stdout.flush()
    try:
        saved = os.dup(1)
    except OSError:  # no standard output
        yield
        return
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 1)
        yield
    finally:
        with contextlib.suppress(OSError, AttributeError, TypeError):  # no C library to flush (not POSIX)
            ctypes.CDLL(None).fflush(None)
        os.dup2(saved, 1)
        os.close(saved)
        os.close(null)


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
