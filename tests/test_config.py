"""rag/config.py: described sections, their env variables, and the flat names of before them."""

from __future__ import annotations

import ast
import inspect

import pytest
from pydantic import BaseModel, SecretStr, ValidationError

from rag import config
from rag.config import FLAT_NAMES, SECTIONS, Settings


def section_models() -> dict[str, type[BaseModel]]:
    out = {}
    for name in SECTIONS:
        model = Settings.model_fields[name].annotation
        assert isinstance(model, type) and issubclass(model, BaseModel)
        out[name] = model
    return out


def test_every_field_is_described():
    missing = [
        f"{section}.{name}"
        for section, model in section_models().items()
        for name, info in model.model_fields.items()
        if not (info.description or "").strip()
    ]
    missing += [name for name, info in Settings.model_fields.items() if not (info.description or "").strip()]
    assert not missing


def test_flat_names_point_at_section_fields_with_the_same_type():
    """Each flat name has a property, and the type mypy is told (the TYPE_CHECKING block of
    Settings) is the annotation of the section field it stands for."""
    models = section_models()
    tree = ast.parse(inspect.getsource(config))
    settings_class = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Settings")
    block = next(n for n in settings_class.body if isinstance(n, ast.If))
    declared = {n.target.id: ast.unparse(n.annotation) for n in block.body if isinstance(n, ast.AnnAssign)}
    assert set(declared) == set(FLAT_NAMES)
    for flat, (section, name) in FLAT_NAMES.items():
        assert isinstance(inspect.getattr_static(Settings, flat), property), flat
        assert declared[flat] == models[section].__annotations__[name], flat


def test_defaults_read_the_same_through_both_names():
    s = Settings()
    for flat, (section, name) in FLAT_NAMES.items():
        assert getattr(s, flat) == getattr(getattr(s, section), name)
    assert s.top_k == 10 and s.llm_model == "qwen2.5-coder-1.5b-instruct" and s.ui_port == 7860


def test_flat_and_nested_environment_variables(monkeypatch):
    monkeypatch.setenv("RAG_TOP_K", "7")
    monkeypatch.setenv("RAG_LLM_MODEL", "flat-model")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-plain")
    monkeypatch.setenv("RAG_UI_ALLOW_UNAUTHENTICATED", "true")
    monkeypatch.setenv("RAG_ANSWER__MIN_DENSE_SIM", "0.4")
    s = Settings()
    assert s.top_k == 7 and s.retrieval.top_k == 7
    assert s.llm_model == "flat-model"
    assert s.openai_base_url == "http://127.0.0.1:9/v1" == s.llm.base_url
    assert isinstance(s.openai_api_key, SecretStr) and s.openai_api_key.get_secret_value() == "sk-plain"
    assert s.ui_allow_unauthenticated is True
    assert s.answer.min_dense_sim == 0.4
    # The sectioned spelling wins over the flat one; RAG_OPENAI_* over OPENAI_*.
    monkeypatch.setenv("RAG_RETRIEVAL__TOP_K", "9")
    monkeypatch.setenv("RAG_LLM__MODEL", "nested-model")
    monkeypatch.setenv("RAG_OPENAI_BASE_URL", "http://127.0.0.1:10/v1")
    s = Settings()
    assert (s.top_k, s.llm_model, s.openai_base_url) == (9, "nested-model", "http://127.0.0.1:10/v1")
    # Keywords (the CLI's overrides) win over both.
    assert Settings(top_k=3).top_k == 3
    monkeypatch.setenv("RAG_TOP_K", "many")
    monkeypatch.delenv("RAG_RETRIEVAL__TOP_K")
    with pytest.raises(ValidationError):
        Settings()


def test_flat_keywords_and_model_copy(tmp_path):
    s = Settings(
        data_dir=tmp_path, chroma_mode="http", chroma_port=9000, ui_auth="ann:pw", OPENAI_BASE_URL="x"
    )
    assert (s.chroma_mode, s.index.chroma_port, s.data_dir, s.openai_base_url) == (
        "http",
        9000,
        tmp_path,
        "x",
    )
    assert s.ui_auth is not None and s.ui_auth.get_secret_value() == "ann:pw"
    copy = s.model_copy(
        update={"top_k": 4, "max_tokens": 120, "openai_api_key": "sk-2", "data_dir": tmp_path / "b"}
    )
    assert (copy.top_k, copy.max_tokens, copy.data_dir) == (4, 120, tmp_path / "b")
    assert isinstance(copy.openai_api_key, SecretStr)  # validated as from the environment
    assert (s.top_k, s.max_tokens, s.data_dir) == (10, 400, tmp_path)  # the original keeps its values
    copy.top_k = 11  # assignment through a flat name makes a new section: s is untouched
    assert (copy.top_k, copy.retrieval.top_k, s.top_k) == (11, 11, 10)
    with pytest.raises(ValidationError):
        s.retrieval.top_k = 5  # sections are frozen; change them through Settings
    with pytest.raises(ValidationError):
        Settings(retrieval={"top_kk": 5})  # a misspelt section field is an error, not ignored


def test_secrets_stay_hidden():
    s = Settings(ui_auth="ann:sekrit", openai_api_key="sk-sekrit", embed_api_key="sk-sekrit")
    assert "sekrit" not in repr(s) and "sekrit" not in str(s.model_dump())


def test_get_settings_drops_unset_overrides(monkeypatch):
    monkeypatch.setenv("RAG_CHROMA_PORT", "8123")
    assert config.get_settings(chroma_port=None, chroma_host="h").chroma_port == 8123
    assert config.get_settings(chroma_port=9001).chroma_port == 9001


def test_describe_lists_every_section_field():
    rows = config.describe()
    assert len(rows) == sum(len(m.model_fields) for m in section_models().values())
    assert rows[[r[0] for r in rows].index("RAG_RETRIEVAL__TOP_K")][:3] == ("RAG_RETRIEVAL__TOP_K", "int", 10)


def test_answer_thresholds_reach_the_chain(seed_index):
    """settings.answer is what the answer modules read: a stricter membership or a shorter
    list changes the answer (no copy of the defaults in the modules)."""
    from rag.answer import Assistant
    from rag.index import PaperIndex

    question = "any work on photoplethysmography?"
    default = Assistant(seed_index, index=PaperIndex(seed_index), generate=False).ask(question)
    short = seed_index.model_copy(update={"answer": seed_index.answer.model_copy(update={"list_sources": 2})})
    capped = Assistant(short, index=PaperIndex(short), generate=False).ask(question)
    assert len(default.sources) > 2 and len(capped.sources) == 2
