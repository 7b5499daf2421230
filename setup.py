"""Build emu and its Cython fast path.

``pip install .`` and ``pip install -e .`` compile ``emu/_fastpath.pyx``.
Compiler directives are set here, once: bounds and wrap-around checks are off
for speed.  Set ``EMU_DEBUG_BUILD=1`` in the environment to build with every
check on (bounds, wrap-around, initialised memoryviews, C division): the test
suite can then be run against that build.
"""
import os

import numpy
from Cython.Build import cythonize
from setuptools import Extension, find_packages, setup

DEBUG = os.environ.get("EMU_DEBUG_BUILD", "") not in ("", "0")

directives = {
    "language_level": "3",
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "cdivision": not DEBUG,
    "embedsignature": True,
}

extensions = [
    Extension(
        "emu._fastpath",
        ["emu/_fastpath.pyx"],
        depends=["emu/_fastpath.pxd", "emu/_streamgen.pxi"],
        include_dirs=[numpy.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        extra_compile_args=["-O0", "-g"] if DEBUG else ["-O3"],
    )
]

setup(
    name="emu",
    version="0.1.0",
    description="Discrete-event emulator of KVM virtualizing a software-managed TLB "
    "(PowerPC 440, e500)",
    long_description=open("README.md").read() if os.path.exists("README.md") else "",
    long_description_content_type="text/markdown",
    python_requires=">=3.9",
    packages=find_packages(include=["emu", "emu.*"]),
    package_data={"emu": ["*.pyx", "*.pxd", "*.pxi", "*.pyi", "py.typed", "data/*"]},
    ext_modules=cythonize(extensions, compiler_directives=directives),
    install_requires=[
        "numpy>=1.24",
        "simpy>=4.0",
        "tomli>=1.1; python_version<'3.11'",
        "tqdm>=4.60",          # progress bars on long runs and sweeps
        "matplotlib>=3.5",     # plots in reports and comparisons
    ],
    extras_require={
        # dask.distributed: sweeps on a cluster; pyarrow: Parquet result tables
        "cluster": ["dask[distributed]>=2023.1", "pyarrow>=10"],
        # SALib: Morris and Sobol' sensitivity studies over the cost ranges
        "analysis": ["SALib>=1.5"],
        # hypothesis: property tests; pycachesim: the independent TLB oracle
        "test": ["pytest>=7", "hypothesis>=6", "pycachesim>=0.3",
                 "dask[distributed]>=2023.1", "pyarrow>=10", "SALib>=1.5"],
    },
    entry_points={"console_scripts": ["emu=emu.cli:main"]},
    zip_safe=False,
)
