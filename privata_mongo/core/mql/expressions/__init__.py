"""Internal. The aggregation expression language, compiled once into closures.

``_compiler`` parses an operand (field path, variable, operator document, object, array or
literal) as ``Expression::parse`` does; every operator module (``_logic``, ``_arith``,
``_math``, ``_strings``, ``_arrays``, ``_iteration``, ``_sets``, ``_types``, ``_dates``,
``_accumulators``) sees only the ``Compiler`` protocol and the value helpers of ``_base``.
``_calendar`` holds the date arithmetic, time zones and formats behind the date operators, and
``_value_keys`` the hashable keys that ``$group`` and ``$addToSet`` find equal values by. The
pipeline stages in ``core.mql`` are the only callers.
"""
