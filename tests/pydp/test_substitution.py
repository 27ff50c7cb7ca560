"""Splitting Envoy format strings: literals, `%%`, commands with arguments and lengths."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pydp.substitution import Command, FormatSyntaxError, split_format


def test_literals_commands_arguments_and_lengths() -> None:
    assert split_format("a %% b %REQ(x-id?y):3% c %START_TIME% %UPSTREAM_HOST()%") == [
        "a % b ",
        Command("REQ", "x-id?y", 3),
        " c ",
        Command("START_TIME", None, None),
        " ",
        Command("UPSTREAM_HOST", "", None),
    ]


@pytest.mark.parametrize(("text", "position"), [("50%", 2), ("%lower%", 0), ("ab %REQ(x", 3)])
def test_a_stray_percent_names_its_position(text: str, position: int) -> None:
    with pytest.raises(FormatSyntaxError) as e:
        split_format(text)
    assert e.value.position == position


@given(st.text(alphabet=st.characters(blacklist_characters="%")))
def test_text_without_a_percent_is_one_literal(text: str) -> None:
    assert split_format(text) == ([text] if text else [])
    assert split_format(text.replace("a", "%%")) == ([text.replace("a", "%")] if text else [])
