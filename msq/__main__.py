"""``python -m msq ...``"""
import sys

from msq.cli import main

if __name__ == "__main__":
    sys.exit(main())
