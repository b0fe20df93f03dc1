"""Paper records as files a researcher can take elsewhere: BibTeX, CSV and JSON.

One module for the CLI (`rag papers --format bibtex|csv|json`) and the UI (the BibTeX of an
answer's cited papers, of a filtered set in Browse), so both write the same entries.

BibTeX: one `@misc` per paper with title, author (" and others" where the listing cut the list
with "et al."), year, date, keywords (the category), abstract and a note naming the listing and
the paper_id. LaTeX in titles and abstracts is kept (BibTeX is LaTeX); characters LaTeX would
choke on outside math (`& % # _`) are escaped. Keys are `surname` + `year` + first title word
(`kabus2026embedding`), made unique with b, c, …; an untitled abstract gets the key
`untitled-<surname>-<paper_id>` and the title "[untitled] first words…", so nobody mistakes it
for a real title.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable

from rag.corpus.names import fold
from rag.types import Paper

FORMATS = ("bibtex", "csv", "json")
CSV_COLUMNS = [
    "paper_id",
    "title",
    "label",
    "authors",
    "authors_truncated",
    "n_authors",
    "date",
    "year",
    "category",
    "has_code",
    "owner",
    "listings",
    "abstract",
]
_STOPWORDS = frozenset(
    re.findall(
        r"\w+",
        "a an the on of in for to and with from towards toward via is are can do does how what why when "
        "using by at as",
    )
)
_MATH_RE = re.compile(r"(?<!\\)\$[^$]*(?<!\\)\$")  # $...$ stays as it is: BibTeX takes LaTeX math


# --- BibTeX -------------------------------------------------------------------------------


def _ascii_word(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", fold(text))


def surname(name: str) -> str:
    """The last word of a display name, as ASCII ("Daniela Zöller" -> "zoeller")."""
    parts = name.split()
    return _ascii_word(parts[-1]) if parts else ""


def base_key(paper: Paper) -> str:
    """The citation key before de-duplication."""
    who = surname(paper.authors[0]) if paper.authors else ""
    if not paper.title:
        return f"untitled-{who}-{paper.paper_id}" if who else f"untitled-{paper.paper_id}"
    plain = _MATH_RE.sub(" ", paper.title)
    words = [_ascii_word(w) for w in re.split(r"[\s\-–—:/]+", plain)]
    word = next((w for w in words if w and w not in _STOPWORDS), "") or next((w for w in words if w), "paper")
    return f"{who or 'anon'}{paper.year or 'nd'}{word}"


def bibtex_keys(papers: list[Paper]) -> list[str]:
    """One unique key per paper, in order: a repeated key gets b, c, … (the first keeps its own)."""
    used: set[str] = set()
    keys = []
    for paper in papers:
        base = key = base_key(paper)
        n = 0
        while key in used:
            n += 1
            key = base + ("abcdefghijklmnopqrstuvwxyz"[n] if n < 26 else f"-{n + 1}")
        used.add(key)
        keys.append(key)
    return keys


def _escape_text(text: str) -> str:
    """Escape LaTeX specials in prose; what is already escaped stays as it is."""
    text = re.sub(r"(?<!\\)([&%#_])", r"\\\1", text)
    return text


def latex_value(text: str) -> str:
    """A field value that BibTeX reads as one balanced group and LaTeX can typeset."""
    text = "\n".join(
        " ".join(line.split()) for line in text.splitlines()
    )  # line breaks of structured abstracts stay
    out, pos = [], 0
    for m in _MATH_RE.finditer(text):
        out.append(_escape_text(text[pos : m.start()]))
        out.append(m.group(0))
        pos = m.end()
    out.append(_escape_text(text[pos:]))
    value = "".join(out).rstrip("\\ ")  # a trailing backslash would escape the closing brace
    value = value.replace("\\{", "(").replace("\\}", ")")  # BibTeX counts escaped braces, parsers do not
    value = re.sub(r"(?<!\\)\$", r"\\$", value) if value.count("$") % 2 else value  # a lone dollar
    depth, balanced = 0, True
    for ch in value:
        depth += {"{": 1, "}": -1}.get(ch, 0)
        if depth < 0:
            balanced = False
            break
    if not balanced or depth:
        value = value.replace("{", "(").replace("}", ")")
    return value


def author_field(paper: Paper) -> str:
    names = [latex_value(a) for a in paper.authors]
    if paper.authors_truncated or (paper.n_authors and paper.n_authors > len(paper.authors)):
        names.append("others")
    return " and ".join(names)


def bibtex_entry(paper: Paper, key: str) -> str:
    fields: list[tuple[str, str]] = [("title", latex_value(paper.title or paper.label))]
    if paper.authors or paper.n_authors:
        fields.append(("author", author_field(paper)))
    if paper.year:
        fields.append(("year", str(paper.year)))
    if paper.date:
        fields.append(("date", paper.date))
    if paper.category:
        fields.append(("keywords", latex_value(paper.category)))
    note = [f"Listing: {paper.owner or 'unknown'} ({', '.join(paper.listings)})"]
    if not paper.title:
        note.append("untitled in the listing; the title is the abstract's first words")
    if paper.has_code:
        note.append("code available (listing badge)")
    note.append(f"paper_id {paper.paper_id}")
    fields.append(("note", latex_value("; ".join(note))))
    fields.append(("abstract", latex_value(paper.abstract)))
    body = ",\n".join(f"  {name} = {{{value}}}" for name, value in fields)
    return f"@misc{{{key},\n{body}\n}}\n"


def to_bibtex(papers: Iterable[Paper]) -> str:
    papers = list(papers)
    return "\n".join(bibtex_entry(p, k) for p, k in zip(papers, bibtex_keys(papers), strict=True))


# --- CSV and JSON ---------------------------------------------------------------------------


def to_csv(papers: Iterable[Paper]) -> str:
    """One row per paper, the JSON fields as columns; list fields joined with "; "."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for p in papers:
        data = p.to_json()
        row = []
        for col in CSV_COLUMNS:
            value = data[col]
            if isinstance(value, list):
                value = "; ".join(value)
            elif isinstance(value, bool):
                value = "true" if value else "false"
            row.append("" if value is None else value)
        writer.writerow(row)
    return buffer.getvalue()


def to_json(papers: Iterable[Paper]) -> str:
    return json.dumps([p.to_json() for p in papers], ensure_ascii=False, indent=1) + "\n"


def export(papers: Iterable[Paper], fmt: str) -> str:
    """The papers in one of FORMATS."""
    writers = {"bibtex": to_bibtex, "csv": to_csv, "json": to_json}
    if fmt not in writers:
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    return writers[fmt](papers)


SUFFIX = {"bibtex": "bib", "csv": "csv", "json": "json"}
