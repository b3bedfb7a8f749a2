"""Helpers shipped for applications' own tests.

- ``ScriptedDriver``: drive a core flow against a script of expected requests, no database.
- ``OperationCounter``/``counting_client_class`` and ``CommandCounter``: count what reaches the
  storage (collection operations, or wire commands), e.g. to pin round trips per page.
- ``ListAuditSink``: an audit destination in memory, to assert what was recorded or to simulate
  an audit outage (``configure(audit_sink=ListAuditSink())``).
"""

from privata_mongo.testing.audit import ListAuditSink
from privata_mongo.testing.counting import CommandCounter, OperationCounter, counting_client_class
from privata_mongo.testing.scripted import ScriptedDriver, UnexpectedOp

__all__ = [
    "CommandCounter",
    "ListAuditSink",
    "OperationCounter",
    "ScriptedDriver",
    "UnexpectedOp",
    "counting_client_class",
]
