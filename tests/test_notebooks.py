"""Chapter conventions, and every chapter executed with another seed through `flatlab book`.

(`make test` also executes every chapter with its default seed through nbval.)"""
import json
import re
from pathlib import Path

import nbformat
import pytest

from flatlab import cli

from book_browser import CHROMIUM, check_book  # tests/book_browser.py

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def test_there_are_chapters():
    assert CHAPTERS and CHAPTERS[0].name == "00_welcome.ipynb"
    assert cli.chapters() == CHAPTERS


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_stored_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
    assert not dirty, f"{path.name}: cells {dirty} hold outputs; run nbstripout"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_conventions(path):
    nb = nbformat.read(path, as_version=4)
    first = nb.cells[0]
    assert first.cell_type == "markdown" and first.source.startswith("# ") and "Time:" in first.source
    assert "Learning goals" in first.source
    params = nb.cells[1]
    assert "parameters" in params.metadata.get("tags", []), "cell 2 must be tagged 'parameters'"
    assert "BUDGET = flatlab.budget()" in params.source and re.search(r"^SEED = \d+", params.source, re.M)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "setup_notebook(SEED" in code and "claim(" in code
    assert re.search(r"arXiv:\d{4}\.\d{4,5}", nb.cells[-1].source), "last cell must hold references with arXiv ids"
    for i, c in enumerate(nb.cells):
        tags = c.metadata.get("tags", [])
        if "exercise" in tags:
            assert "NotImplementedError" in c.source and "solution" in nb.cells[i + 1].metadata.get("tags", [])
            assert "flatlab.exercises.check_" in nb.cells[i + 2].source
        if c.cell_type == "code":
            assert len(c.source.splitlines()) <= 15, f"{path.name} cell {i} is longer than 15 lines"
    n_exercises = sum("exercise" in c.metadata.get("tags", []) for c in nb.cells)
    assert n_exercises >= 3, f"{path.name} has {n_exercises} exercises; every chapter needs at least 3"


SLIDE_TYPES = {"slide", "subslide", "fragment", "-", "skip", "notes"}


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_slide_tags_are_set_in_the_chapter(path):
    """`make slides` exports from tags stored in the chapter (`flatlab slides --tag` writes defaults)."""
    nb = nbformat.read(path, as_version=4)
    types = [c.metadata.get("slideshow", {}).get("slide_type") for c in nb.cells]
    missing = [i for i, t in enumerate(types) if t not in SLIDE_TYPES]
    assert not missing, f"{path.name}: cells {missing} have no slide type; run `flatlab slides --tag`"
    assert types[0] == "slide" and types.count("slide") >= 4
    assert all(t == "skip" for t, c in zip(types, nb.cells) if "solution" in c.metadata.get("tags", []))


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_student_version_executes_with_another_seed(path, tmp_path, monkeypatch):
    """The student version (solutions removed) runs end to end through `flatlab book`, and every claim
    holds for seed 1 (nbval runs the teacher version with seed 0)."""
    monkeypatch.delenv("FLATLAB_CLAIMS_FILE", raising=False)
    monkeypatch.chdir(tmp_path)  # a relative build directory, as `make book` passes it
    assert cli.book(budget="small", build=Path("book"), seed=1, version="student", only=[path.stem]) == 0
    tmp_path = tmp_path / "book"
    assert (tmp_path / "notebooks" / path.name).exists()
    html_dir = tmp_path / "html"
    html = (html_dir / f"{path.stem}.html").read_text()
    # figures and math render offline: one shared plotly.js and MathJax beside the pages, nothing from a CDN
    assert "Plotly.newPlot" in html and "plotly.js v" not in html
    assert (html_dir / "_static" / "plotly.min.js").exists() and (html_dir / "_static" / "mathjax" / "tex-chtml.js").exists()
    assert not re.search(r"""<(script|link|img)[^>]*(src|href)=["']https?://""", html)
    assert "injected-parameters" not in html and "SEED = 1" not in html  # the parameters cells are hidden
    source = nbformat.read(path, as_version=4)
    if any(c.source.strip().endswith(".widget") for c in source.cells if c.cell_type == "code"):
        assert '"sliders"' in html, "a widget must leave a kernel-free slider figure in the book"
        assert "widget-state+json" not in html, "widget views are replaced, so their saved state is dead weight"
    claims = json.loads((tmp_path / "claims.json").read_text())
    assert claims and all(c["chapter"] == path.stem and c["passed"] and c["seed"] == "1" for c in claims)
    index = (html_dir / "index.html").read_text()
    assert f'href="{path.stem}.html"' in index and f"{len(claims)}/{len(claims)} claims hold" in index
    assert path.stem in (html_dir / "claims.html").read_text()
    if Path(CHROMIUM).exists():  # make test installs Debian's chromium; the page is checked in a real browser
        problems = check_book(html_dir, [path.stem], ROOT / "build" / "book-screens")
        assert not problems, "\n".join(problems)
    executed = nbformat.read(tmp_path / "notebooks" / path.name, as_version=4)
    assert not any("solution" in c.metadata.get("tags", []) for c in executed.cells)


def test_student_version_has_no_solution_code_and_teacher_version_has_it(tmp_path):
    from flatlab.book import write_versions

    written = write_versions(CHAPTERS, tmp_path)
    for source, student, teacher in zip(CHAPTERS, written["student"], written["teacher"]):
        src = nbformat.read(source, as_version=4)
        solutions = [c.source for c in src.cells if "solution" in c.metadata.get("tags", [])]
        stu = "\n".join(c.source for c in nbformat.read(student, as_version=4).cells)
        tea = "\n".join(c.source for c in nbformat.read(teacher, as_version=4).cells)
        for sol in solutions:
            body = [ln for ln in sol.splitlines() if ln.strip() and not ln.lstrip().startswith(("def ", "#"))]
            assert body and not any(ln in stu for ln in body), f"{source.name}: solution code in the student version"
            assert sol in tea
        assert stu.count("NotImplementedError") >= len(solutions)


def test_chapter_info_and_slides(tmp_path):
    from flatlab.book import chapter_info
    from flatlab.book_site import export_slides

    info = chapter_info(CHAPTERS[0])
    assert info["title"].startswith("00") and info["time"] and len(info["goals"]) >= 2
    slides = export_slides(CHAPTERS[0], tmp_path).read_text()
    assert slides.count("<section") >= 5 and "reveal" in slides.lower()


def test_kernel_free_replaces_widget_views_and_drops_their_state():
    from flatlab.book import WIDGET_VIEW, kernel_free

    view = {WIDGET_VIEW: {"model_id": "m1"}, "text/plain": "VBox()"}
    nb = nbformat.v4.new_notebook(metadata={"widgets": {"state": {"m1": {}}}})
    nb.cells = [nbformat.v4.new_code_cell("w.widget", outputs=[
        nbformat.v4.new_output("display_data", data={**view, "text/html": "<div>slider figure</div>"})])]
    kernel_free(nb)
    assert WIDGET_VIEW not in nb.cells[0].outputs[0].data and "widgets" not in nb.metadata
    nb.metadata["widgets"] = {"state": {}}  # a widget without a figure keeps its view and the state
    nb.cells[0].outputs = [nbformat.v4.new_output("display_data", data=dict(view))]
    kernel_free(nb)
    assert WIDGET_VIEW in nb.cells[0].outputs[0].data and "widgets" in nb.metadata


def test_the_teaching_guide_gives_each_chapter_its_own_time():
    """docs/teaching.md's session lengths are the chapters' own "Time: about N minutes"."""
    guide = (ROOT / "docs" / "teaching.md").read_text(encoding="utf-8")
    sessions = {m.group(1): int(m.group(2)) for m in re.finditer(r"^## Session (\d\d) — .*\((\d+) min\)$", guide, re.M)}
    for path in CHAPTERS:
        header = nbformat.read(path, as_version=4).cells[0].source
        m = re.search(r"\*\*Time:\*\* about (\d+) minutes", header)
        assert m, f"{path.name}: the first cell must say **Time:** about N minutes"
        assert sessions.get(path.name[:2]) == int(m.group(1)), \
            f"{path.name}: {m.group(1)} minutes in the chapter, {sessions.get(path.name[:2])} in docs/teaching.md"
