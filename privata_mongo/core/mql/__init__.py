"""Internal. MongoDB semantics, evaluated in the process: pure, no I/O.

Identity fields live encrypted or in another collection, so the server cannot always filter,
sort, update or aggregate over them; the flows then evaluate the operation here, and the
application must not be able to tell. Four entry points, each following the server's own
rules and error codes:

- ``values``: the BSON value order, equality, path lookup and sort;
- ``match``: a query filter compiled into a matcher (``_predicates``, ``_match_ops``);
- ``update``: update operators and upserts (the ``_update_*`` modules, ``_upsert``);
- ``pipeline``: what remains of an aggregation pipeline once it is pushed down to the server
  (``_stages``, ``_group_stage``, ``_projection_stage``, over the field paths, literals,
  conditionals and comparisons in ``expressions``), and ``group_merge``, the merge of partial
  groups; ``reads`` tells which fields an expression reads.

Below them sit what all four share: BSON types and ranks (``_bson_types``), the server's number
rules (``_numbers``), dotted-path walks (``_traverse``) and PCRE translation (``_pcre``).
Nothing here knows about identity, clinical data or flows.
"""
