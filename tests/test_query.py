"""Question understanding: one `QueryPlan` per question, entities + intent + topic combining.

The phrasings here are not those of eval/plan/*.jsonl: they check that cues combine with
entities they were not written next to.
"""

from __future__ import annotations

import pytest

from rag.query.plan import Intent


@pytest.fixture(scope="module")
def analyse(retriever):
    return retriever.analyser.analyse


@pytest.mark.parametrize(
    "question, intent",
    [
        ("tally of tayebi arasteh's preprints", Intent.COUNT),
        ("count the papers with a code badge from 2022", Intent.COUNT),
        ("latest 2 from the daily papers page", Intent.NEWEST),
        ("earliest thing Binder has on his profile", Intent.OLDEST),
        ("binder output by year", Intent.PER_YEAR),
        ("papers in each of the lists, how many?", Intent.PER_LISTING),
        ("who are Lopez Alcaraz's closest collaborators", Intent.COAUTHORS),
        ("strodthoff + haverkamp joint papers", Intent.JOINT),
        ("is the same abstract on two pages?", Intent.SHARED),
        ("how many citations does harald binder have", Intent.PROFILE),
        ("SSSD versus S4ECG: how do they differ", Intent.COMPARE),
        ("show me work on sleep staging", Intent.TOPIC_LIST),
        ("what accuracy did S4Sleep reach", Intent.FACT),
        ("everything by Vielhaben", Intent.LIST),
    ],
)
def test_intents_combine_with_any_entities(analyse, question, intent):
    assert analyse(question).intent == intent


def test_entities_in_every_form(analyse):
    plan = analyse("What did MEHARI et al. put out between 2021 and 2023?")
    assert plan.intent is Intent.LIST and plan.filters.authors == ["Temesgen Mehari"]
    assert (plan.filters.year_from, plan.filters.year_to) == (2021, 2023) and not plan.topic
    assert analyse("zoeller's papers").filters.authors == analyse("Zöller's papers").filters.authors
    last = analyse("which papers from last year use transformers")
    assert last.filters.year_from == last.filters.year_to and last.topic == "transformers"
    assert analyse("papers on the hugging face list about agents").filters.listings == ["Daily Papers"]


def test_collection_words_are_not_topics(analyse):
    for question in (
        "What is the oldest paper in the collection?",
        "newest stuff in the corpus",
        "how many entries are listed overall",
    ):
        plan = analyse(question)
        assert plan.intent.from_table and plan.topic == "", (question, plan.summary())


def test_topic_facets(analyse):
    plan = analyse("which papers apply reinforcement learning to robotic surgery?")
    assert plan.intent is Intent.TOPIC_LIST and plan.facets == ["reinforcement learning", "robotic surgery"]


def test_named_paper_fields(analyse):
    plan = analyse("when did the RadioRAG paper come out")
    assert plan.intent is Intent.FIELD and plan.field == "date" and plan.paper_label.startswith("RadioRAG")
    authors = analyse("who authored 'Diffusion Probabilistic Models beat GANs on Medical Images'")
    assert authors.intent is Intent.FIELD and authors.field == "authors"


def test_comparison_keeps_both_sides(analyse):
    plan = analyse("contrast Strodthoff's explainability papers with what the TUM group does on it")
    assert plan.intent is Intent.COMPARE and len(plan.sides) == 2
    assert not plan.filters.authors and not plan.filters.listings  # no side narrows the other
    assert "explainability" in plan.topic


def test_unheld_and_unstated_profile(analyse):
    assert analyse("what GPUs trained SSSD?").unheld.what == "the hardware used"
    assert analyse("Strodthoff h index?").unheld is not None  # his listing states none
    assert analyse("binder's h index").unheld is None
    assert analyse("brain age prediction papers").unheld is None  # a topic, not a personal detail


def test_cue_typos_are_corrected_not_corpus_words(analyse):
    plan = analyse("hwo many papres by strodthoff")
    assert plan.intent is Intent.COUNT and plan.corrections == {"hwo": "how", "papres": "papers"}
    assert analyse("which papers use wavelets").corrections == {}


def test_the_question_is_analysed_once(seed_index):
    """A table question through the whole chain: one analysis, and the plan reaches the answer."""
    from rag.answer import Assistant
    from rag.index import PaperIndex

    assistant = Assistant(seed_index, index=PaperIndex(seed_index), generate=False)
    before = assistant.analyser.calls
    answer = assistant.ask("how many papers did binder put out in 2026?")
    assert assistant.analyser.calls == before + 1
    assert answer.plan["intent"] == "count" and answer.checks["number"] == 4
    assistant.ask("which papers use state space models?")  # retrieval path: still once
    assert assistant.analyser.calls == before + 2


def test_topic_words_expand_to_the_corpus_terms(analyse):
    """Everyday words, mined acronyms and typos of topic words become search terms; the
    question itself stays as typed."""
    assert "ECG" in analyse("anything about heart signals?").expansions["heart signals"]
    assert analyse("work on SSMs").expansions == {"ssms": "state space models"}
    typo = analyse("which papers do segmantation of tumours")
    assert typo.expansions == {"segmantation": "segmentation"} and "segmantation" in typo.topic
    assert "segmentation" in typo.search_text(typo.question)
    assert analyse("which papers use wavelets").expansions == {}


def test_the_subject_of_what_is_not_held(analyse):
    """A person's details make a profile question, a named paper's a field question; both unheld."""
    phone = analyse("what's the phone number of tayebi arasteh")
    assert phone.intent is Intent.PROFILE and phone.unheld is not None
    grant = analyse("was the RadioRAG paper funded by a grant")
    assert grant.intent is Intent.FIELD and grant.paper_label.startswith("RadioRAG") and grant.unheld


def test_ranking_people_is_a_comparison_without_topic(analyse):
    plan = analyse("who published fewer preprints: binder or strodthoff")
    assert plan.intent is Intent.COMPARE and plan.computed and not plan.topic
    assert sorted(s.label for s in plan.sides) == ["Harald Binder", "Nils Strodthoff"]
    topical = analyse("compare binder's and strodthoff's synthetic data work")
    assert topical.intent is Intent.COMPARE and not topical.computed


def test_an_author_list_is_not_a_listing(analyse):
    plan = analyse("papers that have both Strodthoff and Wagner on the author list")
    assert plan.intent is Intent.JOINT and len(plan.filters.authors) == 2
    assert analyse("which papers show up on both lists?").intent is Intent.SHARED


def test_a_paper_named_by_its_title_before_the_colon(analyse):
    plan = analyse("who wrote the featmap paper?")
    assert plan.intent is Intent.FIELD and plan.paper_label.startswith("FeatMap")
    lead = analyse("when was Deep dynamic modeling with just two time points released")
    assert lead.paper_label.startswith("Deep dynamic modeling")


def test_listing_owners_by_given_name_or_with_a_slip(analyse):
    assert analyse("everything harald has put out").filters.authors == ["Harald Binder"]
    assert analyse("stroddthoff's newest paper").filters.authors == ["Nils Strodthoff"]
    both = analyse("did nils or soroosh write more in 2024?")
    assert both.intent is Intent.COMPARE and len(both.sides) == 2
    assert analyse("which papers model wind turbines").filters.authors == []


def test_year_cues_glued_or_with_than(analyse):
    def years(q):
        f = analyse(q).filters
        return f.year_from, f.year_to

    assert years("binder papers pre-2023") == (None, 2022)
    assert years("post-2021 work of tayebi arasteh") == (2022, None)
    assert years("strodthoff papers older than 2020") == (None, 2019)
    assert years("anything newer than 2023 about sleep") == (2024, None)
    assert years("ECG papers from 2022 on") == (2022, None)
    assert analyse("papers from 2023 on sleep staging").filters.year_to == 2023  # "on" a topic


def test_english_words_are_not_corrected_to_corpus_words(analyse):
    plan = analyse("which binder papers are about ship design")
    assert "ship" not in plan.expansions
    assert analyse("papers on tumour segmantation").expansions == {"segmantation": "segmentation"}


@pytest.mark.parametrize(
    ("question", "parts"),
    [
        ("which papers use ECG or EEG signals?", 1),  # alternatives
        ("state space models such as S4 or Mamba", 1),  # an elaboration
        ("federated learning for mammography", 2),
        ("bowel sounds + machine learning", 2),
        ("predicting liver disease from ECGs", 2),
    ],
)
def test_parts_a_paper_must_cover_start_at_any_non_alternative_joiner(analyse, question, parts):
    conjuncts = analyse(question).conjuncts
    assert len(conjuncts) == parts, conjuncts


def test_the_numbers_come_from_settings_query(retriever):
    """Typo distances, acronym context and model names are settings.query, read at construction."""
    from rag.config import QuerySettings
    from rag.query.analyse import QueryAnalyser

    assert retriever.analyser.settings is retriever.settings.query
    strict = QueryAnalyser(
        retriever.index.papers,
        settings=QuerySettings(
            cue_typo_max_distance=0,
            topic_typo_min_length=50,
            acronym_context_chars=0,
            paper_name_max_papers=0,
        ),
    )
    default = QueryAnalyser(retriever.index.papers)
    for question, differs in (
        ("hwo many papers are there", lambda p: p.corrections),
        ("which papers use diffusion modles", lambda p: p.expansions),
        ("which papers use SSMs", lambda p: p.expansions),
        ("what accuracy did S4Sleep reach", lambda p: p.paper_id),
    ):
        assert differs(default.analyse(question)) and not differs(strict.analyse(question)), question


@pytest.mark.parametrize(
    "question",
    [
        "papers that are building upon transformers",
        "which papers relied on transformers?",
        "papers utilising transformers",
        "which works incorporate transformers",
        "papers analysing transformers",
        "which studies analyzed transformers?",
    ],
)
def test_a_verb_in_any_form_introduces_the_topic(analyse, question):
    plan = analyse(question)
    assert plan.intent is Intent.TOPIC_LIST and plan.topic == "transformers", plan.summary()


def test_chat_shorthand_and_slang_paper_words(analyse):
    plan = analyse("wat r strodthoff's pubs b4 2021")
    assert plan.intent is Intent.LIST and not plan.topic, plan.summary()
    assert plan.filters.authors == ["Nils Strodthoff"] and plan.filters.year_to == 2020
    assert plan.corrections["wat"] == "what"


def test_a_category_by_its_arxiv_name(analyse):
    beside_code = analyse("signal processing (SP) papers by strodthoff")
    assert beside_code.filters.categories == ["SP"] and not beside_code.topic, beside_code.summary()
    with_cue = analyse("how many papers are filed under machine learning")
    assert with_cue.intent is Intent.COUNT and with_cue.filters.categories == ["LG"] and not with_cue.topic
    alone = analyse("which papers use machine learning for ECG")  # no category cue: a topic
    assert alone.filters.categories == [] and "machine learning" in alone.topic


def test_a_listing_swallows_the_rest_of_its_name(analyse):
    plan = analyse("count the papers on the TUM healthcare group page")
    assert plan.intent is Intent.COUNT and not plan.topic, plan.summary()
    assert plan.filters.listings == ["AI in Medicine and Healthcare, TU Munich"]


def test_people_set_against_each_other_are_compared(analyse):
    plan = analyse("strodthoff's ECG work against binder's")
    assert plan.intent is Intent.COMPARE and len(plan.sides) == 2, plan.summary()
    robust = analyse("which papers test robustness against adversarial attacks")
    assert robust.intent is Intent.TOPIC_LIST  # between topics "against" compares nothing


def test_glued_and_abbreviated_forms(analyse):
    number = analyse("no. of binder papers from 2020")
    assert number.intent is Intent.COUNT and number.filters.authors == ["Harald Binder"], number.summary()
    assert analyse("no binder papers from 2020?").intent is not Intent.COUNT  # "no" alone is a negation
    glued = analyse("list the LG-tagged papers from 2023")
    assert glued.filters.categories == ["LG"] and not glued.topic, glued.summary()
    assert analyse("wagners papers").filters.authors == analyse("Wagner's papers").filters.authors != []
    assert analyse("a month-by-month or year-by-year count of strodthoff papers").intent is Intent.PER_YEAR


def test_a_hyphenated_model_name_names_its_paper(analyse):
    plan = analyse("when was the Med-PaLM M paper posted")
    assert plan.intent is Intent.FIELD and plan.field == "date", plan.summary()
    assert plan.paper_label == "Towards Generalist Biomedical AI"


def test_a_bracket_of_other_names_is_an_alternative_a_qualifier_is_not_required(analyse):
    plan = analyse("papers using large language models (LLMs) for radiology reports")
    assert plan.conjuncts == [["large language models", "LLMs"], ["radiology reports"]], plan.conjuncts
    split = analyse("which papers record electrocardiogram (ECG) signals")
    assert split.conjuncts == [["electrocardiogram signals", "ECG"]], split.conjuncts
    qualified = analyse("papers on (semi-)supervised segmentation of tumours")  # "semi" qualifies
    assert qualified.conjuncts == [["supervised segmentation"], ["tumours"]], qualified.conjuncts


def test_commas_and_dashes_list_alternatives(analyse):
    plan = analyse("papers on sleep staging - EEG, actigraphy or wearables")
    assert plan.conjuncts == [["sleep staging", "EEG", "actigraphy", "wearables"]], plan.conjuncts
    inside = analyse("which papers use vision transformers (ViT, DeiT, Swin)?")
    assert inside.conjuncts == [["vision transformers", "ViT", "DeiT", "Swin"]], inside.conjuncts


def test_everyday_words_for_speech_reach_the_corpus_terms(analyse):
    assert "speaker" in analyse("anything about voice recordings?").expansions.get("voice", "")
