"""Questions about the paper table are computed from the records (no model involved)."""

from __future__ import annotations

from rag.answer.table import answer_from_table


def table(retriever, question):
    """The computed answer, or None when the question's plan is not a table question."""
    plan = retriever.analyser.analyse(question)
    if not plan.computed:
        return None
    profiles = {r.owner: r.profile for r in retriever.index.reports if r.owner}
    return answer_from_table(plan, retriever, profiles)


def test_count_and_listing(retriever):
    a = table(retriever, "How many papers does Harald Binder have?")
    assert a.text.startswith("18 papers") and len(a.papers) == 10 and a.checks["number"] == 18
    assert a.papers[0].date >= a.papers[-1].date


def test_published_in_year(retriever):
    a = table(retriever, "What did Nils Strodthoff publish in 2021?")
    assert a.text.startswith("4 papers")  # CVJun 25, QMApr 16, SPMar 23, LGFeb 26, 2021
    assert all(p.year == 2021 for p in a.papers)


def test_coauthors(retriever):
    a = table(retriever, "Who are Nils Strodthoff's most frequent co-authors?")
    first = a.text.splitlines()[1]
    assert first.startswith("- Juan Miguel Lopez Alcaraz: 14 papers")
    assert "Stefan Blücher: 5 papers" in a.text  # Bluecher and Blücher are one person
    joint = table(retriever, "Which papers did Nils Strodthoff and Wilhelm Haverkamp write together?")
    assert joint.text.startswith("6 papers list both")


def test_code_badge_and_newest(retriever):
    a = table(retriever, "Which papers have code available?")
    assert a.text.startswith("4 papers") and all(p.has_code for p in a.papers)
    newest = table(retriever, "What is the newest paper by Soroosh Tayebi Arasteh?")
    assert "Cross-modal linkage risk" in newest.text and "2026-06-01" in newest.text


def test_profile_stats_only_where_stated(retriever):
    assert "h-index 24" in table(retriever, "What is Harald Binder's h-index?").text
    assert table(retriever, "What is Nils Strodthoff's h-index?") is None  # not stated: refusal decides


def test_which_listing(retriever):
    a = table(retriever, "In which listing is the paper 'Private, fair and accurate' listed?")
    assert "002_01f0cf1411e29607.txt" in a.text and "004_b1e115a40578d82b.txt" in a.text


def test_topical_questions_are_not_table_questions(retriever):
    assert table(retriever, "Which papers use state space models?") is None


def test_papers_per_listing_and_shared(retriever):
    a = table(retriever, "How many papers does each of the five listings contain?")
    counts = [int(line.rsplit(": ", 1)[1]) for line in a.text.splitlines()[1:]]
    assert counts == [18, 50, 56, 62, 31]  # the group page lists one abstract twice
    shared = table(retriever, "Which paper appears in more than one listing?")
    assert len(shared.papers) == 1 and shared.papers[0].title.startswith("Private, fair and accurate")


def test_missing_fields_are_refused(retriever):
    authors = table(retriever, "Who are the authors of the BioBERT paper?")
    assert authors.refused and "7 authors" in authors.text
    dated = table(
        retriever, "When was the paper 'Deep Learning for Case-Based Reasoning through Prototypes' published?"
    )
    assert not dated.refused and "2017-10-13" in dated.text


def test_ranking_two_people_counts_each_side(retriever):
    """No topic: each side counted with the question's year filter, the larger named."""
    from rag.query.filters import Filters

    a = table(retriever, "since 2023, who put out more: tayebi arasteh or binder?")
    expected = {
        who: len(retriever.allowed_papers(Filters(authors=[who], year_from=2023)))
        for who in ("Soroosh Tayebi Arasteh", "Harald Binder")
    }
    assert a.checks["by_side"] == expected and expected["Soroosh Tayebi Arasteh"] != expected["Harald Binder"]
    leader = max(expected, key=expected.get)
    assert a.text.splitlines()[-1] == f"{leader} has more."
    assert all(p.year >= 2023 for p in a.papers) and len(a.papers) <= 6
