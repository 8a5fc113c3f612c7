"""Report text apart from code: one YAML table per language, keyed by stable dotted ids.

Every sentence a report or the console shows (headings, headlines, segment names, persona text,
plot titles and axis labels) lives in ``cp_toolkit/text/<language>.yaml``, a nested mapping whose
leaves are ``str.format`` templates; a leaf's id is its path joined with dots, e.g.
``segment.rfm.champions``. Code holds only the ids and the values it fills in::

    t("eda.headline", revenue=1234.5, orders=10, customers=3, repeat_rate=0.5)

Languages and fallback
----------------------
A language is the code of a file beside this one (``en.yaml`` now; a ``zh.yaml`` dropped in
later is found by the same loader). :func:`set_language` selects one for the process (default
``"en"``); ``language=`` selects one for a single call. A key missing from the selected language
falls back to English, so a partial translation shows English where it has no text yet; a key
missing from English is a programming error (:class:`TextKeyError`). Numbers keep the format
spec written in the template (``{revenue:,.0f}``), so a translation decides its own.

Templates filled later
----------------------
A leaf whose name ends in ``_fmt`` is a template that the receiving function fills with values
only it knows (a plot's median, a cluster's k). :func:`labels` fills the fields the caller
supplies and leaves the others for the function.

Texts kept in artifacts
-----------------------
A sentence written into an artifact (the scorecard's rules in ``quality.json``) is written in
English, so that the artifact is the same whatever the language; :func:`parse` finds its id and
fields again, and the report shows it in the selected language.
"""

from __future__ import annotations

import contextlib
import functools
import re
import string
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from ..errors import ParameterError

__all__ = [
    "DEFAULT_LANGUAGE",
    "TextKeyError",
    "available_languages",
    "get_language",
    "in_language",
    "labels",
    "localize",
    "words",
    "not_available",
    "parse",
    "placeholders",
    "set_language",
    "t",
    "table",
    "template",
]

DEFAULT_LANGUAGE = "en"
_FOLDER = Path(__file__).resolve().parent


class _Formatter(string.Formatter):
    """``str.format`` that writes a missing figure (``None``) as the table's ``common.not_available``
    whatever the field's format spec, so a template never fails on a figure that could not be computed."""

    def format_field(self, value: Any, format_spec: str) -> str:
        return not_available() if value is None else super().format_field(value, format_spec)


_FORMATTER = _Formatter()
_state = {"language": DEFAULT_LANGUAGE}


class TextKeyError(KeyError):
    """A text id that no table holds, or a template field the caller did not supply (a bug in the
    code or in a language file, never the user's input)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def available_languages() -> list[str]:
    """Codes of the language files beside this module, e.g. ``["en"]``."""
    return sorted(p.stem for p in _FOLDER.glob("*.yaml"))


def set_language(code: str) -> None:
    """Select the language of every following :func:`t` call that names none."""
    table(code)  # refuse an unknown code now, not at the first sentence
    _state["language"] = code


def get_language() -> str:
    """The language :func:`t` uses when a call names none."""
    return _state["language"]


@contextlib.contextmanager
def in_language(code: str) -> Iterator[None]:
    """Select ``code`` for the calls inside the ``with`` block, then the language before it
    (e.g. English texts written into an artifact while the report is in Chinese)."""
    before = get_language()
    set_language(code)
    try:
        yield
    finally:
        set_language(before)


def _flatten(node: Mapping[Any, Any], path: str, source: Path) -> dict[str, str]:
    """Nested mapping -> {dotted id: template}; every key a string, every leaf a string."""
    out: dict[str, str] = {}
    for key, value in node.items():
        if not isinstance(key, str):
            raise TextKeyError(f"{source.name}: key {key!r} under {path or 'the top'} is not text; quote it")
        dotted = f"{path}.{key}" if path else key
        if isinstance(value, Mapping):
            out.update(_flatten(value, dotted, source))
        elif isinstance(value, str):
            out[dotted] = value
        else:
            raise TextKeyError(f"{source.name}: {dotted} is {type(value).__name__}, not text; quote the value")
    return out


@functools.cache
def table(language: str = DEFAULT_LANGUAGE) -> dict[str, str]:
    """The text table of ``language`` as {dotted id: template} (read once, then cached)."""
    path = _FOLDER / f"{language}.yaml"
    if not path.is_file():
        raise ParameterError(f"language {language!r} has no text table; available: {available_languages()}")
    return _flatten(yaml.load(path.read_text(encoding="utf-8"), _UniqueKeyLoader) or {}, "", path)


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader refusing a key written twice in one mapping (YAML keeps the last one
    silently, so a text added under an id already in use would replace the other)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        keys = [self.construct_object(key, deep=deep) for key, _ in node.value]
        twice = sorted({str(k) for k in keys if keys.count(k) > 1})
        if twice:
            raise TextKeyError(f"{node.start_mark.name}, line {node.start_mark.line + 1}: key(s) {twice} written twice")
        return super().construct_mapping(node, deep)


def template(key: str, language: str | None = None) -> str:
    """The unfilled template of ``key``: from ``language`` (default: :func:`get_language`), else English."""
    code = language or get_language()
    for candidate in dict.fromkeys((code, DEFAULT_LANGUAGE)):
        found = table(candidate).get(key)
        if found is not None:
            return found
    raise TextKeyError(f"no text {key!r} in {DEFAULT_LANGUAGE}.yaml; add it under that dotted id")


def placeholders(text: str) -> set[str]:
    """Names of the fields a template asks for (``{revenue:,.0f}`` -> ``revenue``)."""
    names = {field for _, field, _, _ in _FORMATTER.parse(text) if field is not None}
    return {_root(field) for field in names}


def _root(field: str) -> str:
    """``a.b`` or ``a[0]`` -> ``a``."""
    return field.split(".")[0].split("[")[0]


def t(key: str, /, *, language: str | None = None, **fields: Any) -> str:
    """The text of ``key`` filled with ``fields`` (:meth:`str.format`).

    Raises
    ------
    TextKeyError
        When no table holds ``key`` or the template needs a field that is not supplied.
    """
    text = template(key, language)
    missing = placeholders(text) - set(fields)
    if missing:
        raise TextKeyError(f"text {key!r} needs the fields {sorted(missing)}; the caller supplied {sorted(fields)}")
    return _FORMATTER.format(text, **fields)


def not_available(language: str | None = None) -> str:
    """How the table writes a figure that could not be computed (English: ``n/a``)."""
    return t("common.not_available", language=language)


def _fill_some(text: str, fields: Mapping[str, Any]) -> str:
    """``text`` with the supplied fields filled and the others left as ``{field:spec}``."""
    out = []
    for literal, field, spec, conversion in _FORMATTER.parse(text):
        out.append(literal.replace("{", "{{").replace("}", "}}"))
        if field is None:
            continue
        placeholder = "{" + field + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
        if _root(field) in fields:
            out.append(_FORMATTER.format(placeholder, **fields).replace("{", "{{").replace("}", "}}"))
        else:
            out.append(placeholder)
    return "".join(out)


def labels(prefix: str, /, *, language: str | None = None, **fields: Any) -> dict[str, str]:
    """Every text directly under ``prefix`` as {leaf name: text}, ready to pass as keyword
    arguments (``cp.plots.clv_hist(table, **labels("plots.clv_hist", currency="USD"))``).

    Leaves ending in ``_fmt`` are filled only where ``fields`` supply a value; the rest is left
    for the receiving function. Other leaves must be filled completely (:func:`t`).
    """
    depth = prefix.count(".") + 1
    keys = [k for k in table(DEFAULT_LANGUAGE) if k.startswith(prefix + ".") and k.count(".") == depth]
    if not keys:
        raise TextKeyError(f"no texts under {prefix!r} in {DEFAULT_LANGUAGE}.yaml")
    out = {}
    for key in keys:
        leaf = key.rsplit(".", 1)[1]
        if leaf.endswith("_fmt"):
            out[leaf] = _fill_some(template(key, language), fields)
        else:
            out[leaf] = t(key, language=language, **fields)
    return out


def _pattern(text: str) -> re.Pattern[str]:
    """A regular expression that reads a filled template back: each field a named group."""
    parts = []
    for literal, field, _, _ in _FORMATTER.parse(text):
        parts.append(re.escape(literal))
        if field is not None:
            parts.append(f"(?P<{_root(field)}>.+?)")
    return re.compile("".join(parts), re.DOTALL)


def parse(prefix: str, sentence: str) -> tuple[str, dict[str, str]] | None:
    """The id directly under ``prefix`` whose English template reads ``sentence``, and the text of
    each field in it: the inverse of :func:`t` for sentences that artifacts keep in English.

    ``parse("ingest.scorecard.rule", "share of rows in that are not a duplicate_row")`` gives
    ``("ingest.scorecard.rule.not_duplicate", {"reason": "duplicate_row"})``; ``None`` when no
    template reads it (a sentence written by an older version), so the caller shows it as it is.
    """
    depth = prefix.count(".") + 1
    english = table(DEFAULT_LANGUAGE)
    for key, text in english.items():
        if key.startswith(prefix + ".") and key.count(".") == depth:
            found = _pattern(text).fullmatch(sentence)
            if found:
                return key, found.groupdict()
    return None


def localize(prefix: str, english: str) -> str:
    """A value written in English into an artifact (a segment name) in the selected language:
    the text of the id directly under ``prefix`` whose English text is ``english``; the value
    as it is when no id has it (a name the user wrote in their own rule table)."""
    key = _english_ids(prefix).get(english)
    return t(key) if key else english


@functools.cache
def _english_ids(prefix: str) -> dict[str, str]:
    """English text -> id, of the ids directly under ``prefix``."""
    depth = prefix.count(".") + 1
    return {v: k for k, v in table(DEFAULT_LANGUAGE).items() if k.startswith(prefix + ".") and k.count(".") == depth}


def words(prefix: str, code: object, /) -> str:
    """A code of the data (a column, a reason, a table, a tag group) in words: the text
    ``<prefix>.<code>`` when the table has one, else the code with its underscores as spaces."""
    key = f"{prefix}.{code}"
    return t(key) if key in table(DEFAULT_LANGUAGE) else str(code).replace("_", " ")
