"""Internal. The pure core: schema, classification, split/join, planning, flows.

Nothing here performs I/O, reads the wall clock or draws randomness except through values handed
in by the caller; flows ``yield`` I/O requests (``core.ops``) and a driver executes them. This is
what lets the sync and async paths share every privacy rule. Where the server cannot evaluate
a filter, sort, update or pipeline over identity fields, the flows evaluate it with MongoDB's
own semantics in ``mql``.
"""
