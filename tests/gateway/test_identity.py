"""The identity index: what it does when two sources disagree about one person."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.cli import main
from gateway.fhir.identity_index import register_person
from gateway.ingest.identity import Conflict, DocumentMismatch, IdentityIndex, merge
from gateway.search.indexer import SearchIndexer
from gateway.security.access import Access, PersonalData
from gateway.storage import open_store
from gateway.storage.store import Store
from profiles.canonical import HEALTH_RECORD_SYSTEM
from profiles.registry import Registry
from tests.ingest_output import ndjson

ID_CARD = "410102195608016041"
HEADER = "序号,个人档案编号,姓名,性别,出生日期,身份证号,民族,婚姻状况\n"


def patient(id_: str, **elements: Any) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": id_,
        "identifier": [{"system": "urn:oid:2.16.156.10011.1.3", "value": ID_CARD}],
        **elements,
    }


def widowed(display: str | None) -> dict[str, Any]:
    coding = {"system": "urn:oid:2.16.156.10011.2.3.3.5", "code": "40"}
    return {"coding": [coding | ({"display": display} if display else {})]}


class Index:
    """The identity index as one ingest record uses it: resolve, then write the person."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.identity = IdentityIndex()

    def resolve(
        self, arriving: dict[str, Any], source: str | None = None, sender: str | None = None
    ) -> tuple[str, list[Conflict]]:
        with self.store.transaction() as tx:
            person, conflicts = self.identity.resolve(tx, arriving, source, sender)
            tx.resources.write(person)
            self.identity.remember(tx, person)
        return person["id"], conflicts

    def people(self) -> int:
        with self.store.reading() as tx:
            return tx.resources.counts().get("Patient", 0)


@pytest.fixture
def index(tmp_path: Path, indexer: SearchIndexer) -> Iterator[Index]:
    store = open_store(f"sqlite:///{tmp_path / 'archive.sqlite'}", indexer.rows)
    yield Index(store)
    store.close()


def test_a_different_name_for_the_same_person_is_reported_and_the_archive_keeps_its_own(
    index: Index,
) -> None:
    index.resolve(patient("a", name=[{"text": "孙福春"}]))
    assert index.resolve(patient("b", name=[{"text": "孙福淳"}])) == (
        "a",
        [Conflict("a", "name", [{"text": "孙福春"}], [{"text": "孙福淳"}])],
    )


def test_the_same_code_spelt_with_or_without_a_display_is_no_disagreement(index: Index) -> None:
    index.resolve(patient("a", maritalStatus=widowed("丧偶")))
    assert index.resolve(patient("b", maritalStatus=widowed(None)))[1] == []


def ethnicity(code: str) -> list[dict[str, Any]]:
    coding = {"system": "urn:oid:2.16.156.10011.2.3.3.3", "code": code}
    return [{"url": "http://fhir.yiyang.cn/StructureDefinition/yy-ext-ethnicity", "valueCoding": coding}]


def test_another_ethnicity_for_the_same_person_is_reported_not_dropped(index: Index) -> None:
    index.resolve(patient("a", extension=ethnicity("01")))
    assert [c.element for c in index.resolve(patient("b", extension=ethnicity("03")))[1]] == [
        "extension('http://fhir.yiyang.cn/StructureDefinition/yy-ext-ethnicity')"
    ]


def test_the_same_ethnicity_with_a_display_is_no_disagreement(index: Index) -> None:
    index.resolve(patient("a", extension=ethnicity("01")))
    spelt = ethnicity("01")
    spelt[0]["valueCoding"]["display"] = "汉族"
    assert index.resolve(patient("b", extension=spelt))[1] == []


def test_a_new_phone_number_is_an_addition_not_a_disagreement(index: Index) -> None:
    index.resolve(patient("a", telecom=[{"system": "phone", "value": "13251610956"}]))
    assert index.resolve(patient("b", telecom=[{"system": "phone", "value": "037165551234"}]))[1] == []


def ingest_two_spellings(tmp_path: Path) -> Path:
    """The output folder of an ingest of one person's record in two files, the second with
    another spelling of the name."""
    first, second = tmp_path / "社区.csv", tmp_path / "复核.csv"
    first.write_text(HEADER + f"1,41010200100000001,孙福春,女,1956-08-01,{ID_CARD},回族,丧偶\n", encoding="utf-8")
    second.write_text(HEADER + f"1,41010200100000002,孙福淳,女,1956-08-01,{ID_CARD},回族,丧偶\n", encoding="utf-8")
    out = tmp_path / "out"
    main(["ingest", "--source", "community-health", "--out", str(out), str(first), str(second)])
    return out


def test_ingest_writes_each_disagreement_with_its_record_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = ingest_two_spellings(tmp_path)
    said = capsys.readouterr().out
    [line] = ndjson(out / "identity-conflicts.ndjson")
    assert (
        line["element"],
        line["kept"],
        line["offered"],
        line["file"],
        line["location"],
        "身份信息不一致 1 处" in said,
    ) == (
        "name",
        [{"text": "孙福春"}],
        [{"text": "孙福淳"}],
        "复核.csv",
        "row 2",
        True,
    )


def test_the_conflicts_file_says_when_each_entry_was_recorded(tmp_path: Path) -> None:
    """As ``$identity-conflicts`` does: the file said what disagreed, not how long it waited."""
    [line] = ndjson(ingest_two_spellings(tmp_path) / "identity-conflicts.ndjson")
    assert line["recorded"].endswith("Z")


def test_a_new_person_proposing_an_id_someone_else_holds_gets_another(index: Index) -> None:
    """Row 2 of two clinics' 个人基本信息表.csv propose the same id for two different people."""
    first, _ = index.resolve(patient("same-row-id"))
    other = {
        **patient("same-row-id"),
        "identifier": [{"system": "urn:oid:2.16.156.10011.1.3", "value": "110105196304029911"}],
    }
    second, _ = index.resolve(other)
    assert (first, second != first, index.people()) == ("same-row-id", True, 2)


def test_a_residence_permit_is_a_strong_identity_key() -> None:
    from gateway.match_keys import match_keys

    permit = {"system": "http://fhir.yiyang.cn/sid/hmt-residence-permit", "value": "81000019850312002x"}
    assert match_keys({"identifier": [permit]}) == ["hmt|81000019850312002X"]


def test_a_name_spelt_out_in_parts_is_the_same_name(index: Index) -> None:
    index.resolve(patient("a", name=[{"text": "张秀英", "family": "张", "given": ["秀英"]}]))
    assert index.resolve(patient("b", name=[{"text": "张秀英"}]))[1] == []


YY_PATIENT = "http://fhir.yiyang.cn/StructureDefinition/yy-patient"
PAYMENT_METHOD = "http://fhir.yiyang.cn/StructureDefinition/yy-ext-payment-method"


def paying(*codes: str, profiled: bool = True) -> dict[str, Any]:
    """A Patient paying by each of ``codes`` (医疗费用支付方式, 0..* in yy-patient)."""
    coding = [{"url": PAYMENT_METHOD, "valueCoding": {"system": "urn:x:payment", "code": code}} for code in codes]
    return patient("p", extension=coding, **({"meta": {"profile": [YY_PATIENT]}} if profiled else {}))


def payment_codes(index: Index, person: str) -> list[str]:
    with index.store.reading() as tx:
        stored = tx.resources.read("Patient", person)
    assert stored is not None
    return [e["valueCoding"]["code"] for e in stored.content["extension"] if e["url"] == PAYMENT_METHOD]


@pytest.fixture
def profiled(index: Index) -> Index:
    """The index as ingest builds it: the registry's profiles say which extensions repeat."""
    index.identity = IdentityIndex(Registry())
    return index


def test_a_repeating_extension_gains_the_value_it_lacked(profiled: Index) -> None:
    profiled.resolve(paying("1"))
    person, _ = profiled.resolve(paying("5"))
    assert payment_codes(profiled, person) == ["1", "5"]


def test_another_value_of_a_repeating_extension_is_no_disagreement(profiled: Index) -> None:
    profiled.resolve(paying("1"))
    assert profiled.resolve(paying("5"))[1] == []


def test_a_repeating_extension_merges_without_duplicates(profiled: Index) -> None:
    profiled.resolve(paying("1", "5"))
    person, _ = profiled.resolve(paying("5", "1", "3"))
    assert payment_codes(profiled, person) == ["1", "5", "3"]


def test_an_extension_no_profile_describes_repeats_when_the_data_repeats_it(index: Index) -> None:
    index.resolve(paying("1", "5", profiled=False))
    person, _ = index.resolve(paying("3", profiled=False))
    assert payment_codes(index, person) == ["1", "5", "3"]


ETHNICITY = "http://fhir.yiyang.cn/StructureDefinition/yy-ext-ethnicity"


def test_a_profile_saying_once_wins_over_a_record_that_repeats_it(profiled: Index) -> None:
    """民族 is 0..1 in yy-patient: a record carrying two does not make the person carry both."""
    ethnicity = [{"url": ETHNICITY, "valueCoding": {"system": "urn:x:ethnicity", "code": c}} for c in ("01", "02")]
    profiled.resolve(patient("p", meta={"profile": [YY_PATIENT]}, extension=ethnicity[:1]))
    person, conflicts = profiled.resolve(patient("p", meta={"profile": [YY_PATIENT]}, extension=ethnicity))
    assert [c.element for c in conflicts] == [f"extension('{ETHNICITY}')"]


EMERGENCY = [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0131", "code": "C"}]}]


def reached_at(*numbers: str, name: str | None = None) -> dict[str, Any]:
    """A Patient whose contact (an HIS's emergency contact, or a named one) is reached at ``numbers``."""
    contact = {"relationship": EMERGENCY, "telecom": [{"system": "phone", "value": n} for n in numbers]}
    return patient("p", contact=[contact | ({"name": {"text": name}} if name else {})])


def contact_numbers(index: Index, person: str) -> list[list[str]]:
    with index.store.reading() as tx:
        stored = tx.resources.read("Patient", person)
    assert stored is not None
    return [[t["value"] for t in c["telecom"]] for c in stored.content.get("contact", [])]


def test_a_source_s_new_emergency_contact_replaces_the_one_it_sent_before(index: Index) -> None:
    """The son's number was the HIS's emergency contact; now the daughter's is: not both."""
    index.resolve(reached_at("13903710002"), "hl7v2")
    person, _ = index.resolve(reached_at("13703710003"), "hl7v2")
    assert contact_numbers(index, person) == [["13703710003"]]


def test_another_source_s_contact_stays_beside_a_source_s_new_one(index: Index) -> None:
    index.resolve(reached_at("13603710004", name="李明"), "elderly-care")
    index.resolve(reached_at("13903710002"), "hl7v2")
    person, _ = index.resolve(reached_at("13703710003"), "hl7v2")
    assert contact_numbers(index, person) == [["13603710004"], ["13703710003"]]


def test_a_contact_two_sources_sent_stays_when_one_of_them_sends_another(index: Index) -> None:
    """李明 of the 老人档案 is the HIS's emergency number too; the HIS's new one leaves him in place."""
    index.resolve(reached_at("13603710004", name="李明"), "elderly-care")
    index.resolve(reached_at("13603710004"), "hl7v2")
    person, _ = index.resolve(reached_at("13703710003"), "hl7v2")
    assert contact_numbers(index, person) == [["13603710004"], ["13703710003"]]


def test_a_contact_written_without_a_source_stays(index: Index) -> None:
    """A contact a REST client wrote belongs to no source an ingest could speak for."""
    index.resolve(reached_at("13603710004"))
    person, _ = index.resolve(reached_at("13703710003"), "hl7v2")
    assert contact_numbers(index, person) == [["13603710004"], ["13703710003"]]


def test_two_hospitals_keep_each_their_own_emergency_contact(index: Index) -> None:
    """A person treated in two hospitals: both HIS are of source hl7v2, and hospital B's ADT
    replaced the emergency contact hospital A sent.  Each hospital's contacts are its own now."""
    index.resolve(reached_at("13903710002"), "hl7v2", "HIS^H41010500012")
    index.resolve(reached_at("13703710003"), "hl7v2", "HIS^H41010200034")
    person, _ = index.resolve(reached_at("13503710005"), "hl7v2", "HIS^H41010500012")
    assert contact_numbers(index, person) == [["13703710003"], ["13503710005"]]


def test_a_contact_names_the_system_that_sent_it(index: Index) -> None:
    """An auditor reads which hospital's HIS sent the emergency contact, not only that an HIS did."""
    person, _ = index.resolve(reached_at("13903710002"), "hl7v2", "HIS^H41010500012")
    with index.store.reading() as tx:
        [contact] = tx.resources.read("Patient", person).content["contact"]
    assert contact["extension"] == [HIS_A]


def test_a_message_naming_no_sender_leaves_a_named_hospital_s_contacts(index: Index) -> None:
    """An HL7 message without MSH-3 and MSH-4 is known by its kind alone: it speaks for no hospital."""
    index.resolve(reached_at("13903710002"), "hl7v2", "HIS^H41010500012")
    person, _ = index.resolve(reached_at("13703710003"), "hl7v2")
    assert contact_numbers(index, person) == [["13903710002"], ["13703710003"]]


def sent_by(source: str) -> dict[str, Any]:
    """The mark of a contact ``source`` sent naming no sender (yy-ext-contact-source): an
    export file's, and every mark of version 0.1.0."""
    return {"url": "http://fhir.yiyang.cn/StructureDefinition/yy-ext-contact-source", "valueCode": source}


def named(sender: str) -> dict[str, Any]:
    """The mark of a contact the HIS ``sender`` (MSH-3^MSH-4) sent."""
    system = "http://fhir.yiyang.cn/sid/sending-system/hl7v2"
    return {"url": sent_by("hl7v2")["url"], "valueIdentifier": {"system": system, "value": sender}}


HIS_A = named("HIS^H41010500012")


def test_the_system_a_named_senders_mark_writes_is_one_the_package_declares() -> None:
    """The namespace of HL7 v2 senders is data a client can look up (NamingSystem
    sending-system-hl7v2), under this registry's base as the mark is."""
    registry = Registry()
    mark = IdentityIndex(registry).mark("hl7v2", "HIS^H41010500012") or {}
    declared = registry.naming_system(mark["valueIdentifier"]["system"]) or {}
    assert declared.get("id") == "sending-system-hl7v2"


def test_a_named_hospital_takes_over_the_contacts_marked_with_its_kind_alone() -> None:
    """Stored under 0.1.0, 李明 and 王芳 carry the mark hl7v2 alone: the contacts of the last HIS
    that sent the person's, whichever it was.  The first hospital to send contacts under its name
    takes them over: 李明, whom it sends again, stays in his place as its own; 王芳, whom it does
    not, goes (another hospital's, she comes back with its next message), as a changed emergency
    contact must not stand beside the old one; the 老人档案's 张强 stays."""
    archive = {
        "resourceType": "Patient",
        "contact": [
            {"name": {"text": "李明"}, "extension": [sent_by("hl7v2")]},
            {"name": {"text": "王芳"}, "extension": [sent_by("hl7v2")]},
            {"name": {"text": "张强"}, "extension": [sent_by("elderly-care")]},
        ],
    }
    incoming = {"contact": [{"name": {"text": "李明"}}, {"name": {"text": "赵军"}}]}
    merged = merge(archive, incoming, frozenset(), HIS_A)
    assert merged["contact"] == [
        {"name": {"text": "李明"}, "extension": [HIS_A]},
        {"name": {"text": "张强"}, "extension": [sent_by("elderly-care")]},
        {"name": {"text": "赵军"}, "extension": [HIS_A]},
    ]


def test_a_contact_that_gained_a_relationship_from_another_source_is_found_again_by_its_own(
    index: Index,
) -> None:
    """李明, the 老人档案's 儿子, is the HIS's emergency number too and gained its C: the 老人档案
    sending him again, compared with the contact as it stands, no longer found him and appended
    a second 李明."""
    son = {"relationship": [{"text": "儿子"}], "name": {"text": "李明"}}
    son["telecom"] = [{"system": "phone", "value": "13603710004"}]
    index.resolve(patient("p", contact=[copy.deepcopy(son)]), "elderly-care")
    index.resolve(reached_at("13603710004"), "hl7v2", "HIS^H41010500012")
    person, _ = index.resolve(patient("p", contact=[copy.deepcopy(son)]), "elderly-care")
    with index.store.reading() as tx:
        [contact] = tx.resources.read("Patient", person).content["contact"]
    assert contact == {**son, "relationship": [*son["relationship"], *EMERGENCY]} | {
        "extension": [sent_by("elderly-care"), HIS_A]
    }


def test_a_relationship_its_only_source_no_longer_sends_is_withdrawn(index: Index) -> None:
    """李明 was the 老人档案's 儿子 and emergency contact; sent again as 儿子 alone, he was found
    as the contact holding more (relationships another source might have given) and stayed the
    emergency contact for good."""
    son = {"relationship": [{"text": "儿子"}], "name": {"text": "李明"}}
    son["telecom"] = [{"system": "phone", "value": "13603710004"}]
    both = {**son, "relationship": [*son["relationship"], *EMERGENCY]}
    index.resolve(patient("p", contact=[copy.deepcopy(both)]), "elderly-care")
    person, _ = index.resolve(patient("p", contact=[copy.deepcopy(son)]), "elderly-care")
    with index.store.reading() as tx:
        [contact] = tx.resources.read("Patient", person).content["contact"]
    assert contact["relationship"] == son["relationship"]


def test_a_source_sending_its_contact_again_leaves_it_where_it_stands() -> None:
    """李明, the HIS's emergency contact, stays before 王芳 (written over REST) when the HIS names
    him again: moved behind her, every such message wrote a new version of the person."""
    archive = {"resourceType": "Patient", "contact": [{"name": {"text": "李明"}, "extension": [sent_by("hl7v2")]}]}
    archive["contact"].append({"name": {"text": "王芳"}})
    incoming = {"resourceType": "Patient", "contact": [{"name": {"text": "李明"}}]}
    merged = merge(copy.deepcopy(archive), incoming, frozenset(), sent_by("hl7v2"))
    assert merged["contact"] == archive["contact"]


NUMBERS = st.lists(
    st.fixed_dictionaries({"system": st.just("phone"), "value": st.sampled_from(["13603710004", "13703710003"])}),
    min_size=1,
    max_size=2,
    unique_by=lambda point: point["value"],
)
#: a person's contacts: named (李明, 王芳), or only a number to call (an HIS's emergency number)
CONTACTS = st.lists(
    st.one_of(
        st.fixed_dictionaries(
            {"name": st.fixed_dictionaries({"text": st.sampled_from(["李明", "王芳"])})}, optional={"telecom": NUMBERS}
        ),
        st.fixed_dictionaries({"telecom": NUMBERS}),
    ),
    max_size=3,
)
SOURCES = st.sampled_from(["hl7v2", "elderly-care"])
#: the HIS's mark: of its kind alone (0.1.0, or a message naming no sender), or named
HIS_MARKS = st.sampled_from([sent_by("hl7v2"), HIS_A, named("HIS^H41010200034")])


@given(
    st.lists(st.tuples(CONTACTS, st.lists(SOURCES, max_size=2, unique=True))),
    CONTACTS,
    CONTACTS,
    st.sampled_from(["elderly-care", None]),
    HIS_MARKS,
)
def test_a_source_resending_the_contacts_it_sent_last_changes_none(
    archived: list[tuple[list[dict[str, Any]], list[str]]],
    sent: list[dict[str, Any]],
    between: list[dict[str, Any]],
    other: str | None,
    his: dict[str, Any],
) -> None:
    """Whatever the archive held and whatever another source (or a REST client, no source) wrote
    in between, the contacts the HIS sent last, sent again, leave the person's contacts as they are."""
    contacts = [{**c, "extension": [sent_by(s) for s in marks]} if marks else c for cs, marks in archived for c in cs]
    person = merge({"resourceType": "Patient", "contact": contacts}, {"contact": copy.deepcopy(sent)}, frozenset(), his)
    person = merge(person, {"contact": between}, frozenset(), sent_by(other) if other else None)
    before = copy.deepcopy(person)
    assert merge(person, {"contact": copy.deepcopy(sent)}, frozenset(), his) == before


BIRTH_PLACE = "http://hl7.org/fhir/StructureDefinition/patient-birthPlace"


def test_a_core_extension_the_profile_slices_by_its_url_is_single_valued(profiled: Index) -> None:
    """patient-birthPlace is 0..1 in yy-patient (sliced by its fixed url, the package holding no
    definition of it): an archived person with two, as an earlier mapping wrote them, does not
    make a third a repeating value."""
    places = [{"url": BIRTH_PLACE, "valueAddress": {"text": text}} for text in ("开封市", "洛阳市")]
    repeating = profiled.identity.repeating(patient("p", meta={"profile": [YY_PATIENT]}, extension=places))
    assert BIRTH_PLACE not in repeating


def test_one_record_number_with_another_id_card_is_refused_naming_both_documents(index: Index) -> None:
    """Two people under one 健康档案编号 (or a number mistyped): never merged into one."""
    number = {"system": HEALTH_RECORD_SYSTEM, "value": "41010200100000001"}
    index.resolve(patient("a", identifier=[number, {"system": "urn:oid:2.16.156.10011.1.3", "value": ID_CARD}]))
    other = {"system": "urn:oid:2.16.156.10011.1.3", "value": "410102195608016068"}
    with pytest.raises(DocumentMismatch) as refused:
        index.resolve(patient("b", identifier=[number, other]))
    found = refused.value
    assert (found.number, found.person_id, found.archived, found.offered) == (
        "41010200100000001",
        "a",
        ID_CARD,
        "410102195608016068",
    )


def test_one_record_number_with_a_residence_permit_where_the_archive_has_an_id_card_is_refused(index: Index) -> None:
    """A 医保人员编号 of a person with a 身份证号 arriving with a 港澳台居民居住证号: two documents of
    two kinds are two people as surely as two 身份证号 are (the REST check already says so)."""
    number = {"system": "http://fhir.yiyang.cn/sid/nhsa-psn-no", "value": "41000000000000067890"}
    index.resolve(patient("a", identifier=[number, {"system": "urn:oid:2.16.156.10011.1.3", "value": ID_CARD}]))
    permit = {"system": "http://fhir.yiyang.cn/sid/hmt-residence-permit", "value": "810000195001010029"}
    with pytest.raises(DocumentMismatch) as refused:
        index.resolve(patient("b", identifier=[number, permit]))
    assert (refused.value.archived, refused.value.offered) == (ID_CARD, "810000195001010029")


HIS_NUMBER = "http://fhir.yiyang.cn/sid/his-patient-id/H41010500012"


def test_a_hospitals_patient_number_with_another_id_card_is_refused(index: Index) -> None:
    """An ADT^A08 correcting the 身份证号 under a known HIS 患者ID made a second person silently."""
    number = {"system": HIS_NUMBER, "value": "7000021"}
    index.resolve(patient("a", identifier=[number, {"system": "urn:oid:2.16.156.10011.1.3", "value": ID_CARD}]))
    other = {"system": "urn:oid:2.16.156.10011.1.3", "value": "410102195608016068"}
    with pytest.raises(DocumentMismatch):
        index.resolve(patient("b", identifier=[number, other]))


def test_a_number_merged_away_that_is_another_persons_is_listed(index: Index) -> None:
    """ADT^A40 folds HIS record 7000022 into this person; the archive holds it as someone else."""
    other = [
        {"system": HIS_NUMBER, "value": "7000022"},
        {"system": "urn:oid:2.16.156.10011.1.3", "value": "410102195608016068"},
    ]
    index.resolve(patient("retired", identifier=other))
    merged = patient("survivor")
    merged["identifier"].append({"use": "old", "system": HIS_NUMBER, "value": "7000022"})
    _, conflicts = index.resolve(merged)
    assert [(c.element, c.kept, c.offered) for c in conflicts] == [
        ("identifier (use old)", "Patient/retired", "7000022")
    ]


def test_one_home_written_by_two_sources_is_one_address(index: Index) -> None:
    """The CSV gave the township, HL7 the city and postcode: the person held it twice."""
    home = "河南省郑州市金水区经八路街道幸福社区3号楼"
    township = {
        "url": "http://fhir.yiyang.cn/StructureDefinition/yy-ext-admin-division",
        "valueCoding": {"code": "410105001"},
    }
    index.resolve(patient("p", address=[{"extension": [township], "text": home}]))
    person, _ = index.resolve(patient("p", address=[{"text": home + " ", "city": "郑州市", "postalCode": "450008"}]))
    with index.store.reading() as tx:
        addresses = tx.resources.read("Patient", person).resource["address"]
    assert addresses == [{"extension": [township], "text": home, "city": "郑州市", "postalCode": "450008"}]


HOME = "河南省郑州市金水区经八路街道幸福社区3号楼"
TOWNSHIP = {
    "url": "http://fhir.yiyang.cn/StructureDefinition/yy-ext-admin-division",
    "valueCoding": {"code": "410105001"},
}
#: the same home as a CDA document writes it, in parts (addr use="H": township, streetName, houseNumber …)
IN_PARTS = {
    "use": "home",
    "line": ["经八路街道", "经八路", "幸福社区3号楼"],
    "district": "金水区",
    "city": "郑州市",
    "state": "河南省",
    "postalCode": "450008",
}


def addresses_after(index: Index, *arriving: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for address in arriving:
        person, _ = index.resolve(patient("p", address=address))
    with index.store.reading() as tx:
        return tx.resources.read("Patient", person).resource["address"]


def test_a_home_in_parts_and_as_the_tables_line_is_one_address_keeping_the_parts(index: Index) -> None:
    """The CDA document's addr and the 个人基本信息表's 现住址 of 张秀英 landed twice."""
    landed = addresses_after(index, [{"text": HOME, "extension": [TOWNSHIP]}], [IN_PARTS])
    assert landed == [{"text": HOME, "extension": [TOWNSHIP], **IN_PARTS}]


def test_the_tables_line_after_the_home_in_parts_adds_its_text_to_it(index: Index) -> None:
    landed = addresses_after(index, [IN_PARTS], [{"text": HOME, "extension": [TOWNSHIP]}])
    assert landed == [{**IN_PARTS, "text": HOME, "extension": [TOWNSHIP]}]


def test_another_house_of_the_same_street_is_another_address(index: Index) -> None:
    elsewhere = {**IN_PARTS, "line": ["经八路街道", "经八路", "幸福社区5号楼"]}
    assert len(addresses_after(index, [{"text": HOME}], [elsewhere])) == 2


def test_the_same_place_as_home_and_as_work_is_two_addresses(index: Index) -> None:
    assert len(addresses_after(index, [{"text": HOME, "use": "work"}], [IN_PARTS])) == 2


@given(
    st.lists(st.text(alphabet="河南省郑州市金水区经八路街道幸福社区号楼0123456789", min_size=1, max_size=6), min_size=1)
)
def test_an_address_is_the_same_place_as_its_parts_written_out(lines: list[str]) -> None:
    parts = {"state": "河南省", "city": "郑州市", "district": "金水区", "line": lines}
    written_out = {"text": "河南省 郑州市金水区" + "".join(lines)}
    assert len(merge({"address": [parts]}, {"address": [written_out]})["address"]) == 1


MOBILE = {"system": "phone", "value": "13803710001", "use": "mobile"}


def test_a_number_without_a_use_and_the_same_number_as_a_mobile_are_one_telecom() -> None:
    """The 个人基本信息表's 联系电话 says no use; the HIS's PID-13 calls the same number CP."""
    merged = merge({"telecom": [{"system": "phone", "value": "13803710001"}]}, {"telecom": [dict(MOBILE)]})
    assert merged["telecom"] == [MOBILE]


def test_one_number_used_at_home_and_at_work_is_two_telecoms() -> None:
    home = {**MOBILE, "use": "home"}
    assert len(merge({"telecom": [home]}, {"telecom": [{**MOBILE, "use": "work"}]})["telecom"]) == 2


def gb_sex(code: str) -> dict[str, Any]:
    coding = {"system": "urn:oid:2.16.156.10011.2.3.3.4", "code": code}
    return {"extension": [{"url": "http://fhir.yiyang.cn/StructureDefinition/yy-ext-gender-gb", "valueCoding": coding}]}


def test_another_gb_sex_code_under_the_same_gender_is_reported(index: Index) -> None:
    """GB/T 2261.1 0 未知的性别 and 9 未说明的性别 are both FHIR ``unknown``, but they say different
    things (not determinable, not stated): the code the archive keeps is a disagreement."""
    index.resolve(patient("a", gender="unknown", _gender=gb_sex("0")))
    assert [
        (c.element, c.kept, c.offered) for c in index.resolve(patient("b", gender="unknown", _gender=gb_sex("9")))[1]
    ] == [
        (
            "gender.extension('http://fhir.yiyang.cn/StructureDefinition/yy-ext-gender-gb')",
            gb_sex("0")["extension"][0],
            gb_sex("9")["extension"][0],
        )
    ]


def test_the_same_gb_sex_code_with_a_display_is_no_disagreement(index: Index) -> None:
    index.resolve(patient("a", gender="unknown", _gender=gb_sex("9")))
    spelt = gb_sex("9")
    spelt["extension"][0]["valueCoding"]["display"] = "未说明的性别"
    assert index.resolve(patient("b", gender="unknown", _gender=spelt))[1] == []


#: the 养老 profile's 紧急联系人 and an HIS's emergency number (PID-13 EMR) of her
SON = {
    "relationship": [{"text": "儿子"}],
    "name": {"text": "李明"},
    "telecom": [{"system": "phone", "value": "13903710002"}],
}
#: one relationship: emergency contact (HL7 v2 table 0131 C)
EMERGENCY_CONTACT = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0131", "code": "C"}]}


def emergency_number(number: str) -> dict[str, Any]:
    return {"relationship": [EMERGENCY_CONTACT], "telecom": [{"system": "phone", "value": number, "use": "mobile"}]}


def test_another_contact_is_an_addition_not_a_disagreement(index: Index) -> None:
    index.resolve(patient("a", contact=[SON]))
    assert index.resolve(patient("b", contact=[emergency_number("13600000000")]))[1] == []


def test_an_emergency_number_of_a_known_contact_is_that_contact_marked_emergency() -> None:
    merged = merge({"contact": [dict(SON)]}, {"contact": [emergency_number("13903710002")]})
    assert merged["contact"] == [{**SON, "relationship": [{"text": "儿子"}, EMERGENCY_CONTACT]}]


def test_an_emergency_number_of_no_known_contact_is_a_contact_of_its_own() -> None:
    merged = merge({"contact": [dict(SON)]}, {"contact": [emergency_number("13600000000")]})
    assert len(merged["contact"]) == 2


def test_a_new_persons_keys_are_claimed_in_one_statement_on_sqlite(tmp_path: Path) -> None:
    """SQLite links a new Patient's 身份证号 and record numbers in the INSERT that claims them:
    a claim, a SELECT of the numbers' holders and their link were three statements."""
    store = open_store(f"sqlite:///{tmp_path}/archive.sqlite", SearchIndexer(Registry()).rows)
    numbered = patient("p1", identifier=[*patient("p1")["identifier"], {"system": HEALTH_RECORD_SYSTEM, "value": "H1"}])
    sent: list[str] = []
    with store.transaction() as tx:
        tx.sql.connection.set_trace_callback(sent.append)
        register_person(tx, numbered, None, Access(None, PersonalData(Registry())), unheld=True)
        tx.sql.flush()
        tx.sql.connection.set_trace_callback(None)
    store.close()
    assert len([statement for statement in sent if "person_key" in statement]) == 1
