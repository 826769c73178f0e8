"""YAML as yaml.safe_load reads it, except that a key given twice in one mapping is an error.

PyYAML keeps the last of two equal keys, so a host defined twice silently replaced the first.
"""

from __future__ import annotations

from typing import Any

import yaml

from phoenix.errors import PhoenixError

MERGE_TAG = "tag:yaml.org,2002:merge"
# For the project's own YAML (schema.yaml, run_flags.yaml): libyaml's safe loader reads it about 8x
# faster than the pure-Python one, and every pyinfra run and many tests read those files.
OWN_FILES_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class UniqueKeyLoader(yaml.SafeLoader):
    """A SafeLoader that records every key defined twice in a mapping, with its key path and lines."""

    def __init__(self, stream: str):
        super().__init__(stream)
        self.duplicates: list[tuple[list, Any, list[yaml.Mark]]] = []  # (parent path, key, where each is)
        self._paths: dict[int, list] = {}

    def construct_document(self, node: yaml.Node) -> Any:
        self._paths = {}
        self._record_paths(node, [])
        return super().construct_document(node)

    def _record_paths(self, node: yaml.Node, path: list) -> None:
        if id(node) in self._paths:
            return  # an alias: the anchor's path is the one a user can find
        self._paths[id(node)] = path
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                label = key_node.value if isinstance(key_node, yaml.ScalarNode) else "?"
                self._record_paths(value_node, [*path, label])
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self._record_paths(item, [*path, index])

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        marks: dict[Any, list[yaml.Mark]] = {}
        for key_node, _ in node.value:
            if key_node.tag == MERGE_TAG:
                continue  # keys merged in with << may be overridden: that is what << is for
            key = self.construct_object(key_node, deep=True)
            try:
                marks.setdefault(key, []).append(key_node.start_mark)
            except TypeError:
                continue  # an unhashable key: SafeConstructor reports it
        path = self._paths.get(id(node), [])
        self.duplicates += [(path, key, found) for key, found in marks.items() if len(found) > 1]
        return super().construct_mapping(node, deep=deep)


def _and(items: list) -> str:
    return ", ".join(map(str, items[:-1])) + f" and {items[-1]}"


def _defined_text(marks: list[yaml.Mark]) -> str:
    """Returns "defined twice (lines 3 and 7)", or with columns when the keys share a line."""
    times = "twice" if len(marks) == 2 else f"{len(marks)} times"
    lines = [mark.line + 1 for mark in marks]
    if len(set(lines)) == 1:
        return f"defined {times} (line {lines[0]}, columns {_and([mark.column + 1 for mark in marks])})"
    if len(set(lines)) < len(lines):
        return f"defined {times} (at {_and([f'{mark.line + 1}:{mark.column + 1}' for mark in marks])})"
    return f"defined {times} (lines {_and(lines)})"


class DuplicateKeys(PhoenixError):
    """Keys defined more than once: one message per key, and the data as safe_load reads it (last wins)."""

    def __init__(self, messages: list[str], data: Any):
        super().__init__("\n".join(messages))
        self.messages = messages
        self.data = data


def load(text: str, source: str) -> Any:
    """Given YAML text, returns its content as yaml.safe_load does.

    Raises yaml.YAMLError on invalid YAML, and DuplicateKeys (a PhoenixError) naming `source`,
    each key path and its lines for every key defined more than once in a mapping (all at once).
    """
    loader = UniqueKeyLoader(text)
    try:
        data = loader.get_single_data()
    finally:
        loader.dispose()
    if loader.duplicates:
        messages = sorted(
            (marks[0].index, f"{source}: at '{'.'.join(map(str, [*path, key]))}': {_defined_text(marks)}")
            for path, key, marks in loader.duplicates
        )
        raise DuplicateKeys([message for _, message in messages], data)
    return data
