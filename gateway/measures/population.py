"""The 常住 (resident) population by division, sex and age band: the denominators of the
programme rates, which the archive cannot know (people who never used a service are not in
it).  The user supplies it from the statistics bureau or the health commission; without it
a rate has no denominator and the report says so.

The file is CSV (UTF-8, with or without BOM), one row per stratum::

    区划代码,性别,年龄段,常住人口
    410105,1,65-69,10234
    410105,2,85+,1520

性别 is the GB/T 2261.1 code (1 男, 2 女; ``male``/``female`` also read); 年龄段 is one of
:data:`AGE_BANDS`.  English headers ``division,sex,age_band,population`` are read too.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from gateway.messages import Worded, file_problem
from gateway.search.values import ascii_digits, natural_number

#: the age bands reports stratify by (age at the end of the period); the file uses the same
AGE_BANDS = ("0-64", "65-69", "70-74", "75-79", "80-84", "85+")
_HEADERS = {
    "区划代码": "division",
    "division": "division",
    "性别": "sex",
    "sex": "sex",
    "年龄段": "age_band",
    "age_band": "age_band",
    "常住人口": "population",
    "population": "population",
}
_SEXES = {"1": "male", "男": "male", "male": "male", "2": "female", "女": "female", "female": "female"}
#: a population file larger than this is not a table of strata
MAX_BYTES = 20_000_000


class PopulationFileError(Worded, ValueError):
    """A population file that cannot be read: a message id naming the file and line, worded
    in the reader's language (terminal or API; ``str()`` is the English)."""


def band_low(band: str) -> int:
    return int(band.rstrip("+").split("-")[0])


@dataclass(frozen=True)
class Stratum:
    division: str
    sex: str
    age_band: str
    count: int


class PopulationTable:
    def __init__(self, strata: list[Stratum], source: str) -> None:
        self.strata = strata
        self.source = source

    def residents(self, minimum_age: int, within: str | None = None) -> Counter[tuple[str, str, str]]:
        """(county, sex, age band) → residents at least ``minimum_age`` old in the division
        ``within`` (a code prefix); the county is a code's first six digits."""
        found: Counter[tuple[str, str, str]] = Counter()
        for row in self.strata:
            if band_low(row.age_band) >= minimum_age and row.division.startswith(within or ""):
                found[(row.division[:6], row.sex, row.age_band)] += row.count
        return found


def read_population(path: Path) -> PopulationTable:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PopulationFileError("measure.population.unreadable", path=path, reason=file_problem(exc)) from exc
    if len(data) > MAX_BYTES:
        raise PopulationFileError("measure.population.too-large", path=path, limit=MAX_BYTES)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PopulationFileError("measure.population.not-utf8", path=path, offset=exc.start) from exc
    rows = csv.reader(io.StringIO(text))
    header = next(rows, None)
    columns = [_HEADERS.get((name or "").strip()) for name in header or []]
    if header is None or set(_HEADERS.values()) - set(columns):
        raise PopulationFileError("measure.population.header", path=path)
    strata = []
    for line, row in enumerate(rows, start=2):
        if not any(cell.strip() for cell in row):
            continue
        values = {key: cell.strip() for key, cell in zip(columns, row, strict=False) if key}
        sex = _SEXES.get(values.get("sex", ""))
        band = values.get("age_band", "")
        division = values.get("division", "")
        count = values.get("population", "")
        if not ascii_digits(division):
            raise PopulationFileError("measure.population.division", path=path, line=line, value=division)
        if sex is None:
            raise PopulationFileError("measure.population.sex", path=path, line=line, value=values.get("sex", ""))
        if band not in AGE_BANDS:
            bands = ", ".join(AGE_BANDS)
            raise PopulationFileError("measure.population.age-band", path=path, line=line, value=band, bands=bands)
        people = natural_number(count)
        if people is None:
            raise PopulationFileError("measure.population.count", path=path, line=line, value=count)
        strata.append(Stratum(division, sex, band, people))
    return PopulationTable(strata, str(path))
