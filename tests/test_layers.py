"""The layer picture of docs/design.md, enforced: every import inside flatlab points down the layers."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / "flatlab"

# lower numbers are lower layers; a module may import only from strictly lower layers (or its own package)
LAYERS = {
    "_validate": 0, "plots": 0,                       # leaves: import nothing from flatlab
    "config": 1, "claims": 1, "execute": 1,           # budget, seeding, cache, progress; claim(...); running a notebook
    "data": 2, "models": 2, "landscapes": 2,          # generated data sets, models, analytic 2-D losses
    "curvature": 3, "optim": 3,                       # HVPs, Lanczos, sharpness; the optimizers
    "train": 4,                                       # fit() → History, probes, 2-D trajectories
    "sweep": 5, "implicit": 5, "grokking": 5, "adaptive": 5, "basins": 5,   # topic modules: the chapters' experiments
    "widgets": 6, "exercises": 6, "book": 6,          # views, checks, notebook versions and pages
    "sgdnoise": 6,                                    # a topic module built on sweep (layer 5): chapter 03b
    "robustness": 7, "grade": 7,                      # whole-chapter tools (they read notebooks through book)
    "book_site": 8,                                   # the HTML book (Sphinx) and offline slides
    "cli": 9,
}


def _modules():
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG)
        if rel.as_posix() == "__init__.py":
            continue  # the package's front door re-exports from every layer
        yield rel, path


def _imports(rel: Path, path: Path) -> set[str]:
    """The top-level flatlab modules that ``path`` imports (relative and absolute, lazy ones included)."""
    package = list(rel.parent.parts)
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
                parts = base + (node.module.split(".") if node.module else [])
                names = parts[:1] if parts else [a.name for a in node.names]
                out.update(names)
            elif node.module and node.module.split(".")[0] == "flatlab":
                parts = node.module.split(".")[1:]
                out.update(parts[:1] if parts else [a.name for a in node.names])
        elif isinstance(node, ast.Import):
            for a in node.names:
                parts = a.name.split(".")
                if parts[0] == "flatlab" and len(parts) > 1:
                    out.add(parts[1])
    top = rel.parts[0].removesuffix(".py")
    return {m for m in out if m != top and m != "__version__"}


@pytest.mark.parametrize("rel,path", list(_modules()), ids=lambda v: str(v) if isinstance(v, Path) else None)
def test_imports_point_down_the_layers(rel, path):
    top = rel.parts[0].removesuffix(".py")
    assert top in LAYERS, f"flatlab/{rel}: a new module — give it a layer in tests/test_layers.py and docs/design.md"
    for dep in _imports(rel, path):
        assert dep in LAYERS, f"flatlab/{rel} imports flatlab.{dep}, which has no layer"
        assert LAYERS[dep] < LAYERS[top], (f"flatlab/{rel} (layer {LAYERS[top]}) imports flatlab.{dep} "
                                           f"(layer {LAYERS[dep]}): imports must point down the layers")


def test_only_widgets_import_ipywidgets():
    for rel, path in _modules():
        if rel.parts[0] == "widgets":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not any(n.split(".")[0] in ("ipywidgets", "anywidget") for n in names), \
                f"flatlab/{rel} imports ipywidgets: only flatlab/widgets/ may (everything else runs headless)"


def test_the_checker_sees_a_back_arrow(tmp_path):
    """The test itself can fail: a module in a low layer that imports a high one is caught."""
    fake = tmp_path / "curvature.py"
    fake.write_text("from .train import fit\nfrom . import plots\n", encoding="utf-8")
    deps = _imports(Path("curvature.py"), fake)
    assert deps == {"train", "plots"}
    assert any(LAYERS[d] >= LAYERS["curvature"] for d in deps)
