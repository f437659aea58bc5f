"""Sources of evidence about a server: how long it has been idle and whether it is doing
work right now, as far as each source knows.
"""
