"""Parsing search requests: values, modifiers, chains, result controls and the errors that refuse them."""

from __future__ import annotations

import json
import string
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gateway.search
from gateway import messages
from gateway.search.parameters import SearchParameters
from gateway.search.query import (
    Criterion,
    Include,
    SearchError,
    SearchQuery,
    SearchValue,
    SortKey,
    parse_search,
)
from profiles.registry import Registry

#: the search layer's own messages, which the gateway's one catalog merges
CATALOG = json.loads((Path(gateway.search.__file__).parent / "messages.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def parameters() -> SearchParameters:
    return SearchParameters(Registry())


def parse(parameters: SearchParameters, *pairs: tuple[str, str], kind: str = "Patient", **options: str) -> SearchQuery:
    return parse_search(kind, list(pairs), parameters, **options)


def refusal(parameters: SearchParameters, *pairs: tuple[str, str], kind: str = "Patient") -> str:
    with pytest.raises(SearchError) as caught:
        parse(parameters, *pairs, kind=kind)
    return caught.value.message_id


def test_commas_are_alternatives_of_one_criterion(parameters: SearchParameters) -> None:
    query = parse(parameters, ("name", "张,李"))
    assert [v.text for v in query.criteria[0].values] == ["张", "李"]


def test_repeated_keys_are_separate_criteria(parameters: SearchParameters) -> None:
    assert len(parse(parameters, ("name", "张"), ("name", "秀")).criteria) == 2


def test_an_escaped_comma_is_part_of_the_value(parameters: SearchParameters) -> None:
    assert parse(parameters, ("name", r"a\,b")).criteria[0].values == (SearchValue(text="a,b"),)


def escaped(text: str) -> str:
    """A search value as R4 has a client write it (search.html#escaping)."""
    for char in "\\,|$":
        text = text.replace(char, f"\\{char}")
    return text


@pytest.mark.parametrize(
    ("value", "system", "code"),
    [(r"s|A\|1", "s", "A|1"), (r"s|HIS\\0042", "s", "HIS\\0042"), (r"s|a\,b", "s", "a,b"), (r"s|x\$y", "s", "x$y")],
)
def test_a_tokens_escapes_are_undone_once(parameters: SearchParameters, value: str, system: str, code: str) -> None:
    """The commas were split first with every escape undone, then the bars read the result."""
    found = parse(parameters, ("identifier", value)).criteria[0].values
    assert found == (SearchValue(system=system, code=code),)


def test_a_bare_bar_is_no_token(parameters: SearchParameters) -> None:
    """``code=|`` names neither a system nor a code: it matched every coding without a system."""
    assert refusal(parameters, ("identifier", "|")) == "search.bad-value"


@given(st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=40))
@settings(max_examples=200)
def test_any_escaped_code_reads_back_as_written(parameters: SearchParameters, code: str) -> None:
    found = parse(parameters, ("identifier", f"urn:s|{escaped(code)}")).criteria[0].values
    assert found == (SearchValue(system="urn:s", code=code),)


@pytest.mark.parametrize(
    "pairs",
    [
        [("_id", ",".join(f"p{n}" for n in range(101)))],
        [("name:contains", "a" * 1001)],
        [("_sort", ",".join(["name", "birthdate", "gender"] * 3))],
        [("gender", "female")] * 65,
        [("_revinclude", "Observation:subject")] * 17,
    ],
)
def test_a_search_asking_more_than_its_limits_is_refused(
    parameters: SearchParameters, pairs: list[tuple[str, str]]
) -> None:
    """Left to the database, these overflow SQLite's parser: a 503 the client cannot fix."""
    assert refusal(parameters, *pairs) == "search.too-large"


def test_a_parameter_with_an_empty_value_is_ignored(parameters: SearchParameters) -> None:
    assert parse(parameters, ("name", "")).criteria == []


@pytest.mark.parametrize("key", ["general-practitioner.name", "_has:Observation:subject:code"])
def test_a_chain_with_an_empty_value_is_ignored_too(parameters: SearchParameters, key: str) -> None:
    """``_has:Observation:subject:code=`` was a 400, where ``code=`` and a forward chain are
    ignored: a form's blank field refused the whole search."""
    assert parse(parameters, (key, "")).criteria == []


@pytest.mark.parametrize(
    ("value", "system", "code"),
    [("female", None, "female"), ("urn:s|x", "urn:s", "x"), ("|x", "", "x"), ("urn:s|", "urn:s", None)],
)
def test_token_forms_set_system_and_code(
    parameters: SearchParameters, value: str, system: str | None, code: str | None
) -> None:
    assert parse(parameters, ("identifier", value)).criteria[0].values == (SearchValue(system=system, code=code),)


def test_a_date_prefix_is_split_from_the_date(parameters: SearchParameters) -> None:
    value = parse(parameters, ("birthdate", "ge1949")).criteria[0].values[0]
    assert (value.prefix, value.low) == ("ge", "1948-12-31T16:00:00.000000Z")


def test_a_time_zone_whose_plus_arrived_as_a_space_is_read_as_meant(parameters: SearchParameters) -> None:
    spaced = parse(parameters, ("birthdate", "ge1949-01-01T08:00:00 08:00")).criteria[0].values[0]
    plus = parse(parameters, ("birthdate", "ge1949-01-01T08:00:00+08:00")).criteria[0].values[0]
    assert spaced == plus


@pytest.mark.parametrize("modifier", ["iterate", "recurse"])
def test_an_iterating_include_of_another_type_is_kept(parameters: SearchParameters, modifier: str) -> None:
    query = parse(parameters, (f"_include:{modifier}", "Encounter:service-provider"))
    assert query.include == [Include("Encounter", ("service-provider",), None, iterate=True)]


def test_a_reverse_chain_names_the_type_its_reference_and_the_criterion_on_it(parameters: SearchParameters) -> None:
    criterion = parse(parameters, ("_has:CarePlan:subject:status", "active")).criteria[0]
    assert (criterion.type, criterion.targets, criterion.via, criterion.chain.param) == (
        "has",
        ("CarePlan",),
        "subject",
        "status",
    )


@pytest.mark.parametrize(
    ("key", "message_id"),
    [
        ("_has:CarePlan:subject", "search.bad-has"),
        ("_has:CarePlan:status:status", "search.bad-has"),  # not a reference
        ("_has:Encounter:service-provider:status", "search.bad-has"),  # points at no Patient
        ("_has:CarePlan:subject:_has:Encounter:subject:status", "search.chain-too-deep"),
    ],
)
def test_a_malformed_reverse_chain_is_refused(parameters: SearchParameters, key: str, message_id: str) -> None:
    assert refusal(parameters, (key, "active")) == message_id


def test_a_number_carries_the_interval_of_its_precision(parameters: SearchParameters) -> None:
    value = parse(parameters, ("value-quantity", "5.4"), kind="Observation").criteria[0].values[0]
    assert (value.number_low, value.number_high) == pytest.approx((5.35, 5.45))


def test_a_quantity_value_carries_system_and_code(parameters: SearchParameters) -> None:
    value = parse(parameters, ("value-quantity", "le6.1|http://unitsofmeasure.org|mmol/L"), kind="Observation")
    found = value.criteria[0].values[0]
    assert (found.prefix, found.number, found.system, found.code) == ("le", 6.1, "http://unitsofmeasure.org", "mmol/L")


def test_a_reference_type_modifier_becomes_the_reference_type(parameters: SearchParameters) -> None:
    criterion = parse(parameters, ("subject:Patient", "zhang-xiuying"), kind="Encounter").criteria[0]
    assert criterion.values == (SearchValue(system="Patient", code="zhang-xiuying"),)


def test_a_typed_reference_value_is_split(parameters: SearchParameters) -> None:
    criterion = parse(parameters, ("subject", "Patient/zhang-xiuying"), kind="Encounter").criteria[0]
    assert criterion.values == (SearchValue(system="Patient", code="zhang-xiuying"),)


def test_a_reference_on_this_servers_base_reads_as_relative(parameters: SearchParameters) -> None:
    pairs = ("subject", "http://gw.example/fhir/Patient/zhang-xiuying")
    criterion = parse(parameters, pairs, kind="Encounter", base="http://gw.example/fhir").criteria[0]
    assert criterion.values == (
        SearchValue(system="Patient", code="zhang-xiuying"),
        SearchValue(code="http://gw.example/fhir/Patient/zhang-xiuying"),
    )


def test_a_reference_on_another_server_stays_absolute(parameters: SearchParameters) -> None:
    pairs = ("subject", "http://other.example/fhir/Patient/zhang-xiuying")
    criterion = parse(parameters, pairs, kind="Encounter", base="http://gw.example/fhir").criteria[0]
    assert criterion.values == (SearchValue(code="http://other.example/fhir/Patient/zhang-xiuying"),)


def test_missing_true_is_recorded_without_values(parameters: SearchParameters) -> None:
    assert parse(parameters, ("gender:missing", "true")).criteria[0] == Criterion(
        "gender", "token", "missing", missing=True
    )


def test_a_chain_names_the_target_types_and_the_criterion_on_them(parameters: SearchParameters) -> None:
    criterion = parse(parameters, ("subject:Patient.name", "张"), kind="Encounter").criteria[0]
    assert (criterion.targets, criterion.chain and criterion.chain.param) == (("Patient",), "name")


def test_a_chain_without_type_uses_the_targets_that_define_the_parameter(parameters: SearchParameters) -> None:
    criterion = parse(parameters, ("subject.birthdate", "1949"), kind="Observation").criteria[0]
    assert criterion.targets == ("Patient",)


def test_id_and_last_updated_are_criteria(parameters: SearchParameters) -> None:
    query = parse(parameters, ("_id", "a,b"), ("_lastUpdated", "gt2026"))
    assert [(c.param, c.type) for c in query.criteria] == [("_id", "token"), ("_lastUpdated", "date")]


def test_count_defaults_to_twenty(parameters: SearchParameters) -> None:
    assert parse(parameters).count == 20


def test_count_is_capped_at_one_thousand(parameters: SearchParameters) -> None:
    assert parse(parameters, ("_count", "5000")).count == 1000


def test_sort_reads_directions_in_order(parameters: SearchParameters) -> None:
    assert parse(parameters, ("_sort", "-birthdate,_id")).sort == [
        SortKey("birthdate", "date", True),
        SortKey("_id", "_id", False),
    ]


def test_include_names_the_reference_parameter_and_target(parameters: SearchParameters) -> None:
    query = parse(parameters, ("_include", "Encounter:subject:Patient"), kind="Encounter")
    assert query.include == [Include("Encounter", ("subject",), "Patient")]


def test_include_star_means_every_reference_parameter(parameters: SearchParameters) -> None:
    assert "organization" in parse(parameters, ("_include", "Patient:*")).include[0].params


def test_revinclude_names_the_referring_type(parameters: SearchParameters) -> None:
    query = parse(parameters, ("_revinclude", "Coverage:beneficiary"))
    assert query.revinclude == [Include("Coverage", ("beneficiary",), None)]


def test_summary_elements_and_total_are_recorded(parameters: SearchParameters) -> None:
    query = parse(parameters, ("_summary", "count"), ("_elements", "name,gender"), ("_total", "accurate"))
    assert (query.summary, query.elements, query.total) == ("count", ["name", "gender"], "accurate")


def test_an_element_the_type_lacks_is_refused(parameters: SearchParameters) -> None:
    """Patient.name written as "Patient.nam" silently returned no name."""
    assert refusal(parameters, ("_elements", "name,Patient.nam")) == "search.unknown-element"


def test_elements_takes_a_choice_elements_base_name(parameters: SearchParameters) -> None:
    assert parse(parameters, ("_elements", "value,Observation.effective"), kind="Observation").elements == [
        "value",
        "Observation.effective",
    ]


def test_under_lenient_handling_an_unknown_element_is_noted_and_the_rest_applied(parameters: SearchParameters) -> None:
    query = parse(parameters, ("_elements", "bogus,Patient.name"), handling="lenient")
    assert (query.elements, [note.params["element"] for note in query.notes]) == (["Patient.name"], ["Patient.bogus"])


def test_under_lenient_handling_an_unknown_sort_key_is_skipped_and_the_rest_applied(
    parameters: SearchParameters,
) -> None:
    """The keys after the first unknown one were dropped, and the links lost the whole _sort."""
    query = parse(parameters, ("_sort", "shoe-size,-birthdate"), handling="lenient")
    assert ([(k.param, k.descending) for k in query.sort], [e.message_id for e in query.ignored]) == (
        [("birthdate", True)],
        ["search.unknown-sort"],
    )
    assert query.relinked == {("_sort", "shoe-size,-birthdate"): "-birthdate"}


def test_under_lenient_handling_the_links_repeat_the_elements_applied(parameters: SearchParameters) -> None:
    query = parse(parameters, ("_elements", "bogus,Patient.name"), ("_elements", "nonsense"), handling="lenient")
    assert query.relinked == {("_elements", "bogus,Patient.name"): "Patient.name", ("_elements", "nonsense"): None}


def test_format_is_ignored(parameters: SearchParameters) -> None:
    assert parse(parameters, ("_format", "json")) == SearchQuery("Patient")


def test_an_unknown_parameter_is_refused(parameters: SearchParameters) -> None:
    assert refusal(parameters, ("shoe-size", "42")) == "search.unknown-parameter"


def test_an_unknown_modifier_is_refused(parameters: SearchParameters) -> None:
    assert refusal(parameters, ("birthdate:exact", "1949")) == "search.unknown-modifier"


@pytest.mark.parametrize(
    ("key", "refused"),
    [
        ("name:", "search.unknown-modifier"),
        ("general-practitioner:.name", "search.unknown-modifier"),
        ("_sort:", "search.unsupported-modifier"),
    ],
)
def test_an_empty_modifier_is_refused_not_dropped(parameters: SearchParameters, key: str, refused: str) -> None:
    """``name:=张`` was searched as ``name=张``: the modifier the client meant was lost."""
    assert refusal(parameters, (key, "张")) == refused


def test_the_text_modifier_is_refused_as_unsupported(parameters: SearchParameters) -> None:
    assert refusal(parameters, ("gender:text", "女")) == "search.unsupported-modifier"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("birthdate", "1949-13-01"),
        ("birthdate", "xx1949"),
        ("gender:missing", "maybe"),
        ("_count", "-1"),
        ("_offset", "99999999999"),
        ("_summary", "all"),
        ("identifier", "a|b|c"),
    ],
)
def test_a_value_that_does_not_parse_is_refused(parameters: SearchParameters, key: str, value: str) -> None:
    assert refusal(parameters, (key, value)) == "search.bad-value"


def test_a_chain_on_a_non_reference_is_refused(parameters: SearchParameters) -> None:
    assert refusal(parameters, ("name.family", "张")) == "search.not-chainable"


def test_a_two_level_chain_is_refused(parameters: SearchParameters) -> None:
    assert refusal(parameters, ("subject:Patient.organization.name", "x"), kind="Encounter") == "search.chain-too-deep"


def test_a_two_level_chain_is_refused_naming_the_parameter_as_sent(parameters: SearchParameters) -> None:
    with pytest.raises(SearchError) as caught:
        parse(parameters, ("subject.organization.name", "x"), kind="Encounter")
    assert (caught.value.expression, caught.value.params["param"]) == (
        "subject.organization.name",
        "subject.organization.name",
    )


def test_a_malformed_include_is_refused(parameters: SearchParameters) -> None:
    assert refusal(parameters, ("_include", "subject")) == "search.bad-include"


@pytest.mark.parametrize(
    ("control", "value"),
    [
        ("_include", "Encounter:subject:Patinet"),
        ("_include", "Encounter:subject:Medication"),
        ("_include", "Encounter:*:Medication"),
        ("_revinclude", "Observation:subject:Encounter"),
    ],
)
def test_an_include_target_its_parameters_cannot_point_at_is_refused(
    parameters: SearchParameters, control: str, value: str
) -> None:
    """A mistyped or impossible target type included nothing, silently."""
    assert refusal(parameters, (control, value), kind="Encounter") == "search.bad-include"


def test_an_include_of_a_parameter_without_targets_takes_any_target(parameters: SearchParameters) -> None:
    query = parse(parameters, ("_include", "RequestGroup:instantiates-canonical:PlanDefinition"), kind="RequestGroup")
    assert query.include == [Include("RequestGroup", ("instantiates-canonical",), "PlanDefinition")]


def test_lenient_handling_records_unknown_parameters_instead(parameters: SearchParameters) -> None:
    query = parse(parameters, ("shoe-size", "42"), ("name", "张"), handling="lenient")
    assert ([e.message_id for e in query.ignored], len(query.criteria)) == (["search.unknown-parameter"], 1)


def test_lenient_handling_still_refuses_bad_values(parameters: SearchParameters) -> None:
    with pytest.raises(SearchError):
        parse(parameters, ("birthdate", "soon"), handling="lenient")


def test_the_refusal_reads_in_chinese(parameters: SearchParameters) -> None:
    with pytest.raises(SearchError) as caught:
        parse(parameters, ("shoe-size", "42"))
    assert caught.value.text("zh-CN") == "Patient 资源不支持搜索参数“shoe-size”"


def test_every_message_has_chinese_and_english_with_the_same_placeholders() -> None:
    def fields(template: str) -> set[str]:
        return {name for _, name, _, _ in string.Formatter().parse(template) if name}

    assert all(fields(entry["zh-CN"]) == fields(entry["en"]) for name, entry in CATALOG.items() if name != "_about")


KEYS = st.one_of(
    st.sampled_from(
        [
            "name",
            "birthdate",
            "identifier",
            "gender:missing",
            "general-practitioner",
            "organization.name",
            "_count",
            "_sort",
            "_include",
            "_revinclude",
            "_lastUpdated",
            "_id",
            "address:exact",
            "name:contains",
            "link:Patient",
        ]
    ),
    st.text(max_size=20),
)


VALUES = st.one_of(
    st.text(max_size=30), st.from_regex(r"(ge|ap|xx)?[0-9.eE+-]{0,12}(\|[a-z:]{0,5}){0,3}", fullmatch=True)
)
SHARED = SearchParameters(Registry())  # hypothesis runs many examples; compile the parameters once


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(KEYS, VALUES), max_size=4))
def test_any_request_parses_or_is_refused_with_a_search_error(pairs: list[tuple[str, str]]) -> None:
    try:
        parse_search("Patient", pairs, SHARED)
    except SearchError as error:  # worded from the gateway's one catalog (a repeated control: http.*)
        assert error.message_id in messages.catalog()
