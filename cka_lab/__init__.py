# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""The project's command line (``cka-lab``); see cli.py."""
