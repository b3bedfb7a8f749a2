"""Helpers shipped for applications' own tests.

- ``ScriptedDriver``: drive a core flow against a script of expected requests, no database.
- ``OperationCounter``/``counting_client_class`` and ``CommandCounter``: count what reaches the
  storage (collection operations, or wire commands), e.g. to pin round trips per page.
"""

from privata_mongo.testing.counting import CommandCounter, OperationCounter, counting_client_class
from privata_mongo.testing.scripted import ScriptedDriver, UnexpectedOp

__all__ = [
    "CommandCounter",
    "OperationCounter",
    "ScriptedDriver",
    "UnexpectedOp",
    "counting_client_class",
]
