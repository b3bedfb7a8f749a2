"""Internal. The aggregation expressions the process evaluates, compiled once into closures.

``_compiler`` parses an operand (field path, variable, operator document, object, array or
literal) as ``Expression::parse`` does; the operators it evaluates are ``$literal`` and the
conditionals and comparisons of ``_logic``, which see only the ``Compiler`` protocol and the
value helpers of ``_base``. ``_accumulators`` holds the ``$group`` accumulators and
``_value_keys`` the hashable keys that ``$group`` and ``$addToSet`` find equal values by. The
pipeline stages in ``core.mql`` and the partial-group merge are the only callers.
"""
