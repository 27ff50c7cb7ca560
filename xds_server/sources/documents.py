"""YAML text into documents, keeping each document's node tree for line numbers.

PyYAML first composes a tree of nodes that know their position, then builds
plain values from it. Both are kept: problems found later in the values are
pointed at a line by following their field path through the tree
(`line_of`). A YAML syntax error ends the file, since the parser cannot
resynchronise; the documents before it are still returned. Duplicate mapping
keys, which PyYAML would silently resolve to the last one, are reported, as
kubectl does.
"""

from __future__ import annotations

from dataclasses import dataclass

import yaml

from xds_server.sources.fields import FieldPath

_Loader = yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader
_MERGE_TAG = "tag:yaml.org,2002:merge"


@dataclass(frozen=True, slots=True)
class Document:
    number: int
    data: object
    node: yaml.Node

    @property
    def line(self) -> int:
        return _line(self.node)


@dataclass(frozen=True, slots=True)
class YamlProblem:
    document: int
    line: int
    message: str


def read_documents(text: str) -> tuple[list[Document], list[YamlProblem]]:
    """The non-empty documents of `text`, numbered from 1, and what is wrong in it."""
    documents: list[Document] = []
    problems: list[YamlProblem] = []
    loader = _Loader(text)
    number = 1
    line = 1
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                break
            line = _line(node)
            problems.extend(YamlProblem(number, *dup) for dup in _duplicate_keys(node))
            data = loader.construct_document(node)
            if data is not None:
                documents.append(Document(number, data, node))
            number += 1
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        context = f" ({e.context} at line {e.context_mark.line + 1})" if e.context_mark else ""
        where = mark.line + 1 if mark else line
        problems.append(YamlProblem(number, where, f"invalid YAML: {e.problem}{context}"))
    except yaml.reader.ReaderError as e:
        where = text.count("\n", 0, e.position) + 1
        message = f"invalid YAML: character #x{e.character:04x} at line {where}: {e.reason}"
        problems.append(YamlProblem(number, where, message))
    except yaml.YAMLError as e:
        problems.append(YamlProblem(number, line, f"invalid YAML: {e}"))
    except (
        ValueError,
        OverflowError,
    ) as e:  # PyYAML's constructors leak these, e.g. for 2001-13-01
        problems.append(YamlProblem(number, line, f"invalid YAML value: {e}"))
    except RecursionError:
        problems.append(YamlProblem(number, line, "invalid YAML: nested too deeply"))
    finally:
        loader.dispose()
    return documents, problems


def line_of(node: yaml.Node, path: FieldPath) -> int:
    """The line of the deepest part of `path` present in the tree (1-based)."""
    line = _line(node)
    for part in path:
        found = _child(node, part)
        if found is None:
            break
        line, node = found
    return line


def _child(node: yaml.Node, part: str | int) -> tuple[int, yaml.Node] | None:
    if isinstance(node, yaml.MappingNode) and isinstance(part, str):
        for key, value in reversed(node.value):
            if isinstance(key, yaml.ScalarNode) and key.value == part:
                return _line(key), value
    if (
        isinstance(node, yaml.SequenceNode)
        and isinstance(part, int)
        and 0 <= part < len(node.value)
    ):
        item = node.value[part]
        return _line(item), item
    return None


def _duplicate_keys(root: yaml.Node) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            first: dict[str, int] = {}
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.tag != _MERGE_TAG:
                    if key.value in first:
                        message = (
                            f"mapping key {key.value!r} already defined at line {first[key.value]}"
                        )
                        found.append((_line(key), message))
                    else:
                        first[key.value] = _line(key)
                stack += (key, value)
        elif isinstance(node, yaml.SequenceNode):
            stack += node.value
    return sorted(found)


def _line(node: yaml.Node) -> int:
    mark = node.start_mark
    return mark.line + 1 if mark is not None else 1
