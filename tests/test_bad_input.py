"""Bad input: parsers never crash and never lose a line; odd files and questions get clear
messages; the CLI exits non-zero when nothing usable came out."""

from __future__ import annotations

import os
import subprocess
import sys

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rag.corpus import parse_text
from tests.conftest import SEED_FILES

SEED_LINES = [line for f in SEED_FILES for line in f.read_text().splitlines() if line.strip()]

line_strategy = st.one_of(
    st.sampled_from(SEED_LINES),
    st.text(min_size=0, max_size=120),
    st.from_regex(
        r"(\d\d\.\d)?(CV|LG|MED-PH|STAT-MECH)(Jan|Mar|Dec) [1-9](, 20[12]\d)?(Code)?", fullmatch=True
    ),
    st.from_regex(r"  • [0-9]{1,2} authors", fullmatch=True),
    st.sampled_from(
        [
            "·",
            "",
            "   ",
            "Background: x y z.",
            "Methods: a b.",
            "Dr.",
            "* Former Member",
            "Apr 22",
            "Jun 22, 2025 1",
        ]
    ),
)


def check_every_line_accounted(text: str) -> None:
    report = parse_text(text, "generated.txt")
    expected = [no for no, line in enumerate(text.splitlines(), start=1) if line.strip()]
    used = [no for e in report.entries for no in e.lines] + [s.line_no for s in report.skipped]
    assert sorted(used) == expected, report.layout  # each non-blank line exactly once


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(line_strategy, max_size=40))
def test_parsers_never_crash_or_lose_lines(lines):
    check_every_line_accounted("\n".join(lines))


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_seed_files_cut_anywhere(data):
    text = data.draw(st.sampled_from(SEED_FILES)).read_text()
    cut = data.draw(st.integers(min_value=1, max_value=len(text)))
    check_every_line_accounted(text[:cut])  # a listing cut off mid-entry


def test_every_seed_line_accounted():
    for f in SEED_FILES:
        check_every_line_accounted(f.read_text())


def test_cut_off_three_line_entry_is_reported():
    text = "\n".join(SEED_FILES[1].read_text().splitlines()[:7])  # two entries and a category line
    report = parse_text(text, "cut.txt")
    assert len(report.entries) == 2
    assert [s.reason for s in report.skipped] == ["incomplete entry (no abstract)"]


def run_cli(*args, env_extra=None, timeout=300):
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run(
        [sys.executable, "-m", "rag.cli", *args], capture_output=True, text=True, env=env, timeout=timeout
    )


def test_cli_ingest_errors_name_the_file(tmp_path):
    env = {"RAG_DATA_DIR": str(tmp_path / "data")}
    missing = run_cli("ingest", str(tmp_path / "nope"), env_extra=env)
    assert (
        missing.returncode == 1
        and "nope: no such file" in missing.stderr
        and "Traceback" not in missing.stderr
    )
    binary = tmp_path / "x.pdf"
    binary.write_bytes(b"%PDF\x00\x01\x02")
    big = tmp_path / "big.txt"
    with open(big, "wb") as handle:
        handle.truncate(50 * 1024 * 1024)
    out = run_cli("ingest", str(binary), str(big), env_extra=env)
    assert out.returncode == 1 and "x.pdf: binary file" in out.stderr and "big.txt" in out.stderr
    assert "larger than the 20 MiB limit" in out.stderr or "binary" in out.stderr
    assert not (tmp_path / "data" / "state.json").exists()


def test_cli_without_index_says_how_to_build_it(tmp_path):
    # (without --no-build it builds the index instead: tests/test_cli.py)
    out = run_cli("search", "anything", "--no-build", env_extra={"RAG_DATA_DIR": str(tmp_path / "empty")})
    assert out.returncode == 1 and "rag ingest" in out.stderr and "Traceback" not in out.stderr


def test_odd_questions_get_answers_not_crashes(assistant):
    for question in ("", "   ", "?!?...", "\x00\x07\x1b[31m", "x" * 100_000):
        answer = assistant.ask(question)
        assert answer.kind == "error" and answer.answer
    other = assistant.ask("Welche Arbeiten verwenden Zustandsraummodelle für EKG?")  # German
    assert other.kind in ("rag", "refusal") and all(c.n <= len(other.sources) for c in other.citations)
    control = assistant.ask("Which papers\x00 use \x07state space models?")
    assert "\x00" not in control.question and control.sources
