"""Derive the GB/T 2260 administrative-division CodeSystem (provinces down to townships).

Why this exists: 身份证 prefixes, 健康档案编号 and addresses carry 行政区划代码, and the
validator checks them against a real list rather than a digit pattern.  No registry publishes
GB/T 2260 itself in a machine-readable form we can reach, so the list is derived from the npm
package ``china-division`` (modood/Administrative-divisions-of-China), which republishes the
National Bureau of Statistics' 统计用区划代码 — at province, city and county level the GB/T 2260
codes (plus a few statistical-only county codes such as development zones), and at township
level the 9-digit GB/T 10114 乡镇街道 codes.  Of the candidates on PyPI and npm it is the only
one with township codes, and the most recent (2023 edition).

What is written: one flat ``concept`` list with 6-digit codes for provinces (410000), cities
(410100) and counties (410105), and 9-digit codes for townships (410105001).  Each concept
but a province carries a ``parent`` property; the level is not stored, it follows from the
code (6 digits ending 0000 province, 00 city, else county; 9 digits township), and storing it
would cost 1.8 MB of file and 25 MB of validator memory.  Village codes (12 digits, about 600 000 rows) are left out to keep the
file small.  Taiwan, Hong Kong and Macao are in GB/T 2260 but have no codes in the source;
their three province-level codes are added from the standard (see ``OUTSIDE_SOURCE``).

Regenerate (the package is downloaded outside the repository and never committed)::

    cd /tmp && npm pack china-division@2.7.0 && tar xzf china-division-2.7.0.tgz && cd -
    python tools/derive_admin_divisions.py /tmp/package profiles/package/CodeSystem-gb-t-2260.json
"""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TOOL = "tools/derive_admin_divisions.py"
OUT_DEFAULT = "profiles/package/CodeSystem-gb-t-2260.json"
URL = "http://fhir.yiyang.cn/CodeSystem/gb-t-2260"
OID = "2.16.156.10011.2.3.3.2"

#: GB/T 2260 province-level codes that the statistical source lists by name only (dist/HK-MO-TW.json).
OUTSIDE_SOURCE: tuple[tuple[str, str], ...] = (
    ("710000", "台湾省"),
    ("810000", "香港特别行政区"),
    ("820000", "澳门特别行政区"),
)

LEVELS = ("province", "city", "county", "township")


@dataclass(frozen=True, slots=True)
class Source:
    """What the stamp in the description says about the package the list came from."""

    name: str
    version: str
    license: str
    data_year: str  # edition of the NBS list, e.g. "2023"
    as_of: str  # 截止时间 of that edition, e.g. "2023-06-30"
    released: str  # 发布时间 of that edition, e.g. "2023-09-11"

    @property
    def spec(self) -> str:
        return f"{self.name}@{self.version}"


@dataclass(slots=True)
class Division:
    code: str
    display: str
    level: str
    parent: str | None

    def concept(self) -> dict[str, Any]:
        properties: list[dict[str, str]] = []
        if self.parent:
            properties.append({"code": "parent", "valueCode": self.parent})
        concept: dict[str, Any] = {"code": self.code, "display": self.display}
        if properties:
            concept["property"] = properties
        return concept


def _data_dir(source_dir: Path) -> Path:
    """Accept the unpacked package root (``package/``) or its ``dist/`` folder."""
    for candidate in (source_dir / "dist", source_dir):
        if (candidate / "provinces.json").is_file():
            return candidate
    raise SystemExit(f"{source_dir}: no provinces.json here or in dist/ — is this the unpacked china-division package?")


def _package_root(data_dir: Path) -> Path:
    return data_dir.parent if data_dir.name == "dist" and (data_dir.parent / "package.json").is_file() else data_dir


def read_source(source_dir: Path) -> Source:
    """Name, version and license from package.json/LICENSE; the data edition from the README."""
    root = _package_root(_data_dir(source_dir))
    package = json.loads((root / "package.json").read_text(encoding="utf-8"))
    declared = str(package.get("license", "unknown"))
    license_text = (root / "LICENSE").read_text(encoding="utf-8") if (root / "LICENSE").is_file() else ""
    # package.json of china-division says MIT while its LICENSE file is the WTFPL: name both.
    if "DO WHAT THE FUCK YOU WANT TO PUBLIC LICENSE" in license_text:
        license_name = "WTFPL-2.0 per LICENSE file" + (
            "" if declared == "WTFPL" else f"; package.json declares {declared}"
        )
    else:
        license_name = declared
    readme = (root / "README.md").read_text(encoding="utf-8")
    edition = re.search(
        r"(\d{4})年统计用区划代码和城乡划分代码（截止时间：(\d{4}-\d{2}-\d{2})，发布时间：(\d{4}-\d{2}-\d{2})）", readme
    )
    if not edition:
        raise SystemExit(f"{root / 'README.md'}: cannot find the NBS edition (年统计用区划代码…截止时间…发布时间)")
    return Source(
        name=str(package["name"]),
        version=str(package["version"]),
        license=license_name,
        data_year=edition.group(1),
        as_of=edition.group(2),
        released=edition.group(3),
    )


def _read(data_dir: Path, name: str) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = json.loads((data_dir / f"{name}.json").read_text(encoding="utf-8"))
    return rows


def divisions(source_dir: Path) -> list[Division]:
    """Every province, city, county and township, sorted by code (a township follows its county)."""
    data_dir = _data_dir(source_dir)
    found: dict[str, Division] = {}

    def add(division: Division) -> None:
        if division.code in found:
            raise SystemExit(f"duplicate code {division.code}: {found[division.code]} and {division}")
        found[division.code] = division

    for row in _read(data_dir, "provinces"):
        add(Division(f"{row['code']}0000", row["name"], "province", None))
    for code, name in OUTSIDE_SOURCE:
        add(Division(code, name, "province", None))
    for row in _read(data_dir, "cities"):
        add(Division(f"{row['code']}00", row["name"], "city", f"{row['provinceCode']}0000"))
    for row in _read(data_dir, "areas"):
        code = row["code"]
        if code == f"{row['cityCode']}00":
            # 不设区的地级市 (东莞 441900, 中山 442000, 儋州 460400): NBS repeats the city as its own
            # county row.  One concept (level city) stands for both; its townships point at it.
            if found[code].display != row["name"]:
                raise SystemExit(f"{code}: city {found[code].display!r} and county {row['name']!r} disagree")
            continue
        add(Division(code, row["name"], "county", f"{row['cityCode']}00"))
    for row in _read(data_dir, "streets"):
        add(Division(row["code"], row["name"], "township", row["areaCode"]))

    for division in found.values():
        if division.parent is not None and division.parent not in found:
            raise SystemExit(f"{division.code}: parent {division.parent} is not in the list")
    return sorted(found.values(), key=lambda d: d.code)


def code_system(listed: list[Division], source: Source) -> dict[str, Any]:
    per_level = {level: sum(1 for d in listed if d.level == level) for level in LEVELS}
    # the canonical commands, whatever paths this run was given, so the output does not depend on them
    regenerate = (
        f"cd /tmp && npm pack {source.spec} && tar xzf {source.name}-{source.version}.tgz && cd - && "
        f"python {TOOL} /tmp/package {OUT_DEFAULT}"
    )
    description = (
        f"中华人民共和国行政区划代码：省级、地级（市）、县级（均为 6 位，如 410000、410100、410105）及"
        f"乡镇街道（9 位，GB/T 10114，如 410105001）。数据取自 npm 包 {source.spec}，即国家统计局 "
        f"{source.data_year} 年统计用区划代码（截止 {source.as_of}，发布 {source.released}）；台湾省、香港、"
        f"澳门三个省级代码按 GB/T 2260 补入。所含四级完整；不含 12 位村（居）委会代码（约 60 万条，文件过大）。"
        f"OID {OID} 仅见于一家厂商的资料，未经确认。"
        f" Administrative divisions of the People's Republic of China: provinces, cities and counties "
        f"(6-digit codes) and townships/streets (9-digit codes, GB/T 10114), from the npm package "
        f"{source.spec}, which republishes the National Bureau of Statistics' {source.data_year} statistical "
        f"division codes (as of {source.as_of}, released {source.released}); the province-level codes of "
        f"Taiwan, Hong Kong and Macao are added from GB/T 2260. Content is complete for the four levels "
        f"included ({', '.join(f'{per_level[level]} {level}' for level in LEVELS)}); 12-digit village "
        f"codes are NOT included (about 600,000 rows, too large). County level also carries a few "
        f"statistical-only codes (e.g. development zones) and the NBS grouping rows 市辖区 and "
        f"省直辖县级行政区划 appear as cities. The OID {OID} was seen in one vendor's material only "
        f"and is unconfirmed. "
        f"Derived by {TOOL} from {source.spec} ({source.license}); regenerate: {regenerate}"
    )
    return {
        "resourceType": "CodeSystem",
        "id": "gb-t-2260",
        "url": URL,
        "identifier": [{"system": "urn:ietf:rfc:3986", "value": f"urn:oid:{OID}"}],
        "version": source.data_year,
        "name": "GbT2260AdministrativeDivision",
        "title": "中华人民共和国行政区划代码 (GB/T 2260) 及乡镇街道代码 (GB/T 10114)",
        "status": "active",
        "experimental": False,
        "date": source.released,
        "publisher": "Yiyang Gateway",
        "description": description,
        "caseSensitive": True,
        "hierarchyMeaning": "part-of",
        "content": "complete",
        "count": len(listed),
        "property": [
            {
                "code": "parent",
                "uri": "http://hl7.org/fhir/concept-properties#parent",
                "description": "The division this one is part of: township → county, county → city, city → province.",
                "type": "code",
            },
        ],
        "concept": [division.concept() for division in listed],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("source_dir", type=Path, help="the unpacked china-division package (package/ or package/dist/)")
    parser.add_argument("out_file", type=Path, help=f"where to write the CodeSystem JSON, normally {OUT_DEFAULT}")
    args = parser.parse_args(argv)
    listed = divisions(args.source_dir)
    source = read_source(args.source_dir)
    resource = code_system(listed, source)
    args.out_file.write_text(json.dumps(resource, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
    per_level = ", ".join(f"{level} {sum(1 for d in listed if d.level == level)}" for level in LEVELS)
    print(f"{args.out_file}: {len(listed)} concepts ({per_level}), {args.out_file.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
