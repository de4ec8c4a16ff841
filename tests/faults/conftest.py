"""The fault suite's fixtures: the end-to-end suite's (real `shoal`
processes on loopback, real S3 clients), shared rather than copied."""

import importlib.util
import os
import sys

E2E = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "e2e")
sys.path.insert(0, E2E)

_spec = importlib.util.spec_from_file_location("e2e_conftest", os.path.join(E2E, "conftest.py"))
e2e = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(e2e)

# Everything the e2e conftest defines (fixtures, `Node`, `wait_until`),
# so modules shared with the e2e suite (`test_cluster`) import it from
# `conftest` here too.
globals().update({name: value for name, value in vars(e2e).items() if not name.startswith("__")})


def trials(default):
    """How many trials each fault test runs: `SHOAL_FAULT_TRIALS`, else the
    short slice CI runs."""
    return int(os.environ.get("SHOAL_FAULT_TRIALS", default))
