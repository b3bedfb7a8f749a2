r"""Internal. Server regexes (PCRE) rewritten for Python's ``re``, or refused.

The server compiles ``$regex`` with PCRE (UTF mode, no UCP), Python with its own dialect: the
same pattern can mean something else (Python's ``\d`` matches non-ASCII digits, PCRE's ``\Z``
also matches before a final newline), or be valid in one and rejected by the other. A filter
that selected other strings in the process than on the server would show the application other
documents, so each pattern is translated construct by construct; what cannot be translated
faithfully is refused with ``UnsupportedOperator`` (the predicate then has to run on the server)
rather than approximated, and a pattern the server itself would reject fails with the server's
code. This is the one part of the matcher that is about a language rather than about documents,
hence its own module.
"""

from __future__ import annotations

import re
from typing import Final

from privata_mongo.core.failures import BAD_VALUE, OperationFailed
from privata_mongo.core.mql.values import UnsupportedOperator

_REGEX_FLAG_BITS: Final = {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL, "x": re.VERBOSE}
# fmt: off
_OUTSIDE: Final = {  # escapes outside a character class
    "d": r"(?a:\d)", "D": r"(?a:\D)", "w": r"(?a:\w)", "W": r"(?a:\W)", "s": r"(?a:\s)",
    "S": r"(?a:\S)", "b": r"(?a:\b)", "B": r"(?a:\B)", "z": r"\Z", "Z": r"(?=\n?\Z)",
    "e": r"\x1b", "N": r"[^\n]", "E": "",
    "h": r"[\t \xa0\u1680\u180e\u2000-\u200a\u202f\u205f\u3000]",
    "H": r"[^\t \xa0\u1680\u180e\u2000-\u200a\u202f\u205f\u3000]",
    "v": r"[\n\x0b\f\r\x85\u2028\u2029]", "V": r"[^\n\x0b\f\r\x85\u2028\u2029]",
    "R": r"(?:\r\n|[\n\x0b\f\r\x85\u2028\u2029])",
}
_INSIDE: Final = {  # escapes inside a character class
    "d": "0-9", "w": "A-Za-z0-9_", "s": r"\t\n\x0b\f\r ", "e": r"\x1b",
    "h": r"\t \xa0\u1680\u180e\u2000-\u200a\u202f\u205f\u3000", "v": r"\n\x0b\f\r\x85\u2028\u2029",
}
_POSIX: Final = {
    "alpha": "A-Za-z", "digit": "0-9", "alnum": "A-Za-z0-9", "upper": "A-Z", "lower": "a-z",
    "space": r"\t\n\x0b\f\r ", "blank": r" \t", "xdigit": "0-9A-Fa-f", "word": "A-Za-z0-9_",
    "cntrl": r"\x00-\x1f\x7f", "print": r"\x20-\x7e", "graph": r"\x21-\x7e",
    "punct": re.escape("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"),
}
# fmt: on
# Constructs PCRE accepts and Python's re rejects: a compile failure with one of them means
# "cannot evaluate here", not "the server would reject this pattern".
_PCRE_ONLY = re.compile(
    r"\(\?[<'][A-Za-z_]|\(\?<[=!]|\(\?[|>R&+\-0-9(]|\(\*|\(\?[A-Za-z^-]+[):]"
    r"|\\[pPXCKGgko]|[*+?}]\+"
)  # fmt: skip
_INLINE_EXTENDED = re.compile(r"\(\?[a-zA-Z]*x[a-zA-Z]*\)")
_UNSUPPORTED_ESCAPES: Final = frozenset("pPXCKGgo")
_INVALID_ESCAPES: Final = frozenset("uULlF")


class _NotPortable(Exception):
    """A PCRE construct with no faithful Python translation."""


class _Translator:
    """Rewrites a PCRE pattern (compiled by the server with UTF but not UCP) for Python's re."""

    def __init__(self, pattern: str, extended: bool) -> None:
        self.pattern, self.extended = pattern, extended
        self.out: list[str] = []
        self.i = 0

    def run(self) -> str:
        p, n = self.pattern, len(self.pattern)
        while self.i < n:
            c = p[self.i]
            if c == "\\":
                self._escape(inside=False)
            elif c == "[":
                self._char_class()
            elif c == "#" and self.extended:
                end = p.find("\n", self.i)
                end = n if end < 0 else end
                self.out.append(p[self.i : end])
                self.i = end
            elif p.startswith("(?<", self.i) and p[self.i + 3 : self.i + 4] not in ("=", "!"):
                self.out.append("(?P<")
                self.i += 3
            elif p.startswith("(?'", self.i):
                end = p.find("'", self.i + 3)
                if end < 0:
                    raise _NotPortable
                self.out.append(f"(?P<{p[self.i + 3 : end]}>")
                self.i = end + 1
            else:
                self.out.append(c)
                self.i += 1
        return "".join(self.out)

    def _escape(self, inside: bool) -> None:
        p = self.pattern
        if self.i + 1 >= len(p):
            raise re.error("trailing backslash")
        d = p[self.i + 1]
        self.i += 2
        table = _INSIDE if inside else _OUTSIDE
        if d in table:
            self.out.append(table[d])
        elif d in "DWSHV" and inside:
            raise _NotPortable
        elif d == "Q":
            end = p.find("\\E", self.i)
            end = len(p) if end < 0 else end
            self.out.append(re.escape(p[self.i : end]))
            self.i = min(end + 2, len(p))
        elif d == "x" and p.startswith("{", self.i):
            end = p.find("}", self.i)
            if end < 0:
                raise re.error("bad \\x{…} escape")
            self.out.append(re.escape(chr(int(p[self.i + 1 : end], 16))))
            self.i = end + 1
        elif d == "c" and self.i < len(p):
            self.out.append(re.escape(chr(ord(p[self.i].upper()) ^ 0x40)))
            self.i += 1
        elif d == "k" and p[self.i : self.i + 1] in ("<", "{", "'"):
            close = {"<": ">", "{": "}", "'": "'"}[p[self.i]]
            end = p.find(close, self.i + 1)
            if end < 0:
                raise re.error("bad \\k escape")
            self.out.append(f"(?P={p[self.i + 1 : end]})")
            self.i = end + 1
        elif d in _UNSUPPORTED_ESCAPES:
            raise _NotPortable
        elif d in _INVALID_ESCAPES:
            raise re.error("PCRE does not support this escape")
        else:
            self.out.append("\\" + d)

    def _char_class(self) -> None:
        p, n = self.pattern, len(self.pattern)
        self.out.append("[")
        self.i += 1
        if p.startswith("^", self.i):
            self.out.append("^")
            self.i += 1
        if p.startswith("]", self.i):
            self.out.append(r"\]")
            self.i += 1
        previous = ""
        while self.i < n:
            c = p[self.i]
            if c == "]":
                self.out.append("]")
                self.i += 1
                return
            if c == "\\":
                self._escape(inside=True)
                previous = ""
                continue
            if c == "[" and p.startswith("[:", self.i):
                end = p.find(":]", self.i + 2)
                name = p[self.i + 2 : end] if end > 0 else ""
                if name not in _POSIX:
                    raise _NotPortable
                self.out.append(_POSIX[name])
                self.i = end + 2
                previous = ""
                continue
            if c in "[&~|" or (c == "-" and previous == "-"):
                self.out.append("\\" + c)
            else:
                self.out.append(c)
            previous = c
            self.i += 1
        raise re.error("missing ]")


def compile_regex(pattern: str, options: str) -> re.Pattern[str]:
    """Compile a server regex (PCRE, options ``imsux``) into an equivalent Python pattern.

    Raises:
        OperationFailed: an invalid option (51108), an embedded NUL (2) or an invalid pattern
            (51091), as the server reports them.
        UnsupportedOperator: a valid PCRE construct Python cannot express faithfully.
    """
    bits = 0
    for letter in options:
        if letter not in _REGEX_FLAG_BITS and letter != "u":
            raise OperationFailed(f"$regex invalid flag in regex options: {letter}", 51108)
        bits |= _REGEX_FLAG_BITS.get(letter, 0)
    if "\0" in pattern:
        raise OperationFailed("Regular expression cannot contain an embedded null byte", BAD_VALUE)
    try:
        extended = "x" in options or bool(_INLINE_EXTENDED.match(pattern))
        return re.compile(_Translator(pattern, extended).run(), bits)
    except _NotPortable:
        raise UnsupportedOperator("$regex") from None
    except (re.error, ValueError, OverflowError):
        if _PCRE_ONLY.search(pattern):
            raise UnsupportedOperator("$regex") from None
        raise OperationFailed("Regular expression is invalid", 51091) from None
