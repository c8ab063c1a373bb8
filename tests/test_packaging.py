"""Packaging: every subpackage is installed, and a source-tree import fails clearly."""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _packages_on_disk() -> set[str]:
    found = set()
    for top, name in (("fastrec", "fastrec"), ("kernels", "fastrec._kernels")):
        for dirpath, _, files in os.walk(os.path.join(ROOT, top)):
            if "__init__.py" in files:
                rel = os.path.relpath(dirpath, os.path.join(ROOT, top))
                found.add(name if rel == "." else name + "." + rel.replace(os.sep, "."))
    return found


def test_setup_installs_every_subpackage():
    # run setup.py with setup() replaced by a function that reports its packages,
    # and cythonize by a stub (Cython is a build requirement, not a test one)
    probe = (
        "import json, runpy, setuptools, sys, types\n"
        "build = types.ModuleType('Cython.Build')\n"
        "build.cythonize = lambda extensions, **kw: []\n"
        "cython = types.ModuleType('Cython')\n"
        "cython.Build, cython.__version__ = build, 'stub'\n"
        "sys.modules.update({'Cython': cython, 'Cython.Build': build})\n"
        "setuptools.setup = lambda **kw: print(json.dumps(kw['packages']))\n"
        "runpy.run_path('setup.py', run_name='__main__')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    listed = set(json.loads(proc.stdout.strip().splitlines()[-1]))
    missing = _packages_on_disk() - listed
    assert not missing, f"setup.py would not install {sorted(missing)}"
    assert "fastrec.benchmarks" in listed


def test_import_from_the_source_tree_says_what_happened(tmp_path):
    # a folder laid out as the repository (setup.py, kernels/, fastrec/) with no
    # compiled kernels reachable: what Python sees when started in the source
    # folder after a plain (non-editable) ``pip install .``
    (tmp_path / "setup.py").write_text("")
    (tmp_path / "kernels").mkdir()
    os.symlink(os.path.join(ROOT, "fastrec"), tmp_path / "fastrec")
    paths = [p for p in site.getsitepackages() + [site.getusersitepackages()] if os.path.isdir(p)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(paths))
    # -S: no site hooks, so no editable-install finder can map fastrec._kernels
    proc = subprocess.run(
        [sys.executable, "-S", "-c", "import fastrec"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: fastrec was imported from its source tree"), last
    assert "pip install -e ." in last and "another folder" in last
