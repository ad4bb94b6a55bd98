"""Deterministic generator of legacy community-health exports (个人基本信息表), for tests,
benchmarks and demos: ``python -m bench.legacy_samples --rows 100000 out.csv``.

Rows use real GB/T 2260 county and township codes and valid 身份证 numbers; with
``--broken`` a share of rows carries the defects real exports have.
"""

from __future__ import annotations

import argparse
import csv
import random
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

from bench.synthetic import FAMILY, GIVEN, id_number

COLUMNS = [
    "序号",
    "个人档案编号",
    "姓名",
    "性别",
    "出生日期",
    "身份证号",
    "民族",
    "联系电话",
    "现住址",
    "县区代码",
    "乡镇街道代码",
    "常住类型",
    "血型",
    "文化程度",
    "婚姻状况",
    "医疗费用支付方式",
    "药物过敏史",
    "既往疾病",
    "医保人员编号",
    "建档日期",
]
PLACES = [
    ("410105", "410105001", "河南省郑州市金水区经八路街道"),
    ("410102", "410102001", "河南省郑州市中原区林山寨街道"),
    ("410302", "410302001", "河南省洛阳市老城区西关街道"),
    ("110105", "110105001", "北京市朝阳区建外街道"),
]
ETHNICITY = ["汉族"] * 8 + ["回族", "满族", "01", "汉"]
DISEASES = ["无", "高血压", "糖尿病", "高血压,糖尿病", "2", "冠心病、脑卒中", "无"]
DATE_STYLES = [
    lambda d: d.isoformat(),
    lambda d: f"{d.year}/{d.month}/{d.day}",
    lambda d: d.strftime("%Y%m%d"),
    lambda d: f"{d.year}年{d.month}月{d.day}日",
]


def rows(count: int, seed: int = 7, broken: float = 0.0) -> Iterator[dict[str, str]]:
    rng = random.Random(seed)
    for index in range(1, count + 1):
        county, township, address = rng.choice(PLACES)
        born = date(1930, 1, 1) + timedelta(days=rng.randrange(0, 365 * 35))
        male = rng.random() < 0.47
        name = rng.choice(FAMILY) + "".join(rng.choice(GIVEN) for _ in range(rng.choice([1, 2])))
        row = {
            "序号": str(index),
            "个人档案编号": f"{township}{index % 100000:08d}",
            "姓名": name,
            "性别": rng.choice(["男", "1"] if male else ["女", "2"]),
            "出生日期": rng.choice(DATE_STYLES)(born),
            "身份证号": id_number(rng, county, born, male),
            "民族": rng.choice(ETHNICITY),
            "联系电话": f"13{rng.randrange(0, 10**9):09d}",
            "现住址": f"{address}幸福社区{rng.randrange(1, 30)}号楼",
            "县区代码": county,
            "乡镇街道代码": township,
            "常住类型": rng.choice(["1", "户籍", "2"]),
            "血型": rng.choice(["1", "2", "3", "4", "5"]),
            "文化程度": str(rng.randrange(1, 11)),
            "婚姻状况": rng.choice(["2", "3", "已婚", "丧偶"]),
            "医疗费用支付方式": rng.choice(["1", "2", "3"]),
            "药物过敏史": rng.choice(["无", "无", "无", "青霉素", "2"]),
            "既往疾病": rng.choice(DISEASES),
            "医保人员编号": f"41{rng.randrange(0, 10**18):018d}",
            "建档日期": "2019-03-01",
        }
        if broken and rng.random() < broken:
            defect = rng.choice(["excel", "checksum", "date", "ethnicity"])
            if defect == "excel":
                row["身份证号"] = f"{int(row['身份证号'][:17]) / 10**16:.5f}E+17"
            elif defect == "checksum":
                row["身份证号"] = row["身份证号"][:17] + ("0" if row["身份证号"][17] != "0" else "1")
            elif defect == "date":
                row["出生日期"] = f"{born.year}-02-30"
            else:
                row["民族"] = "火星族"
        yield row


def write(path: Path, records: Iterator[dict[str, str]], encoding: str = "utf-8-sig") -> None:
    with path.open("w", encoding=encoding, newline="") as handle:
        writer = csv.DictWriter(handle, COLUMNS)
        writer.writeheader()
        writer.writerows(records)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--broken", type=float, default=0.0, help="share of rows with a defect")
    parser.add_argument("--encoding", default="utf-8-sig", choices=["utf-8-sig", "utf-8", "gb18030"])
    args = parser.parse_args()
    write(args.out, rows(args.rows, args.seed, args.broken), args.encoding)


if __name__ == "__main__":
    main()
