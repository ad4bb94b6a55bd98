"""The one configuration: values that would change the gateway's behaviour silently are refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pytest

from gateway.cli import main
from gateway.config import Config, ConfigError
from gateway.services import Services
from profiles.registry import examples_dir


def test_a_misspelt_validation_mode_is_refused_not_read_as_warn() -> None:
    with pytest.raises(ConfigError, match="YIYANG_VALIDATION must be one of reject, warn"):
        Config.load({"YIYANG_VALIDATION": "REJECT"})


def test_a_number_setting_that_is_no_number_names_its_variable() -> None:
    with pytest.raises(ConfigError, match="YIYANG_PAGE_SIZE must be a whole number, not 'abc'"):
        Config.load({"YIYANG_PAGE_SIZE": "abc"})


def test_the_command_line_refuses_a_bad_setting_as_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """Exit 2 naming the variable, not 3 with "internal error: ValueError"."""
    monkeypatch.setenv("YIYANG_PAGE_SIZE", "abc")
    assert main(["validate", str(examples_dir() / "yy-patient" / "valid-zhang-xiuying.json")]) == 2


def test_the_command_line_words_a_bad_setting_in_its_language(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("YIYANG_PAGE_SIZE", "abc")
    main(["validate", "--lang", "zh-CN", str(examples_dir() / "yy-patient" / "valid-zhang-xiuying.json")])
    assert capsys.readouterr().err == "yiyang: error: YIYANG_PAGE_SIZE 须为整数，而不是“abc”\n"


@pytest.mark.parametrize("value", ["0", "-5"])
def test_an_export_expiry_that_is_not_positive_is_refused(value: str) -> None:
    """0 would remove a manifest before its client could read it, not keep files for ever."""
    with pytest.raises(ConfigError, match="YIYANG_EXPORT_EXPIRY_SECONDS must be a positive whole number"):
        Config.load({"YIYANG_EXPORT_EXPIRY_SECONDS": value})


@pytest.mark.parametrize("name", ["YIYANG_EXPORT_MAX_JOBS", "YIYANG_EXPORT_MAX_JOBS_PER_CLIENT"])
def test_an_export_job_limit_of_none_is_refused(name: str) -> None:
    """It would answer every kick-off 429, not lift the limit."""
    with pytest.raises(ConfigError, match=f"{name} must be a positive whole number"):
        Config.load({name: "0"})


def test_sqlite_connections_wait_as_long_as_the_setting_says(tmp_path: Path) -> None:
    """It was a constant (60 s): an operator whose ingests wait longer for each other could not
    raise it, nor a test lower it."""
    config = Config.load({"YIYANG_SQLITE_BUSY_TIMEOUT_SECONDS": "7"}, database_url=f"sqlite:///{tmp_path / 'a.sqlite'}")
    services = Services(config)
    try:
        with services.store.reading() as tx:
            (waited_ms,) = tx.sql.one("PRAGMA busy_timeout")
    finally:
        services.close()
    assert waited_ms == 7000


def test_a_sqlite_busy_timeout_of_no_wait_is_refused() -> None:
    """0 would fail a writer whenever another process writes, not wait for ever."""
    with pytest.raises(ConfigError, match="YIYANG_SQLITE_BUSY_TIMEOUT_SECONDS must be a positive whole number"):
        Config.load({"YIYANG_SQLITE_BUSY_TIMEOUT_SECONDS": "0"})


def test_a_stopping_worker_is_given_as_long_as_the_setting_says() -> None:
    """It was a constant (10 s): a request waiting that long for SQLite's lock (up to its busy
    timeout, 60 s) was killed mid-request, told by no setting to wait longer."""
    from gateway.cli.server import _Gunicorn

    gunicorn = _Gunicorn(Config.load({"YIYANG_GRACEFUL_TIMEOUT": "75"}), cast(Any, None), cast(Any, None))
    assert gunicorn.application.cfg.graceful_timeout == 75


def test_a_stop_grace_of_none_is_refused() -> None:
    """0 would kill every request in flight at a stop, not let them finish."""
    with pytest.raises(ConfigError, match="YIYANG_GRACEFUL_TIMEOUT must be a positive whole number"):
        Config.load({"YIYANG_GRACEFUL_TIMEOUT": "0"})


def test_a_negative_count_of_trusted_proxies_is_refused() -> None:
    """It would name no hop of X-Forwarded-For: a misreading, not "trust none"."""
    with pytest.raises(ConfigError, match="YIYANG_TRUSTED_PROXIES must be zero or a positive whole number"):
        Config.load({"YIYANG_TRUSTED_PROXIES": "-1"})
