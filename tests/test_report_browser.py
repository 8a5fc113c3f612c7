"""The report lint in a real browser (issue 13, point 7).

Every page of a default run (``index.html`` and the six stage reports), and of a Chinese run when the
toolkit has ``report_language: zh``, is rendered in headless Chromium at 1280 px and must show no
console error, no broken image, no sideways scrolling, no raw printout and no parameter name as
code (see ``tests/browser.py``). The real-run tests carry the marker ``browser``
(``pytest -m browser`` runs them alone); the ``test_lint_*`` tests check the checker on small pages.
Without Chromium, chromedriver or selenium every test here is skipped with the reason.
"""

from __future__ import annotations

from pathlib import Path

import papermill as pm
import pytest
import yaml

from cp_toolkit.cli import main
from cp_toolkit.run.pipeline import STAGES
from cp_toolkit.text import available_languages

from .browser import Problem, browser_unavailable, describe, lint_page, parameter_names, start_chromium

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = ROOT / "params" / "default.yaml"
PARAMETERS = parameter_names(DEFAULT)
PAGES = ["index", *STAGES]


@pytest.fixture(scope="module")
def driver():
    reason = browser_unavailable()
    if reason:
        pytest.skip(f"no headless browser for the report lint: {reason}")
    chromium = start_chromium()
    yield chromium
    chromium.quit()


def zh_unsupported() -> str | None:
    """Why no Chinese run can be made yet, or ``None``."""
    if "zh" not in available_languages():
        return f"no Chinese text table yet (cp_toolkit.text.available_languages() = {available_languages()})"
    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    if not any("report_language" in pm.inspect_notebook(str(p)) for p in notebooks):
        return "no notebook declares the parameter report_language yet"
    return None


@pytest.fixture(scope="module")
def runs(driver, tmp_path_factory: pytest.TempPathFactory):
    """Run folders by language, each made once on first use (a full default run takes about a minute)."""
    made: dict[str, Path] = {}

    def run(language: str) -> Path:
        if language not in made:
            folder = tmp_path_factory.mktemp(f"browser_{language}")
            params = DEFAULT
            if language != "en":
                params = folder / f"{language}.yaml"
                values = {**yaml.safe_load(DEFAULT.read_text(encoding="utf-8")), "report_language": language}
                params.write_text(yaml.safe_dump(values, allow_unicode=True), encoding="utf-8")
            out = folder / "run"
            code = main(["run", "--params", str(params), "--out", str(out), "--notebooks", str(ROOT / "notebooks")])
            assert code == 0, f"the {language} run failed (exit {code}); see the console output above"
            made[language] = out
        return made[language]

    return run


@pytest.mark.browser
@pytest.mark.parametrize("language", ["en", "zh"])
@pytest.mark.parametrize("page", PAGES)
def test_report_page_reads_clean_in_a_browser(driver, runs, language: str, page: str) -> None:
    if language == "zh" and (reason := zh_unsupported()):
        pytest.skip(f"Chinese run not linted: {reason}")
    path = runs(language) / f"{page}.html"
    assert path.is_file(), f"{language} run: {path.name} was not written"
    problems = lint_page(driver, path, PARAMETERS)
    if problems:
        pytest.fail(describe(f"{language} run, {path.name}", problems), pytrace=False)


# ---- the checker itself, on small pages ----


def lint_html(driver, tmp_path: Path, body: str, head: str = "") -> list[Problem]:
    page = tmp_path / "page.html"
    page.write_text(f"<!DOCTYPE html><html><head><meta charset='utf-8'>{head}</head><body>{body}</body></html>")
    return lint_page(driver, page, PARAMETERS)


def kinds(problems: list[Problem]) -> list[str]:
    return [p.kind for p in problems]


CLEAN = """
<h1>Customers</h1><p>2,469 customers spent $4,594,146 in 2017; groups under 10 customers are suppressed.</p>
<div style="overflow-x: auto"><table><tr>{cells}</tr></table></div>
<img alt="dot" src="data:image/png;base64,{png}">
<p>A NaNo-sized tip: <code>cp-toolkit run</code>; min_group_size is set in the profile.</p>
""".format(
    cells="".join(f"<td>column_{i}_with_a_long_value</td>" for i in range(60)),
    png="iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==",
)


def test_lint_passes_a_clean_page(driver, tmp_path: Path) -> None:
    """A wide table in a scrolling container, a data-URI image and plain prose are fine."""
    assert lint_html(driver, tmp_path, CLEAN) == []


def test_lint_catches_nan_and_raw_printouts(driver, tmp_path: Path) -> None:
    body = (
        "<table><tr><td>recency</td><td>NaN</td><td>&lt;NA&gt;</td></tr></table>"
        "<pre>Name: amount, dtype: float64</pre><pre>{'train_end': '2017-06-30'}</pre>"
        "<p>Traceback (most recent call last):</p><p>UserWarning: the data are thin</p>"
        "<details><summary>more</summary><p>margin NaN</p></details>"
    )
    problems = lint_html(driver, tmp_path, body)
    assert kinds(problems) == [
        "text 'NaN'",
        "text 'NaN'",
        "text '<NA>'",
        "text 'dtype:'",
        "text 'Traceback'",
        "text 'Warning:'",
        'text "{\'"',
    ]
    assert problems[0].detail == '"recency »NaN« <NA> Name: amount, dtype: float64 {\'tra…"'
    assert "margin »NaN«" in problems[1].detail  # inside a closed <details>: unfolded before reading
    message = describe("page.html", problems)
    assert message.startswith("page.html: 7 problem(s)") and "text 'NaN' x2:" in message


def test_lint_catches_a_broken_image(driver, tmp_path: Path) -> None:
    problems = lint_html(driver, tmp_path, "<p>chart</p><img src='missing.png' alt='Revenue by month'>")
    assert kinds(problems) == ["console error", "image not loaded"]  # the browser logs the failed load too
    assert "missing.png" in problems[0].detail and "ERR_FILE_NOT_FOUND" in problems[0].detail
    assert problems[1].detail == "src='missing.png' alt='Revenue by month'"


def test_lint_catches_an_image_without_pixels(driver, tmp_path: Path) -> None:
    """A source that loads but is no image (a truncated data URI) logs nothing: only naturalWidth tells."""
    problems = lint_html(driver, tmp_path, "<img alt='Cohorts' src='data:image/png;base64,iVBORw0KGgo='>")
    assert kinds(problems) == ["image not loaded"] and "alt='Cohorts'" in problems[0].detail


def test_lint_catches_a_console_error(driver, tmp_path: Path) -> None:
    problems = lint_html(driver, tmp_path, "<p>ok</p><script>console.error('figure 3 failed')</script>")
    assert kinds(problems) == ["console error"] and "figure 3 failed" in problems[0].detail


def test_lint_catches_a_script_error_and_a_remote_load(driver, tmp_path: Path) -> None:
    head = "<script src='https://cdn.example.org/lib.js'></script>"
    problems = lint_html(driver, tmp_path, "<script>undefinedFunction()</script>", head)
    assert kinds(problems) == ["console error", "console error"]
    assert "cdn.example.org/lib.js" in problems[0].detail and "undefinedFunction" in problems[1].detail


def test_lint_catches_page_wide_overflow(driver, tmp_path: Path) -> None:
    problems = lint_html(driver, tmp_path, "<p>top</p><div id='wide' style='width: 3000px'>a very wide block</div>")
    assert kinds(problems) == ["horizontal overflow"]
    assert "div#wide" in problems[0].detail and "a very wide block" in problems[0].detail
    assert "in a 1280 px window" in problems[0].detail


def test_lint_catches_parameter_names_as_code(driver, tmp_path: Path) -> None:
    body = (
        "<p>Cohorts smaller than <code>min_group_size</code> are left out.</p>"
        "<p>RFM as of `as_of`: recency, frequency, money.</p>"
    )
    problems = lint_html(driver, tmp_path, body)
    assert sorted(kinds(problems)) == ["parameter in <code>", "text '`parameter`'"]
    code, text = (p.detail for p in sorted(problems, key=lambda p: p.kind))
    assert code == '<code>min_group_size</code> in "Cohorts smaller than »min_group_size« are left out."'
    assert text == '"… min_group_size are left out. RFM as of »`as_of`«: recency, frequency, money."'
