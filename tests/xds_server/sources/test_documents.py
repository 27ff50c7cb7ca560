from __future__ import annotations

from textwrap import dedent

import pytest

from xds_server.sources.documents import YamlProblem, line_of, read_documents


def test_documents_are_numbered_from_one_counting_empty_ones() -> None:
    text = "a: 1\n---\n---\n# only a comment\n---\n- 2\n"
    documents, problems = read_documents(text)
    assert problems == []
    assert [(d.number, d.line, d.data) for d in documents] == [(1, 1, {"a": 1}), (4, 6, [2])]


def test_an_empty_file_has_no_documents() -> None:
    assert read_documents("") == ([], [])
    assert read_documents("# nothing\n") == ([], [])


def test_syntax_error_names_its_line_and_keeps_earlier_documents() -> None:
    text = "a: 1\n---\nb: 2\nc: [1, 2\nd: 3\n"
    documents, problems = read_documents(text)
    assert [d.data for d in documents] == [{"a": 1}]
    (problem,) = problems
    assert problem.document == 2
    assert problem.line == 5
    assert problem.message.startswith("invalid YAML: did not find expected ',' or ']'")
    assert "at line 4" in problem.message


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("a: 1\nb: \x07\n", 2, "invalid YAML: character #x0007 at line 2"),
        ("a: 2001-13-01\n", 1, "invalid YAML value: month must be in 1..12"),
        ("a: !!python/object:os.system x\n", 1, "invalid YAML: could not determine a constructor"),
        ("a: *nowhere\n", 1, "invalid YAML: found undefined alias"),
        ("[" * 5000, 1, "invalid YAML: exceeded maximum nesting depth"),
    ],
)
def test_errors_inside_values(text: str, line: int, message: str) -> None:
    documents, problems = read_documents(text)
    assert documents == []
    assert [(p.line, p.message[: len(message)]) for p in problems] == [(line, message)]


def test_duplicate_keys_are_reported_like_kubectl() -> None:
    text = dedent("""\
        base: &base {port: 1}
        spec:
          ports:
            - <<: *base
              name: a
              name: b
        spec: {}
    """)
    _, problems = read_documents(text)
    assert problems == [
        YamlProblem(1, 6, "mapping key 'name' already defined at line 5"),
        YamlProblem(1, 7, "mapping key 'spec' already defined at line 2"),
    ]


def test_recursive_aliases_are_walked_once() -> None:
    documents, problems = read_documents("a: &x [*x, *x]\n")
    assert problems == []
    assert len(documents) == 1


def test_line_of_follows_the_path_as_far_as_it_exists() -> None:
    text = dedent("""\
        kind: Service
        spec:
          ports:
            - name: http
              port: 80
            - {name: grpc,
               port: abc}
    """)
    (document,), _ = read_documents(text)
    assert line_of(document.node, ()) == 1
    assert line_of(document.node, ("spec", "ports", 0, "port")) == 5
    assert line_of(document.node, ("spec", "ports", 1, "port")) == 7
    assert line_of(document.node, ("spec", "ports", 1, "missing")) == 6
    assert line_of(document.node, ("spec", "ports", 9)) == 3
    assert line_of(document.node, ("spec", "selector")) == 2
