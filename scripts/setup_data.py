"""Lay out data that does not come from PyPI (run by install.sh; safe to re-run)."""

from __future__ import annotations

import sys


def main() -> int:
    # Sections are added by the families that need them (e.g. WordNet for graph.fact_check).
    return 0


if __name__ == "__main__":
    sys.exit(main())
