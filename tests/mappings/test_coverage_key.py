"""The 1101 reply's Coverage is keyed on the 参保关系 (psn_no + insutype + psn_insu_date), not on the
reply's message id: querying the same person again updates the same Coverage."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from gateway.ingest import commands
from profiles.registry import Registry
from tests.ingest_output import keyed_id, ndjson

SAMPLE = Path(__file__).resolve().parents[2] / "mappings/samples/insurance/1101.json"
PSN_NO = "41000000000000012345"
EMPLOYEE = keyed_id("Coverage", PSN_NO, "310", "2004-07-01")
SUPPLEMENT = keyed_id("Coverage", PSN_NO, "330", "2004-07-01")


def reply() -> dict[str, Any]:
    return json.loads(SAMPLE.read_text(encoding="utf-8"))


def ingest(reply: dict[str, Any], folder: Path, out: Path) -> commands.Counts:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "1101.json"
    path.write_text(json.dumps(reply, ensure_ascii=False), encoding="utf-8")
    return commands.ingest("insurance", [path], out, Registry(), bundle=False)


def coverages(out: Path) -> dict[str, dict[str, Any]]:
    found = [c for c in ndjson(out / "Coverage.ndjson") if c["subscriberId"] == PSN_NO]
    assert len(found) == len({c["id"] for c in found}), "a Coverage written twice"
    return {c["id"]: c for c in found}


def test_coverage_id_is_the_insurance_relation_not_the_message(tmp_path: Path) -> None:
    out = tmp_path / "out"
    counts = ingest(reply(), tmp_path / "first", out)
    assert (counts.mapped, sorted(coverages(out))) == (1, sorted([EMPLOYEE, SUPPLEMENT]))


def test_a_new_query_about_the_same_person_updates_the_same_coverages(tmp_path: Path) -> None:
    """A month later the 1101 query is sent again (a new inf_refmsgid): the employee insurance is
    now paused (psn_insu_stas 2, paus_insu_date) and the employer renamed.  Still two Coverages,
    the same ids, the new state."""
    out = tmp_path / "out"
    ingest(reply(), tmp_path / "first", out)
    later = reply()
    later["inf_refmsgid"] = "410105202607150900000000000456"
    later["refmsg_time"] = later["respond_time"] = "20260715090000456"
    employee = later["output"]["insuinfo"][0]
    employee.update(psn_insu_stas="2", paus_insu_date="2026-06-30", emp_name="郑州纺织集团有限公司", balc=0)
    again = ingest(later, tmp_path / "second", out)
    found = coverages(out)
    assert (again.mapped, again.quarantined, sorted(found)) == (1, 0, sorted([EMPLOYEE, SUPPLEMENT]))
    assert (
        found[EMPLOYEE]["status"],
        found[EMPLOYEE]["extension"][0]["valueCoding"]["code"],
        found[EMPLOYEE]["period"],
        found[EMPLOYEE]["policyHolder"]["display"],
    ) == ("active", "2", {"start": "2004-07-01", "end": "2026-06-30"}, "郑州纺织集团有限公司")
    assert found[EMPLOYEE]["beneficiary"] == found[SUPPLEMENT]["beneficiary"]
    assert len({p["id"] for p in ndjson(out / "Patient.ndjson")}) == 1


def test_the_same_reply_ingested_again_changes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    ingest(reply(), tmp_path / "first", out)
    before = coverages(out)
    ingest(reply(), tmp_path / "second", out)
    assert coverages(out) == before


def test_a_new_insurance_start_is_a_coverage_of_its_own(tmp_path: Path) -> None:
    """Insured again under the same 险种 from another date (a new 参保关系): a third Coverage."""
    out = tmp_path / "out"
    ingest(reply(), tmp_path / "first", out)
    later = reply()
    later["inf_refmsgid"] = "410105202607150900000000000789"
    rejoined = copy.deepcopy(later["output"]["insuinfo"][0])
    rejoined.update(psn_insu_date="2026-07-01")
    later["output"]["insuinfo"][0].update(psn_insu_stas="4", paus_insu_date="2026-06-30")
    later["output"]["insuinfo"].append(rejoined)
    ingest(later, tmp_path / "second", out)
    found = coverages(out)
    assert sorted(found) == sorted([EMPLOYEE, SUPPLEMENT, keyed_id("Coverage", PSN_NO, "310", "2026-07-01")])
    assert found[EMPLOYEE]["status"] == "cancelled"
