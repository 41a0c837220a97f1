# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""Run the lab engine (module_utils/lab_engine.py) against the real kernel, inside a throwaway namespace.

Each scenario runs in a fresh ``unshare --net --mount --propagation private``
with a private tmpfs on /run (so /run/netns exists only there) and another on
a temporary work directory (ENGINE_WORK), which holds the lab's record (in
place of /var/lib/cka-lab) and its files (in place of /srv). iptables rules
and sysctls set there belong to the test's own network namespace. The driver
(engine_driver.py) refuses to run if it finds itself in this process's network
or mount namespace. After every test the host is checked: no namespace file,
interface, mount, iptables rule of a lab, sysctl or file the scenario could
have made or changed may have appeared, gone or changed (see
../sandbox_run.py, shared with the kernel tests).
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
if os.path.dirname(HERE) not in sys.path:  # tests/, for `import sandbox_run` in any import mode
    sys.path.insert(0, os.path.dirname(HERE))
from sandbox_run import scenario_fixture  # noqa: E402

engine_scenario = scenario_fixture(
    'engine_scenario', os.path.join(HERE, 'engine_driver.py'), 'ENGINE-DRIVER-RESULT ', 'engine kernel',
    'they build a lab inside their own unshare sandbox (a new network and mount namespace)',
    timeout=90, work_variable='ENGINE_WORK',
    doc="""run(scenario, **params) -> the scenario's ``result`` dict.

    `scenario` is a module-level function of the test module, which
    engine_driver.py imports and calls as ``scenario(result, **params)``
    inside a new network+mount namespace; it imports the driver's helpers
    (lab_machine, build, reset, rules, ping, ...) from engine_driver by name.
    Skips when not root or when unshare is missing.
    """)
