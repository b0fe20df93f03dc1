"""rag/errors.py: one home for the exceptions, the old import paths still work, no import cycles."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import rag.corpus
import rag.embed
import rag.index
import rag.llm
from rag import errors

RAG = Path(__file__).resolve().parent.parent / "rag"


def test_old_homes_reexport_the_same_classes():
    assert rag.corpus.CorpusError is errors.CorpusError
    assert rag.index.IndexMissingError is errors.IndexMissingError
    assert rag.index.IngestError is errors.IngestError
    assert rag.llm.LLMUnavailable is errors.LLMUnavailable
    assert rag.embed.EmbeddingUnavailable is errors.EmbeddingUnavailable


@pytest.mark.parametrize(
    ("cls", "builtin"),
    [
        (errors.CorpusError, ValueError),
        (errors.IndexMissingError, RuntimeError),
        (errors.IngestError, RuntimeError),
        (errors.IngestBusy, errors.IngestError),
        (errors.EmbeddingUnavailable, RuntimeError),
        (errors.LLMUnavailable, RuntimeError),
    ],
)
def test_each_keeps_its_builtin_base_and_shares_rag_error(cls, builtin):
    assert issubclass(cls, builtin) and issubclass(cls, errors.RagError)


def test_errors_module_imports_nothing_of_the_project():
    tree = ast.parse((RAG / "errors.py").read_text())
    imported = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    imported += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert not [m for m in imported if m and m.split(".")[0] == "rag"]


def _module_name(path: Path) -> str:
    parts = path.relative_to(RAG.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, known: set[str]) -> set[str]:
    """Project modules `path` imports anywhere in it (function-level imports count too)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
    return out & known


def test_no_import_cycles_between_project_modules():
    paths = {_module_name(p): p for p in RAG.rglob("*.py")}
    known = set(paths)

    def related(a: str, b: str) -> bool:  # a package and its own submodules are not a cycle
        return a.startswith(b + ".") or b.startswith(a + ".")

    graph = {m: {d for d in _imports(p, known) if d != m and not related(d, m)} for m, p in paths.items()}
    cycles: list[list[str]] = []
    done: set[str] = set()

    def visit(module: str, stack: list[str]) -> None:  # depth-first; `done` modules lead to no cycle
        for dep in sorted(graph[module]):
            if dep in stack:
                cycles.append(stack[stack.index(dep) :] + [dep])
            elif dep not in done:
                visit(dep, stack + [dep])
        done.add(module)

    for module in sorted(graph):
        visit(module, [module])
    assert not cycles, cycles[:5]


def test_endpoint_embeddings_do_not_import_the_local_model_module():
    assert "rag.embed" not in _imports(RAG / "endpoint_embed.py", {"rag.embed"})
