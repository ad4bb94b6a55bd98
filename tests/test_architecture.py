"""Dependencies point one way: profiles ← conformance ← gateway; mappings imports only
profiles.canonical; nothing below gateway imports Flask or database drivers; inside the
gateway, only ``gateway/api`` imports Flask and only ``gateway/storage`` a database driver."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ALLOWED = {
    "profiles": {"profiles"},
    "conformance": {"conformance", "profiles"},
    "mappings": {"mappings", "profiles.canonical"},
    "gateway": {"gateway", "conformance", "profiles", "mappings"},
}
FORBIDDEN_BELOW_GATEWAY = {
    "flask",
    "sqlite3",
    "sqlalchemy",
    "psycopg",
    "psycopg2",
    "requests",
    "socket",
    "urllib.request",
}
#: the one exception: the participants' test kit exists to test servers over HTTP, and only its
#: HTTP client module may import requests
NETWORK_CLIENT = {("conformance/testkit/http.py", "requests")}


def imports_of(package: str) -> list[tuple[Path, str]]:
    found = []
    for file in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found.extend((file, alias.name) for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.extend([(file, node.module)] + [(file, f"{node.module}.{a.name}") for a in node.names])
    return found


def ours(module: str) -> bool:
    return module.split(".")[0] in ALLOWED


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_the_layers_below_it(package: str) -> None:
    bad = []
    for file, module in imports_of(package):
        if not ours(module):
            continue
        if not any(
            module == allowed or module.startswith(allowed + ".") or allowed.startswith(module + ".")
            for allowed in ALLOWED[package]
        ):
            bad.append(f"{file.relative_to(ROOT)} imports {module}")
    assert bad == []


@pytest.mark.parametrize("package", ["profiles", "conformance", "mappings"])
def test_layers_below_gateway_do_no_web_or_database_io(package: str) -> None:
    bad = [
        f"{f.relative_to(ROOT)}: {m}"
        for f, m in imports_of(package)
        if (m.split(".")[0] in FORBIDDEN_BELOW_GATEWAY or m in FORBIDDEN_BELOW_GATEWAY)
        and (f.relative_to(ROOT).as_posix(), m.split(".")[0]) not in NETWORK_CLIENT
    ]
    assert bad == []


#: inside the gateway: the one package allowed to import each kind of library
OWNERS = {
    "flask": "gateway/api",
    "werkzeug": "gateway/api",
    "sqlite3": "gateway/storage",
    "psycopg": "gateway/storage",
    "psycopg_pool": "gateway/storage",
}


def test_inside_the_gateway_only_its_owner_imports_flask_or_a_database_driver() -> None:
    bad = []
    for file, module in imports_of("gateway"):
        owner = OWNERS.get(module.split(".")[0])
        relative = file.relative_to(ROOT).as_posix()
        if owner and not relative.startswith(owner + "/") and relative != "gateway/__init__.py":
            bad.append(f"{relative} imports {module}")
    assert bad == []
