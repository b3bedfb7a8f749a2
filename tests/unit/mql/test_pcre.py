"""Server regexes (PCRE) in the process: each construct means what it means to PCRE, or is
refused, and a pattern PCRE rejects fails with the server's code (51091)."""

from __future__ import annotations

import pytest

from privata_mongo.core.failures import OperationFailed
from privata_mongo.core.mql._pcre import compile_regex
from privata_mongo.core.mql.values import UnsupportedOperator


@pytest.mark.parametrize(
    ("pattern", "matches", "misses"),
    [
        (r"[^]a]", "b", "]"),  # a leading ] is literal, also after ^
        (r"[]a]", "]", "b"),
        (r"\x{41}", "A", "x"),  # PCRE's braced hex escape
        (r"\cA", "\x01", "A"),  # a control character
        (r"\Qa.b\E", "a.b", "axb"),  # quoted until \E
        (r"\Qa.b", "a.b", "axb"),  # quoted to the end
        (r"(?<n>a)\k<n>", "aa", "ab"),  # named back-reference, Perl style
        (r"(?'n'a)\k{n}", "aa", "ab"),
        (r"[[:digit:]]", "7", "x"),
        (r"\d", "7", "\u0667"),  # ASCII digits only, as PCRE without UCP
    ],
)
def test_pcre_constructs_keep_their_meaning(pattern: str, matches: str, misses: str) -> None:
    compiled = compile_regex(pattern, "")
    assert compiled.search(matches)
    assert not compiled.search(misses)


@pytest.mark.parametrize("pattern", ["a\\", "[a", r"\x{41"])
def test_a_pattern_pcre_rejects_fails_with_the_servers_code(pattern: str) -> None:
    with pytest.raises(OperationFailed) as caught:
        compile_regex(pattern, "")
    assert caught.value.code == 51091


# An unterminated named group or back-reference uses PCRE-only syntax: refused here, so the
# server (which rejects it) is the one to judge it.
@pytest.mark.parametrize("pattern", [r"[\D]", "[[:bogus:]]", r"\k<n", "(?'n"])
def test_a_construct_python_cannot_express_is_refused(pattern: str) -> None:
    with pytest.raises(UnsupportedOperator):
        compile_regex(pattern, "")


def test_options_and_nul_bytes_fail_as_the_server_does() -> None:
    with pytest.raises(OperationFailed) as flag:
        compile_regex("a", "q")
    assert flag.value.code == 51108
    with pytest.raises(OperationFailed) as nul:
        compile_regex("a\x00", "")
    assert nul.value.code == 2
    assert compile_regex("A", "iu").search("a")
