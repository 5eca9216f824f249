"""`python -m sciml`: the same program as the `sciml` console script."""

from sciml.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
