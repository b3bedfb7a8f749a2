"""Internal: the data-subject rights in the core.

Pure code only: the schema graph and the walk over it (``datamap``), the description of
what is held about a subject (``access``), the streaming writers of exports (``export``), and
the restriction and objection markers with the guard that enforces them on writes
(``restriction``, ``guard``). ``privata_mongo.rights`` and ``privata_mongo.restriction`` run
them through the sync and async facades.
"""
