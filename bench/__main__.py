"""`python -m bench`: run every benchmark and write the results table."""

from bench.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
