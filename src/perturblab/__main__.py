"""``python -m perturblab``: the command line (same as the ``perturblab`` script)."""

from perturblab.cli import main

if __name__ == "__main__":
    main()
