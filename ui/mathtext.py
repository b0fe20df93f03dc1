"""LaTeX fragments of titles and abstracts as plain Unicode text, for every place the UI shows
them outside the chat (cards, the Browse table, plot tooltips): `$\\ell_1$-regression` ->
`ℓ₁-regression`, `0.91$\\pm$0.07` -> `0.91±0.07`, `98.7\\%` -> `98.7%`.

The chat renders `$…$` with KaTeX (Gradio's latex_delimiters); HTML cards and plot labels
cannot, so they get this text instead, never the raw source. Unknown commands lose their
backslash (`\\dbname` -> `dbname`), a command's braced argument is kept (`\\emph{X}` -> `X`),
and a lone dollar (a price) stays as it is. The exports keep the LaTeX: BibTeX is LaTeX.
"""

from __future__ import annotations

import re

SYMBOLS = {
    # Greek
    "alpha": "α",
    "beta": "β",
    "gamma": "γ",
    "delta": "δ",
    "epsilon": "ε",
    "varepsilon": "ε",
    "zeta": "ζ",
    "eta": "η",
    "theta": "θ",
    "vartheta": "ϑ",
    "iota": "ι",
    "kappa": "κ",
    "lambda": "λ",
    "mu": "μ",
    "nu": "ν",
    "xi": "ξ",
    "pi": "π",
    "rho": "ρ",
    "sigma": "σ",
    "tau": "τ",
    "upsilon": "υ",
    "phi": "φ",
    "varphi": "φ",
    "chi": "χ",
    "psi": "ψ",
    "omega": "ω",
    "Gamma": "Γ",
    "Delta": "Δ",
    "Theta": "Θ",
    "Lambda": "Λ",
    "Xi": "Ξ",
    "Pi": "Π",
    "Sigma": "Σ",
    "Phi": "Φ",
    "Psi": "Ψ",
    "Omega": "Ω",
    # operators and relations
    "ell": "ℓ",
    "pm": "±",
    "mp": "∓",
    "times": "×",
    "cdot": "·",
    "div": "÷",
    "leq": "≤",
    "le": "≤",
    "geq": "≥",
    "ge": "≥",
    "neq": "≠",
    "ne": "≠",
    "approx": "≈",
    "sim": "∼",
    "simeq": "≃",
    "equiv": "≡",
    "propto": "∝",
    "infty": "∞",
    "to": "→",
    "rightarrow": "→",
    "leftarrow": "←",
    "Rightarrow": "⇒",
    "leftrightarrow": "↔",
    "in": "∈",
    "notin": "∉",
    "subset": "⊂",
    "subseteq": "⊆",
    "cup": "∪",
    "cap": "∩",
    "forall": "∀",
    "exists": "∃",
    "sum": "∑",
    "prod": "∏",
    "int": "∫",
    "partial": "∂",
    "nabla": "∇",
    "sqrt": "√",
    "circ": "∘",
    "ldots": "…",
    "dots": "…",
    "cdots": "⋯",
    "mid": "|",
    "ast": "∗",
    "star": "⋆",
    "prime": "′",
    "degree": "°",
    "langle": "⟨",
    "rangle": "⟩",
    "lVert": "‖",
    "rVert": "‖",
    "Vert": "‖",
    "|": "‖",
    "%": "%",
    "&": "&",
    "#": "#",
    "_": "_",
    "$": "$",
    "{": "{",
    "}": "}",
    ",": " ",
    ";": " ",
    ":": " ",
    "!": "",
    " ": " ",
    "quad": " ",
    "qquad": "  ",
}
BLACKBOARD = {"R": "ℝ", "N": "ℕ", "Z": "ℤ", "Q": "ℚ", "C": "ℂ", "E": "𝔼", "P": "ℙ"}
SUB = dict(zip("0123456789+-=()aehijklmnoprstuvx", "₀₁₂₃₄₅₆₇₈₉₊₋₌₍₎ₐₑₕᵢⱼₖₗₘₙₒₚᵣₛₜᵤᵥₓ", strict=True))
SUP = dict(zip("0123456789+-=()nij", "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁼⁽⁾ⁿⁱʲ", strict=True))
FONT_COMMANDS = {
    "mathrm",
    "mathit",
    "mathbf",
    "mathsf",
    "mathtt",
    "mathcal",
    "mathscr",
    "mathfrak",
    "boldsymbol",
    "text",
    "textrm",
    "textbf",
    "textit",
    "texttt",
    "textsc",
    "emph",
    "operatorname",
    "mbox",
    "hat",
    "bar",
    "tilde",
    "vec",
    "widehat",
    "overline",
    "url",
    "textsuperscript",
    "textsubscript",
}

_MATH_RE = re.compile(r"(?<!\\)\$\$?(.+?)(?<!\\)\$\$?", flags=re.DOTALL)
_COMMAND_RE = re.compile(r"\\([A-Za-z]+|.)(\s*)", flags=re.DOTALL)
_BARE_FONT_RE = re.compile(
    r"(?<![\w\\])(emph|textbf|textit|texttt)\{([^{}]*)\}"
)  # a listing lost the backslash


def _braced(text: str, start: int) -> tuple[str, int]:
    """The group starting at text[start] == "{" (nested braces kept), and the index after it."""
    depth = 0
    for i in range(start, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return text[start + 1 : i], i + 1
    return text[start + 1 :], len(text)


def _script(body: str, table: dict[str, str], mark: str) -> str:
    body = body.strip()
    if body and all(ch in table for ch in body):
        return "".join(table[ch] for ch in body)
    return mark + (body if len(body) == 1 else f"({body})")


def _convert(text: str, in_math: bool) -> str:
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            m = _COMMAND_RE.match(text, i)
            if m is None:  # a backslash at the very end
                break
            name, i = m.group(1), m.end() if m.group(1).isalpha() else m.start(2)
            spaced = bool(m.group(2)) and name.isalpha() and not in_math
            if name in ("mathbb", "mathbbm") and i < len(text) and text[i] == "{":
                arg, i = _braced(text, i)
                out.append("".join(BLACKBOARD.get(c, c) for c in arg))
            elif name in FONT_COMMANDS or (i < len(text) and text[i] == "{" and name not in SYMBOLS):
                if i < len(text) and text[i] == "{":
                    arg, i = _braced(text, i)
                    out.append(_convert(arg, in_math))
            elif name in SYMBOLS:
                out.append(SYMBOLS[name] + (" " if spaced else ""))  # "\ldots and" keeps its space in prose
            else:
                out.append(
                    name + (" " if spaced else "")
                )  # an unknown macro: its name, without the backslash
        elif in_math and ch in "_^" and i + 1 < len(text):
            if text[i + 1] == "{":
                body, i = _braced(text, i + 1)
                body = _convert(body, True)
            elif text[i + 1] == "\\":
                m = _COMMAND_RE.match(text, i + 1)
                if m is None:
                    break
                body, i = _convert(m.group(0).strip(), True), m.end() if m.group(1).isalpha() else m.start(2)
            else:
                body, i = text[i + 1], i + 2
            out.append(_script(body, SUB if ch == "_" else SUP, ch))
        elif in_math and ch in "{}":
            i += 1
        elif ch == "~" and not in_math and 0 < i < len(text) - 1 and not text[i - 1].isspace():
            out.append(" ")  # a LaTeX non-breaking space ("dataset~[3]"); "~3 years" keeps its tilde
            i += 1
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def plain_math(text: str | None) -> str:
    """`text` with its LaTeX fragments as Unicode; text without any comes back unchanged."""
    if not text:
        return text or ""
    if "\\" not in text and "$" not in text and "{" not in text and "~" not in text:
        return text
    text = _BARE_FONT_RE.sub(r"\2", text)
    out, pos = [], 0
    for m in _MATH_RE.finditer(text):
        out.append(_convert(text[pos : m.start()], in_math=False))
        out.append(_convert(m.group(1), in_math=True))
        pos = m.end()
    out.append(_convert(text[pos:], in_math=False))
    return "".join(out)
