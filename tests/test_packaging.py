"""What `pip install .` ships: every data file the code reads at run time.  A file left out of
`[tool.setuptools.package-data]` works in a checkout and breaks every installed gateway (the
README's first command installs it, not an editable copy)."""

from __future__ import annotations

import tomllib
from fnmatch import fnmatch
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("gateway", "mappings", "profiles", "conformance")
#: data files the packages hold that are not read at run time
NOT_SHIPPED = frozenset({".pyc", ".py", ".md", ".typed"})


def shipped(relative: Path, package_data: dict[str, list[str]]) -> bool:
    """Whether a file is matched by the globs of its package or of a package above it."""
    parts = relative.parts
    for depth in range(len(parts) - 1, 0, -1):
        package, inside = ".".join(parts[:depth]), "/".join(parts[depth:])
        if any(fnmatch(inside, pattern) for pattern in package_data.get(package, [])):
            return True
    return False


def test_every_data_file_of_the_packages_is_shipped() -> None:
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"][
        "package-data"
    ]
    data = [
        path.relative_to(ROOT)
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*"))
        if path.is_file() and path.suffix not in NOT_SHIPPED and "__pycache__" not in path.parts
    ]
    assert [str(path) for path in data if not shipped(path, package_data)] == []
