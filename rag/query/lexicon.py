"""Every word list question understanding uses, in one place: one tokenizer, one folding
function, one stop-word set, one plural rule, and the cue words of each intent.

A cue is a single folded word (or a short phrase); the analyser combines cues with the
entities it found, so no list here describes a whole sentence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rag.corpus.names import fold

__all__ = ["fold", "Token", "tokenize", "singular", "words"]

_TOKEN_RE = re.compile(r"[^\W_]+(?:[-'’.][^\W_]+)*|[+&/]", re.UNICODE)


@dataclass(frozen=True)
class Token:
    """One word of a question: as typed, folded (lower-case ASCII), and its position."""

    text: str
    norm: str
    start: int
    end: int


_CUE_YEAR_RE = re.compile(r"^([A-Za-z]+)-((?:19|20)\d\d)$")


def tokenize(text: str) -> list[Token]:
    """Words of a question; a possessive "'s" is dropped ("Binder's" -> "binder")."""
    out = []
    for m in _TOKEN_RE.finditer(text):
        raw = re.sub(r"['’]s$", "", m.group(0))
        raw = raw.rstrip("'’.")
        cue_year = _CUE_YEAR_RE.match(raw)
        if cue_year:  # "pre-2022", "post-2023": the cue and the year
            cut = m.start() + cue_year.end(1)
            out.append(Token(cue_year.group(1), fold(cue_year.group(1)), m.start(), cut))
            out.append(Token(cue_year.group(2), cue_year.group(2), cut + 1, m.start() + len(raw)))
        elif raw:
            out.append(Token(raw, fold(raw), m.start(), m.start() + len(raw)))
    return out


def singular(word: str) -> str:
    """The one plural rule: "models" -> "model", "studies" -> "study"; "class", "gas" stay."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def words(text: str) -> set[str]:
    """The folded, singular content words of a text (for overlaps between question and source)."""
    return {singular(t.norm) for t in tokenize(text) if t.norm not in STOP_WORDS and len(t.norm) > 1}


def _set(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Words that carry no topic and no intent.
STOP_WORDS = _set("""a an the of in on at by for from to with and or is are was were be been being
this that these those it its as into via than then so do does did done has have had having can
could would should will may might must shall i me my we our us you your he him his she her they
them their there here which who whom whose what when where why how whats any some all each every
no not only also just please tell me give show list find name get know let like about regarding
concerning much many more most one ones thing things stuff everything anything something lot lots
very really ever currently recently yet still et al etc e.g i.e kind sort type types such other
else own same both either neither whether if but up out off over under again further once
been being am against upon onto within toward towards among amongst
hey hi hello thanks thank ok okay pls plz u ur abt bout wrt re""")

# Nouns that mean "papers" and are never a topic.
PAPER_WORDS = _set("""paper papers pub pubs publication publications article articles work works study
studies preprint preprints entry entries item items record records title titles abstract abstracts
output outputs research manuscript manuscripts contribution contributions one ones""")

# Paper words that are verbs as often ("what resolution works best"): a run of topic words
# ending in one does not ask for papers.
VERB_LIKE_PAPER_WORDS = _set("work works study studies research output")

# Words about the collection itself: never a topic ("the oldest paper in the collection").
CORPUS_WORDS = _set("""collection corpus dataset-of-papers database listing listings list lists
page pages profile profiles site index catalog catalogue library total overall altogether all
whole entire everything anyone anybody someone somebody here there available indexed listed
shown included""")

# Verbs of authorship: "what did X put out", "what has X worked on".
WORK_VERBS = _set("""write wrote written writes writing publish published publishes publishing
author authored authors authoring release released put work worked works working research
researched researches researching do did does doing done produce produced contribute contributed
come came out appear appeared post posted""")

# Question words that ask for papers to be listed.
LIST_CUES = _set("which what list show give name find enumerate any all")

COUNT_PHRASES = ("how many", "number of", "count", "how much", "total number", "tally")
NEWEST_CUES = _set("newest latest recent most-recent last youngest freshest")
OLDEST_CUES = _set("oldest earliest first")
PER_YEAR_PHRASES = (
    "per year",
    "each year",
    "by year",
    "every year",
    "year by year",
    "a year",
    "annually",
    "over the years",
    "over time",
    "yearly",
    "per-year",
    "each of the years",
)
PER_LISTING_PHRASES = (
    "per listing",
    "each listing",
    "every listing",
    "by listing",
    "each list",
    "each of the listings",
    "each of the five listings",
    "each page",
    "per page",
    "every page",
    "each source",
    "per source",
    "the listings contain",
    "each of the lists",
    "listing by listing",
)
COAUTHOR_CUES = _set("""co-author co-authors coauthor coauthors co-authored coauthored collaborate
collaborates collaborated collaborating collaborator collaborators collaboration collaborations
partner partners colleague colleagues""")
WITH_CUES = _set("with together alongside jointly joint both")
# Papers in more than one listing: a duplicate word, or a multiplicity next to a listing noun.
DUPLICATE_CUES = _set("duplicate duplicates duplicated twice cross-listed double-listed")
MULTIPLE_CUES = _set("two several multiple both same shared overlap overlapping common")
LISTING_NOUNS = _set("listing listings list lists page pages source sources profile profiles feed")
# Comparatives that rank two named people or listings ("who has more papers, X or Y?").
COMPARATIVE_CUES = _set("more fewer less most fewest least")
COMPARE_CUES = _set("""compare compared comparing comparison contrast contrasted differ differs
differ differences difference differently versus vs vs. distinguish similar similarities unlike""")
# Words that set two named people or listings against each other ("X's work against Y's"),
# a comparison only between people (between topics: "robust against noise").
SIDES_CUES = _set("against than")
PROFILE_STATS = {  # a cue word -> the profile key it asks for
    "h-index": "h-index",
    "hindex": "h-index",
    "h": "h-index",
    "citation": "citations",
    "citations": "citations",
    "cited": "citations",
    "novelty": "novelty",
    "ai-score": "ai score",
    "score": "ai score",
}
FIELD_CUES = {  # a cue word -> the paper field it asks for
    "author": "authors",
    "authors": "authors",
    "wrote": "authors",
    "written": "authors",
    "authored": "authors",
    "date": "date",
    "dated": "date",
    "published": "date",
    "released": "date",
    "posted": "date",
    "appeared": "date",
    "come": "date",
    "came": "date",
    "category": "category",
    "categories": "category",
    "filed": "category",
    "classified": "category",
    "arxiv": "category",
    "listing": "listing",
    "listings": "listing",
    "listed": "listing",
}
# Question words that ask for a field only with a companion word ("when was it posted",
# "where is it listed"); alone they ask about content ("where does RadioRAG get its data").
FIELD_PHRASES = {"what year": "date", "which year": "date", "when": "date"}
CATEGORY_CUES = _set("category categories arxiv filed under class subject")
# A quantity is asked for: "how" + one of QUANTITY_HOW ("how well does it agree"), or a measure
# noun ("what accuracy", "the sample size"); the evidence then prefers sentences with numbers.
QUANTITY_HOW = _set("well many much big large accurate fast long often good high low small")
QUANTITY_NOUNS = _set("""accuracy auc auroc auprc performance percent percentage rate score size
number sensitivity specificity f1 error agreement improvement gain reduction proportion ratio
correlation dice kappa speedup""")

# arXiv's names of the categories the listings carry (folded): "computer vision (CV) papers"
# and "the machine learning category" name a category, not a topic.
CATEGORY_NAMES = {
    "CV": "computer vision",
    "LG": "machine learning",
    "ML": "machine learning",
    "SP": "signal processing",
    "IV": "image and video processing",
    "CL": "computation and language",
    "AS": "audio and speech processing",
    "SD": "sound",
    "ME": "methodology",
    "CY": "computers and society",
    "AI": "artificial intelligence",
    "QM": "quantitative methods",
    "MED-PH": "medical physics",
    "MS": "mathematical software",
    "STAT-MECH": "statistical mechanics",
    "HEP-LAT": "high energy physics lattice",
}
CODE_WORDS = _set("code github repository repo implementation open-source source-code")
NEGATIONS = _set("without no lacking lack missing not non")

# What the records never hold. A cue -> (what to say, words that would make the abstracts hold it).
PERSONAL_DETAILS = "contact or personal details"  # unheld facts about a person, not a paper
UNHELD = {
    "email": (PERSONAL_DETAILS, None),
    "e-mail": (PERSONAL_DETAILS, None),
    "mail": (PERSONAL_DETAILS, None),
    "phone": (PERSONAL_DETAILS, None),
    "telephone": (PERSONAL_DETAILS, None),
    "address": (PERSONAL_DETAILS, None),
    "office": (PERSONAL_DETAILS, None),
    "salary": (PERSONAL_DETAILS, None),
    "birthday": (PERSONAL_DETAILS, None),
    "age": (PERSONAL_DETAILS, None),
    "twitter": (PERSONAL_DETAILS, None),
    "linkedin": (PERSONAL_DETAILS, None),
    "orcid": (PERSONAL_DETAILS, None),
    "nationality": (PERSONAL_DETAILS, None),
    "married": (PERSONAL_DETAILS, None),
    "homepage": (PERSONAL_DETAILS, None),
    "gpu": ("the hardware used", "gpu gpus nvidia a100 v100 hardware tpu"),
    "gpus": ("the hardware used", "gpu gpus nvidia a100 v100 hardware tpu"),
    "tpu": ("the hardware used", "gpu gpus tpu tpus hardware"),
    "hardware": ("the hardware used", "gpu gpus nvidia hardware"),
    "conference": ("where papers were published", "conference journal workshop proceedings"),
    "journal": ("where papers were published", "conference journal workshop proceedings"),
    "venue": ("where papers were published", "conference journal workshop proceedings venue"),
    "workshop": ("where papers were published", "conference journal workshop proceedings"),
    "accepted": ("where papers were published", "accepted conference journal"),
    "funding": ("funding details", "funded funding grant"),
    "funded": ("funding details", "funded funding grant"),
    "grant": ("funding details", "funded funding grant"),
    "sponsor": ("funding details", "funded funding sponsor"),
}
UNHELD_NEEDS_PERSON = _set("age office mail address")  # "brain age", "office visits" are topics
UNHELD_PHRASES = {
    "training time": ("the hardware used", "gpu hours training time"),
    "compute budget": ("the hardware used", "compute budget gpu"),
    "graphics card": ("the hardware used", "gpu graphics card"),
    "date of birth": (PERSONAL_DETAILS, None),
}

# Words that join a topic's separable parts ("reinforcement learning for robotic surgery").
FACET_JOINERS = _set("for in on with and applied to + & using via across between")
# Words between two facets that make them alternatives or elaborations of one part ("ECG or
# EEG", "state space models such as S4", "attribution / explanation"); any other word between
# them ("for", "from", "of", "+", "w/") starts a part a paper must cover as well ("federated
# learning for mammography"). "and" lists alternatives as often as not ("ECG and EEG papers").
ALTERNATIVE_JOINERS = _set("or and / such as like including e.g eg i.e ie especially namely either")

# Listing aliases the pages do not print themselves: the group page never names its head.
LISTING_ALIASES = {
    "rueckert": "AI in Medicine and Healthcare, TU Munich",
    "daniel rueckert": "AI in Medicine and Healthcare, TU Munich",
    "tum": "AI in Medicine and Healthcare, TU Munich",
    "hugging face": "Daily Papers",
    "huggingface": "Daily Papers",
    "hf": "Daily Papers",
}
# Words after a name that make it a listing ("the Rueckert group", "Strodthoff's listing").
LISTING_WORDS = _set(
    "group groups lab labs team listing listings list lists page pages profile profiles site feed"
)

NUMBER_WORDS = {
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "twelve": 12,
    "fifteen": 15,
    "twenty": 20,
    "couple": 2,
    "few": 3,
    "single": 1,
    "pair": 2,
    "dozen": 12,
}

# Years: cue word before a year -> how it bounds the range.
YEAR_FROM = _set("since starting after later beyond post newer younger")
YEAR_TO = _set("until till til before prior earlier up through thru by pre older")
YEAR_EXCLUSIVE = _set("after later beyond post newer younger before prior earlier pre older")
RELATIVE_YEARS = {"last year": -1, "previous year": -1, "past year": -1, "this year": 0, "current year": 0}

# Follow-ups: a question that leans on the previous one.
FOLLOWUP_OPENERS = _set("and but also so same only just")
FOLLOWUP_REFERENCES = _set("those these them they their it its that above previous earlier ones same")

# A topic word that is one of these is the intent speaking, not the topic.
GENERIC_TOPIC_WORDS = _set("""top number recent new old year years date dates time published author
authors people person researcher researchers group groups lab team badge code available code-badge
total most least first last often frequently frequent prolific productive active big together
jointly apart each per between
covered cover covering carry carries carrying tagged marked flagged filed put out anything
something named call called mention mentioned mentions appear appears appeared show shows""")

# Chat shorthand for cue words, read as the word it stands for ("hw many", "b4 2022").
TEXT_SPEAK = {
    "hw": "how",
    "wat": "what",
    "wht": "what",
    "whch": "which",
    "wich": "which",
    "ppl": "people",
    "yr": "year",
    "yrs": "years",
    "b4": "before",
    "nr": "number",
    "num": "number",
}
# Shorthand that needs the next word to be read ("no. of papers", not "no papers").
TEXT_SPEAK_BEFORE = {("no", "of"): "number"}

# The cue words a typo may stand for (everything that steers intent).
CUE_VOCABULARY = frozenset(
    {w for phrase in COUNT_PHRASES + PER_YEAR_PHRASES for w in phrase.split()}
    | NEWEST_CUES
    | OLDEST_CUES
    | COAUTHOR_CUES
    | COMPARE_CUES
    | COMPARATIVE_CUES
    | PAPER_WORDS
    | WORK_VERBS
    | set(PROFILE_STATS)
    | {
        "which",
        "what",
        "who",
        "how",
        "many",
        "listing",
        "listings",
        "together",
        "category",
        "published",
        "authors",
        "author",
    }
)

# Verbs that introduce a topic ("papers that use X", "work building on Y", "code it ships
# with"): never the topic. Lemmas; `inflections` adds the -s, -ed and -ing forms.
_TOPIC_VERB_LEMMAS = """use apply deal involve focus cover address tackle investigate explore concern
propose present employ leverage relate mention discuss say look base centre center talk evaluate
assess examine study rely build ship provide include contain adopt exploit utilize utilise
incorporate implement combine extend introduce develop target handle draw stack compare hold exist approach
analyze analyse"""
_IRREGULAR_VERB_FORMS = "said dealt built drew drawn held"
_ADVERBS = "around explicitly specifically particularly mainly primarily actually really"


def inflections(lemma: str) -> set[str]:
    """A regular verb's forms: "rely" -> relies, relied, relying; "ship" -> ships, shipped,
    shipping; "use" -> uses, used, using; "focus" -> focuses, focused, focusing."""
    if lemma.endswith("e"):
        return {lemma, lemma + "s", lemma + "d", lemma[:-1] + "ing"}
    if len(lemma) > 2 and lemma.endswith("y") and lemma[-2] not in "aeiou":
        return {lemma, lemma[:-1] + "ies", lemma[:-1] + "ied", lemma + "ing"}
    forms = {
        lemma,
        lemma + ("es" if lemma.endswith(("s", "sh", "ch", "x")) else "s"),
        lemma + "ed",
        lemma + "ing",
    }
    vowels = [c in "aeiou" for c in lemma]
    if len(lemma) <= 4 and vowels[-3:] == [False, True, False] and lemma[-1] not in "wxy":
        forms |= {lemma + lemma[-1] + "ed", lemma + lemma[-1] + "ing"}  # one syllable: ship -> shipped
    return forms


TOPIC_VERBS = frozenset(
    {form for lemma in _TOPIC_VERB_LEMMAS.split() for form in inflections(lemma)}
    | set(_IRREGULAR_VERB_FORMS.split())
    | set(_ADVERBS.split())
)

# Words every research text uses: two texts sharing them share nothing (citation support).
GENERIC_RESEARCH_WORDS = _set("""paper study work approach method model result show new propose
present base use also can such than more most other over under between into via signal data
image task""")

# Every word the lexicon knows: never read as a typo of a cue word.
KNOWN_WORDS = frozenset(
    CUE_VOCABULARY
    | STOP_WORDS
    | PAPER_WORDS
    | CORPUS_WORDS
    | WORK_VERBS
    | LIST_CUES
    | LISTING_WORDS
    | LISTING_NOUNS
    | MULTIPLE_CUES
    | DUPLICATE_CUES
    | GENERIC_TOPIC_WORDS
    | TOPIC_VERBS
    | set(NUMBER_WORDS)
    | set(FIELD_CUES)
    | set(UNHELD)
    | CODE_WORDS
    | NEGATIONS
    | YEAR_FROM
    | YEAR_TO
    | WITH_CUES
)

# Everyday words for what the abstracts name technically: folded phrase -> the corpus's terms,
# comma-separated alternatives (a paper using any one of them covers the phrase).
# Short on purpose; the acronyms of the corpus itself are mined (rag/query/expand.py).
SYNONYMS = {
    "heart signal": "ECG, electrocardiogram",
    "heart signals": "ECG, electrocardiogram",
    "heart rhythm": "ECG, electrocardiogram, arrhythmia",
    "heart rhythms": "ECG, electrocardiogram, arrhythmia",
    "heart trace": "ECG, electrocardiogram",
    "heart traces": "ECG, electrocardiogram",
    "brain wave": "EEG, electroencephalography",
    "brain waves": "EEG, electroencephalography",
    "brain signals": "EEG, electroencephalography",
    "xray": "X-ray, radiograph",
    "xrays": "X-ray, radiographs",
    "x ray": "X-ray, radiograph",
    "chest film": "chest radiograph",
    "chest films": "chest radiographs",
    "across hospitals": "federated, multi-institutional",
    "between hospitals": "federated, multi-institutional",
    "without sharing data": "federated, privacy-preserving",
    "fake images": "synthetic images, generated images",
    "fake data": "synthetic data",
    "made-up data": "synthetic data",
    "chatbot": "large language model, LLM",
    "chatbots": "large language models, LLMs",
    "chatgpt": "GPT-4, large language model",
    "gut sounds": "bowel sounds",
    "tummy sounds": "bowel sounds",
    "sleep stages": "sleep staging",
    "pulse wave": "photoplethysmography, PPG",
    "pulse signals": "photoplethysmography, PPG",
    "explainable": "explainability, XAI, attribution",
    "black box": "explainability, interpretability",
    "skin": "dermatology, skin",
    "eye scans": "fundus, retinal",
    "mri scans": "MRI, magnetic resonance",
    "speech": "speech, speaker, spoken, voice",
    "voice": "voice, speech, speaker",
}
