"""``--workers N``: UDP answered by N processes from the zone the parent publishes.

:mod:`.pool` is the parent's side (start, feed, restart, readiness, counters); :mod:`.child`
is a worker process; :mod:`.wire` and :mod:`.counters` are what they say to each other.
"""
