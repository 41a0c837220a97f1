# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""Make the in-repo collection importable as ``ansible_collections.cka.lab``, and tests/ for the modules its suites share."""

import os
import sys

COLLECTIONS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'collections')
if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)
HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)
