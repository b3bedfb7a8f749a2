"""Test infrastructure of this repository: backends as a parameter, servers started on demand.

Not part of the shipped package: it starts local servers (FerretDB, redis-server) for the test
suites in ``tests/`` and ``compat_suite/``.
"""
