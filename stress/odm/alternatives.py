"""The six alternatives, each performing the benchmark's operations its own idiomatic way.

- ``mongoengine`` and ``privata.mongoengine``: the same model classes' definitions, connected
  with ``mongoengine.connect`` or ``privata_mongo.mongoengine.connect``.
- ``beanie`` and ``privata.beanie``: the same, with ``init_beanie`` from either module (all
  classes are defined before either ``init_beanie`` runs: Beanie initialises classes of the
  MRO that later definitions inherit from).
- ``pymongo`` and ``pymongo+csfle``: raw pymongo, and what an application would write by
  hand instead of privata: explicit client-side field-level encryption with
  ``pymongo.encryption.ClientEncryption``, one data key, each identity field encrypted
  (the e-mail deterministically, so that it can be searched by equality).

Each operation method performs one iteration's operations (a list of arguments); the runner
times the call.
"""

from __future__ import annotations

from stress.odm.base import LOOP, Alternative, Backend
from stress.odm.with_beanie import BeanieAlternative, WrappedBeanieAlternative
from stress.odm.with_mongoengine import MongoengineAlternative, WrappedMongoengineAlternative
from stress.odm.with_pymongo import CsflePymongoAlternative, PymongoAlternative

__all__ = [
    "ALTERNATIVES",
    "LOOP",
    "PAIRS",
    "Alternative",
    "Backend",
    "BeanieAlternative",
    "CsflePymongoAlternative",
    "MongoengineAlternative",
    "PymongoAlternative",
    "WrappedBeanieAlternative",
    "WrappedMongoengineAlternative",
]

ALTERNATIVES: tuple[type[Alternative], ...] = (
    MongoengineAlternative,
    WrappedMongoengineAlternative,
    BeanieAlternative,
    WrappedBeanieAlternative,
    PymongoAlternative,
    CsflePymongoAlternative,
)

PAIRS = (
    ("mongoengine", "privata.mongoengine"),
    ("beanie", "privata.beanie"),
    ("pymongo", "pymongo+csfle"),
)
"""Each ratio's (baseline, measured): the headline is wrapped / native per ODM."""
