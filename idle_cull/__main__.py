"""Allow ``python -m idle_cull`` as well as the ``idle-cull`` console script."""

from idle_cull.command.cli import main

if __name__ == "__main__":
    main()
