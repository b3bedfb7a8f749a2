"""Raw database commands, ``$out``/``$merge`` and the server's own rules (order, limits, errors).

What an application sends past the ODM's query API — ``Database.command``, a pipeline ending in
a write stage — and what the server decides on its own (the order of ``distinct`` values, the
maximum document size, the details of a duplicate-key error) must look native too.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from compat_suite.harness import scenario
from compat_suite.mongoengine.models import Clinic, clinic, seed_clinic
from compat_suite.requirements import requires


@requires("distinct_order")
@scenario(clinic)
def test_distinct_values_come_in_the_servers_order(me: ModuleType, m: Clinic) -> dict[str, Any]:
    seed_clinic(m)
    patient = m.Patient.objects
    return {
        "last_name": patient.distinct("last_name"),
        "email": patient.distinct("email"),
        "date_of_birth": patient.distinct("date_of_birth"),
        "aliases": patient.distinct("aliases"),
        "city": patient.distinct("address.city"),
        "blood_type": patient.distinct("blood_type"),
        "tags": patient.distinct("tags"),
    }
