"""The one configuration: values that would change the gateway's behaviour silently are refused."""

from __future__ import annotations

import pytest

from gateway.config import Config


def test_a_misspelt_validation_mode_is_refused_not_read_as_warn() -> None:
    with pytest.raises(ValueError, match="validation must be one of reject, warn"):
        Config.load({"YIYANG_VALIDATION": "REJECT"})
