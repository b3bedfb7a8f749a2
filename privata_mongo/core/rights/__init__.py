"""Internal: the data-subject rights in the core (the subject's data map, access, export).

Pure code only: the schema graph and the walk over it (``datamap``), the description of
what is held about a subject (``access``), and the streaming writers of exports
(``export``). ``privata_mongo.rights`` runs them through the sync and async facades.
"""
