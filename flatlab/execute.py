"""Executing a chapter: :func:`parameterized` (the notebook with its parameters injected, by papermill's
parameterizer) and :func:`execute` (that notebook run top to bottom in a fresh kernel by nbclient).

``flatlab book`` and ``flatlab robustness`` both run chapters through :func:`execute`. The executed notebook is
written once, when the run ends (also when a cell raised, with the outputs up to that cell). papermill's own
executor writes the whole notebook at the start and at the end of every cell; a chapter that embeds plotly.js for
its offline figures grows to ~10 MB, so its ~120 writes cost ~8 s of an 80-s chapter, in series with the kernel.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

from . import _validate as _v


def parameterized(source: str | os.PathLike, parameters: dict | None = None, *, text: str | None = None):
    """The notebook at ``source`` (or given as ``text``) with papermill's ``injected-parameters`` cell after its
    ``parameters`` cell (``parameters``, e.g. ``{"SEED": 1}``; none: the notebook as it is, loaded the same way)."""
    import tempfile

    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    _v.instance("parameters", parameters, dict, "a dict of the parameters cell's names and values, e.g. "
                "{'SEED': 1}", allow_none=True)
    if parameters and not all(isinstance(k, str) and k.isidentifier() for k in parameters):
        raise ValueError(f"parameters must be named by Python identifiers, got {sorted(map(repr, parameters))}")
    _v.instance("text", text, str, "the notebook's JSON text", allow_none=True)
    if text is None and not Path(source).is_file():
        raise ValueError(f"source={str(source)!r} is not a notebook file")
    if text is not None:  # papermill's loader adds the metadata its parameterizer expects; it reads a path
        with tempfile.NamedTemporaryFile("w", suffix=".ipynb", delete=False, encoding="utf-8") as fh:
            fh.write(text)
        try:
            nb = load_notebook_node(fh.name)
        finally:
            os.unlink(fh.name)
    else:
        nb = load_notebook_node(str(source))
    if parameters:
        nb = parameterize_notebook(nb, dict(parameters), kernel_name="python3", language="python")
    return nb


def execute(nb, out: str | os.PathLike | None = None, *, cwd: str | os.PathLike, timeout: float | None = None,
            allow_errors: bool = False, quiet_kernel: bool = False):
    """Run notebook ``nb`` (a ``NotebookNode``, changed in place and returned) in a fresh ``python3`` kernel whose
    working directory is ``cwd``; write it to ``out`` when the run ends, however it ends.

    ``allow_errors=False`` stops at the first cell that raises and re-raises nbclient's ``CellExecutionError``
    (the written notebook holds the outputs up to that cell); ``True`` runs every cell and leaves the errors in the
    outputs. ``timeout``: seconds per cell (None: no limit). ``quiet_kernel``: the kernel's own log lines (stderr of
    the kernel process, not of the cells) are dropped."""
    import nbformat
    from nbclient import NotebookClient

    _v.instance("nb", nb, nbformat.NotebookNode, "a notebook (nbformat.NotebookNode, e.g. from parameterized())")
    if not Path(cwd).is_dir():
        raise ValueError(f"cwd={str(cwd)!r} is not a directory (the kernel's working directory)")
    _v.positive("timeout", timeout, allow_none=True)
    allow_errors, quiet_kernel = _v.boolean("allow_errors", allow_errors), _v.boolean("quiet_kernel", quiet_kernel)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=allow_errors,
                            resources={"metadata": {"path": str(cwd)}})
    try:
        client.execute(**({"stderr": subprocess.DEVNULL} if quiet_kernel else {}))
    finally:
        if out is not None:
            Path(out).parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, str(out))
    return nb


def failure_reason(err: BaseException) -> str:
    """One line for a run that :func:`execute` ended with ``err``: the cell's own error (``KeyError: 'x'``) when a
    cell raised (nbclient's ``CellExecutionError``), else the exception's type and the first line of its message
    (a timeout, a dead kernel)."""
    if getattr(err, "ename", None):
        return f"{err.ename}: {err.evalue}"
    text = str(err)
    return f"{type(err).__name__}: {text.splitlines()[0] if text else ''}"
