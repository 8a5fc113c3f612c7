"""Parameters are checked before any stage runs: every bad file exits 2 in seconds, creates no run
folder and names each problem's key; the shipped profiles and the README's examples pass."""

from __future__ import annotations

import ast
import inspect
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from cp_toolkit.config import DEFAULTS, PRESET_NON_PRODUCT, load_params
from cp_toolkit.errors import ParameterError
from cp_toolkit.params import SOURCE_KEYS, TAG_SETTINGS, read_options, rfm_rule_problems, tag_definition_problems

ROOT = Path(__file__).resolve().parent.parent
ONLINE_RETAIL = Path("/work/shared/data/online_retail/online_retail.parquet")
SALES = "customer_id,order_id,ts,amount\nc1,o1,2017-01-05,10.0\n"

#: name -> (parameter file text, expected lines of the message); ``{csv}`` is a readable CSV file.
BAD = {
    "clv_model": ("clv_model: foo\n", ["clv_model: 'foo' is not one of ['bgnbd', 'mbgnbd', 'pareto_nbd', 'auto']"]),
    "negative_horizon": ("horizon_days: -5\n", ["horizon_days: -5 is not allowed; use a whole number >= 1"]),
    "text_for_number": ("margin: high\n", ["margin: 'high' is not allowed; use a number > 0 and <= 1"]),
    "operating_point": (
        "contact_share: 0\ncontact_cost: -1\nsave_rate: 1.5\ncontact_budget: cheap\n",
        [
            "contact_share: 0 is not allowed; use a number > 0 and <= 1",
            "contact_cost: -1 is not allowed; use a number >= 0 (the cost of one contact",
            "save_rate: 1.5 is not allowed; use a number >= 0 and <= 1",
            "contact_budget: 'cheap' is not allowed; use a number >= 0 (a total cost",
        ],
    ),
    "new_customer_days": (
        "new_customer_days: 0\n",
        ["new_customer_days: 0 is not allowed; use a whole number >= 1"],
    ),
    "float_for_whole": ("min_group_size: 2.5\n", ["min_group_size: 2.5 is not allowed; use a whole number >= 1"]),
    "bool_for_number": ("clv_bootstrap_samples: true\n", ["clv_bootstrap_samples: True is not allowed"]),
    "bad_date": ("as_of: 2017-13-40\n", ["as_of: '2017-13-40' is not a date; write it as \"YYYY-MM-DD\""]),
    "calibration_after_as_of": (
        'as_of: "2017-12-31"\nclv_calibration_end: "2018-01-31"\n',
        ["clv_calibration_end: 2018-01-31 is not before as_of 2017-12-31"],
    ),
    "holdout_fraction": ("clv_holdout_fraction: 1.0\n", ["clv_holdout_fraction: 1.0 is not allowed; use a number > 0"]),
    "discount_as_percent": (
        "annual_discount_rate: 10\n",
        ["annual_discount_rate: 10 is not allowed; use a number >= 0"],
    ),
    "rfm_bad_regex": ('rfm_segments: {"[1-5": All}\n', ["rfm_segments.[1-5: not a regular expression"]),
    "rfm_uncovered_pair": (
        'rfm_segments: {"[2-5][1-5]": Some, "1[2-5]": Others}\n',
        [
            "rfm_segments: every R x F pair (R then F, e.g. '53') must match exactly one pattern; "
            "these do not: {'11': []}"
        ],
    ),
    "tag_file_typo": (
        "tag_definitions: {tags}\n",
        [
            "tag_definitions ({tags}).lifecycle.new_within_day: unknown setting; did you mean 'new_within_days'?",
            "tag_definitions ({tags}).lifecycle.new_within_days: missing",
        ],
    ),
    "missing_source_file": (
        "dataset: custom\nsources: {transactions: {path: {missing}, columns: {customer_id: c, ts: t, amount: a}}}\n",
        ["sources.transactions.path: source file {missing} does not exist"],
    ),
    "source_key_typo": (
        "sources: {transactions: {allow_zero_amounts: true}}\n",
        ["sources.transactions.allow_zero_amounts: unknown source key; did you mean 'allow_zero_amount'?"],
    ),
    "read_option_typo": (
        "dataset: custom\nsources: {transactions: {path: {csv}, read: {sepp: ';'},"
        " columns: {customer_id: customer_id, ts: ts, amount: amount}}}\n",
        ["sources.transactions.read.sepp: unknown read option; did you mean 'sep'?"],
    ),
    "columns_typo": (
        "dataset: custom\nsources: {transactions: {path: {csv}, columns: {customer_id: customer_id, ts: ts,"
        " amout: amount}}}\n",
        [
            "sources.transactions.columns.amout: unknown canonical column; did you mean 'amount'?",
            "sources.transactions.columns: map 'amount', or both 'quantity' and 'price'",
        ],
    ),
    "unknown_top_level": ("min_group_sise: 5\n", ["min_group_sise: unknown parameter; did you mean 'min_group_size'?"]),
    "previous_run_missing": (
        "previous_run: no_such_run\n",
        ["previous_run: {out_parent}/no_such_run does not exist; give a run folder where stage 03 ran, or null"],
    ),
    "unknown_table": (
        "sources: {custmers: {path: x.csv}}\n",
        ["sources.custmers: unknown table; did you mean 'customers'?"],
    ),
    "dropping_read_option": (
        "dataset: custom\nsources: {transactions: {path: {csv}, read: {skiprows: 2},"
        " columns: {customer_id: customer_id, ts: ts, amount: amount}}}\n",
        ["sources.transactions.read.skiprows: would drop lines before they are counted"],
    ),
    "transaction_key_on_products": (
        "sources: {products: {path: {csv}, columns: {product_id: order_id}, cancellation_prefix: C}}\n",
        ["sources.products.cancellation_prefix: applies only to transactions sources"],
    ),
    "dataset_unknown": ("dataset: online_retial\n", ["dataset: 'online_retial' is not one of"]),
    "not_yaml": ("as_of: [2017\n", ["is not valid YAML at line 2"]),
    "several_problems": (
        "clv_model: foo\nhorizon_days: -5\nseed: -1\nzero_amount: keep\ncurrency: ''\n",
        [
            "5 problem(s), nothing was run:",
            "  seed: -1 is not allowed; use a whole number from 0 to 4294967295",
            "  horizon_days: -5",
            "  zero_amount: 'keep' is not one of ['set_aside', 'purchase']",
            "  clv_model: 'foo'",
            "  currency: '' is not allowed; use a non-empty text",
        ],
    ),
}

BAD_TAGS = """version: 1
lifecycle: {new_within_day: 90, active_within_days: 30, at_risk_within_days: 90}
"""


def _fill(text: str, tmp: Path, out: Path) -> str:
    values = {
        "{csv}": str(tmp / "sales.csv"),
        "{tags}": str(tmp / "tags.yaml"),
        "{missing}": str(tmp / "nowhere" / "sales.csv"),
        "{out_parent}": str(out.parent),
    }
    for name, value in values.items():
        text = text.replace(name, value)
    return text


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_parameter_file_exits_2_fast_without_a_run_folder(case: str, tmp_path: Path) -> None:
    (tmp_path / "sales.csv").write_text(SALES)
    (tmp_path / "tags.yaml").write_text(BAD_TAGS)
    out = tmp_path / "runs" / "run"
    text, expected = BAD[case]
    params = tmp_path / "bad.yaml"
    params.write_text(_fill(text, tmp_path, out))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CP_TOOLKIT_PSEUDONYM_KEY": "devkey"}
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "cp_toolkit.cli", "run", "--params", str(params), "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=60,
    )
    seconds = time.perf_counter() - start
    assert done.returncode == 2, done.stderr
    assert seconds < 5, f"{case}: {seconds:.1f} s"
    assert not out.exists() and not (tmp_path / "runs").exists() and not (tmp_path / "reports").exists()
    assert "Traceback" not in done.stderr and done.stdout == ""
    assert done.stderr.startswith(f"cp-toolkit: {params}")
    for line in expected:
        assert _fill(line, tmp_path, out) in done.stderr, f"{case}: {done.stderr}"


def test_new_customer_days_may_be_null(tmp_path: Path) -> None:
    """null leaves New to the R x F cell; a whole number of days is a window of the first order."""
    params = tmp_path / "p.yaml"
    params.write_text("new_customer_days: null\n")
    assert load_params(params)["new_customer_days"] is None
    params.write_text("new_customer_days: 30\n")
    assert load_params(params)["new_customer_days"] == 30
    params.write_text("new_customer_days: 30.5\n")
    with pytest.raises(ParameterError, match=r"new_customer_days: 30.5 is not allowed; use a whole number >= 1"):
        load_params(params)


def test_all_problems_are_listed_one_per_line(tmp_path: Path) -> None:
    params = tmp_path / "p.yaml"
    params.write_text(BAD["several_problems"][0])
    with pytest.raises(ParameterError) as err:
        load_params(params)
    lines = str(err.value).splitlines()
    assert lines[0] == f"{params}: 5 problem(s), nothing was run:"
    assert [line.split(":")[0].strip() for line in lines[1:]] == [
        "currency",
        "horizon_days",
        "seed",
        "zero_amount",
        "clv_model",
    ]


@pytest.mark.parametrize("path", sorted((ROOT / "params").glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_profiles_validate(path: Path) -> None:
    params = load_params(path)
    assert params["as_of"] == yaml.safe_load(path.read_text()).get("as_of", DEFAULTS["as_of"])


def test_embedded_default_and_cdnow_paper_validate() -> None:
    assert load_params(None) == {**DEFAULTS, "currency": "USD",
                                 "non_product_categories": PRESET_NON_PRODUCT["completejourney"]}  # fmt: skip
    assert load_params(ROOT / "params" / "cdnow.yaml")["non_product_categories"] == []
    paper = load_params(ROOT / "params" / "cdnow_paper.yaml")
    assert paper["clv_calibration_end"] == "1997-09-30" and paper["sources"]["transactions"]["read"]["header"] is None


@pytest.mark.skipif(not ONLINE_RETAIL.is_file(), reason="UCI Online Retail file not present")
def test_online_retail_profile_validates(tmp_path: Path) -> None:
    profile = tmp_path / "uci.yaml"
    profile.write_text(
        f'dataset: online_retail\nas_of: "2011-11-30"\nsources:\n  transactions: {{path: {ONLINE_RETAIL}}}\n'
    )
    assert load_params(profile)["currency"] == "GBP"


def _readme_profiles() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.findall(r"```yaml\n(.*?)```", text, re.S)


def _create_files(source: dict, folder: Path) -> None:
    """Create the files a README source description names, so that only its form is tested."""
    for key in ("path", "exclude_customers_file"):
        path = source.get(key)
        if path and not path.startswith("pkg://"):
            target = folder / Path(path.replace("~/", "home/").replace("*", "2011-01"))
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text("x\n")


@pytest.mark.parametrize("index", range(2))
def test_readme_profiles_validate(index: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = _readme_profiles()[index]
    profile = yaml.safe_load(text)
    for entry in profile["sources"].values():
        for source in entry if isinstance(entry, list) else [entry]:
            _create_files(source, tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "p.yaml").write_text(text)
    assert load_params(tmp_path / "p.yaml")["dataset"] == profile["dataset"]


def test_readme_shows_two_example_profiles() -> None:
    assert len(_readme_profiles()) == 2


def test_relative_previous_run_is_looked_for_beside_the_run(tmp_path: Path) -> None:
    (tmp_path / "2017-11-30_default" / "data").mkdir(parents=True)
    (tmp_path / "2017-11-30_default" / "data" / "segments.parquet").write_bytes(b"")
    with pytest.raises(ParameterError, match="2017-11-30_default has no data/features.parquet"):  # 03 reads both
        load_params(None, previous_run="2017-11-30_default", runs_folder=tmp_path)
    (tmp_path / "2017-11-30_default" / "data" / "features.parquet").write_bytes(b"")
    assert load_params(None, previous_run="2017-11-30_default", runs_folder=tmp_path)["previous_run"]
    with pytest.raises(ParameterError, match="has no data/segments.parquet"):
        load_params(None, previous_run=str(tmp_path), runs_folder=tmp_path)


def test_query_source_and_list_of_sources(tmp_path: Path) -> None:
    (tmp_path / "web.csv").write_text(SALES)
    ok = {
        "transactions": [
            {"name": "web", "path": str(tmp_path / "web.csv"), "channel": "web",
             "columns": {"customer_id": "customer_id", "ts": "ts", "amount": "amount"}},
            {"name": "shop", "query": "SELECT 1", "columns": {"customer_id": "c", "ts": "t", "amount": "a"}},
        ]
    }  # fmt: skip
    assert load_params(None, dataset="custom", sources=ok)["sources"] == ok
    bad = {"transactions": [{**ok["transactions"][0], "drop_duplicate": False}]}
    with pytest.raises(ParameterError, match=r"sources\.transactions\[0\]\.drop_duplicate: unknown source key; "
                       "did you mean 'drop_duplicates'"):  # fmt: skip
        load_params(None, dataset="custom", sources=bad)


# ------------------------------------------------------------------------------------------------
# The vocabulary of the checks comes from the code that reads it


def _keys_read(path: Path, names: set[str]) -> set[str]:
    """String keys read from a source description: ``spec.get("x")``, ``spec["x"]``, ``"x" in spec``."""
    found = set()

    def is_source(node: ast.AST) -> bool:
        return (isinstance(node, ast.Name) and node.id in names) or (
            isinstance(node, ast.Attribute) and node.attr in names
        )

    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get":
            if is_source(node.func.value) and node.args and isinstance(node.args[0], ast.Constant):
                found.add(node.args[0].value)
        elif isinstance(node, ast.Subscript) and is_source(node.value) and isinstance(node.slice, ast.Constant):
            found.add(node.slice.value)
        elif isinstance(node, ast.Compare) and isinstance(node.left, ast.Constant) and is_source(node.comparators[0]):
            found.add(node.left.value)
    return found


def test_source_keys_are_those_ingest_reads() -> None:
    files = [*(ROOT / "cp_toolkit" / "ingest").glob("*.py")]
    read = set().union(*(_keys_read(f, {"spec", "source"}) for f in files))
    assert read - {"transactions", "customers", "identity"} == set(SOURCE_KEYS)  # spec[...] of whole tables


def test_read_options_are_pandas_read_csv_options() -> None:
    options = read_options()
    assert {"sep", "encoding", "decimal", "thousands", "header", "names", "sheet_name"} <= options
    assert not {"dtype", "chunksize", "keep_default_na"} & options  # set by the toolkit itself
    assert options - {"sheet_name"} <= set(inspect.signature(pd.read_csv).parameters)


def test_tag_settings_are_those_build_tags_reads() -> None:
    """Each group builds from its required settings alone, and needs every one of them."""
    from cp_toolkit.segment import build_tags

    from .conftest import orders_frame

    orders = orders_frame([("a", "2020-01-05", 10.0), ("a", "2020-03-01", 20.0), ("b", "2020-02-01", 5.0)])
    from cp_toolkit.features import customer_features

    features = customer_features(orders, "2020-06-30").assign(
        main_store_share=1.0, interpurchase_cv=0.5, savings_rate=0.1, channel_share_web=1.0
    )
    spend = pd.DataFrame({"customer_id": ["a"], "category": ["X"], "revenue": [30.0]})
    packaged = yaml.safe_load((ROOT / "cp_toolkit" / "segment" / "tags.yaml").read_text())
    assert set(packaged) - {"version"} == set(TAG_SETTINGS) and not tag_definition_problems(packaged, "tags.yaml")
    for group, (required, _) in TAG_SETTINGS.items():
        rule = {name: packaged[group][name] for name in required}
        assert not tag_definition_problems({"version": 1, group: rule}, "t")
        build_tags(features, orders, spend, "2020-06-30", {"version": 1, group: rule})
        for name in required:
            with pytest.raises(ValueError, match=f"needs the setting '{name}'"):
                build_tags(features, orders, spend, "2020-06-30",
                           {"version": 1, group: {k: v for k, v in rule.items() if k != name}})  # fmt: skip


def test_rfm_rule_check_is_the_stage_check() -> None:
    from cp_toolkit.segment import RFM_SEGMENTS, check_rules

    assert rfm_rule_problems(RFM_SEGMENTS) == []
    with pytest.raises(ParameterError, match=r"'55': \['5\[1-5\]', '\[1-5\]5'\]"):
        check_rules({r"5[1-5]": "Recent", r"[1-5]5": "Frequent", r"[1-4][1-4]": "Rest"})


def test_config_imports_no_heavy_module() -> None:
    code = (
        "import sys; import cp_toolkit.config, cp_toolkit.params; "
        "heavy = {'pandas', 'sklearn', 'matplotlib', 'lifetimes', 'duckdb'} & set(sys.modules); print(sorted(heavy))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ,
                          "PYTHONPATH": str(ROOT)}, check=True)  # fmt: skip
    assert done.stdout.strip() == "[]"


# ------------------------------------------------------------------------------------------------
# Each default written once


def _stage_functions() -> dict[str, object]:
    from cp_toolkit import clv, eda, ingest, persona, predict, segment

    return {m.__name__: m.run_stage for m in (ingest, eda, segment, predict, clv, persona)}


@pytest.mark.parametrize("module", ["ingest", "eda", "segment", "predict", "clv", "persona"])
def test_run_stage_defaults_are_the_defaults(module: str) -> None:
    fn = _stage_functions()[f"cp_toolkit.{module}"]
    for name, parameter in inspect.signature(fn).parameters.items():
        if name == "run":
            continue
        assert name in DEFAULTS, f"{module}.run_stage: {name} is not a parameter"
        expected = None if name == "sources" else DEFAULTS[name]  # no sources: the preset's
        assert parameter.default == expected, f"{module}.run_stage: default of {name}"


#: Parameters whose library default is neutral on purpose: no sources (the preset's), and a plot's
#: "currency units" (the run's currency follows its dataset).
FOLLOWS = {"sources", "currency"}
#: Library arguments that are parameters under another name.
ALIASES = {
    "time_unit": "clv_time_unit",
    "holdout_fraction": "clv_holdout_fraction",
    "horizon_months": "clv_horizon_months",
    "model": "clv_model",
    "calibration_end_date": "clv_calibration_end",
    "bootstrap_samples": "clv_bootstrap_samples",
    "seasonality": "clv_seasonality",
}


def test_every_library_default_of_a_parameter_is_the_default() -> None:
    """Any function of the package with an argument named like a parameter (or its alias in
    ``fit_and_validate``) either has no default or the one in DEFAULTS."""
    import importlib
    import pkgutil

    import cp_toolkit

    checked = 0
    for info in pkgutil.walk_packages(cp_toolkit.__path__, "cp_toolkit."):
        if info.name in {"cp_toolkit.cli", "cp_toolkit.clv.simulate"}:  # simulation settings: other meanings
            continue
        module = importlib.import_module(info.name)
        for fn in (f for _, f in inspect.getmembers(module, inspect.isfunction) if f.__module__ == info.name):
            for name, parameter in inspect.signature(fn).parameters.items():
                param = ALIASES.get(name, name) if fn.__name__ == "fit_and_validate" else name
                if param in DEFAULTS and parameter.default is not inspect.Parameter.empty and param not in FOLLOWS:
                    checked += 1
                    assert parameter.default == DEFAULTS[param], f"{info.name}.{fn.__name__}: default of {name}"
    assert checked >= 30
