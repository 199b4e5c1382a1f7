"""``python -m solarstream``: the same command line as the ``solarstream`` script."""

from solarstream.cli import main

if __name__ == "__main__":
    main()
