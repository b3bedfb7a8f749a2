"""``testkit.storage_scan.mentions``: a value shown as a word counts, a hex run spelling it not."""

from __future__ import annotations

import pytest

from testkit.storage_scan import mentions


@pytest.mark.parametrize(
    "text",
    ['{"first_name": "Ada"}', "Ada Lovelace", "name=ADA;", "(ada)", "ada"],
)
def test_a_value_shown_as_a_word_is_found(text: str) -> None:
    assert mentions(text, "ada")


@pytest.mark.parametrize(
    "text",
    ['{"_ver": "9d55436c3fada"}', "pseu_0adafadb", "Adam", "canada", ""],
)
def test_a_value_inside_a_longer_word_or_hex_run_is_not(text: str) -> None:
    assert not mentions(text, "ada")


def test_punctuation_in_the_value_is_matched_literally() -> None:
    assert mentions("taken: ada@example.org.", "ada@example.org")
    assert not mentions("ada@exampleXorg", "ada@example.org")
