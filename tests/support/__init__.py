"""Shared test machinery: emulated and real hubs, record builders, the fault proxy.

Test modules import from here, never from each other, so a helper has one home and one
name. ``scripts/demo.py`` uses the real-hub launcher from here too.
"""
