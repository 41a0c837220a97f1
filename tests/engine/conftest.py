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

The labs the scenarios build are the real ones: :func:`rendered_labs` renders
labs/netns_lab.yml and labs/cni_lab.yml once per session with the real
``cka.lab.lab_declaration`` (render_labs.yml, as roles/lab renders a lab), for
each variable set the drivers list (engine_driver.RENDERED,
pods_driver.RENDERED), and the drivers read what it wrote.
"""

import json
import os
import pathlib
import subprocess
import sys

import pytest
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
for _path in (HERE, os.path.dirname(HERE)):  # engine_driver (tests/engine) and sandbox_run (tests/), in any import mode
    if _path not in sys.path:
        sys.path.insert(0, _path)
import engine_driver  # noqa: E402
import pods_driver  # noqa: E402
from sandbox_run import scenario_runs  # noqa: E402

from ansible_collections.cka.lab.plugins.module_utils.lab_declaration import select_stage  # noqa: E402
from ansible_collections.cka.lab.plugins.modules.lab_state import _every_stage  # noqa: E402

ROOT = pathlib.Path(HERE).parents[1]


@pytest.fixture(scope='session')
def rendered_labs(tmp_path_factory):
    """The path of a JSON file: {lab: [{'variables', 'stages': {stage: machine}, 'every_stage': machine}]}.

    One entry per variable set of engine_driver.RENDERED and pods_driver.RENDERED (`variables`, the lab's
    without the prefix LAB_), rendered by ansible-playbook render_labs.yml (its JSON report read): each set
    is one inventory host of the lab's group, its host variables the lab's (the set's over the lab's
    `base`), as a classroom's inventory gives them. `stages` holds the machine of each stage (the declaration
    cka.lab.lab_declaration selects, select_stage for the others), `every_stage` what lab_state is given
    as every stage (lab_state._every_stage of the whole declaration's machine).
    """
    work = tmp_path_factory.mktemp('labs')
    labs = dict(engine_driver.RENDERED, **pods_driver.RENDERED)
    hosts = {lab: {'%s-%d' % (lab, i): variables for i, variables in enumerate(spec['variants'])}
             for lab, spec in labs.items()}  # {lab: {inventory host: its variable set}}
    inventory = {'all': {
        'vars': {'ansible_connection': 'local', 'ansible_python_interpreter': sys.executable},
        'children': {lab: {'hosts': {host: dict({'%s_%s' % (lab, name): value
                                                 for name, value in dict(labs[lab]['base'], **variables).items()},
                                                rendered_lab=lab)
                                     for host, variables in lab_hosts.items()}}
                     for lab, lab_hosts in hosts.items()}}}
    (work / 'inventory.yml').write_text(yaml.safe_dump(inventory, sort_keys=False))
    ansible_playbook = pathlib.Path(sys.executable).parent / 'ansible-playbook'
    command = [str(ansible_playbook) if ansible_playbook.exists() else 'ansible-playbook',
               '-i', str(work / 'inventory.yml'), os.path.join(HERE, 'render_labs.yml')]
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / 'ansible.cfg'), ANSIBLE_STDOUT_CALLBACK='json')
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = json.loads(proc.stdout)['plays'][0]['tasks'][0]['hosts']  # {host: what the action returned}
    found = {lab: [] for lab in labs}
    for lab, lab_hosts in hosts.items():
        for host, variables in lab_hosts.items():
            declaration, whole = results[host]['declaration'], results[host]['whole']
            stages = {stage: (declaration if stage == declaration['stage'] else select_stage(whole, stage))['machine']
                      for stage in whole['stages']}
            found[lab].append({'variables': variables, 'stages': stages, 'every_stage': _every_stage(whole['machine'])})
    path = work / 'labs.json'
    path.write_text(json.dumps(found, indent=1))
    return str(path)


@pytest.fixture
def engine_scenario(tmp_path, rendered_labs):
    """run(scenario, **params) -> the scenario's ``result`` dict.

    `scenario` is a module-level function of the test module, which
    engine_driver.py imports and calls as ``scenario(result, **params)``
    inside a new network+mount namespace; it imports the driver's helpers
    (lab_machine, build, reset, rules, ping, ...) from engine_driver by name.
    The driver reads the rendered labs (rendered_labs). Skips when not root or
    when unshare is missing.
    """
    yield from scenario_runs(
        tmp_path, os.path.join(HERE, 'engine_driver.py'), engine_driver.RESULT_MARK, 'engine kernel',
        'they build a lab inside their own unshare sandbox (a new network and mount namespace)', timeout=90,
        work_variable='ENGINE_WORK', data={engine_driver.LABS_VARIABLE: rendered_labs})


@pytest.fixture
def pods_scenario(tmp_path, rendered_labs):
    """run(scenario, **params) -> the scenario's ``result`` dict, as engine_scenario but with
    pods_driver.py (see there): its helpers (pod_machine, build_pods, plugin_runs, ...) imported from
    pods_driver by name."""
    yield from scenario_runs(
        tmp_path, os.path.join(HERE, 'pods_driver.py'), pods_driver.RESULT_MARK, 'engine pod',
        'they attach pods inside their own unshare sandbox (a new network and mount namespace)', timeout=120,
        work_variable='ENGINE_WORK', data={engine_driver.LABS_VARIABLE: rendered_labs})
