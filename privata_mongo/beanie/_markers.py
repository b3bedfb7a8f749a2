"""``PII``: the field marker of Beanie models, inert in plain Beanie.

``Annotated[str, PII()]`` keeps a plain ``str`` field for pydantic and Beanie (unknown metadata
is carried, never acted on), so a model that switches back to ``beanie`` still works.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PII"]


@dataclass(frozen=True, slots=True)
class PII:
    """Marks a Beanie field as identity data (``PII(False)`` overrides a name default).

    Attributes:
        pii: whether the field is identity data.
        searchable: equality lookups on the field are answered by the server.
    """

    pii: bool = True
    searchable: bool = False
