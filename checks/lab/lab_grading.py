"""How the lab grader fails a check; what the checks compare is each kind's (module_utils/lab_kinds/look.py)."""
import pathlib
import sys

import pytest

# The checks are the lab kinds' (collections/.../module_utils/lab_kinds), and compare the way the engine does.
_COLLECTIONS = pathlib.Path(__file__).resolve().parents[2] / "collections"
if str(_COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(_COLLECTIONS))


def fail(message):
    """Fail a check with a message for a student, without a Python traceback."""
    pytest.fail(message, pytrace=False)
