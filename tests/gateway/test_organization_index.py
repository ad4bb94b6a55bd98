"""One organisation, one Organization: an institution a legacy record names becomes the
Organization of the archive holding its 统一社会信用代码 (or another of its identifiers), not a
second one under the id of its key — on SQLite and PostgreSQL."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

from conformance.validator import Validator
from gateway.ingest.commands import build_engine, summary
from gateway.ingest.pipeline import Counts, Ingest, Outcome
from gateway.storage.store import Store
from mappings.engine import reference_nodes
from mappings.readers import read
from mappings.records import SourceRecord
from profiles.registry import Registry
from tests.conftest import load_example
from tests.ingest_output import keyed_id

SAMPLES = Path(__file__).resolve().parents[2] / "mappings" / "samples" / "community-health"
USCC = "http://fhir.yiyang.cn/sid/uscc"
JINGBALU = "12410105MB01928377"
#: the id the ingest keys the 经八路 centre under (type and 统一社会信用代码)
KEYED = keyed_id("Organization", USCC, JINGBALU)
#: the package's example of the centre, with its 定点医药机构编号 beside the 统一社会信用代码
EXAMPLE = load_example("yy-organization/valid-community-health-center.json")


def records(file: str, *locations: str) -> list[SourceRecord]:
    return [r for r in read(SAMPLES / file, "community-health") if r.location in locations]


def contracts() -> list[SourceRecord]:
    """The 家庭医生签约 rows naming the 经八路 centre that land (the others are broken rows)."""
    return records("家庭医生签约.csv", "row 2", "row 12", "row 13", "row 14", "row 16")


def ingest(store: Store, validator: Validator, found: list[SourceRecord]) -> tuple[Counts, list[Outcome]]:
    run = Ingest(store, validator, build_engine(Registry()))
    outcomes = [run.process(record) for record in found]
    return run.finish(), outcomes


def put(store: Store, resource: dict[str, Any], keyed: bool = False) -> None:
    with store.transaction() as tx:
        tx.resources.write(copy.deepcopy(resource))
        if keyed:
            tx.keyed.put("Organization", resource["id"], None)


def holders(store: Store, value: str = JINGBALU) -> list[str]:
    with store.reading() as tx:
        return tx.resources.holding_identifier("Organization", USCC, value)


def organization(store: Store, resource_id: str) -> dict[str, Any] | None:
    with store.reading() as tx:
        stored = tx.resources.read("Organization", resource_id)
    return stored.content if stored is not None and stored.resource is not None else None


def references(store: Store, outcomes: list[Outcome]) -> set[str]:
    """Every Organization reference of what the records wrote, as stored."""
    found = set()
    with store.reading() as tx:
        for outcome in outcomes:
            for kind, resource_id in outcome.written:
                stored = tx.resources.read(kind, resource_id)
                assert stored is not None
                found |= {n["reference"] for n in reference_nodes(stored.content)}
    return {reference for reference in found if reference.startswith("Organization/")}


def test_an_institution_the_archive_holds_under_another_id_is_that_organization(
    store: Store, validator: Validator
) -> None:
    """The package example's 经八路 centre, then every 签约 of it: one Organization, the
    example, which keeps its 定点医药机构编号; every reference and Provenance names it."""
    put(store, EXAMPLE)
    counts, outcomes = ingest(store, validator, contracts())
    assert [o.status for o in outcomes] == ["mapped"] * len(outcomes)
    assert holders(store) == ["jingbalu-chc"]
    assert organization(store, KEYED) is None
    kept = organization(store, "jingbalu-chc")
    assert kept is not None and kept["identifier"] == EXAMPLE["identifier"]
    assert references(store, outcomes) == {"Organization/jingbalu-chc"}
    assert all(("Organization", "jingbalu-chc") in o.written for o in outcomes)
    assert counts.resources["Organization"] == 1 and counts.reconciled


def test_the_archive_keeps_what_its_organization_says_and_gains_what_it_lacked(
    store: Store, validator: Validator
) -> None:
    """Merged as a person is: the archive's name stays, an identifier it lacked is added."""
    curated = {**copy.deepcopy(EXAMPLE), "name": "经八路街道社区卫生服务中心"}
    curated["identifier"] = [{"system": "http://fhir.yiyang.cn/sid/nhsa-fixmedins-code", "value": "H41010500102"}]
    curated["identifier"].append({"system": USCC, "value": JINGBALU})
    put(store, curated)
    ingest(store, validator, records("老年人健康管理.csv", "row 2"))
    kept = organization(store, "jingbalu-chc")
    assert kept is not None
    assert (kept["name"], kept["identifier"]) == ("经八路街道社区卫生服务中心", curated["identifier"])


def test_a_run_again_changes_nothing_and_another_file_names_the_same_organization(
    store: Store, validator: Validator
) -> None:
    put(store, EXAMPLE)
    ingest(store, validator, contracts())
    with store.reading() as tx:
        version = tx.resources.read("Organization", "jingbalu-chc").version  # type: ignore[union-attr]
    counts, outcomes = ingest(store, validator, contracts())
    assert [o.status for o in outcomes] == ["unchanged"] * len(outcomes)
    _, checks = ingest(store, validator, records("老年人健康管理.csv", "row 2"))
    assert [o.status for o in checks] == ["mapped"]
    assert references(store, checks) == {"Organization/jingbalu-chc"}
    assert holders(store) == ["jingbalu-chc"]
    with store.reading() as tx:
        assert tx.resources.read("Organization", "jingbalu-chc").version == version  # type: ignore[union-attr]


def test_a_record_repeated_in_another_export_only_repeats_it(store: Store, validator: Validator) -> None:
    """The same 签约 in a second file of the run (its CarePlan now naming the example, not the
    keyed id) is the same record, not another under its key."""
    put(store, EXAMPLE)
    [row] = records("家庭医生签约.csv", "row 2")
    again = SourceRecord(
        row.source, "家庭医生签约-副本.csv", row.location, row.fields, row.raw, row.field_label, row.shape
    )
    _, outcomes = ingest(store, validator, [row, again])
    assert [o.status for o in outcomes] == ["mapped", "mapped"]
    assert [r.message_id for o in outcomes for r in o.reasons] == []


def test_an_organization_keyed_under_another_identifier_keeps_every_identifier(
    store: Store, validator: Validator
) -> None:
    """An Organization the ingest keyed (by a 执业许可证号, say) that also holds the 统一社会信用
    代码: the record merges onto it as onto any keyed resource, the later statement's elements
    winning, but none of its identifiers is dropped (the next record carrying the licence
    would have made a second one)."""
    licence = {"system": "http://fhir.yiyang.cn/sid/medical-institution-license", "value": "PDY00003-341010515A1003"}
    known = {**copy.deepcopy(EXAMPLE), "id": "keyed-elsewhere", "name": "旧名称"}
    known["identifier"] = [licence, {"system": USCC, "value": JINGBALU}]
    put(store, known, keyed=True)
    _, outcomes = ingest(store, validator, records("老年人健康管理.csv", "row 2"))
    assert [o.status for o in outcomes] == ["mapped"]
    kept = organization(store, "keyed-elsewhere")
    assert kept is not None
    assert (kept["name"], kept["identifier"]) == ("郑州市金水区经八路街道社区卫生服务中心", known["identifier"])
    assert holders(store) == ["keyed-elsewhere"]
    assert references(store, outcomes) == {"Organization/keyed-elsewhere"}


def test_an_institution_two_organizations_of_the_archive_claim_is_quarantined_naming_both(
    store: Store, validator: Validator
) -> None:
    """The archive holds the centre twice (written before organisations were resolved): the
    record cannot tell which it is, so it waits for the 主索引 staff, and writes nothing."""
    put(store, EXAMPLE)
    put(store, {**copy.deepcopy(EXAMPLE), "id": KEYED, "identifier": [{"system": USCC, "value": JINGBALU}]})
    counts, [outcome] = ingest(store, validator, records("老年人健康管理.csv", "row 2"))
    assert [r.message_id for r in outcome.reasons] == ["ingest.organization-conflict"]
    assert f"Organization/jingbalu-chc ({USCC}|{JINGBALU})" in outcome.reasons[0].text["en"]
    assert f"Organization/{KEYED} ({USCC}|{JINGBALU})" in outcome.reasons[0].text["zh-CN"]
    assert (counts.quarantined, outcome.written, sorted(holders(store))) == (1, [], sorted(["jingbalu-chc", KEYED]))


def test_without_a_holder_the_institution_is_the_keyed_one_as_before(store: Store, validator: Validator) -> None:
    _, outcomes = ingest(store, validator, [*contracts(), *records("老年人健康管理.csv", "row 2")])
    assert holders(store) == [KEYED]
    assert references(store, outcomes) == {f"Organization/{KEYED}"}


def renamed(record: SourceRecord, name: str) -> SourceRecord:
    """The record naming its institution ``name``."""
    return dataclasses.replace(record, fields={**record.fields, "签约机构": name})


def conflicts(store: Store) -> list[dict[str, Any]]:
    """The entries without the time each was recorded, which no test here foretells."""
    with store.reading() as tx:
        return [{k: v for k, v in entry.items() if k != "recorded"} for entry in tx.conflicts.entries()]


def test_a_name_the_archive_keeps_over_the_record_s_is_listed_as_a_conflict(store: Store, validator: Validator) -> None:
    """The platform's Organization keeps its name, as a person keeps hers: the record's other
    name for the same 统一社会信用代码 was dropped unseen."""
    put(store, {**EXAMPLE, "name": "经八路社区卫生服务中心"})
    ingest(store, validator, contracts()[:1])
    assert conflicts(store) == [
        {
            "organization": f"Organization/{EXAMPLE['id']}",
            "identifier": f"{USCC}|{JINGBALU}",
            "element": "name",
            "kept": "经八路社区卫生服务中心",
            "offered": "郑州市金水区经八路街道社区卫生服务中心",
            "source": "community-health",
            "file": "家庭医生签约.csv",
            "location": "row 2",
        }
    ]


def test_a_keyed_organization_renamed_by_a_later_record_lists_the_name_it_replaced(
    store: Store, validator: Validator
) -> None:
    first, later = contracts()[:2]
    ingest(store, validator, [first, renamed(later, "金水区经八路社区卫生服务中心")])
    found = [(c["organization"], c["kept"], c["offered"], c["location"]) for c in conflicts(store)]
    assert found == [
        (f"Organization/{KEYED}", "金水区经八路社区卫生服务中心", "郑州市金水区经八路街道社区卫生服务中心", "row 12")
    ]


def test_the_run_counts_the_organization_names_that_disagree_apart_from_people(
    store: Store, validator: Validator
) -> None:
    first, later = contracts()[:2]
    counts, _ = ingest(store, validator, [first, renamed(later, "金水区经八路社区卫生服务中心")])
    assert (counts.organization_names, counts.conflicts) == (1, 0)


def test_the_summary_says_how_many_organization_names_disagree(store: Store, validator: Validator) -> None:
    first, later = contracts()[:2]
    counts, _ = ingest(store, validator, [first, renamed(later, "金水区经八路社区卫生服务中心")])
    assert "同一机构标识对应的机构名称不一致 1 处，详见 identity-conflicts.ndjson" in summary(counts, "zh-CN")
