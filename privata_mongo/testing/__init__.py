"""Helpers shipped for applications' own tests.

- ``ScriptedDriver``: drive a core flow against a script of expected requests, no database.
- ``OperationCounter``/``counting_client_class`` and ``CommandCounter``: count what reaches the
  storage (collection operations, or wire commands), e.g. to pin round trips per page.
- ``ListAuditSink``: an audit destination in memory, to assert what was recorded or to simulate
  an audit outage (``configure(audit_sink=ListAuditSink())``).
- ``FaultPlan``/``faulty_client_class``: pymongo's own errors (``AutoReconnect``,
  ``NetworkTimeout`` …) before or after the N-th collection call, for crash tests
  (``docs/reliability.md``).
- ``serialised_mongomock`` and ``delayed_embedded``: mongomock atomic per operation for tests
  with several threads, and simulated round trips, so concurrent writers interleave as against
  a server (``docs/reliability.md``).
"""

from privata_mongo.testing.audit import ListAuditSink
from privata_mongo.testing.counting import CommandCounter, OperationCounter, counting_client_class
from privata_mongo.testing.faults import FaultPlan, faulty_client_class
from privata_mongo.testing.scripted import ScriptedDriver, UnexpectedOp
from privata_mongo.testing.serialised import delayed_embedded, serialised_mongomock

__all__ = [
    "CommandCounter",
    "FaultPlan",
    "ListAuditSink",
    "OperationCounter",
    "ScriptedDriver",
    "UnexpectedOp",
    "counting_client_class",
    "delayed_embedded",
    "faulty_client_class",
    "serialised_mongomock",
]
