"""Derive the CodeSystem of the 医保区划 city-level codes (XXXX99, 市本级) from GB/T 2260.

Why this exists: the 国家医保信息平台's 参保地医保区划 (insuplc_admdvs) is a 6-digit code based on
GB/T 2260, and a city's own 统筹区 (市本级) is written as the city's first four digits and 99
(郑州 4101 → 410199; DOMAIN §6c).  No GB/T 2260 code ends in 99, so such a code is refused as a
GB/T 2260 code.  This CodeSystem holds one XXXX99 code per prefecture-level city of GB/T 2260,
so a 1101 reply about a 市本级 insured lands while GB/T 2260 itself stays exactly as checked.
The cities are the 6-digit GB/T 2260 codes ending in 00 (not 0000), without the grouping rows
市辖区 (of the four municipalities) and 省直辖县级行政区划, which are no city with a 统筹区 of its
own.  Whether every such city has a 市本级 code is unconfirmed (the meaning of XXXX99 is U in
DOMAIN §6c); a code for a city that has none is harmless, a real one missing would quarantine.

Regenerate::

    python tools/derive_nhsa_city_level.py profiles/package
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

TOOL = "tools/derive_nhsa_city_level.py"
CODE_SYSTEM_ID = "nhsa-admdvs-city-level"
#: grouping rows of the statistics list that are no city: no 统筹区 of their own
NOT_CITIES = {"市辖区", "省直辖县级行政区划", "自治区直辖县级行政区划"}


def cities(gb_t_2260: dict[str, Any]) -> list[tuple[str, str]]:
    """The current prefecture-level cities of GB/T 2260 as (code, name)."""
    found = []
    for concept in gb_t_2260["concept"]:
        code, name = concept["code"], concept.get("display", "")
        retired = any(p["code"] == "status" and p.get("valueCode") == "retired" for p in concept.get("property", []))
        if code.endswith("00") and not code.endswith("0000") and name not in NOT_CITIES and not retired:
            found.append((code, name))
    return found


def code_system(gb_t_2260: dict[str, Any]) -> dict[str, Any]:
    concepts = [
        {"code": code[:4] + "99", "display": f"{name}本级", "property": [{"code": "city", "valueCode": code}]}
        for code, name in cities(gb_t_2260)
    ]
    return {
        "resourceType": "CodeSystem",
        "id": CODE_SYSTEM_ID,
        "url": "http://fhir.yiyang.cn/CodeSystem/" + CODE_SYSTEM_ID,
        "version": gb_t_2260["version"],
        "name": "NhsaAdmdvsCityLevel",
        "title": "医保区划：市本级（XXXX99）",
        "status": "active",
        "experimental": False,
        "date": gb_t_2260["date"],
        "publisher": "Yiyang Gateway",
        "description": (
            "国家医保信息平台医保区划中市本级统筹区的代码：地级市 GB/T 2260 代码前四位加 99（如郑州市本级 410199）。"
            "医保区划其余代码即 GB/T 2260 代码，见值集 nhsa-admdvs。XXXX99 的含义（市本级）未经确认。"
            " / The city-level (市本级) codes of the NHSA insurance divisions: a prefecture-level city's first four "
            "GB/T 2260 digits and 99 (郑州 410199). The other insurance division codes are GB/T 2260 codes (ValueSet "
            "nhsa-admdvs). The meaning of XXXX99 is unconfirmed. "
            f"Derived by {TOOL} from CodeSystem gb-t-2260 edition {gb_t_2260['version']}; "
            f"regenerate: python {TOOL} profiles/package"
        ),
        "caseSensitive": True,
        "content": "complete",
        "count": len(concepts),
        "property": [
            {
                "code": "city",
                "description": "The city (a code of GB/T 2260, not of this code system) whose 市本级 this is.",
                "type": "code",
            }
        ],
        "concept": concepts,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("package", type=Path, help="the package folder holding CodeSystem-gb-t-2260.json")
    folder = parser.parse_args().package
    source = json.loads((folder / "CodeSystem-gb-t-2260.json").read_text(encoding="utf-8"))
    target = folder / f"CodeSystem-{CODE_SYSTEM_ID}.json"
    target.write_text(json.dumps(code_system(source), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
