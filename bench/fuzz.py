"""The long contract-fuzzing pass: tests/e2e/test_fuzz_contract.py with many more examples per operation and
caller, the coverage phase (boundary values of every parameter) and the stateful phase (sequences of calls that
feed one response's ids into the next request).

    PYTHONPATH=src .venv/bin/python bench/fuzz.py [--examples 200] [--stateful-steps 50] [-- extra pytest args]

Uses the same running service (`billing-api serve --demo` on a fresh database of BILLING_API_TEST_DATABASE_URL's
server, or the embedded one) and the same checks as CI. Prints pytest's summary and the seconds it took; the
exit status is pytest's.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=200, help="examples per operation and caller (CI: 4)")
    parser.add_argument("--stateful-steps", type=int, default=50, help="steps per stateful scenario; 0 skips it")
    parser.add_argument("--no-coverage", action="store_true", help="skip the coverage phase (boundary values)")
    parser.add_argument("pytest_args", nargs="*", help="more pytest arguments (after --)")
    args = parser.parse_args()
    env = os.environ | {"FUZZ_EXAMPLES": str(args.examples), "FUZZ_STATEFUL_STEPS": str(args.stateful_steps),
                        "FUZZ_COVERAGE": "0" if args.no_coverage else "1"}
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "tests/e2e/test_fuzz_contract.py",
         *args.pytest_args],
        cwd=ROOT, env=env, check=False,
    )
    print(f"fuzz: {args.examples} examples per operation and caller, stateful steps {args.stateful_steps}, "
          f"{time.monotonic() - started:.0f} s, exit {result.returncode}")
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
