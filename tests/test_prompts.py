"""Each template in rag/prompts.py has exactly the placeholders its callers fill.

Callers are found in the source with `ast`: `prompts.NAME.format(key=...)` directly;
`prompts.NAME` (or `prompts.A if ... else prompts.B`) assigned to a local name that is then
formatted in the same function; or passed to a function of the same module that formats that
parameter (table.py's `_filtered(ctx, kind, header, none, limit)`). No model, no index."""

from __future__ import annotations

import ast
import string
from dataclasses import dataclass
from pathlib import Path

import pytest

from rag import prompts
from rag.config import PROJECT_ROOT

SOURCE_DIRS = ("rag", "ui", "eval", "bench")

TEMPLATES = {
    name: value for name, value in vars(prompts).items() if name.isupper() and isinstance(value, str)
}


def placeholders(template: str) -> set[str]:
    """The names a template needs; `{a.b}` and `{a[0]}` need `a`, `{}` needs a positional."""
    names = set()
    for _, field, _, _ in string.Formatter().parse(template):
        if field is None:
            continue
        names.add(field.split(".", 1)[0].split("[", 1)[0] or "<positional>")
    return names


@dataclass
class Use:
    where: str  # path:line
    fills: set[str] | None  # keyword names; None: the template is used as it is (no .format)
    opaque: bool = False  # positional arguments or **kwargs: what is filled can't be read


def _prompt_name(node: ast.AST) -> str | None:
    """NAME of `prompts.NAME`."""
    if (
        isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "prompts"
        and node.attr in TEMPLATES
    ):
        return node.attr
    return None


def _prompt_names(node: ast.AST) -> list[ast.Attribute]:
    """The `prompts.NAME` nodes an expression evaluates to: itself, or the arms of an `if` expression."""
    if isinstance(node, ast.IfExp):
        return _prompt_names(node.body) + _prompt_names(node.orelse)
    return [node] if isinstance(node, ast.Attribute) and _prompt_name(node) else []


def _format_call(call: ast.Call) -> tuple[set[str], bool]:
    fills = {kw.arg for kw in call.keywords if kw.arg is not None}
    opaque = bool(call.args) or any(kw.arg is None for kw in call.keywords)
    return fills, opaque


def _parameter_formats(func: ast.AST, param: str) -> list[ast.Call]:
    """`param.format(...)` calls in a function's body."""
    return [
        node
        for node in ast.walk(func)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "format"
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == param
    ]


def _uses_in(path: Path) -> dict[str, list[Use]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    rel = path.relative_to(PROJECT_ROOT)
    functions = {n.name: n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
    uses: dict[str, list[Use]] = {}
    formatted: set[int] = set()  # ids of `prompts.NAME` nodes accounted for
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        # prompts.NAME.format(...)
        if isinstance(node.func, ast.Attribute) and node.func.attr == "format":
            name = _prompt_name(node.func.value)
            if name:
                fills, opaque = _format_call(node)
                uses.setdefault(name, []).append(Use(f"{rel}:{node.lineno}", fills, opaque))
                formatted.add(id(node.func.value))
                continue
        # f(..., prompts.NAME, ...) where f formats that parameter
        callee = functions.get(node.func.id) if isinstance(node.func, ast.Name) else None
        if callee is None:
            continue
        params = [a.arg for a in callee.args.posonlyargs + callee.args.args]
        bound = list(zip(params, node.args, strict=False)) + [(kw.arg, kw.value) for kw in node.keywords]
        for param, arg in bound:
            calls = _parameter_formats(callee, param) if param else []
            for attr in _prompt_names(arg) if calls else []:
                for call in calls:
                    fills, opaque = _format_call(call)
                    where = f"{rel}:{node.lineno} via {callee.name}()"
                    uses.setdefault(attr.attr, []).append(Use(where, fills, opaque))
                formatted.add(id(attr))
    # header = prompts.A if ... else prompts.B; header.format(...) in the same function
    for func in functions.values():
        for node in ast.walk(func):
            if not (isinstance(node, ast.Assign) and len(node.targets) == 1):
                continue
            target = node.targets[0]
            attrs = _prompt_names(node.value)
            calls = _parameter_formats(func, target.id) if attrs and isinstance(target, ast.Name) else []
            for attr in attrs if calls else []:
                for call in calls:
                    fills, opaque = _format_call(call)
                    where = f"{rel}:{call.lineno} via {target.id}"
                    uses.setdefault(attr.attr, []).append(Use(where, fills, opaque))
                formatted.add(id(attr))
    # Every other `prompts.NAME` is the text used as it is.
    for node in ast.walk(tree):
        name = _prompt_name(node)
        if name and id(node) not in formatted:
            uses.setdefault(name, []).append(Use(f"{rel}:{node.lineno}", None))
    return uses


def all_uses() -> dict[str, list[Use]]:
    uses: dict[str, list[Use]] = {}
    for folder in SOURCE_DIRS:
        for path in sorted((PROJECT_ROOT / folder).rglob("*.py")):
            if path == PROJECT_ROOT / "rag" / "prompts.py":
                continue
            for name, found in _uses_in(path).items():
                uses.setdefault(name, []).extend(found)
    return uses


USES = all_uses()


def test_the_finder_sees_direct_and_indirect_callers():
    assert any(u.fills == {"sources", "question"} for u in USES["ANSWER_PROMPT"])
    if "COUNT_HEADER" in TEMPLATES:  # filled inside table.py's shared handler body
        assert any("via" in u.where for u in USES.get("COUNT_HEADER", []))


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_template_placeholders_match_their_callers(name):
    template = TEMPLATES[name]
    needed = placeholders(template)  # also fails on a malformed brace
    uses = USES.get(name, [])
    assert uses, f"prompts.{name} is used nowhere in {', '.join(SOURCE_DIRS)}"
    for use in uses:
        assert not use.opaque, f"{use.where}: fill prompts.{name} with keywords only"
        if use.fills is None:
            assert not needed, f"{use.where}: prompts.{name} needs {sorted(needed)} but is used unformatted"
            assert "{{" not in template and "}}" not in template, f"prompts.{name} has escaped braces"
        else:
            assert use.fills == needed, (
                f"{use.where}: prompts.{name} needs {sorted(needed)}, the caller fills {sorted(use.fills)}"
            )
            template.format(**dict.fromkeys(needed, "x"))
