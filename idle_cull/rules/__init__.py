"""Deciding: pure functions of records, findings, limits and ``now`` that say what to stop,
keep or postpone, and why.

No HTTP and no click: every rule is testable as a table of data.
"""
