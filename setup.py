"""Build script: compiles the Cython kernels in ``kernels/cython`` with OpenMP.

The package layout maps the top-level ``kernels/`` folder to ``fastrec._kernels``
so that both kernel flavours live side by side in one folder of the repository
and are importable from the installed package.

Build switches (environment variables)
--------------------------------------
FASTREC_PORTABLE=1
    Do not target the build machine's CPU (no ``-march=native``). Use this for
    wheels that are copied to other machines. A build from source targets the
    host CPU by default, as Numba's JIT does, so the two backends compete on
    equal terms. ``fastrec.show_config()`` reports which was used.
FASTREC_NO_OPENMP=1
    Build without OpenMP even if the compiler supports it (kernels run serially).
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import tempfile

from setuptools import Extension, find_packages, setup


def _compiler_accepts(flags: list[str], code: str) -> bool:
    cc = os.environ.get("CC", "cc")
    if shutil.which(cc.split()[0]) is None:
        return False
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "probe.c")
        with open(src, "w") as fh:
            fh.write(code)
        cmd = cc.split() + flags + [src, "-o", os.path.join(tmp, "probe")]
        try:
            return subprocess.run(cmd, capture_output=True, timeout=60).returncode == 0
        except (OSError, subprocess.SubprocessError):
            return False


_OMP_PROBE = "#include <omp.h>\nint main(void){return omp_get_max_threads() > 0 ? 0 : 1;}\n"
_PLAIN_PROBE = "int main(void){return 0;}\n"

portable = os.environ.get("FASTREC_PORTABLE", "0") not in ("", "0")
use_openmp = os.environ.get("FASTREC_NO_OPENMP", "0") in ("", "0") and _compiler_accepts(
    ["-fopenmp"], _OMP_PROBE
)
native = (not portable) and _compiler_accepts(["-march=native"], _PLAIN_PROBE)

compile_args = ["-O3", "-ffp-contract=fast", "-fno-math-errno", "-fno-trapping-math"]
link_args: list[str] = []
if native:
    compile_args.append("-march=native")
if use_openmp:
    compile_args.append("-fopenmp")
    link_args.append("-fopenmp")
if sys.platform == "win32":  # MSVC spells the flags differently
    compile_args = ["/O2"] + (["/openmp"] if use_openmp else [])
    link_args = []

build_flags = " ".join(compile_args)


def _build_tools() -> str:
    """The Cython and NumPy this build uses (pip's build isolation may pick others)."""
    import numpy

    try:
        from Cython import __version__ as cython_version
    except ImportError:  # reading the metadata only (no build): Cython is a build requirement
        cython_version = "not installed"
    return f"Cython {cython_version}, NumPy {numpy.__version__}"


macros = [
    ("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION"),
    ("FASTREC_BUILD_FLAGS", '"' + build_flags + '"'),
    ("FASTREC_BUILD_NATIVE", "1" if native else "0"),
    ("FASTREC_BUILD_TOOLS", '"' + _build_tools() + '"'),
]


def _extensions():
    import numpy

    exts = []
    for pyx in sorted(glob.glob(os.path.join("kernels", "cython", "*.pyx"))):
        mod = os.path.splitext(os.path.basename(pyx))[0]
        exts.append(
            Extension(
                f"fastrec._kernels.cython.{mod}",
                [pyx],
                include_dirs=[numpy.get_include(), os.path.join("kernels", "cython")],
                define_macros=macros,
                extra_compile_args=compile_args,
                extra_link_args=link_args,
            )
        )
    from Cython.Build import cythonize

    return cythonize(
        exts,
        language_level=3,
        include_path=[os.path.join("kernels", "cython")],
        compiler_directives={
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "initializedcheck": False,
            "nonecheck": False,
        },
        quiet=True,
    )


def _packages() -> list[str]:
    """Every package, found on disk: ``fastrec`` and its subpackages, and ``kernels/``
    (with its subpackages) installed as ``fastrec._kernels``. A new subpackage is
    picked up without editing this file; a listed one cannot be forgotten."""
    found = find_packages(include=["fastrec", "fastrec.*"])
    kernels = ["fastrec._kernels"] + [f"fastrec._kernels.{p}" for p in find_packages("kernels")]
    return sorted(found + kernels)


setup(
    packages=_packages(),
    package_dir={"fastrec": "fastrec", "fastrec._kernels": "kernels"},
    package_data={"fastrec._kernels.cython": ["*.pyx", "*.pxd"]},
    ext_modules=_extensions(),
)
