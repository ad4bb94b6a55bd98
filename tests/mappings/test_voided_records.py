"""A record its source system voided (作废) was never part of the person's record: FHIR's
entered-in-error, for a 随访 / 巡诊 visit as for a 家庭病床 episode, not a cancelled visit (one that
ended before it began)."""

from __future__ import annotations

import pytest

from mappings.conceptmaps import ConceptMaps

MAPS = ConceptMaps.load("http://fhir.yiyang.cn")


@pytest.mark.parametrize("status_map", ["community-encounter-status", "community-episode-status"])
def test_a_voided_visit_or_episode_is_entered_in_error(status_map: str) -> None:
    assert MAPS.translate(status_map, "作废") == "entered-in-error"
