"""The compat suite: the drop-in claim, proved by running the same scenarios twice.

Each scenario runs once on the native ODM (``mongoengine``) and once on the wrapped one
(``privata_mongo.mongoengine``), each on a fresh database of the same backend, and the two
observations must be equal. ``harness.py`` runs and compares, ``requirements.py`` declares
what each backend cannot do (strict xfails, never skips), ``mongoengine/`` holds the scenarios.
"""
