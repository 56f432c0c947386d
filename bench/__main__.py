"""`python -m bench`: run every benchmark and write the results table."""

from bench.run import main

if __name__ == "__main__":
    raise SystemExit(main())
