"""Widgets work where students use them: JupyterLab in a real browser (headless Chromium via Playwright).

Starts JupyterLab on 127.0.0.1 with a random token, opens a notebook that displays chapter 00's
explorer and a plain plotly figure as the chapters show it, runs both, checks both drew, drags the
learning-rate slider and checks that the widget's figure in the page changed. (The HTML book is checked in the
same browser, offline, page by page, where each chapter is built: tests/book_browser.py.) Needs Debian's
chromium (``make test``/``make browser`` install it as root); skipped with that hint otherwise.
"""
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest
from book_browser import ARGS, CHROMIUM  # tests/book_browser.py: one Chromium set-up for both

playwright = pytest.importorskip("playwright.sync_api", reason="pip install playwright (in the dev extras)")
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                reason=f"no Chromium at {CHROMIUM}: `sudo apt-get install chromium` (or `make browser` as "
                                       "root) installs Debian's; FLATLAB_CHROMIUM=/path/to/chromium picks another")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def lab(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell("import flatlab\nfrom flatlab import widgets\n"
                                          "explorer = widgets.landscape_explorer()\nexplorer.widget"),
                nbformat.v4.new_code_cell("flatlab.setup_notebook(0, chapter='browser-test')\n"
                                          "flatlab.plots.landscape_figure(flatlab.landscapes.sharp_and_flat())")]
    nbformat.write(nb, tmp_path / "explorer.ipynb")
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(tmp_path / "cfg"), JUPYTER_RUNTIME_DIR=str(tmp_path / "rt"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={tmp_path}", "--LabApp.news_url=", "--allow-root",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
            break
        except OSError:
            time.sleep(0.5)
    else:
        proc.terminate()
        pytest.fail("JupyterLab did not start within 60 s")
    yield base, token
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


def _trajectory_x(page):
    return page.evaluate("() => { const p = document.querySelector('.js-plotly-plot');"
                         " return p && p.data && p.data.length > 2 ? Array.from(p.data[2].x) : null; }")


def test_slider_drag_updates_the_plot_in_jupyterlab(lab):
    base, token = lab
    with playwright.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{base}/lab/tree/explorer.ipynb?token={token}", timeout=90_000)
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=90_000)
            try:  # JupyterLab may ask which kernel to use
                page.locator(".jp-Dialog .jp-mod-accept").click(timeout=8_000)
            except playwright.Error:
                pass
            page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=60_000)
            page.locator(".jp-Cell .jp-InputArea-editor").first.click()
            page.keyboard.press("Shift+Enter")
            page.keyboard.press("Shift+Enter")  # the second cell: a plain plotly figure, as chapters show them
            page.wait_for_selector(".widget-slider .noUi-handle", timeout=90_000)
            page.wait_for_function("() => { const ps = document.querySelectorAll('.jp-Notebook .js-plotly-plot');"
                                   " return ps.length >= 2 && Array.from(ps).every(p => p.querySelector("
                                   "'.main-svg .scatterlayer .trace, .main-svg .contourlayer .trace')); }",
                                   timeout=90_000)
            page.wait_for_function("() => { const p = document.querySelector('.js-plotly-plot');"
                                   " return p && p.data && p.data.length > 2; }", timeout=90_000)
            before = _trajectory_x(page)
            status_before = page.locator(".widget-html-content").nth(1).inner_text()
            handle = page.locator(".widget-slider .noUi-handle").first
            box = handle.bounding_box()
            page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            page.mouse.down()
            page.mouse.move(box["x"] + 120, box["y"] + box["height"] / 2, steps=8)
            page.mouse.up()
            page.wait_for_function("(before) => { const p = document.querySelector('.js-plotly-plot');"
                                   " return JSON.stringify(Array.from(p.data[2].x)) !== JSON.stringify(before); }",
                                   arg=before, timeout=30_000)
            after = _trajectory_x(page)
            status_after = page.locator(".widget-html-content").nth(1).inner_text()
            if os.environ.get("FLATLAB_SCREENSHOT"):  # to look at the widget as a student sees it
                page.screenshot(path=os.environ["FLATLAB_SCREENSHOT"], full_page=True)
        finally:
            browser.close()
    assert before and after and before != after
    assert status_before != status_after and "updated in" in status_after
