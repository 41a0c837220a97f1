# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""The grader's one line for a machine it cannot use (checks/reach.py) names a command that shows the same failure."""
import importlib.util
import pathlib
import sys

CHECKS = pathlib.Path(__file__).resolve().parents[2] / 'checks'
sys.path.insert(0, str(CHECKS))
_SPEC = importlib.util.spec_from_file_location('reach_under_test', CHECKS / 'reach.py')
reach = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(reach)


def test_the_ssh_hint_keeps_the_inventorys_port_user_and_key():
    line = reach.why('x', {'ansible_host': '127.0.0.1', 'ansible_port': 9, 'ansible_user': 'student',
                           'ansible_ssh_private_key_file': '/keys/id_ed25519'},
                     error='ssh: connect to host 127.0.0.1 port 9: Connection refused')

    assert line == ('x (127.0.0.1): cannot be reached (ssh: connect to host 127.0.0.1 port 9: Connection refused) '
                    '- see `ssh -p 9 -i /keys/id_ed25519 student@127.0.0.1 true`')


def test_the_default_port_is_not_written():
    line = reach.why('y', {'ansible_host': '10.0.0.5', 'ansible_port': 22}, error='timed out')

    assert line.endswith('- see `ssh 10.0.0.5 true`')
