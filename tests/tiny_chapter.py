"""``write_chapter``: a tiny chapter notebook for the tests of the harness and of ``flatlab book``."""


def write_chapter(path, body: str):
    """A tiny chapter at ``path``: a title, a ``parameters`` cell (``SEED = 0``) and ``body``; returns ``path``."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("SEED = 0")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# tiny"), params, nbformat.v4.new_code_cell(body)]
    nbformat.write(nb, path)
    return path
