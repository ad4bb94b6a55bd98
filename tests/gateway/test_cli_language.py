"""The command line's own words — help, usage and argparse's refusals — in the language asked
(``--lang``, else ``YIYANG_LANGUAGE``, else zh-CN), like everything else it prints."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

import gateway.cli
from gateway.cli import build_parser, main
from gateway.messages import text

CATALOG = json.loads((Path(gateway.cli.__file__).parent / "messages.json").read_text(encoding="utf-8"))
SECRET_OR_KEYS = ["client", "add", "--id", "c", "--org", "o", "--role", "hospital", "--scope", "system/*.rs"]


def parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):
                yield from parsers(child)


def words_given(parser: argparse.ArgumentParser) -> Iterator[str]:
    """Every help, description and section title the parser and its commands were given."""
    for each in parsers(parser):
        yield from (text for text in (each.description, *(group.title for group in each._action_groups)) if text)
        for action in each._actions:
            yield from (action.help,) if action.help not in (None, argparse.SUPPRESS) else ()
            if isinstance(action, argparse._SubParsersAction):
                yield from (choice.help for choice in action._choices_actions if choice.help)


def test_every_help_text_is_a_catalogued_id_worded_in_both_languages() -> None:
    uncatalogued = [given for given in words_given(build_parser()) if set(CATALOG.get(given, {})) != {"zh-CN", "en"}]
    assert uncatalogued == []


def help_of(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit):
        main(list(argv))
    return capsys.readouterr().out


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_help_is_printed_in_the_language_asked(capsys: pytest.CaptureFixture[str], lang: str) -> None:
    printed = help_of(capsys, "serve", "--lang", lang, "--help")
    expected = [text(message_id, lang) for message_id in ("cli.argparse.usage", "cli.help.serve.port")]
    assert [part in printed for part in expected] == [True, True]


def test_help_follows_the_configured_language(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("YIYANG_LANGUAGE", "en")
    assert "gunicorn worker processes" in help_of(capsys, "serve", "--help")


def test_a_help_with_values_of_its_own_names_them(capsys: pytest.CaptureFixture[str]) -> None:
    assert ".csv, .xlsx" in help_of(capsys, "ingest", "--help")


@pytest.mark.parametrize(
    ("argv", "refusal"),
    [
        (["ingest", "x.csv"], "缺少必需的参数：--source"),
        (["validate", "--bogus", "x.json"], "无法识别的参数：--bogus"),
        (["serve", "--d"], "选项 --d 有歧义，可能是 --database, --demo"),
        (["serve", "--port"], "参数 --port：需要一个值"),
        (
            ["report", "--since", "2026-01-01", "--format", "json", "--out", "r", "--limit", "x"],
            "参数 --limit：无效的 int 值 'x'",
        ),
        (["serve", "--port", "70000"], "参数 --port：70000：端口是 1 到 65535 之间的数"),
        (["serve", "--workers", "0"], "参数 --workers：0：至少为 1"),
        (["report", "--since", "2026-02-30"], "参数 --since：“2026-02-30”不是 YYYY-MM-DD 格式的日期"),
        (SECRET_OR_KEYS, "参数 --jwks --secret-file 必须给出其中一个"),
        ([*SECRET_OR_KEYS, "--jwks", "k", "--secret-file", "s"], "参数 --secret-file：不能与参数 --jwks 同时使用"),
    ],
    ids=[
        "required",
        "unrecognised",
        "ambiguous",
        "no value",
        "bad int",
        "port",
        "positive",
        "day",
        "one of",
        "exclusive",
    ],
)
def test_argparse_refusals_are_worded_in_chinese_by_default(
    capsys: pytest.CaptureFixture[str], argv: list[str], refusal: str
) -> None:
    with pytest.raises(SystemExit):
        main(argv)
    assert capsys.readouterr().err.splitlines()[-1] == f"yiyang: error: {refusal}"


def test_a_choice_refused_names_the_choices_in_chinese(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["bogus"])
    assert (
        capsys.readouterr().err.splitlines()[-1].startswith("yiyang: error: 参数 command：无效的选择 'bogus'（可选：")
    )


def test_refusals_are_worded_in_english_on_request(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["serve", "--lang=en", "--port", "70000"])
    last = capsys.readouterr().err.splitlines()[-1]
    assert last == "yiyang: error: argument --port: 70000: a port is a number from 1 to 65535"
