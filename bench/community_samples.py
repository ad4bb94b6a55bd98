"""Deterministic generator of the community-health sample exports in
``mappings/samples/community-health/`` (everything there except 个人基本信息表.csv):

* 老年人健康管理.csv — the wide 健康体检表 export, one row per 体检 (体检编号, 体检机构, 一般状况 with both
  arms' blood pressure, 生活自理能力 items and band, 认知/情感 screens, lifestyle, 空腹血糖, 健康评价 …),
  UTF-8 with BOM;
* 中医体质辨识.csv — TCM constitution results, one row per person, date and type, UTF-8 with BOM;
* 家庭医生签约.csv — family-doctor contracts (签约人群类型, 首签/续签, 协议期限, 签约服务费 and its payers,
  one tick column per service item), UTF-8 with BOM;
* 随访巡诊家床记录.csv — follow-up / home-visit / home-bed records, in GB18030;
* 个人基本信息表.xlsx — the personal-info form as Excel, with an ID number stored as a number
  (Excel-mangled) and birth dates stored as date cells, then the 档案 of the whole roster;
* 健康档案-*.xml — a WS/T 483-style CDA health-record document, one with a bad 身份证 check
  character, and one carrying an XXE entity that the reader must refuse.

Every tabular file holds good rows, the shared elder 张秀英 (also in the other sources) and
deliberately broken rows (bad 身份证 checksum, impossible date, unknown code, a duplicate row,
garbled text), the broken rows first so their row numbers stay put.  After them come the rest of
a small roster of two counties (金水区 410105, 中原区 410102; both sexes, every age band from 65–69
to 80+, one resident under 65): some signed and some not, some with a 体检 or a 中医体质辨识 in 2026
and some only in 2025, the measures' hand-countable population (docs/mappings.md, "The demo
population").  One person's assessments never contradict each other (tests/mappings/
test_sample_realism.py).  ``python -m bench.community_samples [OUT_DIR]`` rewrites them byte for byte.
"""

from __future__ import annotations

import argparse
import csv
import io
import re
import zipfile
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from conformance import credit_code
from conformance.id_card import check_char

SAMPLES = Path(__file__).resolve().parent.parent / "mappings/samples/community-health"
FIXED_TIME = datetime(2026, 11, 23, 8, 0, 0)


@dataclass(frozen=True)
class Person:
    name: str
    sex: str
    born: date
    county: str
    sequence: str  # three digits, odd for men
    record_no: str
    ethnicity: str = "汉族"

    @property
    def id_card(self) -> str:
        body = f"{self.county}{self.born:%Y%m%d}{self.sequence}"
        return body + check_char(body)


# 张秀英 is the elder every source shares: same 身份证号 and 个人档案编号 everywhere.
ZHANG = Person("张秀英", "女", date(1949, 12, 31), "410105", "002", "41010500100100017")
WANG = Person("王桂兰", "女", date(1944, 3, 8), "410105", "046", "41010500100100021")
LI = Person("李德明", "男", date(1940, 7, 15), "410102", "031", "41010200100100008")
ZHAO = Person("赵淑芬", "女", date(1952, 11, 2), "410302", "128", "41030200100100033", "回族")
LIU = Person("刘建国", "男", date(1938, 5, 20), "410105", "017", "41010500100100040")
CHEN = Person("陈玉珍", "女", date(1947, 9, 9), "410102", "064", "41010200100100052")

# The rest of the two counties' 65+ roster (and one younger resident), so that the measures
# (签约率, 规范健康管理率, 中医药健康管理率, 失能评定人数) have people to count and to leave out.
# Ages are at 2026-12-31; each person's part in the measures is in ROSTER below.
MA = Person("马玉兰", "女", date(1959, 4, 12), "410105", "062", "41010500100100058")
YANG = Person("杨建军", "男", date(1960, 9, 3), "410105", "073", "41010500100100061")
GAO = Person("高秀珍", "女", date(1955, 1, 20), "410105", "084", "41010500100100066")
GUO = Person("郭志刚", "男", date(1953, 6, 8), "410105", "095", "41010500100100070")
HE = Person("何德胜", "男", date(1950, 11, 27), "410105", "031", "41010500100100075")
LUO = Person("罗淑华", "女", date(1942, 2, 14), "410105", "048", "41010500100100079")
XIE = Person("谢丽", "女", date(1966, 5, 5), "410105", "026", "41010500100100083")
XU = Person("徐凤英", "女", date(1960, 3, 18), "410102", "082", "41010200100100061")
ZHU = Person("朱永福", "男", date(1958, 12, 1), "410102", "053", "41010200100100064")
HU = Person("胡桂芝", "女", date(1954, 7, 30), "410102", "024", "41010200100100069")
LIN = Person("林国栋", "男", date(1952, 10, 10), "410102", "015", "41010200100100072")
HAN = Person("韩玉珍", "女", date(1948, 8, 22), "410102", "066", "41010200100100077")
TANG = Person("唐志明", "男", date(1949, 3, 9), "410102", "037", "41010200100100080")
FENG = Person("冯秀英", "女", date(1943, 12, 5), "410102", "088", "41010200100100085")
DONG = Person("董明", "男", date(1945, 5, 16), "410102", "059", "41010200100100090")


def bad_checksum(person: Person) -> str:
    """The person's 身份证号 with a wrong check character."""
    number = person.id_card
    return number[:17] + ("1" if number[17] != "1" else "2")


def garbled(text: str) -> str:
    """UTF-8 bytes read as Windows-1252: what a wrong-encoding export does to Chinese."""
    return text.encode("utf-8").decode("cp1252", errors="replace")


def uscc(body: str) -> str:
    """A 统一社会信用代码 (GB 32100) with its check character computed for the 17-char body."""
    return body + credit_code.check_char(body)


JINGBA = ("郑州市金水区经八路街道社区卫生服务中心", uscc("12410105MB0192837"), "社区卫生服务中心")
LINSHAN = ("郑州市中原区林山寨街道社区卫生服务中心", uscc("12410102MB1736420"), "社区卫生服务中心")
YIYANG = ("金水区医养服务中心", uscc("52410105MJ5520731"), "医养服务中心")
DOCTOR_WANG = ("王芳", "410105D0012")
DOCTOR_SUN = ("孙志强", "410102D0207")


def person_columns(person: Person, **override: str) -> dict[str, str]:
    row = {
        "身份证号": person.id_card,
        "个人档案编号": person.record_no,
        "姓名": person.name,
        "性别": person.sex,
        "出生日期": person.born.isoformat(),
        "民族": person.ethnicity,
    }
    row.update(override)
    return row


# -- 老年人健康管理 ------------------------------------------------------------------------
ANNUAL_COLUMNS = [
    "体检编号",
    "身份证号",
    "个人档案编号",
    "姓名",
    "性别",
    "出生日期",
    "民族",
    "体检日期",
    "体检机构",
    "统一社会信用代码",
    "机构类型",
    "责任医生",
    "医生工号",
    "症状",
    "体温",
    "脉率",
    "呼吸频率",
    "左侧收缩压",
    "左侧舒张压",
    "右侧收缩压",
    "右侧舒张压",
    "身高",
    "体重",
    "腰围",
    "体质指数",
    "老年人健康状态自我评估",
    "进餐",
    "梳洗",
    "穿衣",
    "如厕",
    "活动",
    "生活自理能力评分",
    "生活自理能力评估",
    "老年人认知功能",
    "老年人情感状态",
    "体育锻炼频率",
    "吸烟状况",
    "饮酒频率",
    "空腹血糖",
    "健康评价",
    "健康指导",
]
#: body measurements per person: 身高 cm, 体重 kg, 腰围 cm (体质指数 is computed from them)
BODY = {
    ZHANG: (156, 58.5, 82),
    WANG: (152, 50.0, 78),
    LI: (168, 66.0, 90),
    LIU: (165, 52.0, 84),
    ZHAO: (158, 60.0, 80),
    CHEN: (155, 55.0, 81),
}


def annual(
    number: str,
    person: Person,
    day: str,
    bp: tuple[str, str],
    glucose: str,
    items: list[int],
    band: str,
    **override: str,
) -> dict[str, str]:
    """One 健康体检表 row (the wide export: one row per 体检).  The right arm reads 2–4 mmHg
    below the left; self-care answers follow the 评分."""
    institution, doctor = (LINSHAN, DOCTOR_SUN) if person.county == "410102" else (JINGBA, DOCTOR_WANG)
    height, weight, waist = BODY.get(person, (160, 60.0, 84))
    total = sum(items)
    normal = bp[0].isdigit() and int(bp[0]) < 140 and float(glucose) < 7.0
    right = (str(int(bp[0]) - 4), str(int(bp[1]) - 2)) if bp[0].isdigit() and bp[1].isdigit() else ("", "")
    row = {
        "体检编号": number,
        **person_columns(person),
        "体检日期": day,
        "体检机构": institution[0],
        "统一社会信用代码": institution[1],
        "机构类型": institution[2],
        "责任医生": doctor[0],
        "医生工号": doctor[1],
        "症状": "无症状" if total <= 3 else "关节痛、乏力",
        "体温": "36.5",
        "脉率": "72",
        "呼吸频率": "18",
        "左侧收缩压": bp[0],
        "左侧舒张压": bp[1],
        "右侧收缩压": right[0],
        "右侧舒张压": right[1],
        "身高": str(height),
        "体重": f"{weight:.1f}",
        "腰围": str(waist),
        "体质指数": f"{weight / (height / 100) ** 2:.1f}",
        "老年人健康状态自我评估": "满意" if total <= 3 else "不太满意" if total <= 18 else "不满意",
        **dict(zip(["进餐", "梳洗", "穿衣", "如厕", "活动"], map(str, items), strict=True)),
        "生活自理能力评分": str(total),
        "生活自理能力评估": band,
        "老年人认知功能": "粗筛阴性" if total <= 18 else "粗筛阳性",
        "老年人情感状态": "粗筛阴性",
        "体育锻炼频率": "每天" if total <= 3 else "不锻炼",
        "吸烟状况": "从不吸烟",
        "饮酒频率": "从不",
        "空腹血糖": glucose,
        "健康评价": "体检无异常" if normal else "有异常",
        "健康指导": "建议转诊" if total > 18 else "定期随访" if normal else "纳入慢性病患者健康管理",
    }
    row.update(override)
    return row


def annual_rows() -> list[dict[str, str]]:
    zhang = annual("TJ2026-0001", ZHANG, "2026-06-15", ("142", "88"), "6.1", [0, 1, 0, 1, 1], "可自理")
    return [
        zhang,  # row 2
        annual("TJ2026-0002", WANG, "2026/6/15", ("128", "76"), "5.4", [0, 1, 0, 1, 5], "轻度依赖"),  # row 3
        annual("TJ2026-0003", LI, "20260616", ("156", "94"), "7.8", [3, 3, 3, 0, 0], "中度依赖(9～18分)"),  # row 4
        annual("TJ2026-0004", LIU, "2026-06-16", ("142/88", ""), "5.9", [0, 0, 0, 0, 1], "可自理"),  # row 5
        annual(
            "TJ2026-0005",
            ZHAO,
            "2026-06-16",
            ("118", "72"),
            "5.0",
            [0, 0, 0, 0, 0],
            "可自理",
            身份证号=bad_checksum(ZHAO),
        ),  # row 6
        annual("TJ2026-0006", CHEN, "2026-02-30", ("132", "80"), "6.6", [0, 1, 0, 1, 1], "可自理"),  # row 7
        annual("TJ2026-0007", LIU, "2026-06-17", ("138", "86"), "6.0", [0, 1, 0, 1, 1], "部分依赖"),  # row 8
        annual("TJ2026-0008", WANG, "2026-06-17", ("130", "80"), "5.2", [3, 3, 0, 5, 1], "可自理"),  # row 9
        annual(
            "TJ2026-0009", CHEN, "2026-06-18", ("126", "78"), "5.6", [0, 0, 0, 0, 0], "可自理", 姓名=garbled(CHEN.name)
        ),  # row 10
        dict(zhang),  # row 11: the same export line twice
        annual("TJ2026-0010", LIU, "2026年6月18日", ("148", "90"), "8.4", [5, 7, 3, 5, 5], "不能自理"),  # row 12
        # the rest of the roster: good rows
        annual("TJ2026-0011", MA, "2026-04-20", ("126", "78"), "5.3", [0, 0, 0, 0, 0], "可自理"),  # row 13
        annual("TJ2026-0012", XU, "2026-04-21", ("122", "76"), "5.1", [0, 0, 0, 0, 0], "可自理"),  # row 14
        annual("TJ2026-0013", ZHU, "2026-04-22", ("138", "84"), "6.2", [0, 1, 0, 1, 1], "可自理"),  # row 15
        annual("TJ2026-0014", LIN, "2026-04-23", ("134", "82"), "5.8", [0, 0, 0, 1, 1], "可自理"),  # row 16
        annual("TJ2026-0015", TANG, "2026-04-24", ("146", "90"), "6.4", [0, 1, 0, 1, 5], "轻度依赖"),  # row 17
        annual("TJ2026-0016", FENG, "2026-04-27", ("150", "86"), "7.2", [3, 3, 3, 0, 5], "中度依赖"),  # row 18
        annual("TJ2026-0017", DONG, "2026-04-28", ("144", "84"), "6.0", [0, 1, 0, 1, 1], "可自理"),  # row 19
        annual("TJ2026-0018", GAO, "2026-05-11", ("152", "92"), "5.6", [0, 0, 0, 1, 1], "可自理"),  # row 20
        annual("TJ2026-0019", GUO, "2026-05-12", ("136", "80"), "7.6", [0, 1, 0, 1, 1], "可自理"),  # row 21
        annual("TJ2026-0020", HE, "2026-05-13", ("128", "74"), "5.5", [0, 1, 0, 1, 1], "可自理"),  # row 22
        annual("TJ2026-0021", LUO, "2026-05-14", ("132", "78"), "5.9", [5, 7, 5, 10, 10], "不能自理"),  # row 23
        annual("TJ2025-0132", HU, "2025-11-20", ("140", "86"), "6.8", [0, 0, 0, 1, 1], "可自理"),  # row 24: 2025
    ]


# -- 中医体质辨识 --------------------------------------------------------------------------
TCM_COLUMNS = [
    "身份证号",
    "个人档案编号",
    "姓名",
    "性别",
    "出生日期",
    "民族",
    "辨识日期",
    "体质类型",
    "得分",
    "辨识结果",
    "中医药保健指导",
]


def tcm(person: Person, day: str, kind: str, score: str, result: str, **override: str) -> dict[str, str]:
    row = {**person_columns(person), "辨识日期": day, "体质类型": kind, "得分": score, "辨识结果": result}
    row["中医药保健指导"] = "情志调摄、饮食调养" if result in ("是", "倾向是") else ""
    row.update(override)
    return row


def tcm_rows() -> list[dict[str, str]]:
    zhang_qixu = tcm(ZHANG, "2026-06-15", "气虚质", "12", "是")
    return [
        zhang_qixu,  # row 2
        tcm(ZHANG, "2026-06-15", "阳虚质", "10", "倾向是"),  # row 3
        tcm(ZHANG, "2026-06-15", "平和质", "14", "否"),  # row 4
        tcm(WANG, "2026-06-15", "平和", "19", "基本是"),  # row 5
        tcm(LI, "2026-06-16", "痰湿质", "13", "是", 身份证号=bad_checksum(LI)),  # row 6
        tcm(LIU, "2026-13-01", "湿热质", "11", "是"),  # row 7
        tcm(LIU, "2026-06-16", "火热质", "11", "是"),  # row 8
        tcm(CHEN, "2026-06-16", "血瘀质", "9", "2"),  # row 9: a form box number, ambiguous
        dict(zhang_qixu),  # row 10
        tcm(ZHAO, "2026-06-17", "气郁质", "11", "是", 姓名=garbled(ZHAO.name)),  # row 11
        tcm(ZHAO, "2026-06-17", "特禀质", "12", "是"),  # row 12
        # the rest of the roster: the assessment is done at the 体检, on the same day
        tcm(MA, "2026-04-20", "平和质", "20", "是"),  # row 13
        tcm(XU, "2026-04-21", "气郁质", "11", "是"),  # row 14
        tcm(LIN, "2026-04-23", "痰湿质", "12", "是"),  # row 15
        tcm(TANG, "2026-04-24", "血瘀质", "10", "倾向是"),  # row 16
        tcm(GUO, "2026-05-12", "湿热质", "11", "是"),  # row 17
        tcm(DONG, "2025-10-15", "阳虚质", "12", "是"),  # row 18: last year's
    ]


# -- 家庭医生签约 --------------------------------------------------------------------------
SERVICE_ITEMS = [
    "健康体检",
    "血压测量",
    "末梢血血糖检测",
    "中医药健康管理",
    "慢病随访",
    "上门巡诊",
    "家庭病床",
    "用药指导",
    "健康教育",
    "康复指导",
]
CONTRACT_COLUMNS = [
    "签约编号",
    "身份证号",
    "个人档案编号",
    "姓名",
    "性别",
    "出生日期",
    "民族",
    "签约人群类型",
    "签约类型",
    "签约日期",
    "协议开始日期",
    "协议结束日期",
    "签约团队",
    "签约医生",
    "医生工号",
    "服务包",
    "签约服务费(元)",
    "医保基金支付(元)",
    "基本公卫经费(元)",
    "个人自付(元)",
    "签约状态",
    "签约机构",
    "统一社会信用代码",
    "机构类型",
    *SERVICE_ITEMS,
]
PACKAGES = {
    "老年人基础服务包": ["健康体检", "血压测量", "末梢血血糖检测", "中医药健康管理"],
    "高血压患者服务包": ["血压测量", "慢病随访", "用药指导", "健康教育"],
    "失能老人居家服务包": ["上门巡诊", "家庭病床", "康复指导", "用药指导"],
}
#: 签约服务费 of each package and how it is paid: (total, 医保基金, 基本公卫经费, 个人自付), yuan a
#: year.  Illustrative amounts (each city sets its own); the parts always add up to the total.
FEES = {
    "老年人基础服务包": ("120.00", "60.00", "60.00", "0.00"),
    "高血压患者服务包": ("150.00", "60.00", "60.00", "30.00"),
    "失能老人居家服务包": ("360.00", "120.00", "60.00", "180.00"),
}


def contract(
    number: str,
    person: Person,
    team: str,
    doctor: tuple[str, str],
    package: str,
    start: str,
    end: str,
    institution: tuple[str, str, str],
    status: str = "已签约",
    groups: str = "65岁及以上老年人",
    kind: str = "首签",
    **override: str,
) -> dict[str, str]:
    """One 签约 row: signed on the day the agreement starts unless 签约日期 is overridden;
    签约人群类型 lists every group the person is signed as, separated by 、 as exports do."""
    fee = FEES[package]
    row = {
        "签约编号": number,
        **person_columns(person),
        "签约人群类型": groups,
        "签约类型": kind,
        "签约日期": start,
        "协议开始日期": start,
        "协议结束日期": end,
        "签约团队": team,
        "签约医生": doctor[0],
        "医生工号": doctor[1],
        "服务包": package,
        "签约服务费(元)": fee[0],
        "医保基金支付(元)": fee[1],
        "基本公卫经费(元)": fee[2],
        "个人自付(元)": fee[3],
        "签约状态": status,
        "签约机构": institution[0],
        "统一社会信用代码": institution[1],
        "机构类型": institution[2],
    }
    row.update({item: ("√" if item in PACKAGES[package] else "") for item in SERVICE_ITEMS})
    row.update(override)
    return row


def contract_rows() -> list[dict[str, str]]:
    team_jingba, team_linshan = "经八路街道家庭医生团队一", "林山寨街道家庭医生团队三"
    team_yiyang = "医养服务中心家医团队"
    chronic, disabled = "65岁及以上老年人、高血压", "65岁及以上老年人、高龄、失能"
    zhang = contract(
        "QY2026-0001",
        ZHANG,
        team_jingba,
        DOCTOR_WANG,
        "老年人基础服务包",
        "2026-01-01",
        "2026-12-31",
        JINGBA,
        groups="65岁及以上老年人、高血压、2型糖尿病",
        kind="续签",
        签约日期="2025-12-20",
    )
    return [
        zhang,  # row 2
        contract(
            "QY2026-0002",
            LI,
            team_linshan,
            DOCTOR_SUN,
            "高血压患者服务包",
            "2026/1/5",
            "2027/1/4",
            LINSHAN,
            groups="65岁及以上老年人、高龄、高血压",
            kind="续签",
        ),  # row 3
        contract(
            "QY2026-0003",
            LIU,
            team_yiyang,
            DOCTOR_WANG,
            "失能老人居家服务包",
            "2026-03-01",
            "2027-02-28",
            YIYANG,
            groups=disabled,
        ),  # row 4
        contract(
            "QY2026-0004",
            ZHAO,
            team_jingba,
            DOCTOR_WANG,
            "老年人基础服务包",
            "2026-01-01",
            "2026-12-31",
            JINGBA,
            身份证号=bad_checksum(ZHAO),
        ),  # row 5
        contract(
            "QY2026-0005",
            WANG,
            team_jingba,
            DOCTOR_WANG,
            "老年人基础服务包",
            "2026-03-01",
            "2027-02-28",
            JINGBA,
            签约日期="2026-02-29",
        ),  # row 6
        contract(
            "QY2026-0006",
            CHEN,
            team_linshan,
            DOCTOR_SUN,
            "老年人基础服务包",
            "2026-01-10",
            "2027-01-09",
            (LINSHAN[0], LINSHAN[1], "民营诊所"),
        ),  # row 7
        dict(zhang),  # row 8
        contract(
            "QY2026-0007",
            CHEN,
            team_linshan,
            DOCTOR_SUN,
            "高血压患者服务包",
            "2026-01-10",
            "2027-01-09",
            LINSHAN,
            签约医生=garbled(DOCTOR_SUN[0]),
        ),  # row 9
        contract(
            "QY2026-0008", WANG, team_jingba, DOCTOR_WANG, "高血压患者服务包", "2026-05-01", "2025-04-30", JINGBA
        ),  # row 10
        contract(
            "QY2026-0009",
            LI,
            team_linshan,
            DOCTOR_SUN,
            "老年人基础服务包",
            "2026-01-05",
            "2027-01-04",
            LINSHAN,
            中医药健康管理="否",
        ),  # row 11
        # the rest of the roster: good rows
        contract(
            "QY2026-0010", MA, team_jingba, DOCTOR_WANG, "老年人基础服务包", "2026-03-02", "2027-03-01", JINGBA
        ),  # row 12
        contract(
            "QY2026-0011",
            GAO,
            team_jingba,
            DOCTOR_WANG,
            "高血压患者服务包",
            "2026-01-01",
            "2026-12-31",
            JINGBA,
            groups=chronic,
            kind="续签",
        ),  # row 13
        contract(
            "QY2026-0012",
            GUO,
            team_jingba,
            DOCTOR_WANG,
            "老年人基础服务包",
            "2026-01-01",
            "2026-12-31",
            JINGBA,
            groups="65岁及以上老年人、2型糖尿病",
            kind="续签",
        ),  # row 14
        contract(
            "QY2026-0013",
            LUO,
            team_yiyang,
            DOCTOR_WANG,
            "失能老人居家服务包",
            "2026-01-15",
            "2027-01-14",
            YIYANG,
            groups=disabled,
            kind="续签",
        ),  # row 15
        contract(
            "QY2026-0014",
            XIE,
            team_jingba,
            DOCTOR_WANG,
            "高血压患者服务包",
            "2026-04-01",
            "2027-03-31",
            JINGBA,
            groups="高血压",
        ),  # row 16: a resident under 65
        contract(
            "QY2026-0015", XU, team_linshan, DOCTOR_SUN, "老年人基础服务包", "2026-02-10", "2027-02-09", LINSHAN
        ),  # row 17
        contract(
            "QY2026-0016",
            HU,
            team_linshan,
            DOCTOR_SUN,
            "高血压患者服务包",
            "2026-01-01",
            "2026-12-31",
            LINSHAN,
            groups="65岁及以上老年人、高血压、2型糖尿病",
            kind="续签",
        ),  # row 18
        contract(
            "QY2026-0017",
            LIN,
            team_linshan,
            DOCTOR_SUN,
            "老年人基础服务包",
            "2026-01-01",
            "2026-12-31",
            LINSHAN,
            kind="续签",
        ),  # row 19
        contract(
            "QY2026-0018",
            TANG,
            team_linshan,
            DOCTOR_SUN,
            "老年人基础服务包",
            "2026-03-15",
            "2027-03-14",
            LINSHAN,
            groups="65岁及以上老年人、残疾人",
        ),  # row 20
        contract(
            "QY2026-0019",
            FENG,
            team_linshan,
            DOCTOR_SUN,
            "失能老人居家服务包",
            "2026-01-01",
            "2026-12-31",
            LINSHAN,
            groups=disabled,
            kind="续签",
        ),  # row 21
        contract(
            "QY2025-0231",
            HAN,
            team_linshan,
            DOCTOR_SUN,
            "老年人基础服务包",
            "2025-01-01",
            "2025-12-31",
            LINSHAN,
            status="已到期",
        ),  # row 22: last year's contract, not renewed
    ]


# -- 随访 / 上门巡诊 / 家庭病床 (GB18030) ----------------------------------------------------
VISIT_COLUMNS = [
    "记录编号",
    "身份证号",
    "个人档案编号",
    "姓名",
    "性别",
    "出生日期",
    "民族",
    "服务类型",
    "服务方式",
    "开始时间",
    "结束时间",
    "状态",
    "服务医生",
    "医生工号",
    "服务机构",
    "统一社会信用代码",
    "机构类型",
    "服务内容",
]


def visit(
    number: str,
    person: Person,
    kind: str,
    how: str,
    start: str,
    end: str,
    status: str,
    doctor: tuple[str, str],
    institution: tuple[str, str, str],
    content: str,
    **override: str,
) -> dict[str, str]:
    row = {
        "记录编号": number,
        **person_columns(person),
        "服务类型": kind,
        "服务方式": how,
        "开始时间": start,
        "结束时间": end,
        "状态": status,
        "服务医生": doctor[0],
        "医生工号": doctor[1],
        "服务机构": institution[0],
        "统一社会信用代码": institution[1],
        "机构类型": institution[2],
        "服务内容": content,
    }
    row.update(override)
    return row


def visit_rows() -> list[dict[str, str]]:
    zhang = visit(
        "SF2026-1101",
        ZHANG,
        "上门巡诊",
        "上门",
        "2026-11-01 09:30",
        "2026-11-01 10:10",
        "已完成",
        DOCTOR_WANG,
        YIYANG,
        "测血压、血糖，用药指导",
    )
    return [
        zhang,  # row 2
        visit(
            "JC2026-0008",
            ZHANG,
            "家庭病床",
            "上门",
            "2026-10-08",
            "",
            "在床",
            DOCTOR_WANG,
            YIYANG,
            "建床，每周查床两次",
        ),  # row 3
        visit(
            "SF2026-1102",
            LI,
            "高血压随访",
            "电话",
            "2026-11-02 15:00",
            "2026-11-02 15:12",
            "已完成",
            DOCTOR_SUN,
            LINSHAN,
            "电话随访，血压控制满意",
        ),  # row 4
        visit(
            "SF2026-1103",
            ZHAO,
            "随访",
            "门诊",
            "2026-11-03 08:40",
            "2026-11-03 09:00",
            "已完成",
            DOCTOR_WANG,
            JINGBA,
            "糖尿病随访",
            身份证号=bad_checksum(ZHAO),
        ),  # row 5
        visit(
            "SF2026-1104",
            LIU,
            "上门巡诊",
            "上门",
            "2026-11-31 09:00",
            "2026-11-31 09:40",
            "已完成",
            DOCTOR_WANG,
            YIYANG,
            "巡诊",
        ),  # row 6
        visit(
            "SF2026-1105",
            WANG,
            "康复训练",
            "上门",
            "2026-11-05 14:00",
            "2026-11-05 15:00",
            "已完成",
            DOCTOR_WANG,
            YIYANG,
            "康复训练",
        ),  # row 7
        dict(zhang),  # row 8
        visit(
            "SF2026-1106",
            CHEN,
            "随访",
            "门诊",
            "2026-11-06 10:00",
            "2026-11-06 10:20",
            "已完成",
            ("锟斤拷", "410102D0207"),
            LINSHAN,
            "随访",
        ),  # row 9
        visit(
            "SF2026-1107",
            LI,
            "上门巡诊",
            "上门",
            "2026-11-07 16:00",
            "2026-11-07 15:30",
            "已完成",
            DOCTOR_SUN,
            LINSHAN,
            "巡诊",
        ),  # row 10
        visit(
            "JC2026-0009", LIU, "家庭病床", "上门", "2026-09-01", "2026-10-31", "已撤床", DOCTOR_WANG, YIYANG, "撤床"
        ),  # row 11
    ]


# -- 个人基本信息表.xlsx --------------------------------------------------------------------
ADDRESSES = {
    "410105": "河南省郑州市金水区经八路街道",
    "410102": "河南省郑州市中原区林山寨街道",
    "410302": "河南省洛阳市老城区西关街道",
}


def xlsx_rows() -> list[list[object]]:
    from bench.legacy_samples import COLUMNS

    def row(person: Person, number: int, **override: object) -> list[object]:
        values: dict[str, object] = {
            "序号": number,
            "个人档案编号": person.record_no,
            "姓名": person.name,
            "性别": person.sex,
            "出生日期": datetime(person.born.year, person.born.month, person.born.day),  # a date cell
            "身份证号": person.id_card,  # a text cell
            "民族": person.ethnicity,
            "联系电话": "13803710001" if person is ZHANG else f"139{number:08d}",
            "现住址": ADDRESSES[person.county] + f"幸福社区{number + 2}号楼",
            "县区代码": person.county,
            "乡镇街道代码": person.county + "001",
            "常住类型": "1",
            "血型": "1",
            "文化程度": "8",
            "婚姻状况": "3",
            "医疗费用支付方式": "1",
            "药物过敏史": "无",
            "既往疾病": "高血压",
            "医保人员编号": "",
            "建档日期": datetime(2019, 3, 1),
        }
        values.update(override)
        return [values[c] for c in COLUMNS]

    zhang = row(ZHANG, 1, 医保人员编号="41000000000000012345", 既往疾病="高血压,糖尿病", 药物过敏史="青霉素")
    return [
        zhang,  # row 2: 出生日期 is a date cell
        row(WANG, 2, 身份证号=float(WANG.id_card)),  # row 3: Excel kept the ID as a number
        row(LI, 3, 身份证号=bad_checksum(LI)),  # row 4
        row(CHEN, 4, 出生日期="1947-02-30"),  # row 5
        row(LIU, 5, 民族="火星族"),  # row 6
        list(zhang),  # row 7
        row(CHEN, 6, 姓名=garbled(CHEN.name)),  # row 8
        row(LI, 7),  # row 9
        # the 档案 of the rest of the two counties' roster: good rows
        *[
            row(person, number, **override)
            for number, (person, override) in enumerate(
                [
                    (WANG, {"既往疾病": "高血压"}),
                    (LIU, {"既往疾病": "脑卒中", "医保人员编号": "41000000000000090040"}),
                    (CHEN, {"既往疾病": "高血压"}),
                    (MA, {"既往疾病": "无"}),
                    (YANG, {"既往疾病": "无"}),
                    (GAO, {"既往疾病": "高血压"}),
                    (GUO, {"既往疾病": "糖尿病"}),
                    (HE, {"既往疾病": "无"}),
                    (LUO, {"既往疾病": "脑卒中,高血压", "医保人员编号": "41000000000000090079"}),
                    (XIE, {"既往疾病": "高血压", "婚姻状况": "2"}),
                    (XU, {"既往疾病": "无"}),
                    (ZHU, {"既往疾病": "高血压"}),
                    (HU, {"既往疾病": "高血压,糖尿病"}),
                    (LIN, {"既往疾病": "无"}),
                    (HAN, {"既往疾病": "冠心病"}),
                    (TANG, {"既往疾病": "无"}),
                    (FENG, {"既往疾病": "脑卒中", "医保人员编号": "41000000000000090085"}),
                    (DONG, {"既往疾病": "高血压"}),
                ],
                start=8,
            )
        ],  # rows 10–27
    ]


def write_xlsx(path: Path) -> None:
    from openpyxl import Workbook

    from bench.legacy_samples import COLUMNS

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "个人基本信息表"
    sheet.append(COLUMNS)
    for values in xlsx_rows():
        sheet.append(values)
    for cells in sheet.iter_rows(min_row=2):
        for cell in cells:
            if isinstance(cell.value, datetime):
                cell.number_format = "yyyy-mm-dd"
            elif isinstance(cell.value, float):
                cell.number_format = "0.00E+00"  # how Excel shows a long number typed into a General cell
    workbook.properties.creator = "Yiyang Gateway samples"
    workbook.properties.created = workbook.properties.modified = FIXED_TIME
    buffer = io.BytesIO()
    workbook.save(buffer)
    _fix_zip_times(buffer.getvalue(), path)


def _fix_zip_times(data: bytes, path: Path) -> None:
    """Rewrite the workbook's zip with fixed timestamps so the file is reproducible."""
    stamp = FIXED_TIME.isoformat() + "Z"
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            content = source.read(info.filename)
            if info.filename == "docProps/core.xml":
                content = re.sub(rb"(<dcterms:(?:created|modified)[^>]*>)[^<]*", rb"\g<1>" + stamp.encode(), content)
            fixed = zipfile.ZipInfo(info.filename, date_time=FIXED_TIME.timetuple()[:6])
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = 0o644 << 16
            target.writestr(fixed, content)


# -- CDA 健康档案 ----------------------------------------------------------------------------
def cda_document(id_card: str, doctype: str = "", name: str = "张秀英") -> str:
    """A WS/T 483-style 个人基本健康信息 document for 张秀英 (header only, no clinical body).

    The template OID and document code of WS/T 483 were not confirmed (DOMAIN.md §1a, U);
    the values below follow the WS/T 500 numbering pattern and are marked as such.
    """
    return f"""<?xml version="1.0" encoding="UTF-8"?>
{doctype}<ClinicalDocument xmlns="urn:hl7-org:v3" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <realmCode code="CN"/>
  <typeId root="2.16.840.1.113883.1.3" extension="POCD_MT000040"/>
  <!-- 未经确认 / unconfirmed: the WS/T 483 template OID (WS/T 500 numbering pattern) and document type code -->
  <templateId root="2.16.156.10011.2.1.1.1"/>
  <id root="2.16.156.10011.1.1" extension="HR-410105-2026-000017"/>
  <code nullFlavor="UNK" codeSystem="2.16.156.10011.2.4" codeSystemName="卫生信息共享文档规范编码体系"/>
  <title>个人基本健康信息登记</title>
  <effectiveTime value="20261120093000"/>
  <confidentialityCode code="N" codeSystem="2.16.840.1.113883.5.25" codeSystemName="Confidentiality" displayName="正常访问保密级别"/>
  <languageCode code="zh-CN"/>
  <setId/>
  <versionNumber/>
  <recordTarget typeCode="RCT" contextControlCode="OP">
    <patientRole classCode="PAT">
      <!-- 城乡居民健康档案编号 -->
      <id root="2.16.156.10011.1.2" extension="41010500100100017"/>
      <addr use="H">
        <houseNumber>幸福社区3号楼</houseNumber>
        <streetName>经八路</streetName>
        <township>经八路街道</township>
        <county>金水区</county>
        <city>郑州市</city>
        <state>河南省</state>
        <postalCode>450008</postalCode>
      </addr>
      <telecom value="13803710001"/>
      <patient classCode="PSN" determinerCode="INSTANCE">
        <!-- 患者身份证件号码 -->
        <id root="2.16.156.10011.1.3" extension="{id_card}"/>
        <name>{name}</name>
        <administrativeGenderCode code="2" codeSystem="2.16.156.10011.2.3.3.4" codeSystemName="生理性别代码表(GB/T 2261.1)" displayName="女性"/>
        <birthTime value="19491231"/>
        <maritalStatusCode code="30" codeSystem="2.16.156.10011.2.3.3.5" codeSystemName="婚姻状况代码表(GB/T 2261.2)" displayName="丧偶"/>
        <ethnicGroupCode code="01" codeSystem="2.16.156.10011.2.3.3.3" codeSystemName="民族类别代码表(GB 3304)" displayName="汉族"/>
      </patient>
    </patientRole>
  </recordTarget>
  <author typeCode="AUT" contextControlCode="OP">
    <time value="20190301"/>
    <assignedAuthor classCode="ASSIGNED">
      <id root="2.16.156.10011.1.7" extension="410105D0012"/>
      <assignedPerson>
        <name>王芳</name>
      </assignedPerson>
    </assignedAuthor>
  </author>
  <custodian typeCode="CST">
    <assignedCustodian classCode="ASSIGNED">
      <representedCustodianOrganization classCode="ORG" determinerCode="INSTANCE">
        <id root="2.16.156.10011.1.5" extension="{JINGBA[1]}"/>
        <name>{JINGBA[0]}</name>
      </representedCustodianOrganization>
    </assignedCustodian>
  </custodian>
</ClinicalDocument>
"""


XXE_DOCTYPE = """<!DOCTYPE ClinicalDocument [
  <!ENTITY secret SYSTEM "file:///etc/passwd">
]>
"""


# -- writing -------------------------------------------------------------------------------
def write_csv(path: Path, columns: list[str], rows: list[dict[str, str]], encoding: str = "utf-8-sig") -> None:
    with path.open("w", encoding=encoding, newline="") as handle:
        writer = csv.DictWriter(handle, columns, lineterminator="\r\n")
        writer.writeheader()
        writer.writerows(rows)


def write_all(out: Path = SAMPLES) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, columns, rows, encoding in [
        ("老年人健康管理.csv", ANNUAL_COLUMNS, annual_rows(), "utf-8-sig"),
        ("中医体质辨识.csv", TCM_COLUMNS, tcm_rows(), "utf-8-sig"),
        ("家庭医生签约.csv", CONTRACT_COLUMNS, contract_rows(), "utf-8-sig"),
        ("随访巡诊家床记录.csv", VISIT_COLUMNS, visit_rows(), "gb18030"),
    ]:
        write_csv(out / name, columns, rows, encoding)
        written.append(out / name)
    write_xlsx(out / "个人基本信息表.xlsx")
    written.append(out / "个人基本信息表.xlsx")
    for name, text in [
        ("健康档案-张秀英.xml", cda_document(ZHANG.id_card)),
        ("健康档案-身份证校验位错误.xml", cda_document(bad_checksum(ZHANG))),
        ("健康档案-外部实体.xml", cda_document(ZHANG.id_card, XXE_DOCTYPE, "&secret;")),
    ]:
        (out / name).write_bytes(text.encode("utf-8"))
        written.append(out / name)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, nargs="?", default=SAMPLES)
    args = parser.parse_args()
    for path in write_all(args.out):
        print(path)


if __name__ == "__main__":
    main()
