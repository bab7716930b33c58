"""The test suite of an installed release, from its source distribution (fetched with pip into
``.cache/`` once): Django's and Daphne's own tests, run against this package."""

from __future__ import annotations

import subprocess
import sys
import tarfile
from pathlib import Path

CACHE = Path(__file__).resolve().parent.parent.parent / ".cache"


def release_tests(name: str, version: str, marker: str) -> Path:
    """The ``tests`` directory of ``name``'s ``version`` sdist; ``marker`` is a file in it that
    tells the tree is unpacked already."""
    tree = CACHE / f"{name.lower()}-{version}"
    if not (tree / "tests" / marker).exists():
        CACHE.mkdir(exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-binary", ":all:",
             "--no-deps", "--dest", str(CACHE), f"{name}=={version}"],
            check=True,
        )  # fmt: skip
        (sdist,) = CACHE.glob(f"[{name[0].upper()}{name[0].lower()}]{name[1:]}-{version}.tar.gz")
        with tarfile.open(sdist) as archive:
            archive.extractall(CACHE, filter="data")
    return tree / "tests"
