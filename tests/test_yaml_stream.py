"""Raw object files are read as YAML streams by the spec loader: same bounds, same located errors."""

from __future__ import annotations

import pytest

from envspec.errors import SpecError
from envspec.spec.loader import parse_yaml_stream


def test_each_document_comes_with_its_positions_and_empty_documents_are_left_out() -> None:
    text = "a: 1\n---\n---\n# only a comment\n---\nb:\n  c: [x, y]\n"
    docs = parse_yaml_stream(text, "f.yaml")
    assert [value for value, _ in docs] == [{"a": 1}, {"b": {"c": ["x", "y"]}}]
    assert str(docs[1][1].default) == "f.yaml:6:1"
    assert str(docs[1][1].lookup(("b", "c", 1))) == "f.yaml:7:10"


def test_an_alias_bomb_in_a_later_document_is_refused_at_its_alias() -> None:
    bomb = "".join(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 6))
    text = "x: &s small\ny: *s\n---\na0: &a0 [l, l, l, l, l, l, l, l, l, l]\n" + bomb
    with pytest.raises(SpecError) as info:
        parse_yaml_stream(text, "f.yaml")
    assert [str(p) for p in info.value.problems] == ["f.yaml:7:45: aliases expand to more than 10000 values; refusing (a YAML alias bomb?)"]


def test_tags_and_syntax_errors_are_located() -> None:
    with pytest.raises(SpecError, match=r"^f.yaml:3:4: YAML tags are not allowed \(got !!python/object:os.system\)"):
        parse_yaml_stream("a: 1\n---\nb: !!python/object:os.system {}\n", "f.yaml")
    with pytest.raises(SpecError, match=r"^f.yaml:4:1: YAML syntax error"):
        parse_yaml_stream("a: 1\n---\nb: [1\n", "f.yaml")  # the unclosed list is found at the end
