"""The long fuzz run (not in CI): every decoder, and the whole router, for a given time.

    .venv/bin/python benchmarks/fuzz.py --seconds 600 [--engine auto|atheris|random]
                                        [--seed 0] [--crash-dir fuzz-crashes]

The engine (targets, mutators, runners) is tests/support/fuzz_engine.py, shared with the
short run in tests/test_fuzz.py; its docstring says what is fuzzed and how.
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.support.fuzz_engine import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
