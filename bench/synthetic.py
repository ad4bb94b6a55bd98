"""Deterministic synthetic provincial Patients, about one in five deliberately invalid.

Benchmarks need many realistic, varied instances (unique names, ID numbers and phones defeat
any cache that would flatter the validator) without shipping personal data.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

from conformance.id_card import check_char
from profiles.canonical import DEFAULT_BASE, GB_SEX_SYSTEM, HEALTH_RECORD_SYSTEM, ID_CARD_SYSTEM

SD = f"{DEFAULT_BASE}/StructureDefinition/"
COUNTIES = [
    ("410102", "河南省", "郑州市", "中原区"),
    ("410105", "河南省", "郑州市", "金水区"),
    ("410302", "河南省", "洛阳市", "老城区"),
    ("110105", "北京市", "北京市", "朝阳区"),
    ("500103", "重庆市", "重庆市", "渝中区"),
    ("330106", "浙江省", "杭州市", "西湖区"),
]
FAMILY = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "秀英桂兰玉珍凤华建国明德淑芬志强文成春梅福海"
MARITAL = ["10", "20", "30", "40"]
DEFECTS = ("checksum", "no-name-text", "unknown-ethnicity", "gender-mismatch", "bad-date")


def id_number(rng: random.Random, county: str, born: date, male: bool) -> str:
    sequence = rng.randrange(0, 100) * 10 + rng.choice([1, 3, 5, 7, 9] if male else [0, 2, 4, 6, 8])
    body = f"{county}{born:%Y%m%d}{sequence:03d}"
    return body + check_char(body)


def patient(rng: random.Random, index: int, defect: str | None = None) -> dict[str, Any]:
    county, province, city, district = rng.choice(COUNTIES)
    born = date(1930, 1, 1) + timedelta(days=rng.randrange(0, 365 * 35))
    male = rng.random() < 0.47
    number = id_number(rng, county, born, male)
    name = rng.choice(FAMILY) + "".join(rng.choice(GIVEN) for _ in range(rng.choice([1, 2])))
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": f"p{index}",
        "meta": {"profile": [SD + "yy-patient"]},
        "extension": [
            {
                "url": SD + "yy-ext-ethnicity",
                "valueCoding": {
                    "system": "urn:oid:2.16.156.10011.2.3.3.3",
                    "code": rng.choice(["01"] * 9 + ["03", "11"]),
                },
            }
        ],
        "identifier": [
            {"system": ID_CARD_SYSTEM, "value": number},
            {"system": HEALTH_RECORD_SYSTEM, "value": f"{county}001001{index % 100000:05d}"},
        ],
        "name": [{"text": name, "family": name[0], "given": [name[1:]]}],
        "telecom": [{"system": "phone", "value": f"13{rng.randrange(0, 10**9):09d}", "use": "mobile"}],
        "gender": "male" if male else "female",
        "_gender": {
            "extension": [
                {"url": SD + "yy-ext-gender-gb", "valueCoding": {"system": GB_SEX_SYSTEM, "code": "1" if male else "2"}}
            ]
        },
        "birthDate": born.isoformat(),
        "address": [
            {
                "extension": [
                    {
                        "url": SD + "yy-ext-admin-division",
                        "valueCoding": {"system": f"{DEFAULT_BASE}/CodeSystem/gb-t-2260", "code": county},
                    }
                ],
                "text": f"{province}{city}{district}幸福路{rng.randrange(1, 300)}号",
                "line": [f"幸福路{rng.randrange(1, 300)}号"],
                "city": city,
                "district": district,
                "state": province,
            }
        ],
        "maritalStatus": {"coding": [{"system": "urn:oid:2.16.156.10011.2.3.3.5", "code": rng.choice(MARITAL)}]},
    }
    if defect == "checksum":
        last = number[-1]
        resource["identifier"][0]["value"] = number[:-1] + ("0" if last != "0" else "1")
    elif defect == "no-name-text":
        del resource["name"][0]["text"]
    elif defect == "unknown-ethnicity":
        resource["extension"][0]["valueCoding"]["code"] = "77"
    elif defect == "gender-mismatch":
        resource["gender"] = "female" if male else "male"
    elif defect == "bad-date":
        resource["birthDate"] = f"{born.year}-02-30"
    return resource


def patients(count: int, seed: int = 20261122, invalid_share: float = 0.2) -> Iterator[dict[str, Any]]:
    rng = random.Random(seed)
    for index in range(count):
        defect = rng.choice(DEFECTS) if rng.random() < invalid_share else None
        yield patient(rng, index, defect)
