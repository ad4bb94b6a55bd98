"""The `yiyang validate` contract other tools depend on: formats, languages, exit codes, bad input."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.cli import build_parser, main
from gateway.storage import open_store
from gateway.storage.store import Store, StoreError
from profiles.registry import examples_dir

VALID = str(examples_dir() / "yy-patient/valid-zhang-xiuying.json")
INVALID = str(examples_dir() / "yy-patient/invalid-id-card-checksum.json")
COMMUNITY_SAMPLE = Path(__file__).resolve().parents[2] / "mappings/samples/community-health/个人基本信息表.csv"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def outcome(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    return json.loads(run(capsys, "validate", "--format", "json", *argv)[1])


def test_valid_file_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "validate", VALID)[0] == 0


def test_invalid_file_exits_one(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "validate", INVALID)[0] == 1


def test_missing_file_exits_two_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "validate", "/no/such/file.json")
    assert (code, err.count("\n")) == (2, 1)


def test_usage_error_exits_two(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["validate", "--format", "yaml", VALID])
    assert exit_info.value.code == 2


def test_json_format_prints_one_operation_outcome_for_one_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert outcome(capsys, INVALID)["resourceType"] == "OperationOutcome"


def test_json_issue_has_fhirpath_expression_and_message_id(capsys: pytest.CaptureFixture[str]) -> None:
    issue = next(i for i in outcome(capsys, INVALID)["issue"] if i["severity"] == "error")
    assert (issue["expression"], issue["details"]["coding"][0]["code"]) == (
        ["Patient.identifier[0].value"],
        "rule.id-card-checksum",
    )


def test_messages_default_to_chinese(capsys: pytest.CaptureFixture[str]) -> None:
    issue = next(i for i in outcome(capsys, INVALID)["issue"] if i["severity"] == "error")
    assert "身份证号" in issue["details"]["text"]


def test_english_messages_on_request(capsys: pytest.CaptureFixture[str]) -> None:
    issue = next(i for i in outcome(capsys, "--lang", "en", INVALID)["issue"] if i["severity"] == "error")
    assert "ID card number" in issue["details"]["text"]


def test_clean_file_still_gets_an_informational_outcome(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "org.json"
    path.write_text(
        json.dumps(
            {
                "resourceType": "Basic",
                "code": {"text": "x"},
                "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">x</div>'},
            }
        )
    )
    assert [i["severity"] for i in outcome(capsys, str(path))["issue"]] == ["information"]


def test_multiple_files_print_one_outcome_per_line(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "validate", "--format", "json", VALID, INVALID)
    assert [json.loads(line)["resourceType"] for line in out.splitlines()] == ["OperationOutcome"] * 2


def test_text_format_shows_location_and_message_id(capsys: pytest.CaptureFixture[str]) -> None:
    assert "Patient.identifier[0].value  [rule.id-card-checksum]" in run(capsys, "validate", INVALID)[1]


def test_profile_option_validates_against_an_extra_profile(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"resourceType": "Patient"}))
    code, out, _ = run(
        capsys, "validate", "--profile", "http://fhir.yiyang.cn/StructureDefinition/yy-patient", str(path)
    )
    assert (code, "profile.cardinality-min" in out) == (1, True)


def ig_folder(tmp_path: Path, url: str, element: dict[str, Any]) -> Path:
    """An --ig folder holding one Patient profile at ``url`` whose differential adds ``element``."""
    sd = {
        "resourceType": "StructureDefinition",
        "url": url,
        "name": "Profile",
        "status": "active",
        "kind": "resource",
        "abstract": False,
        "type": "Patient",
        "derivation": "constraint",
        "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Patient",
        "differential": {"element": [{"id": "Patient", "path": "Patient"}, element]},
    }
    folder = tmp_path / "ig"
    folder.mkdir()
    (folder / "sd.json").write_text(json.dumps(sd))
    return folder


def test_ig_option_loads_definitions_from_a_folder(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    ig = ig_folder(tmp_path, "http://example.org/sd/named", {"id": "Patient.name", "path": "Patient.name", "min": 1})
    resource = tmp_path / "p.json"
    resource.write_text(json.dumps({"resourceType": "Patient", "meta": {"profile": ["http://example.org/sd/named"]}}))
    assert run(capsys, "validate", "--ig", str(ig), str(resource))[0] == 1


@pytest.mark.parametrize(
    "element",
    [
        {"short": "neither id nor path: was a KeyError"},
        {
            "id": "Patient.name.family",
            "path": "Patient.name.family",
            "extension": [{"url": "http://hl7.org/fhir/StructureDefinition/regex", "valueString": "(["}],
        },
    ],
    ids=["key-error", "re-error"],
)
def test_a_broken_ig_rule_is_an_issue_on_every_file_and_the_run_goes_on(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, element: dict[str, Any]
) -> None:
    """Issue 12: a definition that once raised KeyError or re.error aborted the whole command
    with a traceback; now each file gets its outcome and the run ends with exit 1 (invalid)."""
    url = "http://example.org/sd/broken"
    ig = ig_folder(tmp_path, url, element)
    claiming = {"resourceType": "Patient", "meta": {"profile": [url]}, "name": [{"family": "张"}]}
    files = [tmp_path / "a.json", tmp_path / "b.json"]
    for file in files:
        file.write_text(json.dumps(claiming, ensure_ascii=False))
    code, out, err = run(capsys, "validate", "--format", "json", "--ig", str(ig), *map(str, files))
    outcomes = [json.loads(line) for line in out.splitlines()]
    assert (code, len(outcomes), "Traceback" in err) == (1, 2, False)


def test_unloadable_ig_is_a_usage_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert run(capsys, "validate", "--ig", str(tmp_path / "missing"), VALID)[0] == 2


def test_an_ig_file_that_is_not_utf8_is_refused_naming_it(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A profile saved in GBK: exit 2 naming the file as any file an option names, not Python's codec error."""
    (tmp_path / "profile.json").write_bytes("中文".encode("gbk"))
    said = f"yiyang: error: {tmp_path / 'profile.json'} 不是 UTF-8 文本（第 0 字节）\n"
    assert run(capsys, "validate", "--lang", "zh-CN", "--ig", str(tmp_path / "profile.json"), VALID) == (2, "", said)


@pytest.mark.parametrize(
    ("content", "message_id"),
    [
        (b"this is not json", "input.not-json"),
        (b'{"resourceType": "Patient", "name": [', "input.not-json"),
        (b'["a", "list"]', "input.not-resource"),
        (b'{"name": "no resourceType"}', "input.not-resource"),
        (b'{"resourceType": "Elderly"}', "structure.unknown-resource-type"),
        (b"\xff\xfe\x00garbage", "input.not-json"),
    ],
)
def test_bad_input_becomes_an_operation_outcome(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, content: bytes, message_id: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    codes = [i["details"]["coding"][0]["code"] for i in outcome(capsys, str(path))["issue"]]
    assert message_id in codes


def test_file_over_the_size_limit_is_refused_without_reading_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "big.json"
    path.write_bytes(b" " * 5000)
    issue = outcome(capsys, "--max-bytes", "1000", str(path))["issue"][0]
    assert (issue["severity"], issue["code"]) == ("fatal", "too-costly")


def test_ndjson_issues_name_their_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    good = (examples_dir() / "yy-patient/valid-zhang-xiuying.json").read_text(encoding="utf-8")
    path = tmp_path / "many.ndjson"
    path.write_text(json.dumps(json.loads(good), ensure_ascii=False) + "\n\n{broken\n", encoding="utf-8")
    fatal = [i for i in outcome(capsys, str(path))["issue"] if i["severity"] == "fatal"]
    assert fatal[0]["location"] == ["line 3"]


def test_overlong_ndjson_line_is_skipped_and_reported(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "long.ndjson"
    path.write_bytes(b'{"resourceType":"Patient","id":"' + b"a" * 3000 + b'"}\n{"resourceType":"Patient"}\n')
    codes = [i["details"]["coding"][0]["code"] for i in outcome(capsys, "--max-bytes", "1000", str(path))["issue"]]
    assert "input.line-too-long" in codes


def test_demo_validates_every_example_and_ingests_every_sample(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, _ = run(capsys, "demo", "--lang", "en", "--out", str(tmp_path))
    assert (code, "one elder from every source, one Patient" in out) == (0, True)


def test_console_entry_point_runs_as_a_module() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "validate", INVALID], capture_output=True, text=True, check=False
    )
    assert (done.returncode, done.stderr) == (1, "")


def test_a_reader_that_goes_away_ends_the_command_quietly_as_sigpipe_would(tmp_path: Path) -> None:
    """``yiyang validate … | head`` exited 1, the status that says invalid data was found;
    a Unix tool stopped by SIGPIPE is reported 128 + 13, silently."""
    import signal

    lines = tmp_path / "many.ndjson"
    lines.write_text('{"resourceType": "Patient", "gender": "x"}\n' * 5000, encoding="utf-8")
    command = [sys.executable, "-m", "gateway.cli", "validate", "--format", "text", str(lines)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as done:
        assert done.stdout is not None and done.stderr is not None
        done.stdout.read(10)  # head has what it wants
        done.stdout.close()
        said = done.stderr.read()
    assert (done.returncode, said) == (128 + signal.SIGPIPE, b"")


@pytest.mark.parametrize("out", ["out", "out/sub"])
def test_an_output_folder_that_is_a_file_is_refused_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], out: str
) -> None:
    (tmp_path / "out").write_text("", encoding="utf-8")
    ingest = ["ingest", "--lang", "zh-CN", "--source", "community-health", "--out", str(tmp_path / out)]
    said = f"yiyang: error: {tmp_path / 'out'} 是文件，不是文件夹：--out 须指定文件夹\n"
    assert run(capsys, *ingest, str(COMMUNITY_SAMPLE)) == (2, "", said)


def test_an_ingest_into_a_database_whose_output_folder_is_a_file_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Refused before the store is opened: once, the records landed and only the export failed."""
    (tmp_path / "out").write_text("", encoding="utf-8")
    ingest = ["ingest", "--source", "community-health", "--database", archive(tmp_path), "--out", str(tmp_path / "out")]
    code, _, _ = run(capsys, *ingest, str(COMMUNITY_SAMPLE))
    assert (code, (tmp_path / "archive.sqlite").exists()) == (2, False)


def test_a_damaged_archive_store_is_a_clear_error_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "archive.sqlite").write_bytes(b"not a database, just forty bytes of text.")
    code, _, err = run(capsys, "quarantine", "replay", "--lang", "zh-CN", "--out", str(tmp_path))
    assert (code, err.startswith(f"yiyang: error: 档案库无法使用：{tmp_path / 'archive.sqlite'}: ")) == (2, True)


def test_a_file_the_system_refuses_is_named_in_the_chosen_language(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Any command's OS error (a full disk here) is one catalogued line naming the file, exit 2."""
    import errno

    from gateway.cli import validate

    def full(*_: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device", "/data/out")

    monkeypatch.setattr(validate, "run_validate", full)
    said = "yiyang: error: 文件操作失败（No space left on device）：/data/out\n"
    assert run(capsys, "validate", "--lang", "zh-CN", INVALID) == (2, "", said)


@pytest.mark.parametrize(("lang", "unit"), [("zh-CN", "条/s"), ("en", "records/s")])
def test_the_ingest_progress_bar_counts_records_in_the_chosen_language(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, lang: str, unit: str
) -> None:
    """Shown on a terminal only: standard error stands in for one here."""
    import io

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    main(["ingest", "--lang", lang, "--source", "community-health", "--out", str(tmp_path), str(COMMUNITY_SAMPLE)])
    assert f" {unit}]" in terminal.getvalue()


def test_an_archive_folder_and_its_store_are_the_owners_alone(tmp_path: Path) -> None:
    import stat

    main(["ingest", "--source", "community-health", "--out", str(tmp_path / "out"), str(COMMUNITY_SAMPLE)])
    files = [tmp_path / "out", *(tmp_path / "out").iterdir()]
    assert {path.name: stat.S_IMODE(path.stat().st_mode) & 0o077 for path in files} == {p.name: 0 for p in files}


def test_a_failure_of_the_gateway_itself_is_one_line_and_exit_three(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from gateway.cli import validate

    def broken(*_: object) -> int:
        raise RuntimeError("boom")

    monkeypatch.setattr(validate, "run_validate", broken)
    code = main(["validate", INVALID])
    assert (code, capsys.readouterr().err) == (3, "yiyang: internal error: RuntimeError: boom\n")


# -- yiyang measure evaluate ---------------------------------------------------------------------
def test_measure_evaluate_writes_one_measure_report_per_package_measure(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "indicators.json"
    database = f"sqlite:///{tmp_path / 'archive.sqlite'}"
    open_store(database).close()  # an empty archive: every measure is reported, at zero
    run(capsys, "measure", "evaluate", "--period", "2026", "--database", database, "--out", str(out))
    bundle = json.loads(out.read_text(encoding="utf-8"))
    assert {e["resource"]["resourceType"] for e in bundle["entry"]} == {"MeasureReport"}


@pytest.mark.parametrize(
    ("lang", "said"),
    [
        ("zh-CN", "人口文件无法读取：{path}（文件不存在）"),
        ("en", "The population file cannot be read: {path}: no such file"),
    ],
)
def test_measure_evaluate_with_an_unreadable_population_file_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, lang: str, said: str
) -> None:
    """Worded whole in --lang: the system's own (English) reason does not leak into Chinese."""
    database, missing = f"sqlite:///{tmp_path / 'archive.sqlite'}", tmp_path / "none.csv"
    open_store(database).close()  # an archive there: only the population file is missing
    argv = ["measure", "evaluate", "--lang", lang, "--period", "2026", "--database", database]
    code, _, err = run(capsys, *argv, "--population", str(missing))
    assert (code, err) == (2, f"yiyang: error: {said.format(path=missing)}\n")


def test_validation_output_names_only_the_configured_canonical_base(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from conformance.issues import publish_messages_under
    from profiles.canonical import DEFAULT_BASE

    # the province's own instance: every provincial URL in it under the province's base
    text = Path(INVALID).read_text(encoding="utf-8").replace(DEFAULT_BASE, "https://fhir.example-province.cn")
    (tmp_path / "p.json").write_text(text, encoding="utf-8")
    monkeypatch.setenv("YIYANG_CANONICAL_BASE", "https://fhir.example-province.cn")
    try:
        output = run(capsys, "validate", "--format", "json", str(tmp_path / "p.json"))[1]
    finally:
        publish_messages_under(DEFAULT_BASE)
    assert (DEFAULT_BASE in output, "https://fhir.example-province.cn/CodeSystem/validation-message" in output) == (
        False,
        True,
    )


def test_a_broken_ig_definition_is_named_where_it_is_loaded(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    extension = {
        "resourceType": "StructureDefinition",
        "id": "loose-extension",
        "url": "http://example.org/StructureDefinition/loose-extension",
        "name": "LooseExtension",
        "status": "active",
        "kind": "complex-type",
        "abstract": False,
        "type": "Extension",
        "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Extension",
        "derivation": "constraint",
        "context": [{"type": "element", "expression": "Patient"}],
        "differential": {"element": [{"id": "Extension", "path": "Extension"}]},
    }
    (tmp_path / "loose.json").write_text(json.dumps(extension), encoding="utf-8")
    code, _, err = run(capsys, "validate", "--lang", "en", "--ig", str(tmp_path / "loose.json"), VALID)
    assert (code, "StructureDefinition/loose-extension" in err and "fix Extension.url" in err) == (0, True)


# -- the archive a command reads, and the options that start a listener ------------------------
def test_export_from_an_archive_that_is_not_there_refuses_and_creates_none(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    missing = tmp_path / "archve.sqlite"
    code, _, _ = run(capsys, "export", "--database", f"sqlite:///{missing}", "--out", str(tmp_path / "out"))
    assert (code, missing.exists()) == (2, False)


@pytest.mark.parametrize(
    "command",
    [
        ["audit", "verify"],
        ["report", "--since", "2026-12-01", "--format", "json"],
        ["exchanges", "purge", "--before", "2026-12-01"],
        ["client", "list"],
        ["client", "revoke", "--id", "someone"],
        ["measure", "evaluate", "--period", "2026"],
    ],
)
def test_a_command_reading_an_archive_that_is_not_there_refuses_and_creates_none(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, command: list[str]
) -> None:
    """A mistyped path made an empty store, and ``audit verify`` said the trail was whole."""
    missing = tmp_path / "archve.sqlite"
    out = ["--out", str(tmp_path / "x.json")] if command[0] == "report" else []
    code, _, _ = run(capsys, *command, *out, "--database", f"sqlite:///{missing}")
    assert (code, missing.exists()) == (2, False)


def test_replay_of_a_folder_without_an_archive_refuses_and_creates_none(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, _ = run(capsys, "quarantine", "replay", "--out", str(tmp_path / "typo"))
    assert (code, (tmp_path / "typo").exists()) == (2, False)


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///", "mysql://db/archive"])
def test_a_malformed_database_url_is_a_usage_error_naming_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, url: str
) -> None:
    code, _, err = run(capsys, "ingest", "--lang", "en", "--source", "hl7v2", "--database", url, VALID)
    assert (code, f"'{url}' is not a database URL" in err) == (2, True)


def test_a_postgresql_server_that_refuses_is_one_line_saying_why_in_the_chosen_language(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """An ingest into a PostgreSQL that is down waited 10 s and said, in English whatever the
    language, only that it could not connect "within 10 s", below two lines of the
    connection pool's log that held the reason (refused, no such database, a wrong password)."""
    from tests.conftest import free_port

    url = f"postgresql://postgres@127.0.0.1:{free_port()}/archive"
    code = main(["ingest", "--source", "hl7v2", "--database", url, VALID])
    err = capfd.readouterr().err
    said = f"yiyang: error: 档案库无法使用：无法连接数据库 {url}："
    assert (code, len(err.splitlines()), err.startswith(said), "refused" in err) == (2, 1, True, True)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://app:S3cret@db/archive",  # SQLAlchemy's spelling: no URL of ours
        "postgresql://127.0.0.1:{port}/archive?user=app&password=S3cret",  # libpq's parameter
        "postgresql://app@127.0.0.1:{port}/archive?sslmode=prefer&sslpassword=S3cret",
    ],
)
def test_a_database_password_is_never_printed(capfd: pytest.CaptureFixture[str], url: str) -> None:
    """The refusal of a malformed URL repeated it whole, and one whose password was a query
    parameter (as libpq takes it) was named with it when the server could not be reached."""
    from tests.conftest import free_port

    code = main(["export", "--database", url.format(port=free_port()), "--out", "unused"])
    assert (code, "S3cret" in capfd.readouterr().err) == (2, False)


@pytest.mark.parametrize(
    "argv", [["serve", "--port", "99999"], ["mllp", "--port", "70000"], ["serve", "--workers", "0"]]
)
def test_a_listener_option_out_of_range_is_a_usage_error(argv: list[str]) -> None:
    """Refused while the arguments are parsed: nothing is opened or started."""
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(argv)
    assert exited.value.code == 2


@pytest.fixture
def taken_port() -> Iterator[str]:
    """A port something else listens on (so a listener that got past its checks stops there)."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield str(taken.getsockname()[1])


@pytest.mark.parametrize(
    ("lang", "said"),
    [
        ("zh-CN", "未登记任何 MLLP 发送方（--peer 地址=客户端ID）：所有消息都将被拒收（AR）\n"),
        ("en", "No MLLP sender is registered (--peer ADDRESS=CLIENT): every message will be rejected (AR)\n"),
    ],
)
def test_mllp_without_a_sender_warns_once_in_the_chosen_language(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    taken_port: str,
    lang: str,
    said: str,
) -> None:
    """The warning comes before the listener starts (here it then cannot: the port is taken)."""
    monkeypatch.delenv("YIYANG_MLLP_PEERS", raising=False)
    database = f"sqlite:///{tmp_path / 'archive.sqlite'}"
    code, out, _ = run(capsys, "mllp", "--lang", lang, "--port", taken_port, "--database", database)
    assert (code, out) == (2, said)


def test_a_peer_without_a_client_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, taken_port: str
) -> None:
    database = f"sqlite:///{tmp_path / 'archive.sqlite'}"
    code, _, err = run(capsys, "mllp", "--peer", "garbage", "--port", taken_port, "--database", database)
    assert (code, "--peer “garbage”" in err) == (2, True)


def test_mllp_on_a_port_in_use_is_a_clear_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, taken_port: str
) -> None:
    database = f"sqlite:///{tmp_path / 'archive.sqlite'}"
    code, _, err = run(capsys, "mllp", "--port", taken_port, "--database", database)
    assert (code, f"无法在 127.0.0.1:{taken_port} 上监听" in err) == (2, True)


def test_serve_on_a_port_in_use_is_a_clear_error(tmp_path: Path, taken_port: str) -> None:
    """gunicorn retried for five seconds, logging in English, and exited 1 (the exit status
    of invalid data), after the store had been opened and the validator settled."""
    database = f"sqlite:///{tmp_path / 'archive.sqlite'}"
    command = [sys.executable, "-m", "gateway.cli", "serve", "--port", taken_port, "--database", database]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    said = f"yiyang: error: 无法在 127.0.0.1:{taken_port} 上监听："
    assert (done.returncode, done.stderr.startswith(said), done.stdout) == (2, True, "")


def test_the_configured_language_is_every_commands_default(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """YIYANG_LANGUAGE=en serves English over HTTP; the terminal follows it unless --lang says."""
    monkeypatch.setenv("YIYANG_LANGUAGE", "en")
    assert run(capsys, "validate", INVALID)[1].splitlines()[-1] == "-- 1 errors, 0 warnings"


# -- client, db upgrade and export: every line and error in --lang --------------------------------
def archive(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'archive.sqlite'}"


def client_add(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, lang: str, *credentials: str, scope: str = "system/Patient.rs"
) -> tuple[int, str, str]:
    """`yiyang client add` of the client ``his`` (a development secret unless ``credentials``)."""
    if not credentials:
        (tmp_path / "secret").write_text("s" * 32, encoding="utf-8")
        credentials = ("--secret-file", str(tmp_path / "secret"))
    argv = ["client", "add", "--lang", lang, "--id", "his", "--org", "o1", "--role", "hospital", "--scope", scope]
    return run(capsys, *argv, *credentials, "--database", archive(tmp_path))


@pytest.mark.parametrize(
    ("lang", "said"),
    [
        ("zh-CN", "客户端 his 已注册：机构 o1，角色 hospital\n"),
        ("en", "client his registered: organisation o1, role hospital\n"),
    ],
)
def test_client_add_says_whom_it_registered(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, lang: str, said: str
) -> None:
    assert client_add(capsys, tmp_path, lang) == (0, said, "")


@pytest.mark.parametrize(
    ("lang", "said"),
    [
        ("zh-CN", "yiyang: error: 密钥 0 没有 kid：断言须指明签名所用的密钥\n"),
        ("en", "yiyang: error: key 0 has no kid: an assertion names the key it is signed with\n"),
    ],
)
def test_a_refused_registration_says_why_in_the_chosen_language(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, lang: str, said: str
) -> None:
    (tmp_path / "keys.json").write_text(json.dumps({"keys": [{"kty": "RSA", "n": "x", "e": "AQAB"}]}), encoding="utf-8")
    assert client_add(capsys, tmp_path, lang, "--jwks", str(tmp_path / "keys.json")) == (2, "", said)


def test_a_key_file_that_is_not_utf8_is_a_usage_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Exit 2 naming the file, not 3 with "internal error: UnicodeDecodeError"."""
    (tmp_path / "keys.json").write_bytes('{"keys": "密钥"}'.encode("gb18030"))
    status, _, said = client_add(capsys, tmp_path, "en", "--jwks", str(tmp_path / "keys.json"))
    assert (status, "is not UTF-8 text" in said) == (2, True)


def test_a_secret_file_saved_with_a_byte_order_mark_registers_the_secret_without_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Notepad's "UTF-8" begins with U+FEFF: kept, it would be the secret's first character,
    and the client sending its secret would be refused with nothing to tell why."""
    from gateway.security.clients import verify_secret
    from gateway.storage import open_store

    (tmp_path / "secret").write_text("\ufeff" + "s" * 32, encoding="utf-8")
    client_add(capsys, tmp_path, "en", "--secret-file", str(tmp_path / "secret"))
    store = open_store(archive(tmp_path))
    try:
        with store.reading() as tx:
            [client] = tx.security.clients()
    finally:
        store.close()
    assert verify_secret("s" * 32, client.secret_hash)


@pytest.mark.parametrize(
    ("key", "said"),
    [
        ("missing.pem", "无法读取 {key}：文件不存在"),
        (".", "无法读取 {key}：这是文件夹，不是文件"),
        ("gbk.pem", "{key} 不是 UTF-8 文本（第 0 字节）"),
    ],
)
def test_a_private_key_file_that_cannot_be_read_is_refused_in_the_chosen_language(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, key: str, said: str
) -> None:
    """``conformance run --key`` reads its file as ``client add --jwks`` does: exit 2 naming it,
    worded in --lang, before any request is sent (port 9 would refuse one)."""
    (tmp_path / "gbk.pem").write_bytes("密钥".encode("gbk"))
    path = tmp_path / key
    kit = ["conformance", "run", "--base-url", "http://127.0.0.1:9/fhir", "--client-id", "kit", "--key", str(path)]
    assert run(capsys, *kit, "--lang", "zh-CN") == (2, "", f"yiyang: error: {said.format(key=path)}\n")


@pytest.mark.parametrize(
    ("lang", "said"),
    [
        ("zh-CN", "“patient/*.rs”不是 SMART 系统权限范围（应形如 system/Patient.rs）"),
        ("en", "not a SMART system scope: 'patient/*.rs' (expected e.g. system/Patient.rs)"),
    ],
)
def test_a_scope_that_is_not_a_system_scope_is_refused_in_the_chosen_language(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, lang: str, said: str
) -> None:
    assert client_add(capsys, tmp_path, lang, scope="patient/*.rs") == (2, "", f"yiyang: error: {said}\n")


@pytest.mark.parametrize(
    ("lang", "rotated", "revoked", "unknown"),
    [
        ("zh-CN", "客户端 his 的凭据已更换\n", "客户端 his 已吊销：其令牌自即刻起一律被拒绝\n", "没有客户端 nobody\n"),
        (
            "en",
            "client his: credentials replaced\n",
            "client his revoked: its tokens are refused from now on\n",
            "no client nobody\n",
        ),
    ],
)
def test_client_rotate_and_revoke_say_what_they_did(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, lang: str, rotated: str, revoked: str, unknown: str
) -> None:
    client_add(capsys, tmp_path, lang)
    given = ["--lang", lang, "--database", archive(tmp_path)]
    secret = ["--secret-file", str(tmp_path / "secret")]
    assert run(capsys, "client", "rotate", "--id", "his", *secret, *given)[:2] == (0, rotated)
    assert run(capsys, "client", "revoke", "--id", "his", *given)[:2] == (0, revoked)
    assert run(capsys, "client", "revoke", "--id", "nobody", *given)[:2] == (1, unknown)


@pytest.mark.parametrize(
    ("lang", "said"),
    [
        ("zh-CN", "客户端 his 已吊销，凭据未更换：吊销不可撤回，如需重新接入请用 `yiyang client add` 注册新的客户端"),
        (
            "en",
            "client his is revoked, credentials not replaced: a revocation is final; register a new client with `yiyang client add` to connect again",
        ),
    ],
)
def test_rotating_a_revoked_client_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, lang: str, said: str
) -> None:
    """It said "credentials replaced" of a client that stays revoked, as if it could connect again."""
    client_add(capsys, tmp_path, lang)
    given = ["--lang", lang, "--database", archive(tmp_path)]
    run(capsys, "client", "revoke", "--id", "his", *given)
    rotate = ["client", "rotate", "--id", "his", "--secret-file", str(tmp_path / "secret"), *given]
    assert run(capsys, *rotate) == (2, "", f"yiyang: error: {said}\n")


def test_the_client_list_header_is_one_machine_stable_form(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Scripts read the table by its column names: they are not translated."""
    client_add(capsys, tmp_path, "zh-CN")
    headers = {
        run(capsys, "client", "list", "--lang", lang, "--database", archive(tmp_path))[1].splitlines()[0]
        for lang in ("zh-CN", "en")
    }
    assert headers == {"id\torganization\trole\tstatus\tauth\tscopes\tcreated\trotated"}


@pytest.mark.parametrize(
    ("lang", "fresh", "again"),
    [
        ("zh-CN", "数据库结构版本 0 → {v}（本次应用的迁移：1, 2, ", "数据库结构版本 {v} → {v}（本次应用的迁移：-）\n"),
        ("en", "schema 0 → {v} (applied: 1, 2, ", "schema {v} → {v} (applied: -)\n"),
    ],
)
def test_db_upgrade_says_which_migrations_it_applied(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, lang: str, fresh: str, again: str
) -> None:
    upgrade = ["db", "upgrade", "--lang", lang, "--database", archive(tmp_path)]
    code, first, _ = run(capsys, *upgrade)
    version = re.findall(r"→ (\d+)", first)[0]
    assert (code, first.startswith(fresh.format(v=version))) == (0, True), first
    assert run(capsys, *upgrade) == (0, again.format(v=version), "")


def test_a_db_upgrade_that_waited_for_another_says_the_version_it_found_once_its_turn_came(
    capsys: pytest.CaptureFixture[str], database_url: str
) -> None:
    """Two ``db upgrade`` at once: the one that waited said "schema 8 → 18 (applied: 10, …)",
    the version it had read before waiting for the other, which then applied 9."""
    import threading

    from gateway.storage import migrations
    from gateway.storage.store import Executor

    old = open_store(database_url, upgrade=False)
    with old._connection() as connection:  # noqa: SLF001 - an archive at version 8, built by hand
        migrations.apply(Executor(connection, old.dialect, old.errors), target=8)
    original_statements, original_begin = migrations.statements, migrations._begin  # noqa: SLF001
    inside, asking, resume = threading.Event(), threading.Event(), threading.Event()

    def pausing(script: str) -> list[str]:  # the first holds the schema lock inside migration 9
        if threading.current_thread().name == "first" and not inside.is_set():
            inside.set()
            resume.wait(timeout=60)
        return original_statements(script)

    def begin(sql: Executor) -> None:  # the command asks for the lock the first holds
        if threading.current_thread().name == "second":
            asking.set()
        original_begin(sql)

    def first_upgrade() -> None:
        with old._connection() as connection:  # noqa: SLF001
            migrations.apply(Executor(connection, old.dialect, old.errors), target=9)

    first = threading.Thread(target=first_upgrade, name="first")
    second = threading.Thread(target=main, args=(["db", "upgrade", "--lang", "en", "--database", database_url],))
    second.name = "second"
    migrations.statements, migrations._begin = pausing, begin  # noqa: SLF001
    try:
        first.start()
        inside.wait(timeout=60)
        second.start()
        asking.wait(timeout=60)
        resume.set()
        first.join()
        second.join()
    finally:
        migrations.statements, migrations._begin = original_statements, original_begin  # noqa: SLF001
        old.close()
    said = capsys.readouterr().out
    assert re.match(r"schema 9 → \d+ \(applied: 10, ", said), said


@pytest.mark.parametrize(
    ("lang", "said"), [("zh-CN", "已重建 1 个资源的检索索引（"), ("en", "rebuilt the search index of 1 resources (")]
)
def test_db_reindex_indexes_what_was_stored_without_its_rows(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, lang: str, said: str
) -> None:
    """A store an older gateway wrote (here: with no index rows at all) is found by search
    once reindexed, and the command says how much it did."""
    store = open_store(archive(tmp_path))  # no indexer: the resource goes in without rows
    try:
        with store.transaction() as tx:
            tx.resources.write({"resourceType": "Patient", "id": "p1", "gender": "female"})
    finally:
        store.close()
    code, printed, _ = run(capsys, "db", "reindex", "--lang", lang, "--database", archive(tmp_path))
    store = open_store(archive(tmp_path))
    try:
        with store.reading() as tx:
            rows = tx.resources.sql.all("SELECT value FROM search_index WHERE type = 'Patient' AND name = 'gender'")
    finally:
        store.close()
    assert (code, printed.startswith(said), [tuple(row) for row in rows]) == (0, True, [("female",)])


def stored_as_an_old_gateway_did(tmp_path: Path, subject: str) -> None:
    """A stay written straight into the store, its body as the client sent it (an absolute
    reference on the gateway's own base), as a gateway before 806e531 stored it."""
    store = open_store(archive(tmp_path))
    try:
        with store.transaction() as tx:
            stay = {"resourceType": "Encounter", "id": "e1", "status": "finished", "subject": {"reference": subject}}
            tx.resources.write(stay)
    finally:
        store.close()


@pytest.mark.parametrize(
    ("lang", "first", "second"),
    [
        (
            "zh-CN",
            "已检查 1 个资源，其中 1 个含以本服务基址（http://gw.example/fhir）书写的绝对引用，已改写为相对引用并各存为新版本\n",
            "已检查 1 个资源，均无以本服务基址（http://gw.example/fhir）书写的绝对引用，未作改动\n",
        ),
        (
            "en",
            "scanned 1 resources; rewrote 1 holding absolute references on this server's base (http://gw.example/fhir) "
            "with the relative ones, each as a new version\n",
            "scanned 1 resources; none holds an absolute reference on this server's base (http://gw.example/fhir): "
            "nothing changed\n",
        ),
    ],
)
def test_db_localise_says_what_it_rewrote_and_then_that_nothing_was_left(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, lang: str, first: str, second: str
) -> None:
    stored_as_an_old_gateway_did(tmp_path, "http://gw.example/fhir/Patient/p1")
    localise = ["db", "localise", "--lang", lang, "--database", archive(tmp_path), "--base", "http://gw.example/fhir"]
    localise.append("--trust-unowned")  # stored as the command line stores, with no creator
    assert (run(capsys, *localise), run(capsys, *localise)) == ((0, first, ""), (0, second, ""))


def test_db_localise_names_what_it_left_for_review_and_exits_one(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A platform's stay naming someone absolutely: its write today would be refused."""
    store = open_store(archive(tmp_path))
    try:
        with store.transaction() as tx:
            tx.security.put_client("home-platform", "yikang-home", "elderly-care", "system/*.cruds", {}, None)
            tx.resources.write({"resourceType": "Patient", "id": "li"})
            stay = {
                "resourceType": "Encounter",
                "id": "e1",
                "status": "in-progress",
                "subject": {"reference": "http://gw.example/fhir/Patient/li"},
                "serviceProvider": {"reference": "Organization/yikang-home"},
            }
            tx.resources.write(stay, owner="yikang-home")
    finally:
        store.close()
    localise = ["db", "localise", "--lang", "en", "--database", archive(tmp_path), "--base", "http://gw.example/fhir"]
    said = (
        "scanned 2 resources; rewrote 0 holding absolute references on this server's base (http://gw.example/fhir) "
        "with the relative ones, each as a new version\n"
        "1 resources left as stored: a client of the organisation that created them would be refused writing them "
        "rewritten (such as a stay an elderly-care platform recorded for someone it does not serve), or no creator "
        "is recorded (run again with --trust-unowned once reviewed); review them\n"
        "  Encounter/e1\n"
    )
    assert run(capsys, *localise) == (1, said, "")


def test_db_localise_takes_the_base_serve_announces_by_default(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("YIYANG_PUBLIC_BASE", "https://proxy.example/fhir")
    stored_as_an_old_gateway_did(tmp_path, "https://proxy.example/fhir/Patient/p1")
    run(capsys, "db", "localise", "--lang", "en", "--database", archive(tmp_path), "--trust-unowned")
    store = open_store(archive(tmp_path))
    try:
        with store.reading() as tx:
            found = tx.resources.read("Encounter", "e1")
    finally:
        store.close()
    assert found is not None and found.resource is not None and found.resource["subject"] == {"reference": "Patient/p1"}


def test_db_localise_refuses_a_base_that_is_no_url(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    run(capsys, "db", "upgrade", "--database", archive(tmp_path))
    localise = ["db", "localise", "--lang", "en", "--database", archive(tmp_path), "--base", "gw.example/fhir"]
    said = "yiyang: error: --base 'gw.example/fhir' is not an http(s) base URL (e.g. http://127.0.0.1:8080/fhir)\n"
    assert run(capsys, *localise) == (2, "", said)


def test_db_reindex_refuses_an_unknown_type(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    run(capsys, "db", "upgrade", "--database", archive(tmp_path))
    said = "yiyang: error: --type patient: not a FHIR R4 resource type (names are case-sensitive)\n"
    assert run(capsys, "db", "reindex", "--lang", "en", "--database", archive(tmp_path), "--type", "patient") == (
        2,
        "",
        said,
    )


@pytest.mark.parametrize(
    ("lang", "asked", "said"),
    [
        ("zh-CN", ["--since", "yesterday"], "--since “yesterday” 不是带时区的时间点（如 2026-12-01T08:00:00+08:00）"),
        (
            "en",
            ["--since", "yesterday"],
            "--since 'yesterday' is not an instant with a time zone (e.g. 2026-12-01T08:00:00+08:00)",
        ),
        ("zh-CN", ["--type", "Foo", "--type", "patient"], "--type Foo, patient：不是 FHIR R4 资源类型（区分大小写）"),
        (
            "en",
            ["--type", "Foo", "--type", "patient"],
            "--type Foo, patient: not a FHIR R4 resource type (names are case-sensitive)",
        ),
        (  # it exported nothing and said "files 0, lines 0"
            "en",
            ["--type", "AuditEvent"],
            "--type AuditEvent: not among the archive's resources (the audit trail is kept apart: "
            "`yiyang audit verify` checks it, /fhir/AuditEvent searches it)",
        ),
    ],
)
def test_export_refuses_a_bad_since_or_type_in_the_chosen_language(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, lang: str, asked: list[str], said: str
) -> None:
    run(capsys, "db", "upgrade", "--database", archive(tmp_path))
    given = ["--lang", lang, "--database", archive(tmp_path), "--out", str(tmp_path / "out")]
    assert run(capsys, "export", *given, *asked) == (2, "", f"yiyang: error: {said}\n")


@pytest.mark.parametrize("since", ["2026-W49-1T08:00:00Z", "20261207T080000Z", "2026-12-07 08:00:00Z"])
def test_export_refuses_a_since_python_reads_but_fhir_does_not_write(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, since: str
) -> None:
    """An ISO week date, the basic format, a space for ``T``: ``datetime.fromisoformat`` took
    them, and an export since the Monday of week 49 went out from a moment no one wrote."""
    run(capsys, "db", "upgrade", "--database", archive(tmp_path))
    given = ["--lang", "en", "--database", archive(tmp_path), "--out", str(tmp_path / "out"), "--since", since]
    said = f"yiyang: error: --since '{since}' is not an instant with a time zone (e.g. 2026-12-01T08:00:00+08:00)\n"
    assert run(capsys, "export", *given) == (2, "", said)


def test_every_command_line_message_is_worded_in_both_languages_and_its_own() -> None:
    """The command line's catalogue holds only ``cli.*`` ids, none worded again by another layer."""
    import gateway.cli
    from gateway.messages import catalog

    own = json.loads((Path(gateway.cli.__file__).parent / "messages.json").read_text(encoding="utf-8"))
    del own["_about"]
    assert all(key.startswith("cli.") and set(entry) == {"zh-CN", "en"} for key, entry in own.items())
    assert all(catalog()[key] == entry for key, entry in own.items())


# -- mappings explain: every line worded in --lang -------------------------------------------------
@pytest.mark.parametrize(
    ("lang", "said"),
    [("zh-CN", "{path} 中找不到记录 row 99\n"), ("en", "no record row 99 in {path}\n")],
)
def test_explain_of_a_record_the_file_lacks_names_the_file_in_the_chosen_language(
    capsys: pytest.CaptureFixture[str], lang: str, said: str
) -> None:
    explain = ["mappings", "explain", "community-health", str(COMMUNITY_SAMPLE), "--record", "row 99"]
    assert run(capsys, *explain, "--lang", lang) == (1, said.format(path=COMMUNITY_SAMPLE), "")


# -- conformance, report and the xlsx format: refusals worded in --lang ---------------------------
@pytest.mark.parametrize(
    ("client", "said"),
    [
        (["--client-id", "kit"], "--client-id 须同时给出 --key 文件"),
        (["--elderly-client-id", "home-a"], "--elderly-client-id 须同时给出 --elderly-key 文件"),
    ],
)
def test_a_kit_client_without_its_key_is_refused_naming_both_options(
    capsys: pytest.CaptureFixture[str], client: list[str], said: str
) -> None:
    kit = ["conformance", "run", "--lang", "zh-CN", "--base-url", "http://127.0.0.1:9/fhir"]
    assert run(capsys, *kit, *client) == (2, "", f"yiyang: error: {said}\n")


@pytest.fixture
def kit_key(tmp_path: Path, client_key: Any) -> Path:
    """A private key file for ``conformance run --key``."""
    from cryptography.hazmat.primitives import serialization

    pem = client_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    (tmp_path / "kit.pem").write_bytes(pem)
    return tmp_path / "kit.pem"


@pytest.fixture
def tokenless_server() -> Iterator[str]:
    """The base URL of an HTTP server that answers every request 404 (no SMART configuration)."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class NotFound(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_error(404)

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/fhir"
    server.shutdown()
    server.server_close()


def test_a_kit_server_that_cannot_be_reached_is_refused_in_the_chosen_language(
    capsys: pytest.CaptureFixture[str], kit_key: Path
) -> None:
    kit = ["conformance", "run", "--lang", "zh-CN", "--base-url", "http://127.0.0.1:9/fhir"]
    code, _, err = run(capsys, *kit, "--client-id", "kit", "--key", str(kit_key))
    assert (code, err.startswith("yiyang: error: 无法连接 http://127.0.0.1:9/fhir：")) == (2, True)


@pytest.mark.parametrize("base", ["http://127.0.0.1:9/fhir", "notaurl"])
def test_a_kit_run_with_a_token_against_no_server_is_refused(capsys: pytest.CaptureFixture[str], base: str) -> None:
    """With --token (no sign-in to fail first) every test was an error, and the run exited 0."""
    code, _, _ = run(capsys, "conformance", "run", "--base-url", base, "--token", "x")
    assert code == 2


def test_a_kit_client_that_gets_no_token_is_refused_in_the_chosen_language(
    capsys: pytest.CaptureFixture[str], kit_key: Path, tokenless_server: str
) -> None:
    kit = ["conformance", "run", "--lang", "zh-CN", "--base-url", tokenless_server]
    said = "yiyang: error: 客户端 kit 未获得令牌：HTTP 404 None\n"
    assert run(capsys, *kit, "--client-id", "kit", "--key", str(kit_key)) == (2, "", said)


def test_conformance_check_of_folders_without_exports_names_them(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    check = ["conformance", "check", "--lang", "zh-CN", str(tmp_path / "a"), str(tmp_path / "b")]
    said = f"yiyang: error: {tmp_path / 'a'}、{tmp_path / 'b'} 中没有 .json、.ndjson 或 .jsonl 文件\n"
    assert run(capsys, *check) == (2, "", said)


def test_conformance_check_of_exports_holding_no_resource_checks_nothing_and_says_so(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """An empty NDJSON export "passed" (exit 0): a new participant's empty export is no pass."""
    (tmp_path / "Patient.ndjson").write_text("\n", encoding="utf-8")
    check = ["conformance", "check", "--lang", "en", str(tmp_path / "Patient.ndjson")]
    said = f"yiyang: error: no resource in {tmp_path / 'Patient.ndjson'}: nothing was checked\n"
    assert run(capsys, *check) == (2, "", said)


@pytest.mark.parametrize(
    "command",
    [["conformance", "check", VALID], ["measure", "evaluate", "--period", "2026", "--database", "sqlite:///x"]],
)
def test_an_xlsx_workbook_needs_an_out_file_whichever_command_writes_it(
    capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    said = "yiyang: error: --format xlsx 须同时给出 --out 文件\n"
    assert run(capsys, *command, "--format", "xlsx", "--lang", "zh-CN") == (2, "", said)


@pytest.mark.parametrize(
    ("asked", "said"),
    [
        (["--since", "2026-12-05", "--until", "2026-12-01"], "--since 2026-12-05 晚于 --until 2026-12-01"),
        (["--since", "2026-12-01", "--limit", "-1"], "--limit 不能为负数"),
        (["--since", "2026-12-01", "--details", "-1"], "--details 不能为负数"),
        (  # it reported nothing, exit 0: a typo read as a quiet period
            ["--since", "2026-12-01", "--source", "hl7"],
            "--source hl7：没有这种来源（可用：community-health, elderly-care, insurance, hl7v2, hospital, "
            "auditor, operator, anonymous）",
        ),
    ],
)
def test_report_refuses_a_bad_period_or_limit_in_the_chosen_language(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, asked: list[str], said: str
) -> None:
    report = ["report", "--lang", "zh-CN", "--database", archive(tmp_path), "--format", "json"]
    assert run(capsys, *report, "--out", str(tmp_path / "r.json"), *asked) == (2, "", f"yiyang: error: {said}\n")


# -- serve --demo: its lines worded in --lang -------------------------------------------------------
def test_the_demo_load_says_what_it_loaded_in_the_chosen_language(tmp_path: Path) -> None:
    """The examples' line, then each source's summary on one line, its clauses joined by "；"."""
    from itertools import islice

    from gateway.config import Config
    from gateway.demo import load_demo
    from gateway.services import Services

    services = Services(Config.load(database_url=archive(tmp_path)))
    try:
        examples, source = islice(load_demo(services, "zh-CN"), 2)
    finally:
        services.close()
    assert (re.fullmatch(r"规范示例：载入 \d+ 个", examples) is not None, "✓；生成资源：" in source) == (True, True)


def test_the_demo_archive_holds_one_organization_per_identifier(tmp_path: Path) -> None:
    """The package's example of the 经八路 centre and the samples' records of it are one
    Organization (a second, under the id of its key, made the test kit's push answer 409)."""
    from collections import defaultdict

    from gateway.config import Config
    from gateway.demo import load_demo
    from gateway.services import Services

    services = Services(Config.load(database_url=archive(tmp_path)))
    try:
        list(load_demo(services, "en"))
        with services.store.reading() as tx:
            organizations = [stored.content for stored in tx.resources.current(["Organization"])]
    finally:
        services.close()
    holders = defaultdict(set)
    for organization in organizations:
        for identifier in organization.get("identifier", []):
            holders[identifier["system"], identifier["value"]].add(organization["id"])
    uscc = "http://fhir.yiyang.cn/sid/uscc"
    assert holders[uscc, "12410105MB01928377"] == {"jingbalu-chc"}
    assert {key: ids for key, ids in holders.items() if len(ids) > 1} == {}


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (None, "没有这个文件或文件夹"),
        (b"{not json", "不是合法的 JSON"),
        (b'["a", "list"]', "不是 FHIR 资源"),
    ],
)
def test_an_ig_that_cannot_be_loaded_is_refused_in_the_chosen_language(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, content: bytes | None, said: str
) -> None:
    """The registry's English ("no such file or folder", "not JSON (…)") whatever --lang said."""
    folder = tmp_path / "ig"
    if content is not None:
        folder.mkdir()
        (folder / "profile.json").write_bytes(content)
    code, _, error = run(capsys, "validate", "--lang", "zh-CN", "--ig", str(folder), VALID)
    assert (code, said in error) == (2, True)


def test_a_damaged_json_line_read_back_is_reported_in_the_chosen_language(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import gateway.cli.validate as validate_command

    def reads_a_damaged_line(args: Any, out: Any) -> int:
        return json.loads("{damaged")

    monkeypatch.setattr(validate_command, "run_validate", reads_a_damaged_line)
    said = "yiyang: error: 读回的文件中有一行 JSON 已损坏（第 1 行第 2 列）\n"
    assert run(capsys, "validate", "--lang", "zh-CN", VALID) == (2, "", said)


# -- where an ingest writes: --database, $YIYANG_DATABASE_URL, --out ---------------------------
def patients_in(url: str) -> int:
    store = open_store(url)
    try:
        with store.reading() as tx:
            return tx.resources.counts().get("Patient", 0)
    finally:
        store.close()


def test_an_ingest_without_options_writes_into_the_configured_database(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """It wrote ``./out/archive.sqlite`` and exited 0, while every other command honours the
    variable: an operator's records were not in the archive the server reads."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("YIYANG_DATABASE_URL", archive(tmp_path))
    run(capsys, "ingest", "--source", "community-health", str(COMMUNITY_SAMPLE))
    assert (patients_in(archive(tmp_path)) > 0, (tmp_path / "out").exists()) == (True, False)


def test_an_ingest_given_out_writes_into_the_folder_whatever_the_configured_database(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """An explicit option beats the environment, as everywhere."""
    monkeypatch.setenv("YIYANG_DATABASE_URL", archive(tmp_path))
    run(capsys, "ingest", "--source", "community-health", "--out", str(tmp_path / "out"), str(COMMUNITY_SAMPLE))
    assert ((tmp_path / "out/Patient.ndjson").is_file(), (tmp_path / "archive.sqlite").exists()) == (True, False)


def test_a_replay_without_options_replays_in_the_configured_database(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """As an ingest writes there, its replay reads there (not ``./out``, which is not there)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("YIYANG_DATABASE_URL", archive(tmp_path))
    run(capsys, "ingest", "--source", "community-health", str(COMMUNITY_SAMPLE))
    assert run(capsys, "quarantine", "replay")[0] == 0


def test_the_demo_without_options_loads_the_configured_database(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """It wrote ``./out/demo`` whatever ``YIYANG_DATABASE_URL`` said, as ``ingest`` did once."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("YIYANG_DATABASE_URL", archive(tmp_path))
    run(capsys, "demo", "--lang", "en")
    assert (patients_in(archive(tmp_path)) > 0, (tmp_path / "out").exists()) == (True, False)


# -- a SQLite URL is a URL: its path is percent-decoded -------------------------------------------
def test_a_sqlite_url_with_escapes_names_the_file_they_spell(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """``sqlite:///…/%E6%A1%A3%E6%A1%88%20%E5%BA%93/archive.sqlite`` made a folder named
    literally ``%E6…%20…`` beside the 档案 库 folder the operator meant."""
    from urllib.parse import quote

    folder = tmp_path / "档案 库"
    run(capsys, "db", "upgrade", "--database", f"sqlite:///{quote(str(folder / 'archive.sqlite'))}")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["档案 库"]


def test_an_out_folder_whose_name_holds_an_escape_is_the_folder_named(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The folder's own store is named by a URL too: ``a%20b`` must not become ``a b``."""
    out = tmp_path / "a%20b"
    run(capsys, "ingest", "--source", "community-health", "--out", str(out), str(COMMUNITY_SAMPLE))
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a%20b"]


@pytest.mark.parametrize(
    ("lang", "said"), [("zh-CN", "--bundle 须同时给出 --out 文件夹"), ("en", "--bundle needs --out DIR")]
)
def test_a_bundle_asked_of_an_ingest_into_a_database_needs_a_folder(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, lang: str, said: str
) -> None:
    """Into a database, ``--bundle`` wrote no Bundle anywhere and exited 0; with
    ``YIYANG_DATABASE_URL`` set, an ingest that wrote ``./out/bundle.json`` goes there too."""
    ingest = ["ingest", "--lang", lang, "--source", "community-health", "--database", archive(tmp_path), "--bundle"]
    assert run(capsys, *ingest, str(COMMUNITY_SAMPLE)) == (2, "", f"yiyang: error: {said}\n")


def test_an_ingest_stopped_by_sigterm_keeps_its_files_exchange_record(tmp_path: Path) -> None:
    """Python's own SIGTERM ended ``yiyang ingest`` at once: the batches committed stood, but
    the file's exchange record, written with its last batch, never was (a scheduler's stop
    left the auditors no trace of the file).  Now it ends as Ctrl-C does, exit 143."""
    import signal
    import time

    from bench.legacy_samples import rows, write

    csv = tmp_path / "个人基本信息表.csv"
    write(csv, rows(3000))
    url = f"sqlite:///{tmp_path / 'archive.sqlite'}"
    command = [sys.executable, "-m", "gateway.cli", "ingest", "--source", "community-health", str(csv)]
    with subprocess.Popen([*command, "--database", url], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) as child:
        store = None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and child.poll() is None:  # the first batch landed
            if store is None and (tmp_path / "archive.sqlite").exists():
                store = open_store(url, upgrade=False)
            if store is not None and _patients_landed(store):
                break
            time.sleep(0.1)
        child.send_signal(signal.SIGTERM)
        status = child.wait(timeout=120)
    assert store is not None
    with store.reading() as tx:
        recorded = tx.exchanges.sql.all("SELECT interaction FROM exchange")
    store.close()
    assert (status, recorded) == (128 + signal.SIGTERM, [("ingest",)])


def _patients_landed(store: Store) -> bool:
    """Whether a Patient has landed: false too while the run is still creating the file's
    tables (the file exists from its first statement on)."""
    try:
        with store.reading() as tx:
            return bool(tx.resources.counts().get("Patient"))
    except StoreError:
        return False
