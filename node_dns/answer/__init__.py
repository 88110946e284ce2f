"""Answer layer: a pure function from (query bytes, snapshot) to response bytes.

``query`` decodes with guard clauses in RFC order, ``lookup`` finds records and an outcome,
``encode`` writes the response, ``responder`` adds the per-snapshot response cache.
"""
