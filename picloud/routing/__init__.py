"""Host → app → route resolution (pure, in ``match``), the routing tables, and user traffic."""
