"""YAML from files others wrote (configuration, cluster dumps), read with bounds.

PyYAML's SafeLoader builds no arbitrary objects, but still recurses once per nesting level,
expands aliases (`*name`) into shared structures, and lets int() and datetime() raise on
values such as a 5,000-digit integer or month 13. This loader refuses aliases, nesting deeper
than MAX_DEPTH and integers longer than MAX_INT_DIGITS, and reports impossible dates, each as
a YAML error with its line, so that callers answer in words.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Final

import yaml
from yaml.constructor import ConstructorError
from yaml.error import MarkedYAMLError

# Kubernetes objects nest a dozen levels; a configuration file fewer.
MAX_DEPTH: Final = 64
# int64 has 19 digits; nothing fluxbot reads needs more.
MAX_INT_DIGITS: Final = 30


class BoundedLoader(yaml.SafeLoader):
    """SafeLoader without aliases, deep nesting, huge integers or impossible dates."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        """Compose a node, refusing aliases and nesting beyond MAX_DEPTH."""
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
            raise MarkedYAMLError(None, None, "YAML aliases (*name) are not accepted", mark)
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise MarkedYAMLError(None, None, f"nested deeper than {MAX_DEPTH} levels", mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        """An integer of at most MAX_INT_DIGITS digits."""
        digits = sum(ch.isdigit() for ch in str(node.value))
        if digits > MAX_INT_DIGITS:
            raise ConstructorError(
                None, None, f"integer of {digits} digits is too large", node.start_mark
            )
        return super().construct_yaml_int(node)

    def construct_yaml_timestamp(self, node: yaml.ScalarNode) -> dt.date | dt.datetime:
        """A date or time that exists."""
        try:
            return super().construct_yaml_timestamp(node)
        except (ValueError, OverflowError) as err:
            raise ConstructorError(
                None, None, f"{node.value!r} is not a valid date or time ({err})", node.start_mark
            ) from err


BoundedLoader.add_constructor("tag:yaml.org,2002:int", BoundedLoader.construct_yaml_int)
BoundedLoader.add_constructor("tag:yaml.org,2002:timestamp", BoundedLoader.construct_yaml_timestamp)


def load(text: str) -> Any:
    """The first document of `text`; yaml.YAMLError (with a mark when known) if refused."""
    loader = BoundedLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()
