"""Talking to the hub: the HTTP client, the bounded transport, pagination, the listing,
retries, the limiter and probe tokens.

No click and no decisions here: the hub client knows how to ask, never what to do with
the answer.
"""
