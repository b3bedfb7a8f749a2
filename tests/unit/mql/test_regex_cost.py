"""The in-process regex engine: linear where RE2 can take a pattern, budgeted elsewhere."""

from __future__ import annotations

import datetime
import itertools
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from privata_mongo.core.failures import OperationFailed
from privata_mongo.core.mql._pcre import compile_regex
from privata_mongo.core.mql._regex_engine import _linear, compile_search, linear_form
from privata_mongo.core.mql.budget import Deadline, deadline_from, time_limit_ms
from privata_mongo.core.mql.match import compile_filter, matches
from privata_mongo.core.mql.pipeline import run_pipeline

START = datetime.datetime(2026, 1, 1)
EVIL = "^(a+)+$"
VALUE = "a" * 28 + "!"
BACKTRACKING = r"^(a|a)+\1$"


class SteppingClock:
    """A clock that moves ``step`` forward each time it is read."""

    def __init__(self, step: datetime.timedelta) -> None:
        self.at, self.step, self.reads = START, step, 0

    def __call__(self) -> datetime.datetime:
        self.reads += 1
        current = self.at
        self.at += self.step
        return current


def frozen() -> datetime.datetime:
    return START


def test_the_catastrophic_pattern_is_answered_at_once() -> None:
    begun = time.perf_counter()
    assert matches({"a": VALUE}, {"a": {"$regex": EVIL}}) is False
    assert matches({"a": "a" * 28}, {"a": {"$regex": EVIL}}) is True
    assert time.perf_counter() - begun < 0.5


@pytest.mark.parametrize(
    ("pattern", "options"),
    [(EVIL, ""), ("a.b", "is"), ("^x$", "m"), (r"[\s\d\]]+\$", ""), ("(?:ab)*?c{2,3}", "")],
)
def test_the_linear_subset(pattern: str, options: str) -> None:
    assert linear_form(pattern, options) is not None


@pytest.mark.parametrize(
    ("pattern", "options"),
    [
        (BACKTRACKING, ""),
        ("(?=a)b", ""),
        ("(?<!a)b", ""),
        ("(?i)a", ""),
        ("a b", "x"),
        ("a$b", ""),
        (r"a\Z", ""),
        (r"\Qa\E", ""),
        ("[[:alpha:]]", ""),
        (r"\x41", ""),
        (r"[\S]", ""),
        ("a{,3}", ""),
    ],
)
def test_patterns_outside_the_linear_subset_take_the_budgeted_engine(
    pattern: str, options: str
) -> None:
    assert linear_form(pattern, options) is None


PATTERNS = [
    "^a$",
    "a$",
    "^$",
    r"a\n$",
    "^(a+)+$",
    "a.b",
    r"^\s+$",
    r"\S\s\S",
    r"\bab\b",
    r"^\d+$",
    r"^\w+$",
    "[^a]$",
    "a|b$",
    "^(?:ab|a)*$",
    "^.{2,3}$",
    r"[\d\s]$",
    "A",
]
TEXTS = ["", "a", "a\n", "\n", "ab", "a\nb", "a\x0bb", "aab\n", "٣", "é a", " \t", "AB", "b\n\n"]


@pytest.mark.parametrize(
    ("pattern", "options"), list(itertools.product(PATTERNS, ["", "i", "m", "s", "ims"]))
)
def test_the_linear_engine_selects_what_the_translated_pattern_selects(
    pattern: str, options: str
) -> None:
    assert linear_form(pattern, options) is not None
    reference = compile_regex(pattern, options)
    search = compile_search(pattern, options)
    for text in TEXTS:
        assert search(text) is (reference.search(text) is not None), (pattern, options, text)


@given(
    st.sampled_from(PATTERNS),
    st.sampled_from(["", "i", "m", "s"]),
    st.text(alphabet="aAb \n\t\x0b1é", max_size=8),
)
def test_the_engines_agree_on_any_text(pattern: str, options: str, text: str) -> None:
    reference = compile_regex(pattern, options)
    assert compile_search(pattern, options)(text) is (reference.search(text) is not None)


def test_the_budgeted_engine_keeps_pcre_semantics() -> None:
    assert compile_search(r"(a)\1$", "")("xaa\n") is True
    assert compile_search(r"a\Z", "")("a\n") is True
    assert compile_search(r"a\z", "")("a\n") is False
    assert compile_search(r"(?<=b)a", "")("ba") is True
    assert compile_search(" a # comment", "x")("a") is True


def test_a_lone_surrogate_is_matched_by_the_budgeted_engine() -> None:
    assert compile_search("^a.$", "")("a\ud800") is True


def test_a_backtracking_match_stops_at_the_deadline_with_code_50() -> None:
    deadline = Deadline(frozen, START + datetime.timedelta(milliseconds=50))
    search = compile_search(BACKTRACKING, "", deadline)
    begun = time.process_time()  # the budget is CPU time: wall time would count other processes
    with pytest.raises(OperationFailed) as raised:
        search("a" * 30 + "!")
    assert raised.value.code == 50
    assert raised.value.message == "operation exceeded time limit"
    assert time.process_time() - begun < 0.5


def test_without_a_deadline_a_backtracking_match_stops_at_its_budget() -> None:
    with pytest.raises(OperationFailed) as raised:
        compile_search(BACKTRACKING, "")("a" * 30 + "!")
    assert raised.value.code == 50
    assert "budget" in raised.value.message
    assert "a" * 30 not in raised.value.message


def test_a_matcher_checks_its_deadline_between_documents() -> None:
    clock = SteppingClock(datetime.timedelta(milliseconds=40))
    deadline = deadline_from(clock, {"max_time_ms": 100})
    matcher = compile_filter({"a": {"$regex": "^a"}}, deadline)
    assert matcher({"a": "a"}) is True
    assert matcher({"a": "b"}) is False
    with pytest.raises(OperationFailed) as raised:
        matcher({"a": "a"})
    assert raised.value.code == 50


def test_a_passed_deadline_fails_a_match_before_it_starts() -> None:
    clock = SteppingClock(datetime.timedelta(seconds=1))
    deadline = deadline_from(clock, {"maxTimeMS": 10})
    with pytest.raises(OperationFailed):
        compile_search(BACKTRACKING, "", deadline)("aa")


def test_a_pipeline_match_stage_honours_the_deadline() -> None:
    clock = SteppingClock(datetime.timedelta(milliseconds=40))
    deadline = deadline_from(clock, {"maxTimeMS": 100})
    documents = [{"a": "a"}, {"a": "b"}, {"a": "a"}, {"a": "a"}]
    with pytest.raises(OperationFailed) as raised:
        run_pipeline(documents, [{"$match": {"a": {"$regex": "^a"}}}], now=START, deadline=deadline)
    assert raised.value.code == 50
    assert run_pipeline(documents, [{"$match": {"a": "b"}}], now=START) == [{"a": "b"}]


@pytest.mark.parametrize(
    ("options", "limit"),
    [
        (None, None),
        ({}, None),
        ({"max_time_ms": 0}, None),
        ({"max_time_ms": 250}, 250.0),
        ({"maxTimeMS": 30, "timeoutMS": 20.5}, 20.5),
        ({"max_time_ms": True}, None),
    ],
)
def test_time_limits_are_read_from_the_operations_options(
    options: dict[str, object] | None, limit: float | None
) -> None:
    assert time_limit_ms(options) == limit


BACKTRACKING_ONLY = [
    r"(a)\1",
    r"(?=a)a\w",
    r"(?<!b)a",
    r"a\Z",
    r"\Qa.\E",
    "[[:alpha:]]+$",
    "(?i)ab",
    " a  b # comment",
    "a++b",
    r"\x61",
]


@pytest.mark.parametrize("pattern", BACKTRACKING_ONLY)
def test_the_budgeted_engine_selects_what_the_translated_pattern_selects(pattern: str) -> None:
    options = "x" if "#" in pattern else ""
    assert _linear(pattern, options) is None  # outside the subset, or beyond what RE2 compiles
    reference = compile_regex(pattern, options)
    search = compile_search(pattern, options)
    for text in [*TEXTS, "aa", "ba", "a.", "aab", "Ab", "xa\n"]:
        assert search(text) is (reference.search(text) is not None), (pattern, text)
