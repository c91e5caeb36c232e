"""Checks of the built HTML book in a real browser with the network blocked (used by the chapter tests).

``check_book(html_dir, chapters, shots)`` opens the index and each chapter's page from ``file://`` in
headless Chromium, with the browser context offline, and asserts what a reader without a network
should see: no request leaves the machine; no raw TeX (``$$``, ``\\frac``, ``\\hat``, ``\\lVert`` …) in the
rendered text and every math element typeset by MathJax; every plotly figure drawn; each kernel-free
slider figure's slider clear of its legend, title, axis titles and tick labels, and switching panels
when its last step is clicked; every relative link (sidebar, previous/next, claims and robustness pages)
resolving to a file of the book. A screenshot of each chapter (its top, and its first slider figure)
goes into ``shots``.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from urllib.parse import unquote, urlparse

CHROMIUM = os.environ.get("FLATLAB_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
RAW_TEX = ("$$", "\\frac", "\\hat", "\\lVert", "\\mathrm", "\\varepsilon", "\\sum", "\\begin{")

_LAYOUT = """() => {
  const r = e => { const b = e.getBoundingClientRect(); return [b.left, b.top, b.right, b.bottom]; };
  const hit = (a, b) => a[2] > a[0] && b[2] > b[0] && a[0] < b[2] && b[0] < a[2] && a[1] < b[3] && b[1] < a[3];
  const plots = Array.from(document.querySelectorAll('.js-plotly-plot'));
  return plots.map((p, i) => {
    const traces = p.querySelectorAll('.scatterlayer .trace, .contourlayer .trace, .heatmaplayer .hm, '
                                      + '.barlayer .trace, .imagelayer .im').length;
    const s = p.querySelector('.slider-container');
    const clash = [];
    if (s) {
      const sb = r(s);
      for (const [name, sel] of [['legend', '.legend'], ['title', '.gtitle'],
                                 ['axis title', '.g-xtitle text, .g-x2title text, .g-x3title text'],
                                 ['tick label', '.xtick text, .x2tick text, .x3tick text'],
                                 ['annotation', '.annotation-text-g'], ['colour bar', '.colorbar']])
        p.querySelectorAll(sel).forEach(e => { if (hit(sb, r(e)) && !clash.includes(name)) clash.push(name); });
    }
    return {index: i, drawn: !!p.querySelector('.main-svg'), traces, slider: !!s, clash};
  });
}"""
_MATH = """() => {
  const math = Array.from(document.querySelectorAll('main .math, article .math'));
  return {n: math.length, typeset: math.filter(m => m.querySelector('mjx-container')).length,
          text: (document.querySelector('main') || document.body).innerText};
}"""
# a panel switch shows other traces, another title, or other reference lines and labels
_VISIBLE = ("(i) => { const p = document.querySelectorAll('.js-plotly-plot')[i];"
            " return JSON.stringify([p.data.map(t => t.visible), p.layout.title && p.layout.title.text,"
            " (p.layout.shapes || []).length, (p.layout.annotations || []).length]); }")


def _links(page) -> list[str]:
    return page.evaluate("() => Array.from(document.querySelectorAll('a[href]')).map(a => a.href)")


def _check_links(page, name: str, html_dir: Path, problems: list[str]) -> None:
    for href in _links(page):
        url = urlparse(href)
        if url.scheme != "file":
            continue
        target = Path(unquote(url.path))
        if not target.exists():
            problems.append(f"{name}: link to {target.name} does not resolve")
        elif html_dir.resolve() not in target.resolve().parents:
            problems.append(f"{name}: link {target} leaves the book")


def check_book(html_dir: Path, chapters: list[str], shots: Path) -> list[str]:
    """Open the book's index and ``chapters`` (page names) offline; return the problems found (empty: all good)."""
    from playwright.sync_api import sync_playwright

    shots.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            context = browser.new_context(viewport={"width": 1300, "height": 900}, offline=True)
            outside: list[str] = []
            context.on("request", lambda r: outside.append(r.url) if urlparse(r.url).scheme not in ("file", "data",
                                                                                                  "blob") else None)
            page = context.new_page()
            page.goto((html_dir / "index.html").as_uri(), timeout=60_000)
            _check_links(page, "index", html_dir, problems)
            sidebar = page.evaluate("() => Array.from(document.querySelectorAll('.bd-sidebar a')).map(a => a.href)")
            for name in chapters + ["claims", "robustness"]:
                if not any(h.endswith(f"/{name}.html") for h in sidebar):
                    problems.append(f"index: the sidebar has no link to {name}.html")
            for name in chapters:
                problems += _check_chapter(page, html_dir, name, shots)
            problems += [f"request left the machine: {u}" for u in outside[:5]]
        finally:
            browser.close()
    return problems


def _check_chapter(page, html_dir: Path, name: str, shots: Path) -> list[str]:
    problems: list[str] = []
    page.goto((html_dir / f"{name}.html").as_uri(), timeout=60_000)
    page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=60_000)
    page.evaluate("() => MathJax.startup.promise")
    n_plots = page.evaluate("() => document.querySelectorAll('.plotly-graph-div').length")
    if n_plots:
        page.wait_for_function(f"() => document.querySelectorAll('.js-plotly-plot .main-svg').length >= {n_plots}",
                               timeout=60_000)
    math = page.evaluate(_MATH)
    raw = [t for t in RAW_TEX if t in math["text"]]
    if raw:
        problems.append(f"{name}: raw TeX visible in the page: {raw}")
    if math["n"] == 0 or math["typeset"] < math["n"]:
        problems.append(f"{name}: {math['typeset']} of {math['n']} math elements typeset")
    figures = page.evaluate(_LAYOUT)
    if not figures:
        problems.append(f"{name}: no plotly figure in the page")
    for f in figures:
        if not f["drawn"] or not f["traces"]:
            problems.append(f"{name}: figure {f['index']} was not drawn ({f['traces']} traces)")
        if f["clash"]:
            problems.append(f"{name}: figure {f['index']}'s slider overlaps its {', '.join(f['clash'])}")
    neighbours = page.evaluate("() => document.querySelectorAll('.prev-next-area a').length")
    if not neighbours:
        problems.append(f"{name}: no previous/next links")
    _check_links(page, name, html_dir, problems)
    page.evaluate("() => window.scrollTo(0, 0)")
    page.screenshot(path=str(shots / f"{name}.png"))
    sliders = [f["index"] for f in figures if f["slider"]]
    for i in sliders:
        before = page.evaluate(_VISIBLE, i)
        active, n, same = page.evaluate(
            "(i) => { const s = document.querySelectorAll('.js-plotly-plot')[i].layout.sliders[0];"
            " const a = JSON.stringify(s.steps[0].args), b = JSON.stringify(s.steps[s.steps.length - 1].args);"
            " return [s.active || 0, s.steps.length, a === b]; }", i)
        if same:  # the first and last panels draw the same (a control that changes nothing drawn here)
            continue
        rail = page.locator(".js-plotly-plot").nth(i).locator(".slider-rail-touch-rect").first
        rail.scroll_into_view_if_needed()
        page.evaluate("() => window.scrollBy(0, -250)")  # out from under the theme's sticky header
        box = rail.bounding_box()
        x = box["x"] + 2 if active == n - 1 else box["x"] + box["width"] - 2  # the first or the last step
        page.mouse.click(x, box["y"] + box["height"] / 2)
        try:
            page.wait_for_function(f"(i) => ({_VISIBLE})(i) !== {before!r}", arg=i, timeout=20_000)
        except Exception:  # playwright's TimeoutError: reported as the page's problem
            problems.append(f"{name}: clicking figure {i}'s slider did not switch its panel")
        if i == sliders[0]:
            page.locator(".js-plotly-plot").nth(i).screenshot(path=str(shots / f"{name}-slider.png"))
    return problems
