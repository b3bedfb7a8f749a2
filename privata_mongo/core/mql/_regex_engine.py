r"""Internal. Regex matching whose cost is bounded: RE2 where the pattern allows, else a budget.

Python's ``re`` backtracks: ``^(a+)+$`` against 28 ``a`` and a ``!`` takes minutes, and a
filter on an identity field runs in the application's process, so one query could hold a worker
(and ignore ``maxTimeMS``) where the server answers at once. Each pattern is therefore matched by
one of two engines:

* **RE2** (``google-re2``), linear in the length of the value, whenever the pattern is in the
  subset whose PCRE meaning RE2 reproduces exactly: literals, classes, ``.``, quantifiers (greedy
  or lazy), groups, alternation, ``^``, ``\d \w \b`` and their negations (ASCII in both, as the
  server compiles without UCP), ``\s`` rewritten as PCRE's ASCII set (RE2's lacks ``\v``), a
  ``$`` that ends the pattern, and the options ``i``, ``m``, ``s`` and ``u``. A final ``$``
  without ``m`` becomes ``\n?\z``: a test only asks whether a match exists, and "a match ends
  at the end or before a final newline" is then the same question.
* otherwise the **backtracking** engine (the ``regex`` module, in its ``re``-compatible mode, on
  the pattern ``_pcre`` translated for ``re``), under a time budget: the time left before the
  operation's deadline, or ``MATCH_BUDGET`` when it has none. Back-references, look-around,
  ``\Z``, the ``x`` option, inline options, POSIX classes, ``\Q…\E`` and the like take this
  path. A match past the budget fails with code 50 (``ExecutionTimeout``), as the server fails
  a query past ``maxTimeMS``. The ``regex`` module counts the budget in CPU time, so the
  deadline is checked again on the wall clock after each match.

Validation and the server's error codes stay with ``_pcre``: a pattern is always compiled there
first, so an engine never decides what is valid. When RE2 is not installed, every pattern takes
the budgeted path.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable
from typing import Any, Final

import regex

from privata_mongo.core.mql._pcre import compile_regex
from privata_mongo.core.mql.budget import Deadline, expired

try:  # an optional speed-up in principle: the budget alone still bounds every match
    import re2
except ImportError:  # pragma: no cover - google-re2 is a dependency; a platform may lack it
    re2 = None

__all__ = ["Search", "compile_search", "linear_form"]

Search = Callable[[str], bool]
"""Whether a pattern finds a match anywhere in a string."""

_PUNCTUATION: Final = frozenset(string.punctuation)
_PCRE_SPACE: Final = r"\t\n\x0b\f\r "
_ESCAPES: Final = {
    **{d: "\\" + d for d in "dDwWbBntrf"},
    "s": f"[{_PCRE_SPACE}]",
    "S": f"[^{_PCRE_SPACE}]",
}
_CLASS_ESCAPES: Final = {**{d: "\\" + d for d in "dwntrf"}, "s": _PCRE_SPACE}
_FLAGS: Final = ((re.IGNORECASE, regex.IGNORECASE), (re.MULTILINE, regex.MULTILINE))
_MORE_FLAGS: Final = ((re.DOTALL, regex.DOTALL), (re.VERBOSE, regex.VERBOSE))


def _never() -> Any:  # pragma: no cover - a deadline without a limit never reads the clock
    raise AssertionError("an unlimited deadline reads no clock")


UNLIMITED: Final = Deadline(_never)


def linear_form(pattern: str, options: str) -> str | None:
    """The RE2 pattern with the same matches as the PCRE ``pattern``, or None outside the subset.

    The subset is deliberately narrow (see the module docstring); anything else returns None and
    is matched by the budgeted engine, which knows PCRE's dialect through ``_pcre``.
    """
    if "x" in options:
        return None
    multiline = "m" in options
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\":
            escaped = _escape(pattern[i + 1 : i + 2], _ESCAPES)
            if escaped is None:
                return None
            out.append(escaped)
            i += 2
        elif c == "[":
            end = _class_end(pattern, i)
            if end < 0:
                return None
            body = _class_body(pattern[i + 1 : end])
            if body is None:
                return None
            out.append(f"[{body}]")
            i = end + 1
        elif pattern.startswith(("(?", "{,"), i) and not pattern.startswith("(?:", i):
            return None  # inline options, look-around, named groups; PCRE2's {,n}
        elif c == "$" and not multiline:
            if i != n - 1:
                return None
            out.append(r"(?:\n?\z)")
            i += 1
        else:
            out.append(c)
            i += 1
    flags = "".join(letter for letter in "ims" if letter in options)
    return (f"(?{flags})" if flags else "") + "".join(out)


def _escape(letter: str, table: dict[str, str]) -> str | None:
    if letter in table:
        return table[letter]
    if letter in _PUNCTUATION:
        return "\\" + letter
    return None


def _class_end(pattern: str, start: int) -> int:
    """The index of the ``]`` closing the class that opens at ``start``; -1 if none."""
    i = start + 1
    if pattern.startswith("^", i):
        i += 1
    if pattern.startswith("]", i):
        i += 1
    while i < len(pattern):
        if pattern[i] == "\\":
            i += 2
            continue
        if pattern[i] == "]":
            return i
        i += 1
    return -1


def _class_body(body: str) -> str | None:
    out: list[str] = []
    i = 0
    if body.startswith("^"):
        out.append("^")
        i = 1
    if body.startswith("]", i):
        out.append(r"\]")
        i += 1
    while i < len(body):
        c = body[i]
        if c == "\\":
            escaped = _escape(body[i + 1 : i + 2], _CLASS_ESCAPES)
            if escaped is None:
                return None
            out.append(escaped)
            i += 2
            continue
        if c == "[" or (c == "-" and body.startswith("--", i)):
            return None
        out.append(c)
        i += 1
    return "".join(out)


def _backtracking(translated: re.Pattern[str]) -> Any:
    flags = regex.VERSION0
    for python, theirs in (*_FLAGS, *_MORE_FLAGS):
        if translated.flags & python:
            flags |= theirs
    try:
        return regex.compile(translated.pattern, flags)
    except (regex.error, ValueError, OverflowError):  # pragma: no cover - re accepted it
        return None


def _linear(pattern: str, options: str) -> Any:
    form = linear_form(pattern, options)
    if form is None or re2 is None:
        return None
    settings = re2.Options()
    settings.log_errors = False
    settings.never_capture = True  # a test needs no groups; RE2 then skips their bookkeeping
    try:  # bytes in and out: the str API maps every offset back to characters, 2x the cost
        return re2.compile(form.encode(), settings)
    except re2.error:  # beyond RE2's limits (a repeat count past 1000, its memory budget)
        return None


def compile_search(pattern: str, options: str, deadline: Deadline = UNLIMITED) -> Search:
    """Compile a server regex into a search whose cost is bounded (see the module docstring).

    Raises:
        OperationFailed: the pattern or options are invalid (the server's codes, from
            ``_pcre``); at match time, code 50 when the budget or deadline runs out.
        UnsupportedOperator: a PCRE construct Python cannot express faithfully.
    """
    translated = compile_regex(pattern, options)
    bounded = _backtracking(translated)
    limited = deadline.at is not None

    def budgeted(value: str) -> bool:
        if bounded is None:  # pragma: no cover - see _backtracking
            found = translated.search(value) is not None
            deadline.check()
            return found
        try:
            found = bounded.search(value, timeout=deadline.remaining()) is not None
        except TimeoutError:
            raise expired(limited) from None
        deadline.check()  # the engine counts CPU time: on a loaded machine wall time runs ahead
        return found

    linear = _linear(pattern, options)
    if linear is None:
        return budgeted

    def search(value: str) -> bool:
        try:
            encoded = value.encode()
        except UnicodeEncodeError:  # a lone surrogate: RE2 reads UTF-8 only
            return budgeted(value)
        return linear.search(encoded) is not None

    return search
