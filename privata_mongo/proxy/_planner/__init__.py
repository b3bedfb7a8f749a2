"""Internal. pymongo's collection methods, each planned once as a core flow, for both twins.

Every method here has the signature of pymongo's own ``Collection`` method and turns one call
into a ``Planned``: the core flow to run, and how its result becomes pymongo's result type. The
sync ``PrivateCollection`` runs the flow with ``drivers.sync``, the async one awaits
``drivers.aio``; neither holds any logic of its own, so pymongo's surface is written out once,
here, and the twins list it once (``SplitCollectionBase``). Options the core does not interpret
(``session``, ``comment``, ``hint`` …) travel unchanged to the store.
"""

from __future__ import annotations

from ._base import Planned, PlannerBase, list_index_documents, options_of
from .admin import Admin
from .modify import FindAndModify
from .reads import Reads
from .writes import Writes

__all__ = ["Planned", "Planner", "PlannerBase", "list_index_documents", "options_of"]


class Planner(Reads, Writes, FindAndModify, Admin):
    """Every pymongo collection method a split collection serves, planned as a core flow.

    Built with ``PlannerBase``'s arguments; one group of methods per topic.
    """
