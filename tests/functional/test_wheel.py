"""`pip install .` gives a working zoneflow: the wheel holds everything it runs.

The wheel is built from a copy of the files the package is made of and
installed, without its dependencies, into a fresh virtualenv. The
dependencies come from this test's own environment through a ``.pth`` line
naming its site-packages directory: a plain directory on ``sys.path``, whose
own ``.pth`` files (the editable install of the source tree among them) are
not read, so every zoneflow module the commands import comes from the wheel.
That saves downloading a dozen packages on every run without letting the
source tree stand in for a missing file.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import shutil
import sqlite3
import subprocess
import sys
import sysconfig

ROOT = pathlib.Path(__file__).resolve().parents[2]

# What setup.cfg builds the distribution from.
SOURCES = ("zoneflow", "setup.cfg", "pyproject.toml", "README.md")

POOLS = """\
- name: default
  ns_records: [{hostname: ns1.example.org., priority: 1}]
  targets:
    - {type: fake, description: fake1}
"""


def _run(argv: list[str], cwd: pathlib.Path, timeout: float = 120) -> str:
    """Run ``argv`` outside the source tree's path; its stdout, then its stderr."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "ZONEFLOW_CONFIG")}
    done = subprocess.run(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, f"{argv} failed:\n{done.stdout}{done.stderr}"
    return done.stdout + done.stderr


def _build_wheel(tmp_path: pathlib.Path) -> pathlib.Path:
    source = tmp_path / "source"
    source.mkdir()
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(path, source / name)
    wheels = tmp_path / "wheels"
    # -v shows setuptools' warnings, such as a directory of modules it leaves out.
    built = _run(
        [sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "-w", str(wheels), "."], source
    )
    assert "absent from the `packages` configuration" not in built
    (wheel,) = wheels.glob("zoneflow-*.whl")
    return wheel


def _fresh_venv(tmp_path: pathlib.Path, wheel: pathlib.Path) -> pathlib.Path:
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp_path)
    python = venv / "bin" / "python"
    site = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], venv)
    (pathlib.Path(site.splitlines()[0]) / "test-dependencies.pth").write_text(
        sysconfig.get_path("purelib") + "\n"
    )
    _run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps"]
        + [str(wheel)],
        tmp_path,
    )
    return venv


def test_a_wheel_in_a_fresh_virtualenv_syncs_the_database_and_creates_a_zone(
    tmp_path: pathlib.Path,
) -> None:
    venv = _fresh_venv(tmp_path, _build_wheel(tmp_path))
    work = tmp_path / "work"
    work.mkdir()
    imported = _run(
        [str(venv / "bin" / "python"), "-c", "import zoneflow; print(zoneflow.__file__)"], work
    )
    assert pathlib.Path(imported.splitlines()[0]).is_relative_to(venv), imported

    (work / "zoneflow.conf").write_text(f"[database]\nconnection = sqlite:///{work}/zf.sqlite\n")
    (work / "pools.yaml").write_text(POOLS)
    zoneflow = str(venv / "bin" / "zoneflow")
    assert "database is up to date" in _run([zoneflow, "db", "sync"], work)
    assert "pool default: 1 target(s)" in _run(
        [zoneflow, "pool", "update", "--file", "pools.yaml"], work
    )
    _run([zoneflow, "zone", "create", "example.com.", "--email", "hostmaster@example.com"], work)
    with contextlib.closing(sqlite3.connect(work / "zf.sqlite")) as db:
        zones = db.execute("SELECT name, status, action FROM zones").fetchall()
    assert zones == [("example.com.", "PENDING", "CREATE")]

    # The dashboard's templates and static files are package data: its pages render
    # from the wheel alone.
    page = _run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "from fastapi.testclient import TestClient\n"
            "from zoneflow.api import app\n"
            "client = TestClient(app.create_app())\n"
            "for path in ('/dashboard/login', '/dashboard/static/dashboard.js',"
            " '/dashboard/static/dashboard.css'):\n"
            "    answer = client.get(path)\n"
            "    assert answer.status_code == 200, (path, answer.text)\n"
            "print(client.get('/dashboard/login').text)\n",
        ],
        work,
    )
    assert '<label for="project">Project</label>' in page
