# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""Fixtures to run a playbook of the project as a user would.

``run_playbook`` runs ``ansible-playbook`` from the checkout with the JSON stdout
callback, and with a ``podman`` test double first on PATH that records its
arguments and fails, so that no podman command can create a container and any
attempt shows up in ``PlaybookRun.podman_calls``.
"""

import json
import os
import subprocess
import sys

import pytest
import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # for `import playbook_run` in any import mode
from playbook_run import PODMAN_DOUBLE, ROOT, PlaybookRun, ansible_binary  # noqa: E402


@pytest.fixture
def podman_double(tmp_path):
    """A directory holding the podman double, and the file its calls go to."""
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    double = bin_dir / 'podman'
    double.write_text(PODMAN_DOUBLE)
    double.chmod(0o755)
    return bin_dir, tmp_path / 'podman-calls'


@pytest.fixture
def ansible_env(podman_double):
    """The environment Ansible runs in: JSON on stdout, no colour, the podman double first on PATH."""
    bin_dir, calls = podman_double
    env = dict(os.environ)
    env.update({
        'PATH': '%s:%s' % (bin_dir, env.get('PATH', '')),
        'PODMAN_DOUBLE_CALLS': str(calls),
        'ANSIBLE_CONFIG': str(ROOT / 'ansible.cfg'),
        'ANSIBLE_STDOUT_CALLBACK': 'ansible.builtin.json',
        'ANSIBLE_NOCOLOR': '1',
        'ANSIBLE_FORCE_COLOR': 'false',
    })
    env.pop('ANSIBLE_INVENTORY', None)
    return env


@pytest.fixture
def run_playbook(tmp_path, ansible_env, podman_double):
    """Run `playbook` (relative to the checkout) with `inventory` (a dict) and `extra_vars` (a dict)."""
    _, calls = podman_double

    def run(playbook, inventory, extra_vars=None, options=()):
        """`options`: more ansible-playbook arguments as typed (--limit M, -e NAME=VALUE)."""
        inventory_file = tmp_path / 'inventory.yml'
        inventory_file.write_text(yaml.safe_dump(inventory, sort_keys=False))
        command = [ansible_binary('ansible-playbook'), '-i', str(inventory_file), playbook]
        if extra_vars:
            vars_file = tmp_path / 'extra-vars.json'
            vars_file.write_text(json.dumps(extra_vars))
            command += ['-e', '@%s' % vars_file]
        command += list(options)
        completed = subprocess.run(command, cwd=ROOT, env=ansible_env, capture_output=True, text=True,
                                   timeout=300, check=False)
        podman_calls = calls.read_text().splitlines() if calls.exists() else []
        return PlaybookRun(completed, podman_calls)

    return run


def pytest_configure(config):
    config.addinivalue_line("markers", "nodes(*hosts): the nodes a bad input is refused on (default: every node)")
