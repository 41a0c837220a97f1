# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""Run module_utils/topology.py against the real kernel, inside a throwaway namespace.

Each scenario runs in a fresh ``unshare --net --mount --propagation private``
with a private tmpfs on /run (so /run/netns exists only there); the driver
(netns_driver.py) refuses to run if it finds itself in this process's network
or mount namespace. After every test the host is checked: no namespace file,
interface or mount the test could have made may have appeared, nor gone
(see ../sandbox_run.py, shared with the engine tests).
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
if os.path.dirname(HERE) not in sys.path:  # tests/, for `import sandbox_run` in any import mode
    sys.path.insert(0, os.path.dirname(HERE))
from sandbox_run import scenario_fixture  # noqa: E402

netns_scenario = scenario_fixture(
    'netns_scenario', os.path.join(HERE, 'netns_driver.py'), 'NETNS-DRIVER-RESULT ', 'kernel',
    'they make network namespaces inside their own unshare sandbox', timeout=60,
    doc="""run(scenario, **params) -> the scenario's ``result`` dict.

    `scenario` is a module-level function of the test module, which
    netns_driver.py imports and calls as ``scenario(result, **params)`` inside
    a new network+mount namespace; it imports the driver's helpers (converge,
    read, sh, ping, links, ...) from netns_driver by name. Skips when not root
    or when unshare is missing.
    """)
