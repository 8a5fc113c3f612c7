"""Checks of a run's parameters, made before any stage runs (:func:`cp_toolkit.config.load_params`).

Every check returns a list of problems instead of raising, so that one :class:`ParameterError`
can list everything wrong in a parameter file at once. Each problem names its key as a dotted
path (``sources.transactions.read.sepp``) and says what is allowed; a key the toolkit does not
know, at any level, comes with the nearest known key (:func:`unknown_keys`).

This module imports only the standard library and PyYAML, so that the rule checks of stage 03
(:func:`rfm_rule_problems`, :func:`tag_definition_problems`) can live here and be used both up
front and by the stage itself. The source checks need the ingest vocabulary (presets, canonical
columns) and pandas' reader options; they import them when they run.
"""

from __future__ import annotations

import codecs
import copy
import datetime as dt
import difflib
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "SOURCE_KEYS",
    "TAG_SETTINGS",
    "check_values",
    "read_yaml",
    "rfm_rule_problems",
    "tag_definition_problems",
    "unknown_keys",
]


class _Loader(yaml.SafeLoader):
    """YAML's safe loader without implicit dates: ``as_of: 2017-13-40`` stays text and is reported
    as a bad date with the other problems, instead of stopping the parser."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def read_yaml(path: Path, what: str) -> Any:
    """The content of a YAML file (dates as text); a missing, unreadable or malformed file raises
    :class:`ParameterError` naming the file and, for a syntax error, the line."""
    from .errors import ParameterError

    if not path.is_file():
        raise ParameterError(f"{path}: the {what} does not exist; pass an existing YAML file")
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)  # noqa: S506 (a safe loader)
    except (OSError, UnicodeDecodeError) as err:
        raise ParameterError(f"{path}: the {what} cannot be read ({err}); check its permissions and encoding") from err
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark else ""
        raise ParameterError(
            f"{path}: the {what} is not valid YAML{line}: {getattr(err, 'problem', err)}; fix the syntax"
        ) from err


def unknown_keys(
    given: Mapping[str, Any], known: Any, where: str, what: str = "key", listed: str | None = None
) -> list[str]:
    """One problem per key of ``given`` not in ``known``, with the nearest known key when one is
    close; the known keys are listed, or ``listed`` says where to find them."""
    problems = []
    for key in given:
        if key in known:
            continue
        near = difflib.get_close_matches(str(key), [str(k) for k in known], n=1, cutoff=0.6)
        hint = f"did you mean {near[0]!r}? " if near else ""
        problems.append(f"{_join(where, key)}: unknown {what}; {hint}{listed or f'known: {sorted(map(str, known))}'}")
    return problems


def _join(where: str, key: Any) -> str:
    return f"{where}.{key}" if where else str(key)


# ----------------------------------------------------------------------------------------------
# Values of single parameters


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value  # not NaN


def whole(low: int, high: int | None = None) -> Callable[[str, Any], list[str]]:
    """A check of a whole number in ``[low, high]``."""
    span = f">= {low}" if high is None else f"from {low} to {high}"

    def check(key: str, value: Any) -> list[str]:
        if _is_int(value) and value >= low and (high is None or value <= high):
            return []
        return [f"{key}: {value!r} is not allowed; use a whole number {span}"]

    return check


def number(low: float, high: float, low_open: bool, high_open: bool, hint: str = "") -> Callable[[str, Any], list[str]]:
    """A check of a number between ``low`` and ``high`` (each bound open or closed)."""
    span = f"{'>' if low_open else '>='} {low}" + (
        "" if high == float("inf") else f" and {'<' if high_open else '<='} {high}"
    )

    def check(key: str, value: Any) -> list[str]:
        if _is_number(value):
            above = value > low if low_open else value >= low
            below = value < high if high_open else value <= high
            if above and below:
                return []
        return [f"{key}: {value!r} is not allowed; use a number {span}{hint}"]

    return check


def choice(options: tuple[str, ...]) -> Callable[[str, Any], list[str]]:
    """A check of one of a few words."""

    def check(key: str, value: Any) -> list[str]:
        return [] if value in options else [f"{key}: {value!r} is not one of {list(options)}"]

    return check


def text(key: str, value: Any) -> list[str]:
    """A check of a non-empty string."""
    ok = isinstance(value, str) and value.strip()
    return [] if ok else [f"{key}: {value!r} is not allowed; use a non-empty text"]


def text_list(key: str, value: Any) -> list[str]:
    """A check of a list of strings."""
    if isinstance(value, list) and all(isinstance(v, str) and v for v in value):
        return []
    return [f"{key}: {value!r} is not allowed; use a list of column names, e.g. [email] (or [] for none)"]


def iso_date(key: str, value: Any) -> list[str]:
    """A check of a day written ``YYYY-MM-DD``."""
    try:
        if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            dt.date.fromisoformat(value)
            return []
    except ValueError:
        pass
    return [f'{key}: {value!r} is not a date; write it as "YYYY-MM-DD", e.g. "2017-12-31"']


def optional(check: Callable[[str, Any], list[str]]) -> Callable[[str, Any], list[str]]:
    """``check``, or ``null``."""
    return lambda key, value: [] if value is None else check(key, value)


# ----------------------------------------------------------------------------------------------
# The R x F rule table of stage 03

#: Every R x F pair, R then F ("53": R = 5, F = 3).
RF_PAIRS = tuple(f"{r}{f}" for r in range(1, 6) for f in range(1, 6))


def rfm_rule_problems(rules: Any, where: str = "rfm_segments") -> list[str]:
    """Problems of an R x F rule table ``{regular expression on "<R><F>": segment name}``: every
    pattern must compile and every one of the 25 pairs match exactly one pattern."""
    if not isinstance(rules, Mapping) or not rules:
        return [f'{where}: {rules!r} is not a rule table; use a mapping such as {{"[4-5][4-5]": Best, ...}}, or null']
    problems, patterns = [], []
    for pattern, name in rules.items():
        try:
            re.compile(str(pattern))
            patterns.append(str(pattern))
        except re.error as err:
            problems.append(f"{where}.{pattern}: not a regular expression ({err}); fix the pattern")
        if not isinstance(name, str) or not name.strip():
            problems.append(f"{where}.{pattern}: the segment name {name!r} is not a text; name the segment")
    if problems:
        return problems
    hits = {pair: [p for p in patterns if re.fullmatch(p, pair)] for pair in RF_PAIRS}
    bad = {pair: found for pair, found in hits.items() if len(found) != 1}
    if bad:
        problems.append(
            f"{where}: every R x F pair (R then F, e.g. '53') must match exactly one pattern; these do not: {bad}"
        )
    return problems


# ----------------------------------------------------------------------------------------------
# Tag definitions of stage 03 (cp_toolkit/segment/tags.yaml)

#: The settings each tag group of :func:`cp_toolkit.segment.tags.build_tags` reads: (required, optional).
TAG_SETTINGS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "value_tier": (("tiers",), ("column",)),
    "lifecycle": (("new_within_days", "active_within_days", "at_risk_within_days"), ()),
    "favourite_category": ((), ("min_share",)),
    "weekend_shopper": (("min_share",), ()),
    "channel_preference": (("min_share",), ()),
    "store_loyalty": (("min_share",), ()),
    "shopping_rhythm": (("regular_below_cv",), ()),
    "discount_seeker": (("min_savings_rate",), ("min_coupon_order_share",)),
    "campaign_responder": ((), ()),
}


def _tag_setting(key: str, name: str, value: Any) -> list[str]:
    """Problems of one tag setting's value: shares and quantiles in [0, 1], days and CV >= 0."""
    if name == "tiers":
        if not isinstance(value, Mapping) or not value:
            return [f"{key}: use a mapping of tier name to the quantile it starts at, e.g. {{low: 0.0, high: 0.8}}"]
        return [p for tier, start in value.items() for p in number(0, 1, False, False)(f"{key}.{tier}", start)]
    if name == "column":  # a column of the feature table
        return text(key, value)
    if name.endswith("_days"):
        return whole(0)(key, value)
    high = float("inf") if name == "regular_below_cv" else 1
    return number(0, high, False, high == float("inf"))(key, value)


def tag_definition_problems(rules: Any, where: str) -> list[str]:
    """Problems of a tag definition table: a ``version``, known tag groups, and in each group the
    settings it needs and no others (a typo is named with the nearest setting)."""
    if not isinstance(rules, Mapping) or "version" not in rules:
        return [f"{where}: tag definitions need a 'version' and one entry per tag group"]
    problems = unknown_keys({k: v for k, v in rules.items() if k != "version"}, TAG_SETTINGS, where, "tag group")
    for group, rule in rules.items():
        if group == "version" or group not in TAG_SETTINGS:
            continue
        required, optional_ = TAG_SETTINGS[group]
        rule = {} if rule is None else rule
        if not isinstance(rule, Mapping):
            problems.append(f"{where}.{group}: {rule!r} is not a mapping of settings; see the packaged tags.yaml")
            continue
        problems += unknown_keys(rule, (*required, *optional_), f"{where}.{group}", "setting")
        problems += [
            f"{where}.{group}.{name}: missing; tag group {group!r} needs the setting {name!r}"
            for name in required
            if name not in rule
        ]
        for name in (n for n in rule if n in (*required, *optional_)):
            problems += _tag_setting(f"{where}.{group}.{name}", name, rule[name])
    return problems


def _tag_file_problems(key: str, value: Any) -> list[str]:
    """Problems of the ``tag_definitions`` file: it exists, reads as YAML and holds valid rules."""
    from .errors import ParameterError

    if not isinstance(value, str) or not value:
        return [f"{key}: {value!r} is not allowed; give the path of a YAML file of tag rules, or null"]
    try:
        rules = read_yaml(Path(value).expanduser(), "tag definition file")
    except ParameterError as err:
        return [f"{key}: {err}"]
    return tag_definition_problems(rules, f"{key} ({value})")


# ----------------------------------------------------------------------------------------------
# The earlier run of the migration


def _previous_run_problems(key: str, value: Any, runs_folder: Path | None) -> list[str]:
    """``previous_run`` (relative paths from the folder that holds the run) must hold the segments
    and features stage 03 reads from it."""
    if not isinstance(value, str) or not value:
        return [f"{key}: {value!r} is not allowed; give an earlier run folder, or null"]
    folder = Path(value).expanduser()
    if not folder.is_absolute():
        if runs_folder is None:
            return []  # checked once the run folder is known
        folder = runs_folder / folder
    missing = [
        f"data/{name}" for name in ("segments.parquet", "features.parquet") if not (folder / "data" / name).is_file()
    ]
    if missing:
        where = "does not exist" if not folder.is_dir() else f"has no {' or '.join(missing)}"
        return [f"{key}: {folder} {where}; give a run folder where stage 03 ran, or null"]
    return []


# ----------------------------------------------------------------------------------------------
# Source descriptions (stage 01; see cp_toolkit.ingest.sources)

#: The keys of a source description, from the code that reads them: ``sources`` (path, query,
#: table, read, columns, ts_format, channel, name), ``cleaning`` (drop_duplicates,
#: allow_zero_amount, cancellation_prefix, outlier_iqr_k, exclude_customers_file) and the
#: ingest stage (attributes). Tested against the code.
SOURCE_KEYS: dict[str, str] = {
    "path": "text",
    "query": "text",
    "table": "text",
    "read": "read options",
    "columns": "column mapping",
    "ts_format": "text",
    "timezone": "time zone",
    "channel": "text",
    "name": "text",
    "drop_duplicates": "true/false",
    "allow_zero_amount": "true/false",
    "cancellation_prefix": "text",
    "outlier_iqr_k": "number",
    "exclude_customers_file": "file",
    "attributes": "list",
}
#: The keys of a source description that name local files (relative paths resolve against the
#: folder the run starts in; ``pkg://`` names bundled data).
FILE_KEYS = ("path", "exclude_customers_file")
#: Keys read only for transaction sources, and only for customer sources.
TRANSACTION_ONLY = ("channel", "drop_duplicates", "allow_zero_amount", "cancellation_prefix", "outlier_iqr_k",
                    "exclude_customers_file")  # fmt: skip
CUSTOMERS_ONLY = ("attributes",)
#: Read options the toolkit sets itself (:func:`cp_toolkit.ingest.sources._csv_chunks`).
OWN_READ_OPTIONS = {"filepath_or_buffer", "dtype", "keep_default_na", "chunksize", "iterator"}


def read_options() -> set[str]:
    """The options a source's ``read:`` may set: those of ``pandas.read_csv`` (and of
    ``pandas.read_excel`` the ingest passes on) but those the toolkit sets itself."""
    import inspect

    import pandas as pd

    from .ingest.sources import EXCEL_OPTIONS

    return (set(inspect.signature(pd.read_csv).parameters) - OWN_READ_OPTIONS) | set(EXCEL_OPTIONS)


def _read_problems(key: str, read: Any) -> list[str]:
    from .ingest.sources import DROPPING_READ_OPTIONS

    if not isinstance(read, Mapping):
        return [f"{key}: {read!r} is not a mapping of read options, e.g. {{sep: ';', encoding: latin-1}}"]
    known = read_options()
    problems = [
        f"{key}.{name}: would drop lines before they are counted; remove it (every line is kept or set aside "
        "with a reason)"
        for name in read
        if name in DROPPING_READ_OPTIONS
    ]
    kept = {k: v for k, v in read.items() if k not in DROPPING_READ_OPTIONS}
    problems += unknown_keys(kept, known, key, "read option", "see the options of pandas.read_csv")
    if "encoding" in read:
        try:
            codecs.lookup(str(read["encoding"]))
        except LookupError:
            problems.append(f"{key}.encoding: {read['encoding']!r} is not an encoding; use e.g. utf-8 or latin-1")
    if read.get("engine") not in (None, "c", "python"):
        problems.append(f"{key}.engine: {read['engine']!r} is not allowed; use c or python (or leave it out)")
    return problems


def _columns_problems(key: str, columns: Any, table: str) -> list[str]:
    from .ingest.sources import CANONICAL, REQUIRED, TRANSACTION_COLUMNS

    if not isinstance(columns, Mapping):
        return [f"{key}: {columns!r} is not a mapping of canonical name to your column"]
    known = TRANSACTION_COLUMNS if table == "transactions" else sorted(CANONICAL)
    problems = unknown_keys(columns, known, key, "canonical column")
    for canon, source in columns.items():
        if isinstance(source, list):
            ok = bool(source) and all(isinstance(s, str) and s for s in source)
        else:
            ok = isinstance(source, str) and bool(source)
        if not ok:
            problems.append(f"{key}.{canon}: {source!r} is not a column name (or a non-empty list of them)")
    absent = [c for c in REQUIRED[table] if c not in columns]
    if absent:
        problems.append(f"{key}: canonical column(s) {absent} are not mapped; add them as canonical: your column")
    if table == "transactions" and "amount" not in columns and not {"quantity", "price"} <= set(columns):
        problems.append(f"{key}: map 'amount', or both 'quantity' and 'price'")
    return problems


def _file_problems(key: str, path: Any, kind: str) -> list[str]:
    """A source file (``pkg://``, a file or a glob) exists and can be read."""
    from .errors import SourceError
    from .ingest.sources import EXCEL_SUFFIXES, TEXT_SUFFIXES, resolve_paths

    if not isinstance(path, str) or not path:
        return [f"{key}: {path!r} is not a path; give the file, e.g. data/sales.csv"]
    if path.startswith("pkg://") and not _package_exists(path):
        return [f"{key}: {path}: no installed package {path[6:].partition('/')[0]!r}; install it or fix the path"]
    try:
        files = resolve_paths(path)
    except (SourceError, ModuleNotFoundError) as err:
        return [f"{key}: {err}"]
    problems = [f"{key}: {f} cannot be read; check its permissions" for f in files if not os.access(f, os.R_OK)]
    if kind == "file" and not problems:
        suffixes = {f.suffix.lower() for f in files} - TEXT_SUFFIXES - EXCEL_SUFFIXES - {".parquet"}
        if suffixes:
            problems.append(f"{key}: unsupported file type(s) {sorted(suffixes)}; use CSV, TSV, TXT, Parquet or Excel")
    return problems


def _package_exists(path: str) -> bool:
    """Whether the package of a ``pkg://package/file`` path is installed (found without importing it)."""
    from importlib.util import find_spec

    return find_spec(path[len("pkg://") :].partition("/")[0]) is not None


def _value_problems(key: str, name: str, value: Any) -> list[str]:
    """Problems of one key of a source description (but ``read``, ``columns`` and file existence)."""
    kind = SOURCE_KEYS[name]
    if kind == "text" or kind == "file":
        return text(key, value)
    if kind == "true/false":
        return [] if isinstance(value, bool) else [f"{key}: {value!r} is not allowed; use true or false"]
    if kind == "number":
        return number(0, float("inf"), True, True)(key, value)
    if kind == "list":
        return text_list(key, value)
    if kind == "time zone":
        return timezone_problems(key, value)
    return []


def timezone_problems(key: str, value: Any) -> list[str]:
    """Problems of a source's ``timezone``: a zone name (the timestamps are local time there) or
    ``{stored: <zone>, local: <zone>}`` (stored in one zone, reported in local time of the other)."""
    from zoneinfo import available_timezones

    zones = value if isinstance(value, Mapping) else {"stored": value, "local": value}
    if not isinstance(value, (str, Mapping)) or set(zones) - {"stored", "local"} or not zones:
        return [f"{key}: {value!r} is not allowed; give a zone name such as America/New_York, "
                "or {stored: UTC, local: America/New_York}"]  # fmt: skip
    known = available_timezones() | {"UTC"}
    return [
        f"{key}.{part}: {zone!r} is not a time zone name; use an IANA name such as UTC or Europe/London"
        for part, zone in zones.items()
        if zone not in known
    ]


def source_problems(source: Any, table: str, where: str) -> list[str]:
    """Problems of one source description of ``table`` (``where`` is its dotted key)."""
    if not isinstance(source, Mapping):
        return [f"{where}: {source!r} is not a source description; give at least path and columns"]
    problems = unknown_keys(source, SOURCE_KEYS, where, "source key")
    for name, value in source.items():
        key = f"{where}.{name}"
        if name not in SOURCE_KEYS:
            continue
        if table != "transactions" and name in TRANSACTION_ONLY:
            problems.append(f"{key}: applies only to transactions sources; remove it")
        elif table != "customers" and name in CUSTOMERS_ONLY:
            problems.append(f"{key}: applies only to the customers source; remove it")
        elif name == "read":
            problems += _read_problems(key, value)
        elif name == "columns":
            problems += _columns_problems(key, value, table)
        else:
            problems += _value_problems(key, name, value)
    if "columns" not in source:
        problems += _columns_problems(f"{where}.columns", {}, table)
    problems += _location_problems(source, where)
    return problems


def _location_problems(source: Mapping[str, Any], where: str) -> list[str]:
    """Where a source is: a file (or glob, or ``pkg://``), a DuckDB ``table`` in the database at
    ``path``, or a ``query``; the files must exist."""
    if source.get("query"):
        return _file_problems(f"{where}.path", source["path"], "database") if source.get("path") else []
    if not source.get("path"):
        return [f"{where}: no 'path' (nor 'query'); point it at your file, e.g. path: data/x.csv"]
    problems = _file_problems(f"{where}.path", source["path"], "database" if source.get("table") else "file")
    if source.get("exclude_customers_file"):
        problems += _file_problems(f"{where}.exclude_customers_file", source["exclude_customers_file"], "list")
    return problems


def merged_sources(preset: Mapping[str, Any], sources: Mapping[str, Any]) -> dict[str, Any]:
    """A preset's source descriptions with the user's over them, table by table: a user's table
    description wins key by key (its ``columns`` mapping merged over the preset's), a list of
    descriptions replaces the preset's table. :func:`cp_toolkit.ingest.sources.resolve_sources`
    merges with this function and then checks the result."""
    spec = copy.deepcopy(dict(preset))
    for table, user in copy.deepcopy(dict(sources)).items():
        if isinstance(user, list):
            spec[table] = user
            continue
        base = spec.get(table, {})
        columns = user.get("columns", {})
        spec[table] = (
            {**base, **user, "columns": {**base.get("columns", {}), **columns}}
            if isinstance(columns, Mapping)
            else {**base, **user}
        )
    return spec


def sources_problems(dataset: str, sources: Any) -> list[str]:
    """Problems of ``sources`` (merged over the ``dataset`` preset as ingest merges them)."""
    from .ingest.sources import PRESETS, REQUIRED, source_list

    if not isinstance(sources, Mapping):
        return [f"sources: {sources!r} is not a mapping of table name to source description"]
    problems = unknown_keys(sources, REQUIRED, "sources", "table")
    usable = {}
    for table, entry in ((t, e) for t, e in sources.items() if t in REQUIRED):
        parts = entry if isinstance(entry, list) else [entry]
        if parts and all(isinstance(p, Mapping) for p in parts):
            usable[table] = entry
        else:
            problems.append(f"sources.{table}: {entry!r} is not a source description (or a list of them)")
    spec = merged_sources(PRESETS.get(dataset, {}), usable)
    if "transactions" not in spec:
        problems.append("sources.transactions: missing; a 'transactions' source is required (path and columns)")
    for table, entry in spec.items():
        for i, source in enumerate(source_list(entry)):
            where = f"sources.{table}" + (f"[{i}]" if isinstance(entry, list) else "")
            problems += source_problems(source, table, where)
    return problems


# ----------------------------------------------------------------------------------------------
# All parameters


def _checks(choices: Mapping[str, tuple[str, ...]]) -> dict[str, Callable[[str, Any], list[str]]]:
    """The check of each parameter's own value (bounds from the code that uses the value)."""
    return {
        "as_of": iso_date,
        "min_group_size": whole(1),  # 1 suppresses nothing
        "currency": text,
        "top_n_categories": whole(1),
        "persona_categories": whole(1),
        "horizon_days": whole(1),
        "new_customer_days": optional(whole(1)),  # null: New is the R x F cell alone
        "seed": whole(0, 2**32 - 1),  # numpy and scikit-learn random states
        **{name: choice(options) for name, options in choices.items()},
        "clv_holdout_fraction": number(0, 1, True, True),
        "clv_calibration_end": optional(iso_date),
        "clv_horizon_months": whole(1),
        "annual_discount_rate": number(0, 1, False, False, " (a yearly rate as a fraction: 0.10 is 10%)"),
        "margin": number(0, 1, True, False, " (a share of revenue: 1.0 gives CLV in revenue)"),
        "clv_bootstrap_samples": whole(2),  # intervals need two refits
        "contact_share": number(0, 1, True, False, " (a share of the customers: 0.2 is at most 20%)"),
        "contact_budget": optional(number(0, float("inf"), False, True, " (a total cost in the run's currency)")),
        "contact_cost": number(0, float("inf"), False, True, " (the cost of one contact in the run's currency)"),
        "save_rate": number(0, 1, False, False, " (a share: 0.1 keeps 10% of contacted would-be lapsers)"),
        "allow_identifiers": text_list,
        "non_product_categories": optional(text_list),
        "cell_timeout": optional(whole(1)),  # null: a cell may run for ever
    }


def _playbook_problems(path: Any) -> list[str]:
    """What is wrong with a persona playbook file (its own checks, :func:`cp_toolkit.persona.load_playbook`)."""
    from .errors import ParameterError
    from .persona.playbook import load_playbook

    if not isinstance(path, str):
        return [f"persona_playbook: {path!r} is not a path to a YAML file"]
    try:
        load_playbook(path)
    except ParameterError as err:
        return [f"persona_playbook: {err}"]
    return []


def check_values(
    params: Mapping[str, Any], choices: Mapping[str, tuple[str, ...]], runs_folder: Path | None = None
) -> list[str]:
    """Every problem of a complete parameter set (keys already known to be valid).

    Parameters
    ----------
    params : mapping
        :data:`cp_toolkit.config.DEFAULTS` updated with the file and the overrides.
    choices : mapping
        :data:`cp_toolkit.config.CHOICES`.
    runs_folder : Path, optional
        The folder that holds the run; a relative ``previous_run`` is checked in it (and not at
        all without it).

    Returns
    -------
    list of str
        One line per problem, each naming its key; empty when all is well.
    """
    from .ingest.sources import PRESETS

    problems = [p for name, check in _checks(choices).items() if name in params for p in check(name, params[name])]
    datasets = (*PRESETS, "custom")
    if params["dataset"] not in datasets:
        problems.append(f"dataset: {params['dataset']!r} is not one of {list(datasets)}")
    else:
        problems += sources_problems(params["dataset"], params["sources"])
    end, as_of = params["clv_calibration_end"], params["as_of"]
    if end is not None and not iso_date("", end) and not iso_date("", as_of) and end >= as_of:
        problems.append(f"clv_calibration_end: {end} is not before as_of {as_of}; end the calibration earlier")
    if params["rfm_segments"] is not None:
        problems += rfm_rule_problems(params["rfm_segments"])
    if params["tag_definitions"] is not None:
        problems += _tag_file_problems("tag_definitions", params["tag_definitions"])
    if params.get("persona_playbook") is not None:
        problems += _playbook_problems(params["persona_playbook"])
    if params["previous_run"] is not None:
        problems += _previous_run_problems("previous_run", params["previous_run"], runs_folder)
    return problems
