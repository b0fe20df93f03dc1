"""What a question names, recognised against the corpus itself: people, listings, papers
(by title words or by a model name from their abstract), years, categories and the Code badge.

Each recogniser returns spans over the question's tokens; the analyser removes the spans
before it reads the intent and the topic, so a name is never also a topic word.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import date

from rapidfuzz.distance import OSA
from wordfreq import zipf_frequency

from rag.config import QuerySettings
from rag.corpus.names import author_key, name_match_tokens, surname_key
from rag.query import lexicon as lx
from rag.query.lexicon import Token
from rag.types import Paper

# Name lengths, title-match shares and the English-word frequency: settings.query (rag/config.py).


@dataclass
class Span:
    """Tokens [start, end) of the question that name one thing."""

    start: int
    end: int
    kind: str  # author | listing | year | category | code | paper | number | stat | unheld
    value: object = None

    def covers(self, i: int) -> bool:
        return self.start <= i < self.end


@dataclass
class Entities:
    spans: list[Span] = field(default_factory=list)

    def of(self, kind: str) -> list[Span]:
        return [s for s in self.spans if s.kind == kind]

    def values(self, kind: str) -> list:
        return list(dict.fromkeys(s.value for s in self.of(kind)))

    def covered(self, i: int) -> bool:
        return any(s.covers(i) for s in self.spans)

    def add(self, span: Span) -> None:
        if not any(s.start < span.end and span.start < s.end for s in self.spans):
            self.spans.append(span)


def _norms(tokens: list[Token]) -> list[str]:
    return [t.norm for t in tokens]


def _listing_extent(norms: list[str], start: int, end: int, owner: str) -> tuple[int, int]:
    """A listing's span grown over the rest of its owner's name and listing words around it:
    "the TUM AI in medicine group page" is one listing, leaving no topic behind."""
    name = set(_norms(lx.tokenize(owner))) | lx.LISTING_WORDS
    matched_end = end
    while end < len(norms) and norms[end] in name:
        end += 1
    while end > matched_end and norms[end - 1] in lx.STOP_WORDS:  # "TUM AI in" -> "TUM AI"
        end -= 1
    while start > 0 and norms[start - 1] in name - lx.STOP_WORDS:
        start -= 1
    return start, end


class CorpusEntities:
    """The names a question may use, built once per index from its papers and listings."""

    def __init__(
        self,
        papers: list[Paper],
        person_owners: set[str],
        other_owners: set[str],
        vocabulary: set[str] | None = None,
        settings: QuerySettings | None = None,
    ):
        self.settings = settings or QuerySettings()
        self.person_owners = set(person_owners)
        self.vocabulary = vocabulary if vocabulary is not None else _vocabulary(papers)
        self.full_names: dict[str, str] = {}  # folded "first last" / whole name -> display
        self.surnames: dict[str, set[str]] = {}
        for name in dict.fromkeys(
            n for p in papers for n in (*p.authors, *(o for o in p.owners if o in person_owners))
        ):
            self._add_name(name)
        self.listing_phrases: dict[str, str] = {}  # folded phrase -> owner
        for owner in other_owners:
            for phrase in [owner, *owner.split(",")[1:]]:
                if len(phrase.split()) >= 2:
                    self.listing_phrases[" ".join(_norms(lx.tokenize(phrase)))] = owner
        owners = set(other_owners) | self.person_owners
        for alias, owner in lx.LISTING_ALIASES.items():
            if owner in owners:
                self.listing_phrases[alias] = owner
        self.categories = {p.category.upper(): p.category for p in papers if p.category}
        self.owner_keys = _owner_keys(self.person_owners)
        self._index_papers(papers)

    def _add_name(self, name: str) -> None:
        tokens = name.split()
        if not name[:1].isupper() or not 2 <= len(tokens) <= self.settings.max_name_tokens:
            return
        self.full_names.setdefault(_name_key(f"{tokens[0]} {tokens[-1]}"), name)
        self.full_names.setdefault(_name_key(name), name)
        for k in range(1, len(tokens) - 1):  # "Tayebi Arasteh" for "Soroosh Tayebi Arasteh"
            self.full_names.setdefault(_name_key(" ".join(tokens[k:])), name)
        self.surnames.setdefault(surname_key(name), set()).add(name)

    def _index_papers(self, papers: list[Paper]) -> None:
        """Model names (rare capitalised words, "S4Sleep", "Medfusion") and title words -> papers."""
        seen: dict[str, set[int]] = {}
        lower = {
            w
            for p in papers
            for w in re.findall(r"\b[a-z][a-z-]+\b", _URL_RE.sub(" ", f"{p.title or ''} {p.abstract}"))
        }
        self.title_words: dict[str, set[int]] = {}
        self.title_sizes: list[int] = []
        for i, p in enumerate(papers):
            for word in _model_names(p):
                if word not in lower:
                    seen.setdefault(word, set()).add(i)
            title = lx.words(p.title or "")
            self.title_sizes.append(len(title))
            for word in title:
                self.title_words.setdefault(word, set()).add(i)
        people = {part for name in self.full_names for part in name.split()}
        self.paper_names = {
            w: rows
            for w, rows in seen.items()
            if len(rows) <= self.settings.paper_name_max_papers and w not in people and w not in lx.STOP_WORDS
        }
        self.title_leads = _title_leads(papers, {lx.fold(w) for w in self.paper_names})
        self.papers = papers

    # --- recognisers -------------------------------------------------------------------

    def find(self, tokens: list[Token], today: date | None = None, text: str = "") -> Entities:
        found = Entities()
        self.find_quoted_title(tokens, text, found)
        self.find_listings(tokens, found)
        self.find_authors(tokens, found)
        find_years(tokens, found, today or date.today())
        self.find_paper(tokens, found)
        self.find_categories(tokens, found)
        find_code(tokens, found)
        find_number(tokens, found)
        return found

    def find_listings(self, tokens: list[Token], found: Entities) -> None:
        norms = _norms(tokens)
        for phrase, owner in self.listing_phrases.items():
            n = len(phrase.split())
            for i in range(len(norms) - n + 1):
                if " ".join(norms[i : i + n]) == phrase:
                    start, end = _listing_extent(norms, i, i + n, owner)
                    same = [
                        s for s in found.of("listing") if s.value == owner and s.start < end and start < s.end
                    ]
                    for span in same:  # "hugging face" + "daily papers list": one listing
                        found.spans.remove(span)
                        start, end = min(start, span.start), max(end, span.end)
                    found.add(Span(start, end, "listing", owner))

    def find_authors(self, tokens: list[Token], found: Entities) -> None:
        norms = _norms(tokens)
        keys = [_name_key(t.text) for t in tokens]
        for i in range(len(norms)):
            for j in range(min(i + self.settings.max_name_tokens, len(norms)), i + 1, -1):
                if display := self.full_names.get(" ".join(keys[i:j])):
                    self._add_person(found, norms, i, j, display)
                    break
        covered = {surname_key(str(s.value)) for s in found.of("author")}
        for i, tok in enumerate(tokens):
            key = keys[i]
            if key not in self.surnames and key[-1:] == "s" and key[:-1] in self.surnames:
                key = key[:-1]  # a possessive typed without its apostrophe: "vielhabens papers"
            if key in covered or key not in self.surnames or len(key) < 2 or found.covered(i):
                continue
            # A lower-case word that is also an ordinary word of the corpus ("wind") is not a name.
            if tok.text[0].islower() and (len(key) < 5 or key in self.vocabulary):
                continue
            names = self.surnames[key]
            owner = next((n for n in names if n in self.person_owners), None)
            one_person = len({author_key(n) for n in names}) == 1
            self._add_person(found, norms, i, i + 1, owner or (min(names) if one_person else tok.text))
            covered.add(key)
        self.find_owners_loosely(tokens, keys, found)
        self.share_listing_word(norms, found)

    def share_listing_word(self, norms: list[str], found: Entities) -> None:
        """ "X's and Y's listings": a listing word after the last of coordinated owners makes
        every one of them a listing."""
        spans = sorted(found.of("author") + found.of("listing"), key=lambda s: s.start)
        for a, b in reversed(list(zip(spans, spans[1:], strict=False))):  # right to left
            between = norms[a.end : b.start]
            if (
                a.kind == "author"
                and b.kind == "listing"
                and a.value in self.person_owners
                and between in (["and"], ["&"], ["or"], ["vs"], ["versus"])
            ):
                found.spans.remove(a)
                found.add(Span(a.start, a.end, "listing", a.value))

    def find_owners_loosely(self, tokens: list[Token], keys: list[str], found: Entities) -> None:
        """The owners of personal listings are what most questions are about, so they are also
        found by their given name alone ("soroosh") and by a surname typed with one slip
        ("strodthofs"), unless the word is one the corpus or English uses."""
        named = {str(s.value) for s in found.of("author")}
        norms = _norms(tokens)
        for i, key in enumerate(keys):
            if found.covered(i) or len(key) < 4 or key in self.vocabulary or not key.isalpha():
                continue
            owner = self.owner_keys.get(key) or _near_owner(
                key, self.owner_keys, self.settings.english_word_zipf
            )
            if owner and owner not in named:
                self._add_person(found, norms, i, i + 1, owner)
                named.add(owner)

    def _add_person(self, found: Entities, norms: list[str], i: int, j: int, display: str) -> None:
        """A person, or their listing when a listing word follows ("Strodthoff's listing")."""
        if display in self.person_owners and j < len(norms) and norms[j] in lx.LISTING_WORDS:
            found.add(Span(i, j + 1, "listing", display))
        else:
            found.add(Span(i, j, "author", display))

    def find_categories(self, tokens: list[Token], found: Entities) -> None:
        for i, tok in enumerate(tokens):
            code, *rest = tok.text.split(".")[-1].upper().split("-")
            glued = bool(rest) and {w.lower() for w in rest} <= _CATEGORY_SUFFIXES  # "CV-category"
            if not glued:
                code = "-".join([code, *rest])  # "MED-PH", "STAT-MECH"
            if code not in self.categories or found.covered(i):
                continue
            prefixed = glued or "." in tok.text or (i > 0 and tokens[i - 1].norm in lx.CATEGORY_CUES)
            # A bare code counts next to a paper or category word ("CV papers", "filed under LG"),
            # not inside a phrase ("medical AI models").
            beside = {tokens[j].norm for j in (i - 1, i + 1) if 0 <= j < len(tokens)}
            bare = (
                tok.text.isupper() and len(code) >= 2 and bool(beside & (lx.PAPER_WORDS | lx.CATEGORY_CUES))
            )
            if prefixed or bare:
                found.add(Span(i, i + 1, "category", self.categories[code]))
        self.find_category_names(tokens, found)

    def find_category_names(self, tokens: list[Token], found: Entities) -> None:
        """A category's arXiv name (lx.CATEGORY_NAMES) right before its code ("computer vision
        (CV) papers": one span) or next to a category word ("filed under machine learning")."""
        norms = _norms(tokens)
        for code, name in lx.CATEGORY_NAMES.items():
            if code not in self.categories:
                continue
            n = len(name.split())
            for i in range(len(norms) - n + 1):
                if " ".join(norms[i : i + n]) != name or any(found.covered(j) for j in range(i, i + n)):
                    continue
                after = next((s for s in found.of("category") if s.start == i + n), None)
                if after is not None and after.value == self.categories[code]:
                    found.spans.remove(after)
                    found.add(Span(i, after.end, "category", after.value))
                elif {norms[j] for j in (i - 1, i + n) if 0 <= j < len(norms)} & lx.CATEGORY_CUES:
                    found.add(Span(i, i + n, "category", self.categories[code]))

    def find_quoted_title(self, tokens: list[Token], text: str, found: Entities) -> None:
        """A quoted phrase most of whose words are in one title names that paper ('Private, fair …')."""
        for m in _QUOTED_RE.finditer(text):
            inside = [i for i, t in enumerate(tokens) if m.start() < t.start and t.end <= m.end()]
            quoted = {lx.singular(tokens[i].norm) for i in inside if tokens[i].norm not in lx.STOP_WORDS}
            if len(quoted) < 2:
                continue
            shared: Counter[int] = Counter(row for word in quoted for row in self.title_words.get(word, ()))
            if shared:
                row, n = shared.most_common(1)[0]
                if n >= self.settings.quote_match_share * len(quoted):
                    found.add(Span(inside[0], inside[-1] + 1, "paper", self.papers[row].paper_id))
                    return

    def find_paper(self, tokens: list[Token], found: Entities) -> None:
        """A paper named by most of its title's words, or by a model name of its abstract."""
        if found.of("paper"):
            return
        if not (
            self._find_by_lead(tokens, found)
            or self._find_by_title(tokens, found)
            or self._find_by_phrase(tokens, found)
        ):
            self._find_by_name(tokens, found)

    def _find_by_lead(self, tokens: list[Token], found: Entities) -> bool:
        """A title's part before its colon, said in full ("the Mind the Gap paper")."""
        norms = [t.norm for t in tokens]
        for lead, row in self.title_leads.items():
            n = len(lead)
            for i in range(len(norms) - n + 1):
                if tuple(norms[i : i + n]) == lead and not any(found.covered(j) for j in range(i, i + n)):
                    found.add(Span(i, i + n, "paper", self.papers[row].paper_id))
                    return True
        return False

    def _find_by_title(self, tokens: list[Token], found: Entities) -> bool:
        free = [i for i in range(len(tokens)) if not found.covered(i)]
        words = {lx.singular(tokens[i].norm): i for i in free if tokens[i].norm not in lx.STOP_WORDS}
        shared: Counter[int] = Counter()
        for word in words:
            for row in self.title_words.get(word, ()):
                shared[row] += 1
        if not shared:
            return False
        row, n = max(shared.items(), key=lambda kv: (kv[1] / max(1, self.title_sizes[kv[0]]), kv[1]))
        share = n / max(1, self.title_sizes[row])
        if n < self.settings.title_match_min_words or share < self.settings.title_match_min_share:
            return False
        title = lx.words(self.papers[row].title or "")
        positions = [i for w, i in words.items() if w in title]
        found.add(Span(min(positions), max(positions) + 1, "paper", self.papers[row].paper_id))
        return True

    def _find_by_phrase(self, tokens: list[Token], found: Entities) -> bool:
        """ "the stainless steel strip rolling paper": the words right before a paper word, when
        exactly one title holds them all (two words at least)."""
        for p, tok in enumerate(tokens):
            if tok.norm not in lx.PAPER_WORDS or p < 2:
                continue
            start = p
            while start > 0 and not found.covered(start - 1) and tokens[start - 1].norm not in lx.STOP_WORDS:
                start -= 1
            words = {lx.singular(t.norm) for t in tokens[start:p]}
            if len(words) < 2:
                continue
            rows = set.intersection(*(self.title_words.get(w, set()) for w in words))
            if len(rows) == 1:
                found.add(Span(start, p + 1, "paper", self.papers[rows.pop()].paper_id))
                return True
        return False

    def _find_by_name(self, tokens: list[Token], found: Entities) -> None:
        for i, tok in enumerate(tokens):
            rows = self.paper_names.get(tok.norm)
            if (
                rows
                and not found.covered(i)
                and (tok.text[:1].isupper() or any(c.isdigit() for c in tok.text))
            ):
                best = max(
                    rows,
                    key=lambda r: (
                        tok.norm in lx.words(self.papers[r].title or ""),
                        self.papers[r].abstract.count(tok.text),
                        -r,
                    ),
                )
                found.add(Span(i, i + 1, "paper", self.papers[best].paper_id))
                return


def _owner_keys(owners: set[str]) -> dict[str, str]:
    """Folded given name and surname of each personal-listing owner -> the owner (unique only)."""
    keys: dict[str, set[str]] = {}
    for owner in owners:
        tokens = name_match_tokens(owner)
        for key in {tokens[0], tokens[-1]} if tokens else set():
            keys.setdefault(key, set()).add(owner)
    return {k: next(iter(v)) for k, v in keys.items() if len(v) == 1}


def _near_owner(key: str, owner_keys: dict[str, str], english_zipf: float) -> str | None:
    """An owner's name one edit away (two for long names), if it is the only one that near and
    `key` is no English word (Zipf frequency below `english_zipf`)."""
    if zipf_frequency(key, "en") >= english_zipf:
        return None
    limit = 1 if len(key) < 9 else 2
    near = {owner_keys[k] for k in owner_keys if len(k) >= 6 and OSA.distance(key, k) <= limit}
    return next(iter(near)) if len(near) == 1 else None


def _name_key(text: str) -> str:
    return " ".join(name_match_tokens(text))


def _vocabulary(papers: list[Paper]) -> set[str]:
    return {t.norm for p in papers for t in lx.tokenize(f"{p.title or ''} {p.abstract}")}


_NAME_RE = re.compile(
    r"(?<![.!?]\s)(?<!^)\b([A-Z][a-z]*(?:-[A-Za-z0-9]*[A-Z0-9][A-Za-z0-9]*)+"  # Med-PaLM
    r"|[A-Z][A-Za-z]*[A-Z0-9][\w-]*|[A-Z][a-z]{3,}[\w-]*|[A-Za-z]+\d[\w-]*)"
)


def _model_names(paper: Paper) -> set[str]:
    """Folded words that look like names of a model or dataset: capitalised inside a sentence,
    or with inner capitals/digits; the part of a title before its colon."""
    names = set()
    title = paper.title or ""
    if ":" in title and len(head := title.split(":")[0].split()) == 1:
        names.add(lx.fold(head[0]))
    for sentence in re.split(r"(?<=[.!?])\s+", paper.abstract):
        for m in _NAME_RE.finditer(sentence):
            if m.start() > 0:
                names.add(lx.fold(m.group(1)))
    return names


_CATEGORY_SUFFIXES = lx.CATEGORY_CUES | lx.PAPER_WORDS | lx.GENERIC_TOPIC_WORDS  # "LG-tagged", "CV-papers"
_QUOTED_RE = re.compile(r"[\"“‘']([^\"”’']{6,})[\"”’']")
_URL_RE = re.compile(r"\S+/\S+|\S+\.(?:com|org|io|net)\S*")
_YEAR_RE = re.compile(r"^(19[5-9]\d|20\d\d)$")


def find_years(tokens: list[Token], found: Entities, today: date) -> None:
    """Years in every form: in/since/after/before/until/between/from…to/"last year"."""
    norms = _norms(tokens)
    years = [(i, int(n)) for i, n in enumerate(norms) if _YEAR_RE.match(n)]
    text = " ".join(norms)
    for phrase, delta in lx.RELATIVE_YEARS.items():
        if phrase in text:
            start = len(text[: text.index(phrase)].split())
            year = today.year + delta
            bound = norms[start - 1] if start else ""
            lo, hi = _bounds(bound, year)
            found.add(
                Span(start - (1 if bound in lx.YEAR_FROM | lx.YEAR_TO else 0), start + 2, "year", (lo, hi))
            )
    if len(years) >= 2 and years[1][0] - years[0][0] <= 3:  # between X and Y, from X to Y, X-Y
        (i, a), (j, b) = years[0], years[1]
        start = i - 1 if i and norms[i - 1] in {"between", "from"} else i
        found.add(Span(start, j + 1, "year", (min(a, b), max(a, b))))
        return
    for i, year in years:
        # The cue before the year, or before "than" ("older than 2022").
        cue_at = i - 2 if i >= 2 and norms[i - 1] == "than" else i - 1
        bound = norms[cue_at] if cue_at >= 0 else ""
        lo, hi = _bounds(bound, year)
        after = norms[i + 1] if i + 1 < len(norms) else ""
        on_topic = after == "on" and i + 2 < len(norms) and norms[i + 2] not in lx.STOP_WORDS  # "2024 on ECG"
        if (
            bound not in lx.YEAR_FROM | lx.YEAR_TO
            and after in {"on", "onward", "onwards", "later", "after"}
            and not on_topic
        ):
            lo, hi, end = year + (norms[i + 1] == "after"), None, i + 2
        elif i + 2 < len(norms) and norms[i + 1 : i + 3] == ["or", "later"]:
            lo, hi, end = year, None, i + 3
        elif i + 2 < len(norms) and norms[i + 1 : i + 3] == ["or", "earlier"]:
            lo, hi, end = None, year, i + 3
        else:
            end = i + 1
        found.add(Span(cue_at if bound in lx.YEAR_FROM | lx.YEAR_TO else i, end, "year", (lo, hi)))


def _bounds(cue: str, year: int) -> tuple[int | None, int | None]:
    exclusive = 1 if cue in lx.YEAR_EXCLUSIVE else 0
    if cue in lx.YEAR_FROM:
        return year + exclusive, None
    if cue in lx.YEAR_TO:
        return None, year - exclusive
    return year, year


def find_code(tokens: list[Token], found: Entities) -> None:
    for i, tok in enumerate(tokens):
        if tok.norm in lx.CODE_WORDS or (
            tok.norm == "open" and i + 1 < len(tokens) and tokens[i + 1].norm == "source"
        ):
            negated = any(t.norm in lx.NEGATIONS for t in tokens[max(0, i - 3) : i])
            found.add(Span(i, i + 1, "code", not negated))
            return


def find_number(tokens: list[Token], found: Entities) -> None:
    """A small count the question asks for ("the three most recent", "top 5")."""
    for i, tok in enumerate(tokens):
        if found.covered(i):
            continue
        value = lx.NUMBER_WORDS.get(tok.norm) or (
            int(tok.norm) if tok.norm.isdigit() and len(tok.norm) <= 2 else None
        )
        if value:
            found.add(Span(i, i + 1, "number", value))
            return


def _title_leads(papers: list[Paper], names: set[str]) -> dict[tuple[str, ...], int]:
    """Folded words of each title's part before a colon ("Mind the Gap", "FeatMap") -> its
    paper's row, when that part has two content words or is a coined name (`names`), and no
    other title starts the same way."""
    leads: dict[tuple[str, ...], list[int]] = {}
    for i, p in enumerate(papers):
        head, colon, _ = (p.title or "").partition(":")
        words = tuple(t.norm for t in lx.tokenize(head))
        content = [w for w in words if w not in lx.STOP_WORDS]
        if colon and (len(content) >= 2 or (len(content) == 1 and content[0] in names)):
            leads.setdefault(words, []).append(i)
    return {lead: rows[0] for lead, rows in leads.items() if len(rows) == 1}
