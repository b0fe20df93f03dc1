"""Export of paper records (rag/export.py): BibTeX that a real parser (bibtexparser) reads back,
CSV and JSON, from the CLI (`rag papers --format`) and as the UI writes them; and LaTeX
fragments shown as plain text in the UI (ui/mathtext.py)."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys

import bibtexparser
import pytest

from rag.config import PROJECT_ROOT
from rag.export import bibtex_keys, export, latex_value, to_bibtex
from rag.types import Paper
from ui.mathtext import plain_math


def paper(**kw) -> Paper:
    base = dict(
        paper_id="0123456789ab",
        listings=["000_x.txt"],
        owner="Harald Binder",
        title="A title",
        label="A title",
        authors=["Daniela Zöller", "Harald Binder"],
        authors_truncated=False,
        n_authors=None,
        date="2018-03-01",
        year=2018,
        category="ML",
        has_code=False,
        abstract="We do things.",
        owners=["Harald Binder"],
    )
    base.update(kw)
    return Paper(**base)


def parse(text: str):
    library = bibtexparser.parse_string(text)
    assert not library.failed_blocks, [b.error for b in library.failed_blocks]
    return library


def rag_cli(*args: str, data_dir) -> subprocess.CompletedProcess:
    env = dict(os.environ, RAG_DATA_DIR=str(data_dir))
    return subprocess.run(
        [sys.executable, "-m", "rag.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=PROJECT_ROOT,
        timeout=300,
    )


# --- BibTeX entries -----------------------------------------------------------------------------


def test_entry_fields_authors_and_others_and_the_listing_note():
    cut = paper(
        title="Embedding interpretable $\\ell_1$-regression into networks",
        authors=["Fabian Kabus", "Maren Hackenberg"],
        authors_truncated=True,
        has_code=True,
    )
    entry = parse(to_bibtex([cut])).entries[0]
    assert entry.entry_type == "misc"
    assert entry.key == "kabus2018embedding"
    # LaTeX stays: BibTeX is LaTeX.
    assert entry["title"] == "Embedding interpretable $\\ell_1$-regression into networks"
    assert entry["author"] == "Fabian Kabus and Maren Hackenberg and others"
    assert entry["year"] == "2018"
    assert (
        "Listing: Harald Binder (000\\_x.txt)" in entry["note"] and "paper\\_id 0123456789ab" in entry["note"]
    )
    assert "code available" in entry["note"]


def test_untitled_abstracts_get_a_marked_key_and_title():
    untitled = paper(title=None, label="[untitled] Topological correctness, i.e., the…", authors=[])
    entry = parse(to_bibtex([untitled])).entries[0]
    assert entry.key == "untitled-0123456789ab"
    assert entry["title"].startswith("[untitled] Topological correctness")
    assert "author" not in entry.fields_dict
    assert "untitled in the listing" in entry["note"]


def test_keys_are_unique_and_stable():
    a, b = paper(paper_id="a" * 12), paper(paper_id="b" * 12)
    c = paper(paper_id="c" * 12, title="The state of things", authors=["Ann Lee"], year=None)
    assert bibtex_keys([a, b, c]) == ["zoeller2018title", "zoeller2018titleb", "leendstate"]
    assert bibtex_keys([a, b, c]) == bibtex_keys([a, b, c])


@pytest.mark.parametrize(
    "text",
    [
        "95% CI & more #1 under_score",
        "ends with a backslash \\",
        "unbalanced { brace",
        "closing } first {",
        "costs $5",
        "escaped \\{ brace",
        "98.7\\% accuracy and $\\pm$ math",
    ],
)
def test_hostile_text_stays_one_parseable_field(text):
    entry = parse(to_bibtex([paper(title=text, abstract=text)])).entries[0]
    assert entry["title"] == latex_value(text)
    assert entry["abstract"].strip()


def test_csv_and_json():
    p = paper(authors=["A B", "C D"], listings=["x.txt", "y.txt"])
    rows = list(csv.DictReader(io.StringIO(export([p], "csv"))))
    assert rows[0]["authors"] == "A B; C D" and rows[0]["listings"] == "x.txt; y.txt"
    assert rows[0]["has_code"] == "false" and rows[0]["year"] == "2018"
    assert json.loads(export([p], "json"))[0] == p.to_json()
    with pytest.raises(ValueError):
        export([p], "xml")


# --- the whole corpus, from the CLI ---------------------------------------------------------------


def test_cli_bibtex_of_harald_binder_has_18_entries(seed_index):
    out = rag_cli("papers", "--author", "Harald Binder", "--format", "bibtex", data_dir=seed_index.data_dir)
    assert out.returncode == 0, out.stderr
    library = parse(out.stdout)
    assert len(library.entries) == 18
    assert len({e.key for e in library.entries}) == 18
    assert sum("others" in e["author"] for e in library.entries) >= 10  # the profile cuts with "et al."
    assert any("\\ell_1" in e["title"] for e in library.entries)


def test_cli_every_paper_round_trips_and_csv_json_agree(seed_index):
    bib = rag_cli("papers", "--format", "bibtex", data_dir=seed_index.data_dir)
    as_csv = rag_cli("papers", "-f", "csv", data_dir=seed_index.data_dir)
    as_json = rag_cli("papers", "--format", "json", data_dir=seed_index.data_dir)
    legacy = rag_cli("papers", "--json", data_dir=seed_index.data_dir)
    assert all(r.returncode == 0 for r in (bib, as_csv, as_json, legacy))
    papers = json.loads(as_json.stdout)
    assert len(papers) == 216 and json.loads(legacy.stdout) == papers
    entries = parse(bib.stdout).entries
    assert len(entries) == 216
    untitled = [e for e in entries if e.key.startswith("untitled-")]
    assert len(untitled) == sum(1 for p in papers if p["title"] is None)
    assert all(e["title"].startswith("[untitled] ") for e in untitled)
    assert [r["paper_id"] for r in csv.DictReader(io.StringIO(as_csv.stdout))] == [
        p["paper_id"] for p in papers
    ]
    bad = rag_cli("papers", "--format", "xml", data_dir=seed_index.data_dir)
    assert bad.returncode != 0 and "expected table, bibtex, csv, json" in bad.stderr


# --- LaTeX as plain text in the UI ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("Embedding interpretable $\\ell_1$-regression", "Embedding interpretable ℓ₁-regression"),
        ("0.909$\\pm$0.069", "0.909±0.069"),
        ("98.7\\% accuracy", "98.7% accuracy"),
        ("$\\mathbb{R}^{n}$ and $O(n^2)$, $x_{ij}$", "ℝⁿ and O(n²), xᵢⱼ"),
        ("We present emph{TimeFlow}, a", "We present TimeFlow, a"),
        ("the \\dbname~dataset", "the dbname dataset"),
        ("data from ~141K participants", "data from ~141K participants"),
        ("costs $5 only", "costs $5 only"),
        ("plain", "plain"),
        ("trailing \\", "trailing "),
    ],
)
def test_latex_fragments_as_plain_text(raw, shown):
    assert plain_math(raw) == shown


def test_no_title_or_abstract_shows_latex_source(seed_index):
    from rag.index import PaperIndex

    for p in PaperIndex(seed_index).papers:
        for text in (plain_math(p.label), plain_math(p.abstract)):
            assert "\\ell" not in text and "$\\" not in text and "\\%" not in text
