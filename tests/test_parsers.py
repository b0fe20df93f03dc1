"""The seed listings parse into exact records; odd files get clear errors or a generic parse."""

from __future__ import annotations

import pytest

from rag.corpus import CorpusError, load_corpus, parse_file, parse_text
from rag.corpus.names import author_key, name_matches
from tests.conftest import SEED_FILES, SEEDS


@pytest.fixture(scope="module")
def reports():
    return {f.name[:3]: parse_file(f) for f in SEED_FILES}


@pytest.fixture(scope="module")
def corpus():
    return load_corpus([SEEDS])


def by_title(report, prefix):
    matches = [e for e in report.entries if e.title and e.title.startswith(prefix)]
    assert len(matches) == 1, prefix
    return matches[0]


def test_layouts_owners_and_counts(reports):
    # Counted by hand: 18 profile entries, 150/3 and 93/3 three-line entries, 57 group
    # abstracts, 62 daily papers (61 with an author/date block + NeuroStrike without).
    expected = {
        "000": ("profile", "Harald Binder", 18),
        "001": ("three-line", "Nils Strodthoff", 50),
        "002": ("group", "AI in Medicine and Healthcare, TU Munich", 57),
        "003": ("daily", "Daily Papers", 62),
        "004": ("three-line", "Soroosh Tayebi Arasteh", 31),
    }
    for key, (layout, owner, count) in expected.items():
        r = reports[key]
        assert (r.layout, r.owner, len(r.entries)) == (layout, owner, count), key
        assert not r.warnings


def test_profile_header_and_entries(reports):
    r = reports["000"]
    assert r.profile["h-index"] == "24" and r.profile["papers"] == "18" and r.profile["citations"] == "123"
    assert [s.reason for s in r.skipped] == ["header"] * 8
    first = r.entries[0]
    assert first.title == "Assessing Multimodal Chronic Wound Embeddings with Expert Triplet Agreement"
    assert first.authors == ["Fabian Kabus", "Julia Hindel", "Jelena Bratulić"] and first.authors_truncated
    assert first.organisation == "amazon-science"
    assert (first.category, first.date, first.date_inferred_year) == ("CV", "2026-03-31", True)
    julia = by_title(r, "The JuliaConnectoR")
    assert (julia.category, julia.date, julia.has_code) == ("MS", "2020-05-13", True)
    assert (
        julia.authors == ["Stefan Lenz", "Maren Hackenberg", "Harald Binder"] and not julia.authors_truncated
    )
    assert sum(e.has_code for e in r.entries) == 1


@pytest.mark.parametrize(
    "key,title,authors,truncated,category,date",
    [
        (
            "001",
            "Insights Into the Inner Workings of Transformer Models for Protein Function Prediction",
            ["Markus Wenzel", "Erik Grüner", "Nils Strodthoff"],
            False,
            "LG",
            "2023-09-07",
        ),
        (
            "001",
            "Sparse Subspace Clustering for Concept Discovery (SSCCD)",
            ["Johanna Vielhaben", "Stefan Blücher", "Nils Strodthoff"],
            False,
            "LG",
            "2022-03-11",
        ),
        (
            "001",
            "Deriving Health Metrics from the Photoplethysmogram: "
            "Benchmarks and Insights from MIMIC-III-Ext-PPG",
            ["Mohammad Moulaeifard", "Philip J. Aston", "Peter H. Charlton"],
            True,
            "LG",
            "2026-03-23",
        ),
        (
            "001",
            "Pretraining Strategies and Scaling for ECG Foundation Models: A Systematic Study",
            ["M A Al-Masud", "Nils Strodthoff"],
            False,
            "SP",
            "2026-05-12",
        ),
        (
            "001",
            "ECG Feature Importance Rankings: Cardiologists vs. Algorithms",
            ["Temesgen Mehari", "Ashish Sundar", "Alen Bosnjakovic"],
            True,
            "MED-PH",
            "2023-04-05",
        ),
        (
            "001",
            "Deep Learning for ECG Analysis: Benchmarks and Insights from PTB-XL",
            ["Nils Strodthoff", "Patrick Wagner", "Tobias Schaeffter"],
            True,
            "LG",
            "2020-04-28",
        ),
        (
            "001",
            "Generative Neural Samplers for the Quantum Heisenberg Chain",
            ["Johanna Vielhaben", "Nils Strodthoff"],
            False,
            "STAT-MECH",
            "2020-12-18",
        ),
        (
            "001",
            "ProtoMask: Segmentation-Guided Prototype Learning",
            ["Steffen Meinert", "Philipp Schlinge", "Nils Strodthoff"],
            True,
            "CV",
            "2025-10-01",
        ),
        (
            "004",
            "Cross-modal linkage risk in clinical vision-language models",
            ["Soroosh Tayebi Arasteh", "Mahshad Lotfinia", "Sven Nebelung"],
            True,
            "CV",
            "2026-06-01",
        ),
        (
            "004",
            "Machine Learning-Based Generalized Model for Finite Element Analysis of Roll Deflection "
            "During the Austenitic Stainless Steel 316L Strip Rolling",
            ["Mahshad Lotfinia", "Soroosh Tayebi Arasteh"],
            False,
            "LG",
            "2021-02-04",
        ),
        (
            "004",
            "An Empirical Study on Text-Independent Speaker Verification based on the GE2E Method",
            ["Soroosh Tayebi Arasteh"],
            False,
            "AS",
            "2020-11-10",
        ),
        (
            "004",
            "Medical Diffusion: Denoising Diffusion Probabilistic Models for 3D Medical Image Generation",
            ["Firas Khader", "Gustav Mueller-Franzes", "Soroosh Tayebi Arasteh"],
            True,
            "IV",
            "2022-11-07",
        ),
    ],
)
def test_glued_title_author_splits(reports, key, title, authors, truncated, category, date):
    entry = by_title(reports[key], title[:40])
    assert entry.title == title
    assert (entry.authors, entry.authors_truncated, entry.category, entry.date) == (
        authors,
        truncated,
        category,
        date,
    )


def test_three_line_scores_and_badges(reports):
    r = reports["004"]
    assert by_title(r, "Safety and accuracy follow").category == "CL"  # "20.4CLMay 5"
    assert by_title(r, "Medical Diffusion").has_code and sum(e.has_code for e in r.entries) == 1
    assert sum(e.has_code for e in reports["001"].entries) == 2
    assert all(e.title and e.authors for e in r.entries + reports["001"].entries)


def test_group_page_noise_bio_and_multiline(reports):
    r = reports["002"]
    texts = {e.abstract for e in r.entries}
    assert all(e.title is None and not e.authors and e.date is None for e in r.entries)
    reasons = {s.text: s.reason for s in r.skipped}
    for noise in (
        "Georgios Kaissis",
        "Dr.",
        "* Former Member",
        "Statistical Learning and Data Science",
        "Computer Aided Medical Procedures & Augmented Reality",
        "Fabian Bongratz",
    ):
        assert reasons[noise] == "noise"
        assert not any(noise == t for t in texts)
    assert reasons["©all images: LMU | TUM"] == "footer"
    assert [s.reason for s in r.skipped[:2]] == ["bio", "bio"]
    oct_ms = [e for e in r.entries if e.abstract.startswith("Background: Alterations of the superficial")][0]
    assert [line.split(":")[0] for line in oct_ms.abstract.splitlines()] == [
        "Background",
        "Objectives",
        "Methods",
        "Results",
        "Conclusion",
    ]
    kspace = [e for e in r.entries if e.abstract.startswith("Motivation: High acceleration")][0]
    assert len(kspace.abstract.splitlines()) == 5 and kspace.abstract.splitlines()[-1].startswith("Impact:")
    # Every non-blank line is in exactly one entry or skipped.
    used = [n for e in r.entries for n in e.lines] + [s.line_no for s in r.skipped]
    assert len(used) == len(set(used)) == 125 - 0  # the file has 125 non-blank lines


def test_daily_dates_belong_to_the_paper_above(reports):
    r = reports["003"]
    assert r.profile["page date"] == "Apr 22"
    cases = {
        "Interpreting Black-box Machine Learning": ("2022-08-29", 7),
        "Deep Learning for Case-Based Reasoning": ("2017-10-13", 4),
        "BioBERT: a pre-trained": ("2019-01-25", 7),
        "RoentGen: Vision-Language": ("2022-11-23", 10),
        "Training-free Test-time Improvement": ("2025-06-22", 5),  # "Jun 22, 2025 1"
        "Neural Organ Transplantation (NOT)": ("2026-01-19", 1),
        "BiomedCoOp: Learning to Prompt": ("2024-11-21", 4),
    }
    for prefix, (date, n) in cases.items():
        e = by_title(r, prefix)
        assert (e.date, e.n_authors) == (date, n), prefix
    neuro = by_title(r, "NeuroStrike")
    assert (neuro.date, neuro.n_authors) == (None, None)
    assert by_title(r, "Multimodal Masked Autoencoder").date == "2025-05-01"


def test_corpus_merges_duplicates(corpus):
    papers, reports = corpus
    assert sum(len(r.entries) for r in reports) == 218
    assert len(papers) == 216
    assert len({p.paper_id for p in papers}) == 216
    shared = [p for p in papers if len(p.listings) > 1]
    assert len(shared) == 1 and shared[0].title.startswith("Private, fair and accurate")
    assert shared[0].listings == ["002_01f0cf1411e29607.txt", "004_b1e115a40578d82b.txt"]
    assert shared[0].owners == ["Soroosh Tayebi Arasteh", "AI in Medicine and Healthcare, TU Munich"]
    assert shared[0].owner == "Soroosh Tayebi Arasteh"
    chest = [p for p in papers if p.abstract.startswith("The automation of chest X-ray reporting")]
    assert len(chest) == 1  # listed twice on the group page
    untitled = [p for p in papers if p.title is None]
    assert untitled and all(p.label.startswith("[untitled] ") for p in untitled)


def test_ids_are_stable_across_parses(corpus):
    again, _ = load_corpus([SEEDS])
    assert [p.paper_id for p in again] == [p.paper_id for p in corpus[0]]


def test_author_names_normalised_but_people_kept_apart():
    assert author_key("Gustav Müller-Franzes") == author_key("Gustav Mueller-Franzes")
    assert author_key("Stefan Blücher") == author_key("Stefan Bluecher")
    assert author_key("Philip J. Aston") == author_key("Philip Aston")
    assert author_key("Nils Strodthoff") != author_key("Claas Strodthoff")
    assert author_key("Gustav Müller-Franzes") != author_key("Fritz Müller-Franzes")
    assert name_matches("strodthoff", "Nils Strodthoff") and name_matches("N. Strodthoff", "Nils Strodthoff")
    assert not name_matches("Claas Strodthoff", "Nils Strodthoff")
    assert name_matches("Bluecher", "Stefan Blücher")


def test_unknown_layout_falls_back_with_warning():
    text = (
        "Some notes\n\n"
        + (
            "This abstract describes a method for segmenting vessels in retinal images with deep "
            "networks and evaluates it on three datasets. "
        )
        * 2
        + "\nfooter line\n"
    )
    report = parse_text(text, "notes.txt")
    assert report.layout == "generic" and len(report.entries) == 1
    assert "notes.txt" in report.warnings[0] and "not recognised" in report.warnings[0]
    assert [s.text for s in report.skipped] == ["Some notes", "footer line"]


@pytest.mark.parametrize(
    "content,message",
    [
        (b"", "empty file"),
        (b"\x00\x01\x02binary\x00", "binary file"),
        (b"   \n\n", "only white space"),
    ],
)
def test_bad_files_get_clear_errors(tmp_path, content, message):
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    with pytest.raises(CorpusError) as exc:
        parse_file(path)
    assert str(path) in str(exc.value) and message in str(exc.value)


def test_latin1_and_utf16_are_decoded(tmp_path):
    entry = (
        "CVMar 1, 2024\nA Título about Müller netsJürgen Müller, Ana Pérez\n"
        + "Wörds of an abstract go here. " * 10
        + "\n"
    )
    line = entry * 2
    for enc in ("latin-1", "utf-16"):
        path = tmp_path / f"{enc}.txt"
        path.write_bytes(line.encode(enc))
        report = parse_file(path)
        assert report.layout == "three-line" and len(report.entries) == 2
        assert report.entries[0].title == "A Título about Müller nets"
        assert report.entries[0].authors == ["Jürgen Müller", "Ana Pérez"]
