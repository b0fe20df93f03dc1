"""The Gradio app, served for real and driven through gradio_client: streamed answers with
source cards, filters, follow-ups in one session, error messages, browse and export."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rag.llm import free_port

# Gradio's own pandas calls warn under pandas 3; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:.*(no_silent_downcasting|copy keyword).*")

SSM_QUESTION = "Which papers use state space models?"


def text_of(message: dict) -> str:
    """A chat message's text, whether Gradio returns a string or a list of content parts."""
    content = message["content"]
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content if isinstance(part, dict))


def without_chips(text: str) -> str:
    """A chat answer without the plan's chips above it (they come before any token)."""
    return re.sub(r'<div class="plan-chips">.*?</div>', "", text, flags=re.DOTALL).strip()


def latest_cards(sources_html: str) -> list[str]:
    """The cards of the newest answer (earlier answers are folded in a <details> below)."""
    latest = sources_html.split('<details class="earlier">')[0]
    return re.findall(r'<div class="card".*?</div></div>', latest, flags=re.DOTALL)


def serve(assistant):
    from ui.app import build_app

    demo = build_app(assistant)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    return demo, f"http://127.0.0.1:{port}/"


@pytest.fixture(scope="module")
def app_url(assistant):
    from rag.answer import Assistant

    # Short answers: these tests check the UI, not the prose, and SmolLM rambles to max_tokens.
    short = Assistant(assistant.settings.model_copy(update={"max_tokens": 120}), index=assistant.index)
    demo, url = serve(short)
    yield url
    demo.close()


@pytest.fixture
def client(app_url):
    from gradio_client import Client

    return Client(app_url, verbose=False)  # one client = one browser session


def ask(client, question, listings=(), year_from="any", year_to="any", categories=(), has_code=False):
    job = client.submit(
        question, list(listings), year_from, year_to, list(categories), has_code, api_name="/ask"
    )
    result = job.result(timeout=600)
    return job, result


# --- pure rendering ----------------------------------------------------------------------------


def test_citations_become_links_to_their_cards():
    from rag.answer import Source
    from rag.types import Paper
    from ui.render import link_citations

    paper = Paper(
        "0123456789ab",
        ["x.txt"],
        "Owner",
        'A "quoted" title',
        'A "quoted" title',
        [],
        False,
        None,
        None,
        None,
        None,
        False,
        "Abstract.",
    )
    sources = [Source(1, paper, []), Source(2, paper, [])]
    text = link_citations("SSMs help [1][2]. Not a source [9].", turn_no=3, sources=sources)

    def cite(n: int) -> str:
        return f'<a class="cite" href="#src-3-{n}" title="A &quot;quoted&quot; title">[{n}]</a>'

    assert text == f"SSMs help {cite(1)}{cite(2)}. Not a source [9]."
    assert '<a class="cite" href="#src-3-1" title="A &quot;quoted&quot; title">[1]</a>' in text
    assert 'href="#src-3-2"' in text
    assert "[9]" in text and "#src-3-9" not in text
    grouped = link_citations("Both [1, 2]; one [2;9]; none [8, 9].", turn_no=3, sources=sources)
    assert grouped == f"Both {cite(1)}{cite(2)}; one {cite(2)}[9]; none [8, 9]."


def test_evidence_is_marked_inside_the_escaped_abstract():
    from ui.render import highlight

    abstract = "We study <b>ECG</b>. State space models help. The end."
    out = highlight(abstract, ["State space models help."])
    assert out == "We study &lt;b&gt;ECG&lt;/b&gt;. <mark>State space models help.</mark> The end."


def test_history_keeps_the_standalone_question_and_skips_failed_turns():
    from ui.render import Turn, history

    turns = [
        Turn("q1", "a1", standalone="q1 full", finished=True),
        Turn("", "Please type a question about the papers.", kind="error", finished=True),
        Turn("q3", "partial"),
    ]
    assert history(turns) == [
        {"role": "user", "content": "q1", "standalone": "q1 full"},
        {"role": "assistant", "content": "a1"},
    ]


def test_filters_from_the_widgets():
    from ui.app import make_filters

    f = make_filters(["Nils Strodthoff"], "2024", "2022", ["CV"], False)
    assert (f.listings, f.year_from, f.year_to, f.categories, f.has_code) == (
        ["Nils Strodthoff"],
        2022,
        2024,
        ["CV"],
        None,
    )
    assert make_filters([], "any", "any", [], True).has_code is True


BINDER_COUNT = "hwo many papers did Harald Binder publish in 2026?"  # "hwo": a typo the analyser fixes


def labels(chips) -> list[str]:
    return [c.label for c in chips]


def test_plan_chips_from_the_real_analyser(retriever):
    from rag.query.filters import Filters
    from ui.chips import chips_html, parse_chip_target, plan_chips

    plan = retriever.analyser.analyse(BINDER_COUNT)
    chips = plan_chips(plan)
    assert labels(chips) == ["count", "author Harald Binder", "year 2026", "hwo→how"]
    assert [c.removable for c in chips] == [False, True, True, True]
    assert {c.origin for c in chips} == {"question"}

    # What the filters panel set is marked as coming from there.
    panel = Filters(has_code=True, listings=["Nils Strodthoff"])
    plan = retriever.analyser.analyse("how many papers since 2023?", panel)
    origins = {c.label: c.origin for c in plan_chips(plan, panel)}
    assert origins == {
        "count": "question",
        "listing Nils Strodthoff": "panel",
        "years 2023–…": "question",
        "with code": "panel",
    }

    # As HTML: only the removable chips carry a link, which names the turn and the chip.
    html = chips_html(plan_chips(retriever.analyser.analyse(BINDER_COUNT)), 3, editable=True)
    links = re.findall(r'href="#chip-([^"]+)"', html)
    assert links == ["3-author:Harald%20Binder", "3-years:2026-2026", "3-spelling:hwo"]
    assert parse_chip_target(links[0]) == (3, "author:Harald Binder")
    assert parse_chip_target("x-author:A") is None and parse_chip_target("") is None
    assert "chip-x" not in chips_html(plan_chips(plan), 3, editable=False)


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        # A topic typo and an inferred code filter.
        (
            "Which papers on segmantation have code?",
            ["topic list", "with code", "topic “segmantation”", "segmantation→segmentation"],
        ),
        # A comparison's sides.
        (
            "compare Binder and Strodthoff on ECG",
            ["compare", "side Harald Binder", "side Nils Strodthoff", "topic “ECG”"],
        ),
    ],
)
def test_plan_chip_labels_from_the_real_analyser(retriever, question, expected):
    from ui.chips import plan_chips

    assert labels(plan_chips(retriever.analyser.analyse(question))) == expected


def test_edited_analyser_leaves_out_the_removed_chips(retriever):
    from ui.chips import EditedAnalyser, plan_chips

    analyser = retriever.analyser
    plan = EditedAnalyser(analyser, ["author:Harald Binder"]).analyse(BINDER_COUNT)
    assert labels(plan_chips(plan)) == ["count", "year 2026", "hwo→how"]
    plan = EditedAnalyser(analyser, ["years:2026-2026", "spelling:hwo"]).analyse(BINDER_COUNT)
    # "hwo" taken as typed: no count cue is left, so the plan is no longer a count.
    assert plan.corrections == {} and plan.intent != "count"
    assert plan.filters.authors == ["Harald Binder"] and plan.filters.year_from is None
    plan = EditedAnalyser(analyser, ["expansion:segmantation", "code:True"]).analyse(
        "Which papers on segmantation have code?"
    )
    assert plan.expansions == {} and plan.filters.has_code is None
    assert "left out on request" in plan.notes[-1]
    # The index's own analyser is untouched (the edited one is per question).
    assert labels(plan_chips(analyser.analyse(BINDER_COUNT))) == [
        "count",
        "author Harald Binder",
        "year 2026",
        "hwo→how",
    ]


def test_table_answers_say_they_are_computed_from_the_records(retriever):
    from ui.render import Turn, answer_markdown

    plan = retriever.analyser.analyse(BINDER_COUNT)
    turn = Turn(BINDER_COUNT, "4 papers (author: Harald Binder, year: 2026).", plan=plan, kind="table")
    turn.finished = True
    text = answer_markdown(turn, 1, editable=True)
    assert text.index('class="plan-chips"') < text.index("4 papers")
    assert "computed from the records" in text and "filter: author: Harald Binder, year: 2026" in text
    turn.kind = "rag"
    assert "computed from the records" not in answer_markdown(turn, 1)


# --- the served app ----------------------------------------------------------------------------


def test_streamed_answer_shows_sources_before_tokens(client):
    job, (_, chat, sources) = ask(client, SSM_QUESTION)
    cards = latest_cards(sources)
    assert cards and any("state space" in c.lower() for c in cards)
    assert re.search(r'id="src-1-1"', sources) and "<mark>" in sources

    assert [m["role"] for m in chat] == ["user", "assistant"]
    answer = text_of(chat[-1])
    assert answer.strip()
    # Every in-range [n] is a link to its card.
    assert not re.search(r"(?<!\">)\[[1-5]\](?!</a>)", answer)

    # The cards arrived in an update before any answer token did.
    updates = job.outputs()
    first_cards = next(
        i for i, out in enumerate(updates) if isinstance(out[2], str) and 'class="card"' in out[2]
    )
    first_token = next(
        i
        for i, out in enumerate(updates)
        if out[1] and (t := without_chips(text_of(out[1][-1]))) and not t.startswith("*")
    )
    assert first_cards < first_token
    # The plan's chips were there before either.
    first_chips = next(
        i for i, out in enumerate(updates) if out[1] and 'class="plan-chips"' in text_of(out[1][-1])
    )
    assert first_chips <= first_cards


def test_code_filter_gives_only_cards_with_the_code_badge(client):
    _, (_, _, sources) = ask(client, "Which papers use deep learning for medical images?", has_code=True)
    cards = latest_cards(sources)
    assert cards
    assert all('<span class="badge code">Code</span>' in c for c in cards)


def test_listing_and_year_filters(client):
    _, (_, _, sources) = ask(
        client, "Which papers study ECG?", listings=["Nils Strodthoff"], year_from="2023", year_to="2023"
    )
    cards = latest_cards(sources)
    assert cards
    assert all("listing: Nils Strodthoff" in c for c in cards)
    assert all(re.search(r'class="meta">2023-\d\d-\d\d', c) for c in cards)


def test_follow_up_uses_the_session_history(client):
    _, (_, chat, sources) = ask(client, SSM_QUESTION)
    assert len(chat) == 2
    _, (_, chat, sources) = ask(client, "and which of those are from 2023?")
    assert [m["role"] for m in chat] == ["user", "assistant"] * 2
    cards = latest_cards(sources)
    assert cards
    assert all(re.search(r'class="meta">2023-\d\d-\d\d', c) for c in cards)
    assert "state space" in cards[0].lower()  # the topic of the first question carried over
    # The first answer's cards stay reachable under their own anchors.
    assert 'id="src-1-1"' in sources and 'id="src-2-1"' in sources


def test_sessions_do_not_share_history(app_url, client):
    from gradio_client import Client

    ask(client, SSM_QUESTION)
    _, (_, chat, _) = ask(Client(app_url, verbose=False), "Which papers use transformers?")
    assert len(chat) == 2


def test_empty_and_overlong_questions_get_a_message(client):
    _, (_, chat, sources) = ask(client, "   ")
    assert "Please type a question" in text_of(chat[-1])
    _, (_, chat, _) = ask(client, "x" * 2500)
    assert "2500 characters" in text_of(chat[-1])
    assert len(chat) == 4  # both turns stay in the conversation


def test_browse_search_filters_rows(client):
    table, count, _, _ = client.predict("state space", api_name="/browse")
    rows = table["data"]
    assert rows and len(rows) < 216
    assert all(len(r) == 7 for r in rows)
    assert count.startswith(f"**{len(rows)}** of 216 papers")
    everything = client.predict("", api_name="/browse")[0]["data"]
    assert len(everything) == 216


def file_of(update) -> Path:
    """The file a DownloadButton offers, from the update gradio_client returns for it."""
    return Path(update["value"] if isinstance(update, dict) else update)


def test_browse_filters_and_its_bibtex_and_csv_downloads(client):
    import csv

    import bibtexparser

    # Several authors: the papers by all of them (the app's author matching: visible or own listing).
    table, count, bib, csv_file = client.predict(
        "", ["Harald Binder", "Maren Hackenberg"], [], "any", "any", [], False, api_name="/browse"
    )
    ids = [r[-1] for r in table["data"]]
    assert ids and count.startswith(f"**{len(ids)}** of 216 papers — by Harald Binder and Maren Hackenberg")
    library = bibtexparser.parse_string(file_of(bib).read_text(encoding="utf-8"))
    assert not library.failed_blocks
    assert [e["note"].rsplit("paper\\_id ", 1)[1] for e in library.entries] == ids
    rows = csv.DictReader(file_of(csv_file).read_text(encoding="utf-8").splitlines())
    assert [r["paper_id"] for r in rows] == ids

    table, count, _, _ = client.predict("", [], [], "2023", "2023", [], True, api_name="/browse")
    assert table["data"] and all(r[2].startswith("2023") and r[4] == "yes" for r in table["data"])
    table, count, _, _ = client.predict("no-such-word-anywhere", api_name="/browse")
    assert not table["data"] and count.startswith("**0** of 216")


def test_coauthor_view_counts_shared_papers(client):
    summary, bars, table, years = client.predict("Harald Binder", api_name="/coauthors")
    assert summary.startswith("**Harald Binder**: 18 papers")
    rows = table["data"]
    assert rows[0] == ["Maren Hackenberg", 9]
    assert [r[1] for r in rows] == sorted((r[1] for r in rows), reverse=True)
    assert not any("Binder" in r[0] for r in rows)
    assert sum(r[1] for r in years["data"]) == 18
    # The bar for a co-author counts the papers Browse shows for both names.
    shared, _, _, _ = client.predict("", ["Harald Binder", "Maren Hackenberg"], api_name="/browse")
    assert len(shared["data"]) == 9
    summary, _, _, _ = client.predict("Nobody Atall", api_name="/coauthors")
    assert "No paper names" in summary


def test_table_answer_offers_the_cited_papers_as_bibtex(client):
    import bibtexparser

    _, (_, chat, sources) = ask(client, "What did Harald Binder publish in 2026?")
    path = file_of(client.predict(api_name="/cited_bibtex"))
    entries = bibtexparser.parse_string(path.read_text(encoding="utf-8")).entries
    cited = re.findall(r'data-paper-id="([0-9a-f]{12})"', "".join(latest_cards(sources)))
    assert entries and {e["note"].rsplit("paper\\_id ", 1)[1] for e in entries} <= set(cited)
    # LaTeX in titles: KaTeX source in the chat (rendered by Gradio), plain text in the cards.
    assert "$\\ell_1$" in text_of(chat[-1])
    assert "ℓ₁-regression" in sources and "$\\ell" not in sources


def test_export_markdown_has_questions_answers_and_references(client):
    ask(client, SSM_QUESTION)
    path = client.predict(api_name="/export")
    text = Path(path).read_text(encoding="utf-8")
    assert text.startswith("# Conversation")
    assert f"## Q1: {SSM_QUESTION}" in text
    if "References:" in text:
        assert re.search(r"- \[\d+\] .+paper_id [0-9a-f]{12}", text)


def test_unreachable_endpoint_is_shown_in_the_chat(assistant, seed_index):
    from gradio_client import Client

    from rag.answer import Assistant

    settings = seed_index.model_copy(
        update={"openai_base_url": f"http://127.0.0.1:{free_port()}/v1", "llm_model": "nothing"}
    )
    broken = Assistant(settings, index=assistant.index)
    demo, url = serve(broken)
    try:
        client = Client(url, verbose=False)
        _, (_, chat, sources) = ask(client, SSM_QUESTION)
        assert "cannot reach" in text_of(chat[-1])
        assert latest_cards(sources)  # retrieval still worked
        _, (_, chat, _) = ask(client, "Which papers use transformers?")  # the app lives on
        assert len(chat) == 4 and "cannot reach" in text_of(chat[-1])
    finally:
        demo.close()


def reask(client, target: str):
    """Click a chip (through the API): the first update (it sets the filters panel) and the last."""
    job = client.submit(target, api_name="/reask")
    last = job.result(timeout=600)
    return job.outputs()[0], last


def test_removing_a_chip_asks_again_without_it(client):
    _, (_, chat, _) = ask(client, BINDER_COUNT)
    answer = text_of(chat[-1])
    assert "4 papers (author: Harald Binder, year: 2026)" in answer
    assert "computed from the records" in answer
    assert re.findall(r'href="#chip-([^"]+)"', answer) == [
        "1-author:Harald%20Binder",
        "1-years:2026-2026",
        "1-spelling:hwo",
    ]

    # An inferred filter: left out of the plan; the panel shows what it had (nothing).
    first, (chat, _, *panel) = reask(client, "1-years:2026-2026")
    answer = text_of(chat[-1])
    assert len(chat) == 2  # the same turn, answered again
    assert "18 papers (author: Harald Binder)" in answer
    assert "filter: author: Harald Binder" in answer and "2026" not in answer.split("records")[-1]
    assert '<span class="chip removed filter"' in answer and "<s>year 2026</s>" in answer
    assert first[2:] == ([], "any", "any", [], False)
    # Put back (↺): the first answer again; then the author left out instead.
    _, (chat, *_) = reask(client, "1-years:2026-2026")
    assert "4 papers (author: Harald Binder, year: 2026)" in text_of(chat[-1])
    _, (chat, *_) = reask(client, "1-author:Harald%20Binder")
    assert "22 papers (year: 2026)" in text_of(chat[-1])
    # A chip of no current turn changes nothing.
    _, (chat, *_) = reask(client, "7-years:2026-2026")
    _, (_, chat, _) = ask(client, "how many papers are there?")
    assert len(chat) == 4 and "22 papers (year: 2026)" in text_of(chat[1])


def test_removing_a_panel_chip_clears_the_panel(client):
    _, (_, chat, _) = ask(client, "how many papers did Harald Binder publish?", has_code=True)
    answer = text_of(chat[-1])
    assert "1 papers (author: Harald Binder, with code)" in answer
    assert '<span class="chip filter panel" title="from the filters panel">with code' in answer
    first, (chat, *_) = reask(client, "1-code:True")
    assert first[2:] == ([], "any", "any", [], False)  # the code box unticked
    assert "18 papers (author: Harald Binder)" in text_of(chat[-1])
    assert "chip removed" not in text_of(chat[-1])  # the panel shows it is gone
