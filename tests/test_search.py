"""Hybrid search over the real seed index: topics, names, years, filters, CLI JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from rag.export import CSV_COLUMNS
from rag.retrieve import Filters


def titles(result):
    return [h.paper.title or h.paper.label for h in result.hits]


def test_state_space_models_for_ecg(retriever):
    top = titles(retriever.search("state space models for ECG", k=10))
    for expected in (
        "Advancing the State-of-the-Art for ECG Analysis through Structured State Space Models",
        "Diffusion-based Conditional ECG Generation with Structured State Space Models",
        "Towards quantitative precision for ECG analysis: "
        "Leveraging state space models, self-supervision and patient metadata",
    ):
        assert expected in top[:5]


def test_one_hit_per_paper(retriever):
    ids = [h.paper.paper_id for h in retriever.search("photoplethysmography blood pressure", k=20).hits]
    assert len(ids) == len(set(ids)) == 20


def test_author_in_query_becomes_filter(retriever):
    result = retriever.search("what did Tiezhi Wang work on", k=10)
    assert result.filters.authors == ["Tiezhi Wang"]
    assert {h.paper.title.split(":")[0] for h in result.hits} == {
        "S4Sleep",
        "Assessing the importance of long-range correlations for deep-learning-based sleep staging",
        "S4ECG",
    }


def test_owner_counts_as_author(retriever):
    # Binder's profile lists papers whose visible authors ("et al.") do not show him.
    result = retriever.search("Binder synthetic data", k=30)
    assert any("Binder" not in " ".join(h.paper.authors) for h in result.hits)
    assert all("Harald Binder" in h.paper.owners or "Harald Binder" in h.paper.authors for h in result.hits)


def test_year_and_code_analysis(retriever):
    result = retriever.search("differential privacy papers from 2023", k=10)
    assert (result.filters.year_from, result.filters.year_to) == (2023, 2023)
    assert result.hits and all(h.paper.year == 2023 for h in result.hits)
    assert "privacy" in result.hits[0].paper.abstract.lower()
    coded = retriever.search("papers with code", k=10)
    assert coded.filters.has_code and len(coded.hits) == 4 and all(h.paper.has_code for h in coded.hits)


def years(retriever, question):
    f = retriever.analyser.analyse(question).filters
    return f.year_from, f.year_to


def test_year_forms(retriever):
    assert years(retriever, "since 2024") == (2024, None) and years(retriever, "between 2020 and 2022") == (
        2020,
        2022,
    )
    assert years(retriever, "before 2021") == (None, 2020) and years(retriever, "until 2021") == (None, 2021)
    assert years(retriever, "from 2022 onwards") == (2022, None) and years(retriever, "papers from 2022") == (
        2022,
        2022,
    )
    assert years(retriever, "after 2024") == (2025, None) and years(retriever, "from 2019 to 2021") == (
        2019,
        2021,
    )


def test_explicit_filters(retriever):
    f = Filters(listings=["Tayebi Arasteh"], year_from=2025)
    result = retriever.search("large language models", k=10, filters=f, analyse=False)
    assert result.hits and all(
        "Soroosh Tayebi Arasteh" in h.paper.owners and h.paper.year >= 2025 for h in result.hits
    )
    cv = retriever.search("segmentation", k=5, filters=Filters(categories=["cv"]), analyse=False)
    assert all(h.paper.category == "CV" for h in cv.hits)


def authors_in(retriever, question):
    return retriever.analyser.analyse(question).filters.authors


def test_lowercase_common_word_is_not_a_name(retriever):
    assert authors_in(retriever, "wind turbines and sound") == []
    assert authors_in(retriever, "papers by strodthoff") == ["Nils Strodthoff"]
    assert authors_in(retriever, "Müller-Franzes diffusion") == ["Müller-Franzes"]  # two people share it


def test_modes_differ(retriever):
    dense = titles(retriever.search("heart signals", k=5, mode="dense", analyse=False))
    bm25 = titles(retriever.search("heart signals", k=5, mode="bm25", analyse=False))
    assert dense and bm25 and dense != bm25


def test_cli_search_batch_and_json(seed_index, retriever, tmp_path):
    env = {**os.environ, "RAG_DATA_DIR": str(seed_index.data_dir)}
    queries = "state space models for ECG\n\nbowel sounds\n"
    out = subprocess.run(
        [sys.executable, "-m", "rag.cli", "search", "--batch", "-", "--json", "-k", "3"],
        input=queries,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 3
    first, empty, bowel = (json.loads(line) for line in lines)
    assert empty == [] and len(first) == 3
    for hit in first:  # each hit: the paper's JSON record, field for field and in order, + score
        record = retriever.index.by_id[hit["paper_id"]].to_json()
        assert list(hit) == [*record, "score"]
        assert {k: hit[k] for k in record} == record and isinstance(hit["score"], float)
    assert sorted(CSV_COLUMNS) == sorted(record)  # the CSV export has a column for every field
    assert "bowel" in bowel[0]["title"].lower()
    papers = subprocess.run(
        [sys.executable, "-m", "rag.cli", "papers", "--json", "--code"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert papers.returncode == 0 and len(json.loads(papers.stdout)) == 4
    bad = subprocess.run(
        [sys.executable, "-m", "rag.cli", "search", "x", "--year", "20x3"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert bad.returncode != 0 and "--year" in bad.stderr


FILTER_CASES = [
    Filters(authors=["Strodthoff"]),
    Filters(authors=["N. Strodthoff", "Tayebi Arasteh"]),
    Filters(authors=["Binder"]),
    Filters(authors=["Müller-Franzes"]),
    Filters(listings=["Daily"]),
    Filters(listings=["TU Munich"], year_from=2024),
    Filters(year_from=2023, year_to=2024),
    Filters(year_to=2022),
    Filters(categories=["cv", "LG"]),
    Filters(has_code=True),
    Filters(has_code=False, year_from=2025),
    Filters(authors=["Nobody Known"]),
]


def test_paper_table_agrees_with_the_reference_filters(retriever):
    papers = retriever.index.papers
    for f in FILTER_CASES:
        assert [p.paper_id for p in retriever.table.allowed(f)] == [p.paper_id for p in f.apply(papers)], (
            f.describe()
        )


def test_broad_filters_are_checked_on_oversampled_neighbours(retriever, monkeypatch):
    # With the id-list limit lowered, the seed corpus takes the path a 100k corpus takes.
    small = retriever.search(
        "deep learning for medical images", k=10, filters=Filters(year_from=2024), analyse=False
    )
    monkeypatch.setattr(type(retriever), "MAX_ID_LIST", 5)
    for f in (
        Filters(year_from=2024),
        Filters(listings=["Strodthoff"], has_code=False),
        Filters(categories=["cv"]),
    ):
        allowed = {p.paper_id for p in f.apply(retriever.index.papers)}
        result = retriever.search("deep learning for medical images", k=10, filters=f, analyse=False)
        assert result.hits and all(h.paper.paper_id in allowed for h in result.hits), f.describe()
        assert any(h.dense_rank for h in result.hits), f.describe()
        assert all(h.chunks for h in result.hits if h.dense_rank), f.describe()
    again = retriever.search(
        "deep learning for medical images", k=10, filters=Filters(year_from=2024), analyse=False
    )
    assert titles(again) == titles(small)


def test_listing_owner_that_is_no_person_is_not_a_name(retriever):
    assert any("Daily Papers" in p.owners for p in retriever.index.papers)
    assert authors_in(retriever, "Daily papers about segmentation") == []
    assert retriever.analyser.analyse("What does Nils Strodthoff's group do?").filters.listings == [
        "Nils Strodthoff"
    ]
    assert authors_in(retriever, "papers of soroosh tayebi arasteh") == ["Soroosh Tayebi Arasteh"]


def test_listing_named_in_the_question(retriever):
    both = retriever.analyser.analyse(
        "How does the ECG work in Strodthoff's listing compare with the Daily Papers listing?"
    )
    assert [s.label for s in both.sides] == ["Daily Papers", "Nils Strodthoff"]
    owners = [{o for p in retriever.table.allowed(s.filters) for o in p.owners} for s in both.sides]
    assert "Nils Strodthoff" not in owners[0] and "Nils Strodthoff" in owners[1]
    group = retriever.analyser.analyse("What does the TU Munich group publish on privacy?")
    assert group.filters.listings == ["AI in Medicine and Healthcare, TU Munich"]


def test_index_without_chunk_counts_filters_by_paper_id(retriever, monkeypatch):
    f = Filters(authors=["Strodthoff"])
    with_ids = titles(retriever.search("ECG foundation models", k=8, filters=f, analyse=False))
    monkeypatch.setattr(retriever.index, "_chunk_counts", {})  # as a generation from before chunks.json
    assert retriever.index.chunk_counts is None
    assert titles(retriever.search("ECG foundation models", k=8, filters=f, analyse=False)) == with_ids
