"""Outbound HTTP from scripts (docs/api.md §11).

- ``policy``: which destinations are allowed (pure).
- ``client``: one request, resolved once, pinned to the checked address, redirects
  checked hop by hop, bodies bounded while they are read.
- ``host``: the ``http`` module of scripts: arguments, counting, the record of calls.
"""
