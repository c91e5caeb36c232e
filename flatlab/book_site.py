"""The HTML book: the executed chapters as one Sphinx site that works offline.

``flatlab book`` executes the chapters (``cli.book``, ``flatlab.execute``); this module turns the executed
notebooks into a book with Sphinx, ``myst-nb`` (which renders executed notebooks without running them
again) and ``sphinx-book-theme`` — a sidebar of chapters, a table of contents beside each page,
previous/next links, search, and pages for the claims table and the seed-robustness report.

Everything a page needs lies beside it in ``build/html/_static``, so the book reads the same with the
network off:

* **math** is typeset by MathJax 3, copied from the ``django-static-mathjax`` wheel (a plain copy of
  MathJax's ``es5`` build; the package needs no Django) — never a CDN;
* **plotly.js** is one shared copy from the ``plotly`` package. The chapters' own copies (plotly's
  ``notebook`` renderer embeds ≈ 4.8 MB in the first figure output of every chapter) are dropped, and
  so are the ``<script src="https://…mathjax…">`` tags plotly writes into every figure;
* widget views are replaced by their kernel-free slider figures (``book.kernel_free``), and the
  parameters cells (the chapter's and papermill's injected one) are hidden.

Why not nbconvert (the earlier book) or Jupyter Book 2: nbconvert writes one unconnected page per
chapter, without navigation or search; Jupyter Book 2 builds with Node.js and fetches its theme at
build time. Sphinx + myst-nb + sphinx-book-theme is what Jupyter Book 1 is made of, installed from PyPI.
"""
from __future__ import annotations

import copy
import re
import shutil
from pathlib import Path

import nbformat

from .book import chapter_info, kernel_free

HIDDEN_TAGS = ("parameters", "injected-parameters")
_EXTERNAL_SCRIPT = re.compile(r"<script\b[^>]*\bsrc=[\"']https?://[^\"']*[\"'][^>]*>\s*</script>", re.I)

CONF = '''\
# Written by flatlab.book_site: the Sphinx configuration of the flatlab book (regenerated on every build).
project = "flatlab"
author = "flatlab"
html_title = "flatlab — why some minima generalize"
extensions = ["myst_nb"]
nb_execution_mode = "off"          # the chapters were executed by `flatlab book`
nb_ipywidgets_js = {}              # widget views were replaced by kernel-free figures: no require.js from a CDN
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_dmath_double_inline = True
html_theme = "sphinx_book_theme"
html_theme_options = {"home_page_in_toc": True, "show_navbar_depth": 1, "use_download_button": True,
                      "show_toc_level": 2, "navigation_with_keys": False}
html_static_path = ["_static"]
html_js_files = ["plotly.min.js"]  # one shared copy; the figures call Plotly.newPlot
mathjax_path = "mathjax/tex-chtml.js"
html_show_sourcelink = False
html_copy_source = False
exclude_patterns = ["_build"]
suppress_warnings = ["mystnb.unknown_mime_type", "myst.header", "misc.highlighting_failure", "toc.not_included"]
'''


def _package_dir(module: str, inside: str, marker: str, package: str, needed_for: str) -> Path:
    """``inside`` (a folder holding ``marker``) of the installed ``module``; a clear error naming the
    PyPI ``package`` when it is missing."""
    import importlib.util

    spec = importlib.util.find_spec(module)
    for root in list(spec.submodule_search_locations or []) if spec else []:
        path = Path(root) / inside
        if (path / marker).exists():
            return path
    raise RuntimeError(f"{needed_for} not found: it comes from the '{package}' package "
                       "(pip install -e '.[dev]' installs it)")


def mathjax_dir() -> Path:
    """MathJax 3's ``es5`` build inside the installed ``django-static-mathjax`` wheel."""
    return _package_dir("mathjax", "static/mathjax/es5", "tex-chtml.js", "django-static-mathjax",
                        "MathJax (the book's math)")


# what tex-chtml.js loads at run time: its fonts and the TeX extensions it autoloads (\\boldsymbol, \\cancel, …)
MATHJAX_PARTS = ("tex-chtml.js", "output/chtml/fonts", "input/tex/extensions", "ui", "a11y")


def _copy_mathjax(target: Path) -> None:
    root = mathjax_dir()
    for part in MATHJAX_PARTS:
        source = root / part
        if source.is_dir():
            shutil.copytree(source, target / part)
        else:
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / part)


def revealjs_dir() -> Path:
    """reveal.js as the ``sphinx-revealjs`` wheel ships it (``dist/``, ``plugin/``)."""
    return _package_dir("sphinx_revealjs", "_static/revealjs", "dist/reveal.js", "sphinx-revealjs",
                        "reveal.js (the slides)")


def plotly_js() -> Path:
    """The plotly.js bundle the ``plotly`` package ships (the version its figures are written for)."""
    import plotly

    path = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    if not path.exists():
        raise RuntimeError(f"plotly.js not found at {path}")
    return path


def _is_plotly_library(text: str) -> bool:
    """plotly's ``notebook`` renderer output that only loads plotly.js (no figure)."""
    return "window.PlotlyConfig" in text and "plotly.js v" in text and "Plotly.newPlot" not in text


def page_notebook(nb):
    """An executed chapter prepared for the book (a copy): widget views replaced by their slider
    figures, the parameters cells hidden, plotly.js and external scripts removed from the outputs."""
    nb = kernel_free(copy.deepcopy(nb))
    for cell in nb.cells:
        tags = cell.metadata.setdefault("tags", [])
        if any(t in tags for t in HIDDEN_TAGS) and "remove-cell" not in tags:
            tags.append("remove-cell")
        if cell.cell_type != "code":
            continue
        outputs = []
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            text = data.get("text/html")
            if isinstance(text, list):
                text = "".join(text)
            if text is not None:
                if _is_plotly_library(text):
                    continue
                data["text/html"] = _EXTERNAL_SCRIPT.sub("", text)
            outputs.append(out)
        cell.outputs = outputs
    return nb


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def index_page(chapters: list[dict], claims: list[dict], budget: str, seed: int) -> str:
    """The front page: what the book is, each chapter with its time, goals and claims, and the toctree."""
    lines = ["# flatlab — why some minima generalize", "",
             "An interactive workbook on sharpness and flatness, SAM and variational inference, learning rate "
             "and batch size, implicit bias, grokking and adaptive optimizers. Every chapter below was executed "
             f"at the **{budget}** budget with seed {seed}; each one *asserts* the phenomenon it teaches with "
             "`claim(...)`, and [the claims page](claims.md) lists them all. Figures are interactive and work "
             "offline; a widget's figure has a slider for its first control (the live widgets need JupyterLab: "
             "`make lab`).", "", "## Chapters", ""]
    for ch in chapters:
        mine = [c for c in claims if c.get("chapter") == ch["name"]]
        held = sum(bool(c.get("passed")) for c in mine)
        lines.append(f"**[{ch['title']}]({ch['name']}.ipynb)** — {ch['time'] or 'time not given'}; "
                     f"{held}/{len(mine)} claims hold")
        lines.append("")
        lines += [f"- {g}" for g in ch["goals"]] + [""]
    lines += ["```{toctree}", ":hidden:", ":caption: Chapters", ""] + [ch["name"] for ch in chapters] + ["```", "",
              "```{toctree}", ":hidden:", ":caption: Checks", "", "claims", "robustness", "```", ""]
    return "\n".join(lines)


def claims_page(claims: list[dict], budget: str) -> str:
    """Every claim checked while the book was built: chapter, seed, verdict, figures."""
    lines = ["# Claims", "",
             f"Every `claim(...)` the chapters made while this book was built (budget **{budget}**). A chapter "
             "asserts what it teaches: a claim that does not hold stops the chapter in CI. How each claim fares "
             "over many seeds is on [the robustness page](robustness.md).", ""]
    if not claims:
        return "\n".join(lines + ["No claims were recorded."])
    lines += ["| chapter | seed | holds | claim | figures |", "|---|---|---|---|---|"]
    for c in claims:
        figures = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                            for k, v in c.get("figures", {}).items())
        lines.append(f"| {_md_cell(str(c.get('chapter', '')))} | {c.get('seed', '')} | "
                     f"{'✓' if c.get('passed') else '✗'} | {_md_cell(c['name'])} | {_md_cell(figures)} |")
    return "\n".join(lines) + "\n"


def robustness_page(report_body: str | None) -> str:
    """The seed-robustness report (``flatlab robustness`` writes it) as a page of the book."""
    lines = ["# Seed robustness", ""]
    if not report_body:
        return "\n".join(lines + [
            "No robustness report in this build. `make robustness` (or `flatlab robustness --seeds 0-19 "
            "--budget small`) executes every chapter once per seed and records how often each claim holds; "
            "the next `make book` shows it here."]) + "\n"
    return "\n".join(lines + ["```{raw} html", report_body, "```"]) + "\n"


def build(executed: list[Path], build_dir: Path, claims: list[dict], budget: str, seed: int,
          robustness_body: str | None = None, quiet: bool = True) -> Path:
    """Write the book's sources into ``build_dir/book-src`` and build the site into ``build_dir/html``.

    ``executed`` are executed chapters (``build/notebooks/NN_name.ipynb``). Returns ``html/index.html``.
    """
    from sphinx.cmd.build import build_main

    src, out = build_dir / "book-src", build_dir / "html"
    if src.exists():
        shutil.rmtree(src)
    _offline_assets(src / "_static", reveal=False)
    (src / "conf.py").write_text(CONF, encoding="utf-8")
    infos = []
    for path in executed:
        nbformat.write(page_notebook(nbformat.read(path, as_version=4)), src / path.name)
        infos.append(chapter_info(path))
    (src / "index.md").write_text(index_page(infos, claims, budget, seed), encoding="utf-8")
    (src / "claims.md").write_text(claims_page(claims, budget), encoding="utf-8")
    (src / "robustness.md").write_text(robustness_page(robustness_body), encoding="utf-8")
    args = ["-b", "html", "-d", str(build_dir / ".doctrees"), str(src), str(out)] + (["-q"] if quiet else [])
    status = build_main(args)
    if status:
        raise RuntimeError(f"sphinx-build failed with status {status} (sources in {src})")
    return out / "index.html"


def _offline_assets(target: Path, reveal: bool = True) -> None:
    """MathJax, plotly.js and (for slides) reveal.js copied into ``target``; a copy already there is kept, so
    every deck of ``build/slides`` shares one."""
    target.mkdir(parents=True, exist_ok=True)
    if not (target / "mathjax" / "tex-chtml.js").exists():
        _copy_mathjax(target / "mathjax")
    if not (target / "plotly.min.js").exists():
        shutil.copy2(plotly_js(), target / "plotly.min.js")
    if reveal and not (target / "reveal.js" / "dist" / "reveal.js").exists():
        shutil.copytree(revealjs_dir(), target / "reveal.js", dirs_exist_ok=True)


def export_slides(path: Path, out_dir: Path) -> Path:
    """Export an (executed) chapter as reveal.js slides, ``out_dir/<chapter>.slides.html``, that work offline:
    reveal.js, MathJax and plotly.js are copies in ``out_dir`` (the template ``flatlab_slides``)."""
    from nbconvert import SlidesExporter

    from .book import ensure_slide_tags

    nb = page_notebook(ensure_slide_tags(nbformat.read(path, as_version=4)))
    exporter = SlidesExporter(template_name="flatlab_slides", reveal_url_prefix="reveal.js", reveal_theme="white",
                              extra_template_basedirs=[str(Path(__file__).parent / "templates")])
    body, _ = exporter.from_notebook_node(nb)
    _offline_assets(out_dir)
    target = out_dir / f"{path.stem}.slides.html"
    target.write_text(body, encoding="utf-8")
    return target
