"""`pip install fluxhook` for an app: the client and nothing of the server, working end to end from a fresh venv."""

from __future__ import annotations

import email
import importlib.util
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import API_TOKEN
from devtools.processes import ROOT

# requests and what it needs, copied from this venv: the test reaches no package index.
REQUESTS = ("requests", "urllib3", "idna", "charset_normalizer", "certifi")

APP = """
import hashlib, sys
from pathlib import Path
from fluxhook.client import Client, NotFound

url, token, target = sys.argv[1], sys.argv[2], Path(sys.argv[3])
with Client(url, token, timeout=30) as fluxhook:
    job = fluxhook.submit("flux-2-pro", {"prompt": "a fox from a fresh venv"}, metadata={"app": "fresh"})
    job = fluxhook.wait(job.id, timeout=60)
    assert job.status == "stored", job
    fluxhook.download(job, target)
    assert hashlib.sha256(target.read_bytes()).hexdigest() == job.image["sha256"]
    try:
        fluxhook.get("job_00000000000000000000000000")
    except NotFound as exc:
        print("not found:", exc.code)
    print("stored", job.id)
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    # Built from a copy: setuptools writes its build/ and egg-info beside the sources.
    source, out = tmp_path_factory.mktemp("source"), tmp_path_factory.mktemp("wheel")
    for name in ("pyproject.toml", "README.md", "requirements.txt"):
        shutil.copy(ROOT / name, source / name)
    for package in ("fluxhook", "receiver", "worker"):
        shutil.copytree(ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "--no-index", "-w", str(out), str(source)], check=True, capture_output=True, timeout=300)
    return next(out.glob("fluxhook-*.whl"))


def test_the_package_needs_only_requests_unless_the_server_extra_is_asked_for(wheel):
    with zipfile.ZipFile(wheel) as archive:
        metadata = email.message_from_bytes(archive.read(next(n for n in archive.namelist()
                                                              if n.endswith(".dist-info/METADATA"))))
        names = archive.namelist()
    requirements = metadata.get_all("Requires-Dist")
    plain = [r for r in requirements if "extra ==" not in r]
    server = [r.split(";")[0] for r in requirements if 'extra == "server"' in r]
    assert [r.split(">")[0].split("=")[0] for r in plain] == ["requests"]
    assert {"flask==3.1.3", "redis==8.1.0", "rq==3.0.0", "gunicorn==27.0.1"} <= set(server)
    assert "fluxhook/store/lua/job_transition.lua" in names  # the server's scripts ship with it


def test_an_app_in_a_fresh_venv_uses_the_client_end_to_end(wheel, stack, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", str(wheel)],
                   check=True, capture_output=True, timeout=120)
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    for name in REQUESTS:
        source = Path(importlib.util.find_spec(name).origin).parent
        shutil.copytree(source, site / name)
    app = tmp_path / "app.py"
    app.write_text(APP)

    run = subprocess.run([str(python), "-I", str(app), stack.base_url, API_TOKEN, str(tmp_path / "fox.png")],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path)

    assert run.returncode == 0, run.stderr
    assert "stored job_" in run.stdout and "not found: not_found" in run.stdout
    for server_part in ("flask", "redis", "rq", "gunicorn"):
        missing = subprocess.run([str(python), "-I", "-c", f"import {server_part}"], capture_output=True, timeout=60)
        assert missing.returncode != 0, f"{server_part} is importable in the app's venv"
