"""The text table: every id the code and notebooks use exists, none is unused, every placeholder is
supplied by its callers, plots hold no English of their own, and the loader's rules (fallback to
English, a clear error for a missing id or field)."""

from __future__ import annotations

import ast
import inspect
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from cp_toolkit import plots, text
from cp_toolkit.errors import ParameterError
from cp_toolkit.segment import RFM_SEGMENTS, standard_segments
from cp_toolkit.text import TextKeyError, labels, placeholders, t

ROOT = Path(__file__).resolve().parent.parent
EN = text.table("en")


def _sources() -> Iterator[tuple[str, ast.AST]]:
    """(name, parsed tree) of every module of the package and every notebook code cell."""
    for path in sorted((ROOT / "cp_toolkit").rglob("*.py")):
        yield str(path.relative_to(ROOT)), ast.parse(path.read_text(encoding="utf-8"))
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for i, cell in enumerate(nbformat.read(path, as_version=4).cells):
            if cell.cell_type == "code":
                yield f"{path.name} cell {i}", ast.parse(cell.source)


#: Calls whose first argument is a text id (``title`` names two: ``<key>.title`` and ``<key>.intro``).
_KEY_CALLS = ("t", "heading", "labels", "text", "title")


def _keys_of(node: ast.Call, func: str) -> tuple[ast.AST, str, list[str]] | None:
    """The argument that names the text(s), how the scan treats it, and suffixes to add."""
    if func == "key_figures" and len(node.args) > 1:  # key_figures(values, "<prefix>"): every id under it
        return node.args[1], "labels", [""]
    if func == "words":  # words("<prefix>", code): any id directly under the prefix
        return node.args[0], "labels", [""]
    if func in _KEY_CALLS:
        suffixes = [".title", ".intro"] if func == "title" else [""]
        return node.args[0], "t" if func in ("text", "title") else func, suffixes
    return None


def _calls() -> list[tuple[str, str, str, bool, set[str]]]:
    """Every call that names a text by a literal or an f-string (``t``, ``heading``, ``labels``,
    ``display.text``, ``display.title``, ``key_figures``): (where, function, key or f-string
    prefix, is_prefix, keyword names)."""
    found = []
    for where, tree in _sources():
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and node.args):
                continue
            func = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
            named = _keys_of(node, func)
            if named is None:
                continue
            first, func, suffixes = named
            keywords = {k.arg for k in node.keywords if k.arg is not None} - {"language"}
            keywords -= {"level"} if func == "heading" else set()
            if any(k.arg is None for k in node.keywords):
                keywords.add("**")
            branches = [first.body, first.orelse] if isinstance(first, ast.IfExp) else [first]
            if all(isinstance(b, ast.Constant) and isinstance(b.value, str) for b in branches):
                found += [(where, func, b.value + end, False, keywords) for b in branches for end in suffixes]
            elif isinstance(first, ast.JoinedStr):
                pattern = "".join(re.escape(v.value) if isinstance(v, ast.Constant) else "[^.]+" for v in first.values)
                found.append((where, func, pattern, True, keywords))
    return found


CALLS = _calls()

#: Modules whose texts come from the table, and the literals of several words each may still hold:
#: values written to artifacts (tag ids), keys other code matches on, error messages' parts.
REPORT_MODULES = {
    "cp_toolkit/clv/report.py": set(),
    "cp_toolkit/display/numbers.py": set(),
    "cp_toolkit/display/page.py": set(),
    "cp_toolkit/display/tables.py": set(),
    "cp_toolkit/eda/report.py": {"not products"},  # the pooled row's key in features.category_revenue
    "cp_toolkit/eda/stage.py": {"all customers", "not products"},  # keys other code matches on
    "cp_toolkit/features.py": {"not products"},  # the pooled row of non-product categories
    "cp_toolkit/ingest/report.py": set(),
    "cp_toolkit/run/history.py": set(),
    "cp_toolkit/run/series_page.py": set(),
    "cp_toolkit/segment/report.py": set(),
    "cp_toolkit/ingest/quality.py": set(),
    "cp_toolkit/ingest/tables.py": set(),
    "cp_toolkit/predict/report.py": set(),
    "cp_toolkit/predict/stage.py": set(),
    "cp_toolkit/privacy.py": {"other (small groups)"},  # SUPPRESSED: the pooled rows' key in eda's tables
    "cp_toolkit/segment/tags.py": {"at risk", "weekend shopper", "one store", "several stores", "discount seeker"},
}


def _children(prefix: str) -> list[str]:
    """The ids directly under ``prefix`` (what :func:`labels` returns)."""
    depth = prefix.count(".") + 1
    return [k for k in EN if k.startswith(prefix + ".") and k.count(".") == depth]


def _used_keys(call: tuple[str, str, str, bool, set[str]]) -> list[str]:
    """The ids one call can reach."""
    _, func, key, is_prefix, _ = call
    if is_prefix:  # an f-string: every id it can spell
        return [k for k in EN if re.fullmatch(key, k)]
    return _children(key) if func == "labels" else [key]


def test_the_scan_finds_the_calls() -> None:
    """The scan sees calls in modules and notebooks alike (so the tests below test something)."""
    wheres = {c[0].split(" ")[0] for c in CALLS}
    assert {"cp_toolkit/plots.py"}.isdisjoint(wheres)  # plots take their texts, never look them up
    assert {"cp_toolkit/persona/story.py", "cp_toolkit/clv/stage.py", "05_clv.ipynb", "02_eda.ipynb"} <= wheres
    assert {"display.text", "display.title", "key_figures"} & {c[1] for c in CALLS} == set()  # folded into t/labels
    assert set(REPORT_MODULES) - {"cp_toolkit/display/numbers.py"} | {"cp_toolkit/ingest/stage.py"} <= wheres
    assert len(CALLS) > 100


@pytest.mark.parametrize("call", CALLS, ids=lambda c: f"{c[0]}:{c[2]}")
def test_every_key_used_exists(call: tuple[str, str, str, bool, set[str]]) -> None:
    assert _used_keys(call), f"{call[0]}: {call[1]}({call[2]!r}) names no text in en.yaml"


def test_no_key_in_en_is_unused() -> None:
    used = {k for call in CALLS for k in _used_keys(call)}
    assert sorted(set(EN) - used) == []


def _fields_plots_fill() -> dict[str, set[str]]:
    """Template argument of plots.py (``median_fmt``, or a suffix like ``_median_fmt``) -> the
    fields plots.py fills it with (``.format(median=...)``)."""
    tree = ast.parse(Path(plots.__file__).read_text(encoding="utf-8"))
    out: dict[str, set[str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format":
            target = node.func.value
            if isinstance(target, ast.Name):
                name = target.id
            elif isinstance(target, ast.Subscript) and isinstance(target.slice, ast.Constant):
                name = target.slice.value
            elif isinstance(target, ast.Subscript) and isinstance(target.slice, ast.JoinedStr):
                name = target.slice.values[-1].value  # f"{column}_median_fmt" -> "_median_fmt"
            else:
                continue
            out.setdefault(name, set()).update(k.arg for k in node.keywords)
    return out


@pytest.mark.parametrize("call", CALLS, ids=lambda c: f"{c[0]}:{c[2]}")
def test_every_placeholder_is_supplied_by_the_caller(call: tuple[str, str, str, bool, set[str]]) -> None:
    where, func, key, _, keywords = call
    assert "**" not in keywords, f"{where}: pass the fields of {key!r} by name, not with **"
    filled_later = _fields_plots_fill()
    for k in _used_keys(call):
        leaf = k.rsplit(".", 1)[1]
        later = set()
        if func == "labels" and leaf.endswith("_fmt"):
            later = set().union(*(v for name, v in filled_later.items() if leaf == name or leaf.endswith(name)))
            assert later, f"{k}: no function of plots.py fills the template {leaf}"
        missing = placeholders(EN[k]) - keywords - later
        assert not missing, f"{where}: {func}({key!r}) leaves {sorted(missing)} of {k!r} unfilled"


def test_templates_filled_by_the_code_give_the_old_english() -> None:
    """A few texts formatted as the code formats them, against the strings of the artifacts."""
    assert t("eda.headline", revenue=4594146.2, orders=155285, customers=2469, repeat_rate=0.9915, currency="USD") == (
        "revenue 4,594,146 USD from 155,285 orders by 2,469 customers; repeat rate 99%"
    )
    assert t("persona.portrait", customers=1234, customer_share=0.12345, revenue_share=0.5, traits="x") == (
        "1,234 customers (12% of the base, 50% of revenue): x."
    )
    labels_ = labels("plots.cohort_heatmap")
    assert labels_["row_fmt"].format(month=pd.Timestamp("2017-03-01"), customers=1234) == "2017-03 (n=1,234)"


def test_plot_sections_match_the_plot_signatures() -> None:
    """Each ``plots.<function>`` section (or one level deeper) holds only that function's keyword
    arguments, and each plot function's text arguments have no default."""
    for key in EN:
        if not key.startswith("plots."):
            continue
        name = key.split(".")[1]
        params = inspect.signature(getattr(plots, name)).parameters
        leaf = key.rsplit(".", 1)[1]
        if any(p.kind is p.VAR_KEYWORD for p in params.values()):
            continue  # customer_distributions and revenue_factors check their own texts
        assert leaf in params and params[leaf].kind is params[leaf].KEYWORD_ONLY, f"{key}: not an argument of {name}"
    for name in plots.__all__:
        for p in inspect.signature(getattr(plots, name)).parameters.values():
            if p.kind is p.KEYWORD_ONLY and p.annotation in ("str", str) and p.name != "base_row":
                assert p.default is p.empty, f"plots.{name}({p.name}=...) has an English default"


#: String literals plots.py may hold: matplotlib keywords and the data key of the base row.
ALLOWED = {"lower right", "upper right", "upper left", "upper center", "all customers"}


def test_plots_holds_no_title_or_label_literal() -> None:
    tree = ast.parse(Path(plots.__file__).read_text(encoding="utf-8"))
    docstrings = {
        id(n.body[0].value)
        for n in ast.walk(tree)
        if isinstance(n, (ast.Module, ast.FunctionDef)) and n.body and isinstance(n.body[0], ast.Expr)
    }
    docstrings |= {id(c) for n in ast.walk(tree) if isinstance(n, ast.Raise) for c in ast.walk(n)}  # errors stay
    label_args = {"title", "xlabel", "ylabel", "label"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            for k in node.keywords:
                assert not (k.arg in label_args and isinstance(k.value, (ast.Constant, ast.JoinedStr))), (
                    f"plots.py line {node.lineno}: {k.arg}= is a literal; take it as an argument"
                )
            name = getattr(node.func, "attr", getattr(node.func, "id", ""))
            if name in ("set_title", "set_xlabel", "set_ylabel", "_no_data", "legend", "annotate"):
                assert not any(isinstance(a, ast.Constant) and isinstance(a.value, str) for a in node.args[1:] if
                               name == "_no_data") and not any(isinstance(a, ast.JoinedStr) for a in node.args), (
                    f"plots.py line {node.lineno}: {name} with a literal text"
                )  # fmt: skip
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            words = re.search(r"[A-Za-z]{2,} [A-Za-z]{2,}", node.value)
            assert not words or node.value in ALLOWED, f"plots.py line {node.lineno}: English text {node.value!r}"


def test_segment_names_are_the_names_in_the_artifacts() -> None:
    """The standard rule table maps patterns to ids; its names (written into segments.parquet)
    are the English names of every earlier run."""
    assert set(RFM_SEGMENTS.values()) == {k.rsplit(".", 1)[1] for k in _children("segment.rfm")}
    assert sorted(standard_segments().values()) == sorted(
        ["Hibernating", "At risk", "Can't lose them", "About to sleep", "Need attention", "Loyal", "Promising",
         "New", "Potential loyalists", "Champions"]
    )  # fmt: skip


def test_a_missing_key_or_field_is_a_clear_error() -> None:
    with pytest.raises(TextKeyError, match="no text 'eda.nothing' in en.yaml"):
        t("eda.nothing")
    with pytest.raises(
        TextKeyError, match=r"'eda.headline' needs the fields \['currency', 'customers', 'repeat_rate'\]"
    ):
        t("eda.headline", revenue=1.0, orders=2)
    with pytest.raises(ParameterError, match="language 'xx' has no text table; available: \\['en', 'zh'\\]"):
        text.set_language("xx")
    assert text.get_language() == "en"


def test_labels_fill_what_the_caller_knows_and_leave_the_rest() -> None:
    got = labels("plots.attribute_behaviour.revenue_per_customer", currency="USD")
    assert got["xlabel_fmt"] == "revenue per customer (USD); dashed: all customers, {base:,.2f}"
    assert got["xlabel_fmt"].format(base=1234.5) == "revenue per customer (USD); dashed: all customers, 1,234.50"
    assert labels("plots.monthly_revenue", currency="GBP")["ylabel"] == "revenue (GBP)"
    with pytest.raises(TextKeyError, match="needs the fields \\['currency'\\]"):
        labels("plots.monthly_revenue")


@pytest.fixture
def zh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A partial second language beside a copy of en.yaml."""
    shutil.copy(Path(text.__file__).parent / "en.yaml", tmp_path / "en.yaml")
    (tmp_path / "zh.yaml").write_text('segment:\n  rfm:\n    champions: "冠军客户"\n', encoding="utf-8")
    monkeypatch.setattr(text, "_FOLDER", tmp_path)
    text.table.cache_clear()
    yield
    text.set_language("en")
    text.table.cache_clear()


@pytest.mark.usefixtures("zh")
def test_a_dropped_in_language_is_found_and_falls_back_to_english() -> None:
    assert text.available_languages() == ["en", "zh"]
    assert t("segment.rfm.champions", language="zh") == "冠军客户"
    assert t("segment.rfm.loyal", language="zh") == "Loyal"  # not translated yet: English
    text.set_language("zh")
    assert standard_segments("zh")["5[4-5]"] == "冠军客户" and t("segment.rfm.champions", language="en") == "Champions"
    assert standard_segments()["5[4-5]"] == "Champions"  # names written to segments.parquet stay English


def test_a_language_file_refuses_a_key_written_twice(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "xx.yaml").write_text("a:\n  b: one\n  c: two\n  b: three\n", encoding="utf-8")
    monkeypatch.setattr(text, "_FOLDER", tmp_path)
    text.table.cache_clear()
    try:
        with pytest.raises(TextKeyError, match=r"line 2: key\(s\) \['b'\] written twice"):
            text.table("xx")
    finally:
        text.table.cache_clear()


def test_a_language_file_refuses_keys_or_values_that_are_not_text(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "en.yaml").write_text("a:\n  no: x\n", encoding="utf-8")  # YAML 1.1 reads `no` as False
    (tmp_path / "xx.yaml").write_text("a:\n  b: 3\n", encoding="utf-8")
    monkeypatch.setattr(text, "_FOLDER", tmp_path)
    text.table.cache_clear()
    try:
        with pytest.raises(TextKeyError, match="en.yaml: key False under a is not text; quote it"):
            text.table("en")
        with pytest.raises(TextKeyError, match="xx.yaml: a.b is int, not text; quote the value"):
            text.table("xx")
    finally:
        text.table.cache_clear()


def _english_literals(path: Path) -> list[tuple[int, str]]:
    """String literals of several words in a module, apart from docstrings, what a ``raise``
    says (errors stay in the code) and SQL."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef)) and body and isinstance(body[0], ast.Expr):
            skip.add(id(body[0].value))
        if isinstance(node, ast.Raise):
            skip |= {id(child) for child in ast.walk(node)}
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip
        and re.search(r"[A-Za-z]{2,} [A-Za-z]{2,}", node.value)
        and not re.match(r"\s*<|class=", node.value)  # HTML markup of the presentation layer, not text
        and not re.search(r"\b(SELECT|DESCRIBE|QUALIFY|FROM|CREATE)\b", node.value)
    ]  # fmt: skip


@pytest.mark.parametrize("module", sorted(REPORT_MODULES))
def test_report_modules_hold_no_english_of_their_own(module: str) -> None:
    found = {value for _, value in _english_literals(ROOT / module)}
    assert found <= REPORT_MODULES[module], f"{module}: English text {sorted(found - REPORT_MODULES[module])}"


def test_every_tag_the_rules_write_has_a_text_and_is_shown_by_it() -> None:
    from cp_toolkit.segment import TAGS, tag_name

    ids = {f"segment.tag.value.{group}.{re.sub('[ -]', '_', tag)}" for group, tags in TAGS.items() for tag in tags}
    assert ids == {k for k in EN if k.startswith("segment.tag.value.")}
    assert all(tag_name(group, tag) == tag for group, tags in TAGS.items() for tag in tags)  # English: the ids
    assert tag_name("channel_preference", "web") == "web" and tag_name("favourite_category", "at risk") == "at risk"


def test_scorecard_rules_read_back_from_their_english() -> None:
    for key in _children("ingest.scorecard.rule"):
        fields = {name: f"<{name}>" for name in placeholders(EN[key])}
        assert text.parse("ingest.scorecard.rule", t(key, **fields)) == (key, fields)
    assert text.parse("ingest.scorecard.rule", "share of rows in not set aside as invalid_amount, outlier_amount") == (
        "ingest.scorecard.rule.not_set_aside",
        {"reasons": "invalid_amount, outlier_amount"},
    )
    assert text.parse("ingest.scorecard.rule", "a rule of an older version") is None


def test_report_tables_name_reasons_in_words_and_keep_column_ids() -> None:
    """Report tables keep their column ids (the one formatter names them) and show codes in words."""
    from cp_toolkit.ingest.tables import accounting_table, netting_summary

    quality = {"tables": {"transactions": {"rows_in": 5, "rows_kept": 4, "quarantined_by_reason": {"after_as_of": 1}}}}
    table = accounting_table(quality)
    assert table.columns.tolist() == ["table", "rows_in", "rows_kept", "reason", "rows_set_aside"]
    assert table["reason"].tolist() == [t("ingest.reason.after_as_of")] != ["after_as_of"]
    assert netting_summary(quality) == {
        "cancellations": "not marked in this source (set cancellation_prefix to net them)"
    }


def test_the_no_key_warning_reads_as_before(monkeypatch: pytest.MonkeyPatch) -> None:
    from cp_toolkit import privacy

    monkeypatch.delenv(privacy.KEY_ENV, raising=False)
    monkeypatch.delenv(privacy.KEY_FILE_ENV, raising=False)
    with pytest.warns(UserWarning) as caught:
        privacy.pseudonym_key()
    assert str(caught[0].message) == (
        "No pseudonymization key: set CP_TOOLKIT_PSEUDONYM_KEY (or CP_TOOLKIT_PSEUDONYM_KEY_FILE) to keep customer "
        "pseudonyms stable across runs. A random key is used for this run only."
    )


def test_every_dictionary_column_has_a_meaning() -> None:
    from cp_toolkit.features import DICTIONARY

    assert {f"features.meaning.column.{c}" for c in DICTIONARY} == set(_children("features.meaning.column"))


ZH_REPORT = """
segment:
  tag:
    all_tagged: "(全部)"
    value:
      lifecycle:
        at_risk: "流失风险"
ingest:
  scorecard:
    column:
      rule: "规则"
    dimension:
      timeliness: "及时性"
    rule:
      not_duplicate: "非{reason}的行占比"
"""


@pytest.fixture
def zh_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A partial second language with a few tag and scorecard texts, selected for the process."""
    shutil.copy(Path(text.__file__).parent / "en.yaml", tmp_path / "en.yaml")
    (tmp_path / "zh.yaml").write_text(ZH_REPORT, encoding="utf-8")
    monkeypatch.setattr(text, "_FOLDER", tmp_path)
    text.table.cache_clear()
    text.set_language("zh")
    yield
    text.set_language("en")
    text.table.cache_clear()


@pytest.mark.usefixtures("zh_report")
def test_tags_keep_their_ids_in_the_artifact_and_show_their_text() -> None:
    from cp_toolkit.features import customer_features
    from cp_toolkit.segment import build_tags, tag_coverage

    from .conftest import orders_frame

    orders = orders_frame([("a", "2020-06-01", 10.0), ("b", "2020-04-20", 5.0), ("b", "2019-04-20", 5.0)])
    tags = build_tags(customer_features(orders, "2020-06-30"), orders, pd.DataFrame(), "2020-06-30",
                      {"version": 1, "lifecycle": {"new_within_days": 90, "active_within_days": 30,
                                                   "at_risk_within_days": 90}})  # fmt: skip
    assert dict(zip(tags["customer_id"], tags["tag"], strict=True)) == {"a": "new", "b": "at risk"}  # ids
    cover = tag_coverage(tags, customers=2, min_group_size=1)
    assert cover["tag"].tolist() == ["流失风险", "new", "(全部)"]  # new: not translated yet, English
    assert cover["tag_group"].tolist() == ["lifecycle"] * 3


@pytest.mark.usefixtures("zh_report")
def test_scorecard_rules_stay_english_in_quality_json_and_show_translated() -> None:
    from cp_toolkit.ingest.quality import scorecard
    from cp_toolkit.ingest.tables import scorecard_table

    tx = pd.DataFrame({"customer_id": ["a", "a"], "order_id": ["1", "1"], "ts": pd.to_datetime(["2020-01-01"] * 2)})
    accounting = {"transactions": {"rows_in": 4, "rows_kept": 2, "quarantined_by_reason": {"duplicate_row": 2}}}
    card = scorecard({"transactions": tx}, accounting, "2020-01-02")
    rules = dict(zip(card["dimension"], card["rule"], strict=False))
    assert rules["uniqueness"] == "share of rows in that are not a duplicate_row"  # artifact: English
    assert rules["timeliness"] == "days from the last kept line to the end of as_of"
    shown = scorecard_table({"scorecard": card.to_dict("records")}).set_index("dimension")
    assert shown.loc["uniqueness", "rule"] == "非duplicate_row的行占比"
    assert shown.loc["及时性", "rule"] == "days from the last kept line to the end of as_of"  # English fallback
    assert shown.loc["及时性", "value"] == "2"  # two days from the last line to the end of as_of, as shown


def test_the_chinese_table_has_every_english_id_with_the_same_fields() -> None:
    """zh.yaml translates every text: same ids, same placeholders, and Chinese words in each
    sentence that is more than a placeholder, a model name or a code."""
    english, chinese = text.table("en"), text.table("zh")
    assert set(chinese) == set(english)
    for key, template in english.items():
        assert text.placeholders(chinese[key]) == text.placeholders(template), key
    worded = [k for k, v in english.items() if len(re.sub(r"\{[^}]*\}", "", v).split()) >= 4]
    untranslated = [k for k in worded if not re.search(r"[\u4e00-\u9fff]", chinese[k])]
    assert not untranslated, untranslated[:10]
