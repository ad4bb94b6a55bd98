"""Deterministic generator of more legacy records for any source, from its shipped samples.

    python -m bench.more_samples SOURCE COUNT OUT_DIR

Every sample file of a source carries the shared elder (张秀英, 410105194912310020).  Her
records are the templates: each generated person gets her own valid 身份证号, name, birth date
(in every spelling the exports use), 医保人员编号, 健康档案编号 and hospital patient id, and
the template records are written again for her in the file's own format — JSON array or
wrapper, NDJSON, HL7 v2 or CSV — so the output exercises exactly the paths the samples do.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import random
import re
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from bench.synthetic import FAMILY, GIVEN, id_number

SAMPLES = Path(__file__).resolve().parent.parent / "mappings" / "samples"
ELDER = {
    "id_card": "410105194912310020",
    "name": "张秀英",
    "psn_no": "41000000000000012345",
    "record_no": "41010500100100017",
    "his_id": "0000123",
}
BORN = date(1949, 12, 31)
#: the samples' record numbers (签约编号 QY…, 体检编号 TJ…, 入住编号 RZ…, HL7 control ids HIS…,
#: HIS visit numbers ZY…, MZ…, JZ…): each generated person gets her own, since a record's ids
#: come from its source key, and a stay one person's visit number keys is not another's
RECORD_NUMBER = re.compile(r"(?<![A-Za-z0-9])(?:QY|TJ|SF|JC|RZ|FW|YL|PG|LTC|HIS|HR-|ZY|MZ|JZ)[0-9][0-9-]*")


def _date_spellings(day: date) -> list[str]:
    return [
        day.isoformat(),
        day.strftime("%Y%m%d"),
        f"{day.year}年{day.month}月{day.day}日",
        f"{day.year}/{day.month}/{day.day}",
    ]


def people(count: int, seed: int = 5) -> Iterator[dict[str, str]]:
    """Women (the templates are a woman's records) born 1930–1955 in the elder's county."""
    rng = random.Random(seed)
    for index in range(count):
        born = date(1930, 1, 1) + timedelta(days=rng.randrange(0, 365 * 25))
        name = rng.choice(FAMILY) + "".join(rng.choice(GIVEN) for _ in range(2))
        yield {
            "id_card": id_number(rng, "410105", born, male=False),
            "name": name,
            "psn_no": f"41{rng.randrange(0, 10**18):018d}",
            "record_no": f"41010500100{index % 1000000:06d}",
            "his_id": f"9{index:06d}",
            "born": born.isoformat(),
            "serial": f"{index:06d}",
        }


def substitute(text: str, person: dict[str, str]) -> str:
    for key, value in ELDER.items():
        text = text.replace(value, person[key])
    born = date.fromisoformat(person["born"])
    for old, new in zip(_date_spellings(BORN), _date_spellings(born), strict=True):
        text = text.replace(old, new)
    return RECORD_NUMBER.sub(lambda found: f"{found.group()}P{person['serial']}", text)


def _records_path(document: Any) -> list[str] | None:
    """Where an export keeps its list of records: rows / data / records / list, at the top or
    one level down under data (data.records); None for a single-object file."""
    for key in ("rows", "data", "records", "list"):
        if isinstance(document.get(key), list):
            return [key]
    inner = document.get("data")
    if isinstance(inner, dict):
        for key in ("rows", "records", "list"):
            if isinstance(inner.get(key), list):
                return ["data", key]
    return None


def _templates_json(text: str) -> tuple[Callable[[list[Any]], str], list[str]]:
    document = json.loads(text)
    path = None if isinstance(document, list) else _records_path(document)
    if isinstance(document, list):
        items = document
    elif path is None:
        return (lambda records: json.dumps(records, ensure_ascii=False, indent=1)), [text]
    else:
        items = document[path[0]] if len(path) == 1 else document[path[0]][path[1]]

    def wrap(records: list[Any]) -> str:
        if path is None:
            return json.dumps(records, ensure_ascii=False, indent=1)
        holder = document if len(path) == 1 else document[path[0]]
        holder[path[-1]] = records
        return json.dumps(document, ensure_ascii=False, indent=1)

    chosen = list(
        dict.fromkeys(
            json.dumps(i, ensure_ascii=False) for i in items if ELDER["id_card"] in json.dumps(i, ensure_ascii=False)
        )
    )
    return wrap, chosen


def generate(source: str, count: int, out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for sample in sorted((SAMPLES / source).glob("*")):
        suffix = sample.suffix.lower()
        if suffix not in (".json", ".ndjson", ".hl7", ".csv"):
            continue
        raw = sample.read_bytes()
        encoding = "utf-8-sig" if raw.startswith(b"\xef\xbb\xbf") else "utf-8"
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError:
            encoding, text = "gb18030", raw.decode("gb18030")
        persons = list(people(count))
        if suffix == ".json":
            wrap, templates = _templates_json(text)
            if text in templates:  # one object per file: one output file, one object per person
                records = [json.loads(substitute(text, p)) for p in persons]
                body = json.dumps(records, ensure_ascii=False, indent=1)
            else:
                body = wrap([json.loads(substitute(t, p)) for p in persons for t in templates])
        elif suffix == ".hl7":
            messages = ["MSH" + m for m in text.replace("\r\n", "\r").replace("\n", "\r").split("MSH")[1:]]
            templates = list(dict.fromkeys(m for m in messages if ELDER["id_card"] in m and "ORU^" not in m))
            body = "".join(substitute(t, p) for p in persons for t in templates)
        elif suffix == ".ndjson":
            templates = list(dict.fromkeys(line for line in text.splitlines() if ELDER["id_card"] in line))
            body = "".join(substitute(t, p) + "\n" for p in persons for t in templates)
        else:
            rows = list(csv.reader(io.StringIO(text)))
            # each distinct row once: the samples repeat the elder's row on purpose (a duplicate)
            templates = [list(r) for r in dict.fromkeys(tuple(r) for r in rows[1:] if ELDER["id_card"] in ",".join(r))]
            buffer = io.StringIO()
            writer = csv.writer(buffer)
            writer.writerow(rows[0])
            for person in persons:
                for row in templates:
                    writer.writerow([substitute(cell, person) for cell in row])
            body = buffer.getvalue()
        if not body.strip():
            continue  # a sample without the elder's records has nothing to repeat (an empty file is no export)
        target = out_dir / sample.name
        target.write_bytes(body.encode("gb18030" if encoding == "gb18030" else "utf-8"))
        written.append(target)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", choices=["community-health", "elderly-care", "insurance", "hl7v2"])
    parser.add_argument("count", type=int, help="how many people")
    parser.add_argument("out_dir", type=Path)
    args = parser.parse_args()
    for path in generate(args.source, args.count, args.out_dir):
        print(path)


if __name__ == "__main__":
    main()
