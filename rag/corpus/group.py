"""Layout "group page": a biography on top, then bare abstracts (no title, authors or date),
some split over several lines ("Background: ...", "Methods: ..."), interleaved with noise
lines: member cards ("Georgios Kaissis", "Dr.", "* Former Member"), chair names, a footer.
"""

from __future__ import annotations

import re

from rag.corpus.lines import looks_like_prose
from rag.types import ListingEntry, SkippedLine

# Section labels of structured abstracts. A labelled line right after another labelled line
# of the same abstract continues it, unless that label was already used (a new abstract).
SECTION_RE = re.compile(
    r"^(?P<label>Background|Objectives?|Aims?|Purpose|Motivation|Goal\(s\)|Goals?|Approach|Methods?|"
    r"Materials and Methods|Design|Setting|Results?|Findings|Impact|Conclusions?|Interpretation|"
    r"Significance|Discussion|Introduction)\s*:"
)
_BIO_RE = re.compile(r"\b(he|she|his|her)\b|\bProfessor\b|\bPhD\b", re.IGNORECASE)
_FOOTER_RE = re.compile(r"©|Last modified|\ball rights reserved\b|^\d{4}-\d{2}-\d{2}\b", re.IGNORECASE)
_OWNER_RE = re.compile(r"Professor (?:for|of) (?P<field>[^.]+?) at (?P<place>[^.]+?)(?:\.|$)")


def parse(
    lines: list[tuple[int, str]],
) -> tuple[list[ListingEntry], list[SkippedLine], str | None, dict[str, str]]:
    entries: list[ListingEntry] = []
    skipped: list[SkippedLine] = []
    profile: dict[str, str] = {}
    owner: str | None = None
    in_bio = True
    previous_labels: set[str] | None = None  # labels of the abstract the previous line belonged to

    for no, text in lines:
        label_match = SECTION_RE.match(text)
        if in_bio and _BIO_RE.search(text) and not label_match:
            if owner is None and (m := _OWNER_RE.search(text)):
                owner = f"{m.group('field')}, {m.group('place')}"
            profile.setdefault("bio", "")
            profile["bio"] = (profile["bio"] + "\n" + text).strip()
            skipped.append(SkippedLine(no, text, "bio"))
            continue
        in_bio = False
        if label_match:
            label = label_match.group("label").lower()
            if previous_labels is not None and label not in previous_labels and entries:
                entries[-1].abstract += "\n" + text
                entries[-1].lines.append(no)
                previous_labels.add(label)
                continue
            entries.append(ListingEntry(listing="", abstract=text, lines=[no]))
            previous_labels = {label}
        elif looks_like_prose(text):
            entries.append(ListingEntry(listing="", abstract=text, lines=[no]))
            previous_labels = None
        else:
            reason = "footer" if _FOOTER_RE.search(text) else "noise"
            skipped.append(SkippedLine(no, text, reason))
            previous_labels = None
    return entries, skipped, owner, profile
