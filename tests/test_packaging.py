"""The install stays reproducible: pyproject, constraints, environment.yml, Makefile and CI agree."""
import re
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent


def _name(req: str) -> str:
    return re.split(r"[<>=!~ \[;]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_environment_yml_matches_pyproject():
    project = _pyproject()
    wanted = {_name(r): r for r in project["dependencies"] + project["optional-dependencies"]["dev"]}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    listed = {_name(r.split("#")[0]): r.split("#")[0].strip() for r in pip if not r.startswith("-")}
    assert set(listed) == set(wanted), f"environment.yml differs: {set(listed) ^ set(wanted)}"
    for name, req in wanted.items():
        if name != "torch":
            assert listed[name].replace(" ", "") == req.replace(" ", ""), f"{name}: {listed[name]} vs {req}"
    python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python"))
    assert python.replace("python", "") == project["requires-python"]
    assert "-e ." in pip


def test_torch_is_pinned_to_the_cpu_build_everywhere():
    constraints = (ROOT / "constraints.txt").read_text()
    pin = re.search(r"^torch==([\d.]+)", constraints, re.M).group(1)
    env = (ROOT / "environment.yml").read_text()
    assert f"torch=={pin}" in env
    import torch

    assert torch.__version__.startswith(pin) and "+cpu" in torch.__version__ or not torch.cuda.is_available()


def test_makefile_bootstraps_and_ci_calls_make_test():
    make = (ROOT / "Makefile").read_text()
    assert "-m venv" in make and "-c constraints.txt -e '.[dev]'" in make
    assert re.search(r"^\$\(STAMP\): pyproject.toml constraints.txt", make, re.M)
    for target in ("lab", "test", "book", "bench", "clean"):
        assert re.search(rf"^{target}:", make, re.M), target
    ci = [ln for ln in (ROOT / ".ci/run").read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    assert ci == ["exec make test"]


def test_readme_shows_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    assert "make lab" in readme and "make test" in readme and "make book" in readme
    for nb in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        assert nb.name in readme, f"README's chapter table lacks {nb.name}"


def test_make_lab_serves_the_workbook(tmp_path):
    """`make lab` as a student runs it (the venv exists): JupyterLab starts on notebooks/ with chapter 00."""
    import os
    import secrets
    import signal
    import socket
    import subprocess
    import time
    import urllib.request

    if not (ROOT / ".venv" / ".installed").exists():
        pytest.skip("needs the bootstrapped .venv (make test creates it)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    token = secrets.token_hex(16)
    args = (f"LAB_ARGS=--no-browser --ServerApp.ip=127.0.0.1 --ServerApp.port={port} "
            f"--IdentityProvider.token={token} --LabApp.news_url= "
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate")
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(tmp_path / "rt"), JUPYTER_CONFIG_DIR=str(tmp_path / "cfg"))
    proc = subprocess.Popen(["make", "-s", "lab", args], cwd=ROOT, env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline, status = time.time() + 90, None
        while time.time() < deadline and proc.poll() is None:
            try:
                url = f"http://127.0.0.1:{port}/api/contents/00_welcome.ipynb?content=0&token={token}"
                status = urllib.request.urlopen(url, timeout=2).status
                break
            except OSError:
                time.sleep(0.5)
        assert status == 200, f"make lab did not serve notebooks/00_welcome.ipynb: {proc.stdout.read() if proc.poll() is not None else 'timeout'}"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
