# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""Fixtures to run the cka.lab.ip_topology module against the iproute2 test double."""

import os
import sys

import pytest

from ansible.module_utils import basic
from ansible_collections.cka.lab.plugins.modules import ip_topology

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # for `import fake_iproute` in any import mode
from fake_iproute import FakeIproute  # noqa: E402

from ansible.module_utils.testing import patch_module_args  # noqa: E402 - ansible-core 2.19, as pinned


class ModuleExit(Exception):
    """Raised in place of exit_json/fail_json; ``result`` is what the module returned."""

    def __init__(self, result):
        super().__init__(result)
        self.result = result


@pytest.fixture
def fake():
    """A fresh test double of iproute2: only the root namespace with lo and an uplink eth0."""
    return FakeIproute()


@pytest.fixture
def run_module(fake, monkeypatch):
    """Run ip_topology's main() with `args` against `fake` and return its result dict."""
    run_command_calls = []

    def exit_json(self, **kwargs):
        raise ModuleExit(kwargs)

    def fail_json(self, msg, **kwargs):
        raise ModuleExit(dict(kwargs, failed=True, msg=msg))

    def run_command(self, args, **kwargs):
        run_command_calls.append((args, kwargs))
        return fake(args)

    monkeypatch.setattr(basic.AnsibleModule, 'exit_json', exit_json)
    monkeypatch.setattr(basic.AnsibleModule, 'fail_json', fail_json)
    monkeypatch.setattr(basic.AnsibleModule, 'run_command', run_command)
    monkeypatch.setattr(basic.AnsibleModule, 'get_bin_path', lambda self, name, *args, **kwargs: '/usr/sbin/' + name)

    def run(args, check_mode=False, diff=False):
        module_args = dict(args, _ansible_check_mode=check_mode, _ansible_diff=diff)
        with patch_module_args(module_args):
            with pytest.raises(ModuleExit) as caught:
                ip_topology.main()
        return caught.value.result

    run.run_command_calls = run_command_calls
    return run


def pytest_configure(config):
    # checks/lab/test_lab.py, imported by test_lab_checks.py, marks its checks with the grader's own marker.
    config.addinivalue_line('markers', 'each(key): one check per element of a lab\'s exported list (checks/conftest.py)')
