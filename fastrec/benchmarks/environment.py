"""What a benchmark ran on, and ``fastrec bench --fresh``: a clean install to measure.

:func:`machine_info` describes the host (CPU model and flags, cores, caches,
memory, load average, compiler); :func:`library_versions` the versions of
fastrec, its dependencies and the peers; ``fastrec bench`` stores both in its
JSON with ``fastrec.show_config()``'s facts (backends, Cython build flags and
the tools the extension was built with) and the load average before and after
the run.

:func:`fresh_plan` and :func:`run_fresh` implement ``--fresh``: clone the
checkout fastrec is imported from into a temporary folder, create a virtual
environment there (``python -m venv --system-site-packages``, so the peers
installed for this interpreter stay importable), install the clone with
``pip install .`` as the README says (build isolation on: pip fetches the
build requirements as for any user), run the same ``fastrec bench`` command
with that environment's Python, and delete the folder afterwards. Only
committed work is measured (it is a clone).
"""

from __future__ import annotations

import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from importlib import metadata
from typing import Any

# Distributions whose versions a benchmark records (absent ones as None).
LIBRARIES = (
    "fastrec",
    "numpy",
    "scipy",
    "numba",
    "llvmlite",
    "Cython",
    "threadpoolctl",
    "pandas",
    "implicit",
    "scikit-surprise",
    "libmf",
    "sparse_dot_topn",
    "torch",
)


def _read(path: str) -> str | None:
    try:
        with open(path) as fh:
            return fh.read()
    except OSError:
        return None


def _cpuinfo() -> dict[str, Any]:
    """Model name and flags of the first CPU in ``/proc/cpuinfo`` (Linux), else ``platform``."""
    text = _read("/proc/cpuinfo")
    model, flags = None, []
    if text:
        for line in text.splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key == "model name" and model is None:
                model = value.strip()
            elif key in ("flags", "Features") and not flags:
                flags = value.split()
    return {"cpu_model": model or platform.processor() or platform.machine(), "cpu_flags": flags}


def _caches() -> dict[str, str]:
    """Cache sizes of CPU 0 from sysfs (Linux), e.g. ``{"L1d": "32K", "L2": "2048K"}``."""
    out: dict[str, str] = {}
    base = "/sys/devices/system/cpu/cpu0/cache"
    try:
        entries = sorted(os.listdir(base))
    except OSError:
        return out
    for entry in entries:
        if not entry.startswith("index"):
            continue
        level = (_read(f"{base}/{entry}/level") or "").strip()
        kind = (_read(f"{base}/{entry}/type") or "").strip()
        size = (_read(f"{base}/{entry}/size") or "").strip()
        if level and size:
            suffix = {"Data": "d", "Instruction": "i"}.get(kind, "")
            out[f"L{level}{suffix}"] = size
    return out


def _memory_gib() -> float | None:
    text = _read("/proc/meminfo")
    if text:
        for line in text.splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    return None


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages (None where the system has none)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def _first_line(cmd: list[str]) -> str | None:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    lines = (out.stdout or out.stderr).strip().splitlines()
    return lines[0] if out.returncode == 0 and lines else None


def machine_info() -> dict[str, Any]:
    """The host: CPU model and flags, cores, caches, memory, OS, compiler, load average now."""
    from .._backend import cpu_count

    info: dict[str, Any] = _cpuinfo()
    info.update(
        {
            "cores_online": os.cpu_count(),
            "cores_usable": cpu_count(),
            "caches": _caches(),
            "memory_gib": _memory_gib(),
            "virtualised": "hypervisor" in info["cpu_flags"],
            "platform": platform.platform(),
            "python": sys.version.split()[0],
            "compiler": _first_line([os.environ.get("CC", "cc"), "--version"]),
            "load_average": load_average(),
        }
    )
    return info


def library_versions() -> dict[str, str | None]:
    """Installed versions of fastrec, its dependencies and the peers (None: not installed)."""
    versions: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def source_checkout() -> str | None:
    """The git work tree fastrec is imported from (None for an installed copy)."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    top = _first_line(["git", "-C", here, "rev-parse", "--show-toplevel"])
    if top and os.path.isfile(os.path.join(top, "pyproject.toml")):
        return top
    return None


def source_commit(path: str | None = None) -> str | None:
    """``git describe --always --dirty`` of the checkout (None outside one)."""
    path = path or source_checkout()
    if path is None:
        return None
    return _first_line(["git", "-C", path, "describe", "--always", "--dirty", "--abbrev=12"])


def fresh_plan(
    workdir: str, repo: str, bench_args: list[str], out: str
) -> list[tuple[str, list[str]]]:
    """The steps of ``--fresh``, in order: ``(folder to run in, command)``.

    ``bench_args`` are the ``fastrec bench`` options to pass on (without
    ``--fresh``, ``--dry-run`` and ``--out``); ``out`` is the (absolute)
    folder for the results.
    """
    src = os.path.join(workdir, "src")
    venv = os.path.join(workdir, "venv")
    python = os.path.join(venv, "Scripts" if os.name == "nt" else "bin", "python")
    return [
        (workdir, ["git", "clone", "--quiet", repo, src]),
        (workdir, [sys.executable, "-m", "venv", "--system-site-packages", venv]),
        (src, [python, "-m", "pip", "install", "--quiet", "."]),
        (workdir, [python, "-c", _FRESH_MAIN, "bench", *bench_args, "--out", out]),
    ]


# The bench step of --fresh. With --system-site-packages, an editable install of
# fastrec in the base interpreter (a setuptools finder on sys.meta_path, added by
# a .pth file) would still answer for fastrec's subpackages: drop such finders,
# and refuse to run unless fastrec comes from the fresh environment.
_FRESH_MAIN = (
    "import os, sys; "
    "sys.meta_path[:] = [f for f in sys.meta_path "
    "if not ('__editable__' in str(getattr(f, '__module__', '')) "
    "and 'fastrec' in str(getattr(f, '__module__', '')))]; "
    "import fastrec, fastrec._kernels, fastrec.benchmarks; "
    "mods = (fastrec, fastrec._kernels, fastrec.benchmarks); "
    "bad = [m.__name__ + ' from ' + m.__file__ for m in mods "
    "if not os.path.abspath(m.__file__).startswith(sys.prefix)]; "
    "sys.exit('fresh: not the fresh install: ' + '; '.join(bad)) if bad else None; "
    "from fastrec.cli import main; sys.exit(main(sys.argv[1:]))"
)


def run_fresh(
    bench_args: list[str],
    out: str,
    dry_run: bool = False,
    log: Callable[[str], None] = print,
    keep: bool = False,
) -> int:
    """Clone, install and benchmark in a throwaway folder; returns the bench exit status.

    With ``dry_run`` the commands are printed and nothing is run. The folder
    is deleted afterwards (unless ``keep``), whatever happens. The bench
    JSON gets a ``fresh`` entry: the commit, the commands, and the seconds
    the install took.
    """
    repo = source_checkout()
    if repo is None:
        raise ValueError(
            "--fresh needs fastrec imported from a git checkout of the repository "
            "(it clones that checkout); this fastrec is an installed copy"
        )
    out = os.path.abspath(out)
    commit = source_commit(repo)
    if dry_run:
        workdir = os.path.join(tempfile.gettempdir(), "fastrec-fresh-XXXXXX")
        for cwd, cmd in fresh_plan(workdir, repo, bench_args, out):
            print(f"(cd {cwd} && {shlex.join(cmd)})")
        print(f"rm -rf {workdir}")
        return 0
    if commit and commit.endswith("-dirty"):
        log(f"[fresh] note: uncommitted changes in {repo} are not part of the clone")
    workdir = tempfile.mkdtemp(prefix="fastrec-fresh-")
    timings: dict[str, float] = {}
    try:
        plan = fresh_plan(workdir, repo, bench_args, out)
        names = ("clone", "venv", "install", "bench")
        env = dict(os.environ)
        env.pop("PYTHONPATH", None)  # the fresh environment only
        for name, (cwd, cmd) in zip(names, plan):
            log(f"[fresh] (cd {cwd} && {shlex.join(cmd)})")
            t0 = time.perf_counter()
            rc = subprocess.run(cmd, cwd=cwd, env=env).returncode
            timings[name] = round(time.perf_counter() - t0, 1)
            if rc != 0:
                log(f"[fresh] {name} failed with exit status {rc}")
                return rc if name == "bench" else 1
        commands = [f"(cd {cwd} && {shlex.join(cmd)})" for cwd, cmd in plan]
        # the clone holds the committed work only: its own commit, never "-dirty"
        cloned = source_commit(os.path.join(workdir, "src")) or commit
        _annotate(out, {"repository": repo, "commit": cloned, "commands": commands,
                        "seconds": timings})  # fmt: skip
        return 0
    finally:
        if keep:
            log(f"[fresh] kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def _annotate(out: str, fresh: dict[str, Any]) -> None:
    import json

    path = os.path.join(out, "bench.json")
    try:
        with open(path) as fh:
            payload = json.load(fh)
    except (OSError, ValueError):
        return
    payload["fresh"] = fresh
    with open(path, "w") as fh:
        json.dump(payload, fh, indent=2, default=str)
