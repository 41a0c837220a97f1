# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""How cka.lab.lab_state runs the lab engine's commands on the machine (plugins/modules/lab_state.py run_command).

Its commands run through subprocess, not AnsibleModule.run_command, whose select loop now and then waits a
whole second for a command that ends at once (ansible-core 2.19, benchmarks/labs.py)."""

import pytest

from ansible_collections.cka.lab.plugins.modules.lab_state import run_command


def test_output_status_and_environment():
    rc, out, err = run_command(['sh', '-c', 'echo "$CKA_PYTEST_WORD"; echo oops >&2; exit 3'],
                               {'CKA_PYTEST_WORD': 'veth'})

    assert (rc, out, err) == (3, 'veth\n', 'oops\n')


def test_arguments_are_passed_as_written():
    """No ~ or $VAR expansion (AnsibleModule.run_command expands both in an argument list)."""
    assert run_command(['printf', '%s|%s', '$HOME', '~'], {})[1] == '$HOME|~'


def test_standard_input_is_the_data_or_nothing():
    assert run_command(['cat'], {}, data='{"cniVersion": "1.0.0"}')[1] == '{"cniVersion": "1.0.0"}'
    assert run_command(['cat'], {}, data=b'\x00\x01')[1] == '\x00\x01'
    assert run_command(['cat'], {})[1] == ''  # /dev/null: never the module's own standard input


def test_undecodable_output_is_kept():
    assert run_command(['printf', '\\377'], {})[1].encode('utf-8', 'surrogateescape') == b'\xff'


def test_a_command_that_cannot_start_raises():
    with pytest.raises(OSError):
        run_command(['/nonexistent/pytest-plugin'], {})
