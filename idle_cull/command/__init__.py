"""The command and its configuration: the click command, the options table, settings,
config files (ours and upstream's), and the process boundary that turns every ending
into an exit status.

Everything here may import every other folder; nothing else imports this one.
"""
