"""Building the workbook: student and teacher versions, and executed chapters prepared for readers without a kernel.

* ``student_version(nb)`` removes every cell tagged ``solution`` (the ``exercise`` stubs stay, and each
  check cell falls back to flatlab's reference, so a student version executes end to end);
* ``teacher_version(nb)`` keeps the solutions and marks them with a heading;
* ``chapter_info(nb)`` reads a chapter's title, time estimate and learning goals from its first cell;
* ``kernel_free(nb)`` and ``slide_type``/``ensure_slide_tags`` prepare executed chapters for readers without a
  kernel (``flatlab.book_site`` builds the HTML book and the slides from them);
* ``error_outputs(nb)`` lists the errors an executed notebook's cells raised (the book, the robustness
  harness and the grader all report them the same way).
"""
from __future__ import annotations

import copy
import re
from pathlib import Path

import nbformat


def error_outputs(nb, limit: int | None = None) -> list[str]:
    """``"cell N: ErrorName: message"`` for every error output of an executed notebook (message cut at ``limit``)."""
    return [f"cell {i}: {o.get('ename')}: {str(o.get('evalue', ''))[:limit]}" for i, c in enumerate(nb.cells)
            for o in c.get("outputs", []) if o.get("output_type") == "error"]


def _tags(cell) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def _stripped(nb):
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return nb


def student_version(nb):
    """The notebook without ``solution`` cells (and without outputs)."""
    nb = _stripped(nb)
    nb.cells = [c for c in nb.cells if "solution" not in _tags(c)]
    return nb


def teacher_version(nb):
    """The notebook with solutions, each preceded by a "Solution" note (and without outputs)."""
    nb = _stripped(nb)
    cells = []
    for c in nb.cells:
        if "solution" in _tags(c):
            note = nbformat.v4.new_markdown_cell("**Solution** (teacher version).")
            note.id = f"{c.get('id', 'x')}-note"
            cells.append(note)
        cells.append(c)
    nb.cells = cells
    return nb


def write_versions(notebooks: list[Path], out: Path) -> dict[str, list[Path]]:
    """Write ``out/student/*.ipynb`` and ``out/teacher/*.ipynb`` for every chapter."""
    written = {"student": [], "teacher": []}
    for kind, transform in (("student", student_version), ("teacher", teacher_version)):
        (out / kind).mkdir(parents=True, exist_ok=True)
        for path in notebooks:
            target = out / kind / path.name
            nbformat.write(transform(nbformat.read(path, as_version=4)), target)
            written[kind].append(target)
    return written


def chapter_info(path: Path) -> dict:
    """Title, time estimate and learning goals from a chapter's first cell."""
    nb = nbformat.read(path, as_version=4)
    first = nb.cells[0].source
    title = re.search(r"^#\s+(.+)$", first, re.M)
    time = re.search(r"\*\*Time:\*\*\s*([^·\n]+)", first)
    goals = re.findall(r"^\s*\d+\.\s+(.+)$", first, re.M)
    return {"name": path.stem, "title": title.group(1).strip() if title else path.stem,
            "time": time.group(1).strip() if time else "", "goals": goals}


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def kernel_free(nb):
    """Prepare an executed chapter for readers without a kernel (HTML book, slides): where a widget
    output also carries its slider figure (``text/html``), show that instead of the widget view, and
    drop the saved widget state (megabytes) once no widget view is left."""
    views = 0
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if WIDGET_VIEW in data and "text/html" in data:
                del data[WIDGET_VIEW]
            views += WIDGET_VIEW in data
    if not views:
        nb.metadata.pop("widgets", None)
    return nb


def slide_type(cell) -> str:
    """Default reveal.js slide type of a cell: a new slide at every ``#``/``##`` heading, a sub-slide at
    ``###``, fragments for code and plain markdown, exercises and solutions skipped."""
    tags = _tags(cell)
    if "solution" in tags or "parameters" in tags or "injected-parameters" in tags:
        return "skip"
    if cell.cell_type == "markdown":
        first = cell.source.lstrip().split("\n", 1)[0]
        if re.match(r"^#{1,2}\s", first):
            return "slide"
        if first.startswith("### "):
            return "subslide"
    return "-"


def ensure_slide_tags(nb):
    """Give every cell a ``slideshow.slide_type`` (keeps the ones a teacher has set)."""
    for cell in nb.cells:
        cell.metadata.setdefault("slideshow", {"slide_type": slide_type(cell)})
    return nb
