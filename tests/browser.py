"""A lint of rendered HTML reports in a real browser (headless Chromium driven by selenium).

:func:`lint_page` opens one page and returns what a reader must not meet there: console errors
(severity SEVERE), images that do not load, page-wide horizontal overflow at a 1280 px wide window,
raw printouts in the visible text (``NaN``, ``<NA>``, ``dtype:``, ``Traceback``, ``Warning:``,
``{'``), and parameter names shown as code (between backticks, or inside ``<code>``).

Every ``<details>`` element is opened before the checks: what a reader can unfold counts as shown.
No host name resolves in this browser, so a page that loads anything from the internet logs
"Failed to load resource: net::ERR_NAME_NOT_RESOLVED" for it on every machine, online or not, as it
would for a reader without internet access.
"""

from __future__ import annotations

import re
import shutil
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import yaml

WIDTH, HEIGHT = 1280, 900
CONTEXT = 40  # characters quoted either side of an offending piece of text
EXAMPLES = 3  # examples quoted per kind of problem in a message

RAW_TEXT = {
    "NaN": r"(?<![A-Za-z])NaN(?![A-Za-z])",
    "<NA>": r"<NA>",
    "dtype:": r"dtype:",
    "Traceback": r"Traceback",
    "Warning:": r"Warning:",
    "{'": r"\{'",
}


@dataclass(frozen=True)
class Problem:
    """One thing wrong on a page: its kind (e.g. ``console error``, ``text 'NaN'``) and what shows it."""

    kind: str
    detail: str


def parameter_names(params_file: Path) -> list[str]:
    """The parameter names of a profile (the keys of its YAML), longest first."""
    names = yaml.safe_load(params_file.read_text(encoding="utf-8"))
    return sorted(names, key=lambda n: (-len(n), n))


def browser_unavailable() -> str | None:
    """Why no headless Chromium can be driven here, or ``None`` when it can."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    if not _chromium():
        return "no Chromium on PATH (Debian: apt-get install chromium)"
    if not shutil.which("chromedriver"):
        return "no chromedriver on PATH (Debian: apt-get install chromium-driver)"
    return None


def _chromium() -> str | None:
    return next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)


def start_chromium(width: int = WIDTH, height: int = HEIGHT):
    """A headless Chromium whose pages are ``width`` CSS pixels wide, console logs kept, no host name resolved.

    The chromedriver on PATH is passed explicitly, so selenium never looks for (or downloads) one.
    """
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = _chromium()
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--lang=en-US"):
        options.add_argument(arg)
    options.add_argument(f"--window-size={width},{height}")
    options.add_argument("--host-resolver-rules=MAP * ~NOTFOUND")  # offline alike everywhere
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=shutil.which("chromedriver")), options=options)
    inner = driver.execute_script("return window.innerWidth")
    if inner != width:  # some builds count the window frame in --window-size
        driver.set_window_size(width + driver.get_window_size()["width"] - inner, height)
    return driver


def lint_page(driver, page: Path, parameters: list[str]) -> list[Problem]:
    """Open ``page`` in ``driver`` and return its problems (empty when the page is clean)."""
    driver.get_log("browser")  # drop what earlier pages logged
    driver.get(page.resolve().as_uri())
    _settle(driver)
    return [
        *console_errors(driver),
        *broken_images(driver),
        *horizontal_overflow(driver),
        *raw_text(driver.execute_script("return document.body.innerText"), parameters),
        *parameters_as_code(driver, parameters),
    ]


def _settle(driver, timeout: float = 10) -> None:
    """Unfold every ``<details>``, load lazy images, wait until every image has loaded or failed."""
    from selenium.webdriver.support.ui import WebDriverWait

    driver.execute_script(
        "document.querySelectorAll('details').forEach(d => d.open = true);"
        "document.querySelectorAll('img[loading=lazy]').forEach(i => i.loading = 'eager');"
    )
    WebDriverWait(driver, timeout).until(
        lambda d: d.execute_script(
            "return document.readyState === 'complete' && [...document.images].every(i => i.complete)"
        )
    )


def console_errors(driver) -> list[Problem]:
    """Console messages of severity SEVERE (script errors, console.error, failed loads)."""
    return [
        Problem("console error", _clip(entry["message"], 240))
        for entry in driver.get_log("browser")
        if entry["level"] == "SEVERE"
    ]


def broken_images(driver) -> list[Problem]:
    """Images that ended with no pixels (``naturalWidth`` 0), named by their source and alt text."""
    images = driver.execute_script(
        "return [...document.images].filter(i => i.naturalWidth === 0)"
        ".map(i => ({src: i.getAttribute('src') || '', alt: i.alt}))"
    )
    return [Problem("image not loaded", f"src={_clip(i['src'], 80)!r} alt={i['alt']!r}") for i in images]


_OVERFLOW_JS = """
const width = document.documentElement.clientWidth, scroll = document.documentElement.scrollWidth;
if (scroll <= width) return null;
const clipped = el => {  // an ancestor that scrolls or clips horizontally contains the overflow
  for (let a = el.parentElement; a && a !== document.body; a = a.parentElement)
    if (getComputedStyle(a).overflowX !== 'visible') return true;
  return false;
};
const name = el => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
  (typeof el.className === 'string' && el.className.trim() ? '.' + el.className.trim().split(/\\s+/).join('.') : '');
const wide = [...document.body.querySelectorAll('*')].filter(
  el => el.getBoundingClientRect().right > width + 0.5 && !clipped(el));
const set = new Set(wide);
const outermost = wide.filter(el => !set.has(el.parentElement)).slice(0, 3);
return {width: width, scroll: scroll, culprits: outermost.map(el => ({
  tag: name(el),
  right: Math.round(el.getBoundingClientRect().right),
  text: (el.innerText || el.textContent || '').trim().slice(0, 120)}))};
"""


def horizontal_overflow(driver) -> list[Problem]:
    """The page scrolls sideways at this window width; names the outermost elements that stick out."""
    found = driver.execute_script(_OVERFLOW_JS)
    if not found:
        return []
    culprits = "; ".join(f"<{c['tag']}> to {c['right']} px: {_squash(c['text'])[:80]!r}" for c in found["culprits"])
    wide = f"page is {found['scroll']} px wide in a {found['width']} px window"
    return [Problem("horizontal overflow", f"{wide} ({culprits})")]


def raw_text(text: str, parameters: list[str]) -> list[Problem]:
    """Raw printouts in visible text, and parameter names between backticks, each quoted in context."""
    text = _squash(text)
    patterns = dict(RAW_TEXT)
    if parameters:
        patterns["`parameter`"] = r"`\s*(?:" + "|".join(map(re.escape, parameters)) + r")\s*`"
    return [
        Problem(f"text {name!r}", _context(text, m.start(), m.end()))
        for name, pattern in patterns.items()
        for m in re.finditer(pattern, text)
    ]


def parameters_as_code(driver, parameters: list[str]) -> list[Problem]:
    """Visible ``<code>`` elements that name a parameter, quoted with the text around them."""
    codes = driver.execute_script(
        "return [...document.querySelectorAll('code')].filter(c => c.getClientRects().length)"
        ".map(c => ({code: c.textContent, around: (c.parentElement || c).innerText}))"
    )
    if not parameters:
        return []
    name = re.compile(r"(?<![A-Za-z0-9_])(?:" + "|".join(map(re.escape, parameters)) + r")(?![A-Za-z0-9_])")
    problems = []
    for c in codes:
        if name.search(c["code"]):
            around = _squash(c["around"])
            at = around.find(_squash(c["code"]))
            where = _context(around, at, at + len(_squash(c["code"]))) if at >= 0 else _clip(around, 2 * CONTEXT)
            problems.append(Problem("parameter in <code>", f"<code>{_clip(c['code'], 60)}</code> in {where}"))
    return problems


def describe(page: str, problems: list[Problem]) -> str:
    """A message naming the page, with the count of each kind of problem and a few quoted examples."""
    kinds: dict[str, list[str]] = defaultdict(list)
    for p in problems:
        kinds[p.kind].append(p.detail)
    lines = [f"{page}: {len(problems)} problem(s)"]
    for kind, details in kinds.items():
        shown = details[:EXAMPLES]
        more = f" (+{len(details) - len(shown)} more)" if len(details) > len(shown) else ""
        lines.append(f"  {kind} x{len(details)}: " + " | ".join(shown) + more)
    return "\n".join(lines)


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _context(text: str, start: int, end: int) -> str:
    before = ("…" if start > CONTEXT else "") + text[max(0, start - CONTEXT) : start]
    after = text[end : end + CONTEXT] + ("…" if end + CONTEXT < len(text) else "")
    return f'"{before}»{text[start:end]}«{after}"'
