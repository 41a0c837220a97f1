# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""What a bad-input test needs to know about an ansible-playbook run.

Which task failed and with what message, which tasks ran at all, and whether
anything was reached for outside the controller: read from the JSON stdout
callback's report (``PlaybookRun``), and from the calls a podman test double
recorded.
"""

import json
import pathlib
import re
import shutil
import subprocess
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]

PODMAN_DOUBLE = '''#!/bin/sh
# Test double: record the call and fail, so that no container is ever created.
printf '%s\\n' "$*" >> "$PODMAN_DOUBLE_CALLS"
echo "podman test double: refusing to run podman $*" >&2
exit 125
'''

# Connection settings of a host nobody can reach (nothing listens on port 9, discard): a bad-input test's
# inventory, where any task that reached for the host would end UNREACHABLE.
UNREACHABLE_HOST = {
    'ansible_host': '127.0.0.1',
    'ansible_port': 9,  # discard: nothing listens here
    'ansible_connection': 'ssh',
    'ansible_user': 'nobody',
    'ansible_timeout': 5,
    'ansible_ssh_common_args': '-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null',
}

# What a task that reached for a host over SSH leaves in the output.
SSH_TRACES = ('UNREACHABLE', 'Failed to connect to the host via ssh', 'ssh: connect to host')


def ansible_binary(name):
    """The Ansible command beside this Python (the project's venv), else the one on PATH."""
    beside = pathlib.Path(sys.executable).parent / name
    return str(beside) if beside.exists() else (shutil.which(name) or name)


def role_task_names(role, tasks_file):
    """Names of the tasks (in blocks too) of roles/<role>/tasks/<tasks_file>, Jinja turned into wildcards."""
    def walk(tasks):
        for task in tasks or []:
            if 'name' in task:
                yield task['name']
            for key in ('block', 'rescue', 'always'):
                yield from walk(task.get(key))

    loaded = yaml.safe_load((ROOT / 'roles' / role / 'tasks' / tasks_file).read_text())
    return [re.sub(r'\\\{\\\{.*?\\\}\\\}', '.*', re.escape(name)) for name in walk(loaded)]


def run_playbook(playbook, inventory, directory, env, podman_calls, *extra):
    """ansible-playbook -i INVENTORY PLAYBOOK -e EXTRA ... from the checkout, as a user types it (each of
    `extra` one -e); `inventory` (a dict) is written to `directory`. Returns a PlaybookRun."""
    inventory_file = pathlib.Path(directory) / 'inventory.yml'
    inventory_file.write_text(yaml.safe_dump(inventory, sort_keys=False))
    command = [ansible_binary('ansible-playbook'), '-i', str(inventory_file), playbook]
    for argument in extra:
        command += ['-e', argument]
    completed = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    return PlaybookRun(completed, podman_calls.read_text().splitlines() if podman_calls.exists() else [])


class PlaybookRun:
    """One ansible-playbook run: return code, raw output, and its JSON report."""

    def __init__(self, completed, podman_calls):
        self.rc = completed.returncode
        self.stdout = completed.stdout
        self.stderr = completed.stderr
        self.podman_calls = podman_calls
        try:
            self.report = json.loads(completed.stdout)
        except ValueError:
            self.report = {'plays': [], 'stats': {}}

    @property
    def output(self):
        return self.stdout + self.stderr

    def results(self, host):
        """(task name without its role prefix, result) for every task that ran for `host`, in order."""
        for play in self.report['plays']:
            for task in play['tasks']:
                if host in task['hosts']:
                    yield task['task']['name'].split(' : ', 1)[-1], task['hosts'][host]

    def tasks_run(self, host):
        return [name for name, _ in self.results(host)]

    def failed_tasks(self, host):
        return [name for name, result in self.results(host) if result.get('failed')]

    def messages(self, host):
        """Every message of every failed result for `host` (loop items and message lists flattened)."""
        found = []

        def collect(result):
            msg = result.get('msg')
            found.extend(msg if isinstance(msg, list) else [msg] if msg else [])
            found.extend(result.get('argument_errors') or [])
            for item in result.get('results') or []:
                if item.get('failed'):
                    collect(item)

        for _, result in self.results(host):
            if result.get('failed'):
                collect(result)
        return [str(message) for message in found]

    def reached_for_a_host(self):
        """Whether any task tried to reach a managed host: UNREACHABLE in the report or SSH errors in the output."""
        unreachable = any(stats.get('unreachable') for stats in self.report['stats'].values())
        results = any(result.get('unreachable') for play in self.report['plays']
                      for task in play['tasks'] for result in task['hosts'].values())
        return unreachable or results or any(trace in self.output for trace in SSH_TRACES)

    def explain(self):
        """What to print when an assertion about this run fails."""
        return 'rc=%s\nstdout:\n%s\nstderr:\n%s\npodman calls: %s' % (
            self.rc, self.stdout[-6000:], self.stderr[-3000:], self.podman_calls)

    def assert_refused_in_validation(self, host, failing_task, named, is_validation_task):
        """The run stopped in `failing_task`, a validation task, with messages that
        name each (variable, what it allows) of `named`, and nothing but validation
        ran: no podman call, no task reached for a machine."""
        explain = self.explain()
        assert self.rc != 0, explain
        failed = self.failed_tasks(host)
        assert len(failed) == 1 and failed[0].startswith(failing_task), explain
        assert is_validation_task(failed[0]), explain
        messages = self.messages(host)
        for variable, allowed in named:
            assert any(variable in message and allowed in message for message in messages), \
                'no message names %r with %r: %s' % (variable, allowed, messages)
        assert all(is_validation_task(name) for name in self.tasks_run(host)), self.tasks_run(host)
        assert self.podman_calls == [], explain
        assert not self.reached_for_a_host(), explain
