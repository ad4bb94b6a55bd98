"""Dependencies point one way: profiles ← conformance ← gateway; mappings imports only
profiles.canonical; nothing below gateway imports Flask or database drivers; inside the
gateway, only ``gateway/api`` imports Flask and only ``gateway/storage`` a database driver, and
the rooms low in the gateway (its search index, its storage) import nothing above them."""

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
    path = ROOT / package
    for file in path.rglob("*.py") if path.is_dir() else [path]:
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


#: modules of the gateway that import nothing of the gateway: facts every room shares (the
#: message catalog, a person's match keys, the REST interaction of an HTTP method)
LEAVES = {"gateway.messages", "gateway.match_keys", "gateway.interactions"}
#: what each low room of the gateway may import of the gateway besides the leaves: the search
#: index and query model below the storage that writes and answers them in SQL
ROOMS = {
    "gateway/search": {"gateway.search"},
    "gateway/storage": {"gateway.storage", "gateway.search"},
}


def _within(module: str, packages: set[str]) -> bool:
    return any(module == package or module.startswith(package + ".") for package in packages)


def test_the_leaf_modules_of_the_gateway_import_nothing_of_the_gateway() -> None:
    bad = [
        f"{leaf} imports {module}"
        for leaf in sorted(LEAVES)
        for _, module in imports_of(leaf.replace(".", "/") + ".py")
        if module.split(".")[0] == "gateway"
    ]
    assert bad == []


@pytest.mark.parametrize("room", sorted(ROOMS))
def test_a_low_room_of_the_gateway_imports_only_itself_what_is_below_and_the_leaves(room: str) -> None:
    allowed = ROOMS[room] | LEAVES
    bad = [
        f"{file.relative_to(ROOT)} imports {module}"
        for file, module in imports_of(room)
        if module.split(".")[0] == "gateway" and module != "gateway" and not _within(module, allowed)
    ]
    assert bad == []
