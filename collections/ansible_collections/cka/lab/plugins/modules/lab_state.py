#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0

from __future__ import annotations

DOCUMENTATION = r"""
module: lab_state
short_description: Build one stage of a lab on a lab machine, or remove what the lab made
description:
  - The lab engine's work on the machine, in one round trip. With O(state=present) it converges what one stage of a lab
    declares (as rendered and validated by M(cka.lab.lab_declaration)), that is the topology (namespaces, bridges,
    VXLAN devices, veth pairs, addresses and routes, read with C(ip -j) and changed only where they differ),
    sysctls, iptables chains and rules, files and symbolic links, pods, and services run as transient systemd units
    in their namespaces.
  - A pod is a network namespace attached by executing the CNI plugins as a container runtime does (CNI SPEC.md,
    1.0.0), C(lo) with the loopback plugin, then the pod's network configuration list with CNI_COMMAND=ADD; the
    result is kept in libcni's cache (C(/var/lib/cni/results)). A later run calls CHECK, and DEL then ADD when CHECK
    fails or the configuration changed; a pod no longer declared, and every pod on removal, gets DEL (its address
    returns to the IPAM pool) before its namespace is deleted.
  - Before anything changes it refuses, naming each problem and the command that shows it, what would break the
    machine or a student's work - a lab address overlapping one of the machine's own networks, a link of the
    lab's name that the lab did not make, a port a service needs that another program holds - and records what the
    lab is about to own in C(RECORD_DIR/LAB.json).
  - iptables rules are compared by what they do (table, chain, conditions, target), not by comment or spelling; a rule
    typed by hand that does what a declared rule does is not added twice. Rules the lab adds carry the comment
    C(cka-lab:NAME); a second copy of one, or one no longer declared, is deleted.
  - A service is healthy when its unit is active with the declared command, its main process is in the declared
    namespace and holds every declared listening socket; otherwise it is (re)started and the run waits up to 10 s for
    it, failing with the unit's log.
  - With O(state=absent) it removes exactly what the record names (whatever the variables of this run) and puts back
    sysctls and files as they were before the lab; the lab's marked rules are found by their comment even without a
    record.
author:
  - CKA networking labs maintainers
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: posix
requirements:
  - iproute2 with JSON output, iptables, systemd (systemd-run), ss (iproute2) on the lab machine
options:
  lab:
    description: The lab's id (the name of its file in C(labs/)); names the record.
    type: str
    required: true
  name:
    description: The lab's mark, a slug; names its rule comments (C(cka-lab:NAME)) and units (C(cka-lab-NAME-SERVICE)).
    type: str
    required: true
  state:
    description: V(present) builds O(machine); V(absent) removes what the record names; V(observed) changes
      nothing and returns what the machine has now (RV(observed)).
    type: str
    choices: [present, absent, observed]
    default: present
  stage:
    description: The stage being built, kept in the record.
    type: str
  machine:
    description: What the stage declares on a machine (C(declaration.machine) of M(cka.lab.lab_declaration)).
    type: dict
    default: {}
  record_dir:
    description: Where the record of what each lab owns is kept on the machine.
    type: path
    default: /var/lib/cka-lab
  every_stage:
    description:
      - What every stage of the lab declares (C(whole.machine) of M(cka.lab.lab_declaration)).
      - On the first build, the root-namespace sysctls of every stage are recorded as they were, with the namespaces,
        root-namespace links and iptables rules the machine has.
      - With O(state=absent), a reset then also removes what a student made by hand with the lab's names after the
        lab's first build (the practice mode), that is its namespaces, bridges, veth pairs, rules that do exactly what a
        declared rule does, and root-namespace sysctls it changed. What the machine had before the lab's first build
        is never removed.
      - A NAT rule that carries C(traffic) is judged by what it does to that packet; the reset also removes a
        student's rule that does the same to it (typed another way, in iptables-legacy or as nftables rules).
    type: dict
    default: {}
  variables:
    description:
      - The lab's own variables and their values (C(variables) of M(cka.lab.lab_declaration)), only for messages.
      - A build refused because another lab on the machine holds a name names the variable that sets it.
    type: dict
    default: {}
  lock_path:
    description:
      - The machine's lock, held (C(flock)) for the whole run, so that runs on one machine (two resets at once, a
        build during a reset, any lab) go one after the other.
    type: path
    default: /run/cka-lab/lock
  lock_timeout:
    description:
      - Seconds to wait for another run to release the lock before failing with a message naming it.
    type: int
    default: 300
notes:
  - Needs root on the lab machine (C(become=true)).
  - The lab's rules are made with the iptables backend the machine's C(iptables) is at the first build
    (iptables-nft or iptables-legacy), recorded; a reset removes the lab's marked rules from every backend in use.
seealso:
  - name: iptables-extensions(8)
    link: https://man7.org/linux/man-pages/man8/iptables-extensions.8.html
  - name: systemd-run(1)
    link: https://man7.org/linux/man-pages/man1/systemd-run.1.html
"""

EXAMPLES = r"""
- name: Read lesson 202's declaration
  cka.lab.lab_declaration:
    lab: netns_lab
    labs_dir: "{{ playbook_dir }}/../labs"
  register: lab

- name: Build it
  cka.lab.lab_state:
    lab: netns_lab
    name: "{{ lab.declaration.name }}"
    stage: "{{ lab.declaration.stage }}"
    machine: "{{ lab.declaration.machine }}"
  become: true

- name: Remove what it made
  cka.lab.lab_state:
    lab: netns_lab
    name: netns-lab
    state: absent
  become: true
"""

RETURN = r"""
observed:
  description: >-
    With O(state=observed), what the machine has now, in the shape of a declaration's C(machine), for each kind
    that can be observed (today the topology - namespaces, bridges, vxlans, veth_pairs seen from both ends, routes
    with a gateway or default). C(cka.lab.lab_drawing) draws it beside the lab's declaration.
  returned: when O(state=observed)
  type: dict
commands:
  description: What was done (or, in check mode, would be done), in order, as commands a student could type.
  returned: always
  type: list
  elements: str
  sample:
    - ip netns add red
    - iptables -w -t nat -A POSTROUTING -s 192.168.15.0/24 -m comment --comment cka-lab:netns-lab -j MASQUERADE
record:
  description: What the lab owns on the machine after the run (absent, what it owned before the reset).
  returned: always
  type: dict
errors:
  description: Every problem found before any change, when the module refuses.
  returned: failure
  type: list
  elements: str
"""

import fcntl
import os
import re
import shlex
import subprocess
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cka.lab.plugins.module_utils.cni import CniError
from ansible_collections.cka.lab.plugins.module_utils.lab_schema import LAB_ID, LAB_ID_RULE
from ansible_collections.cka.lab.plugins.module_utils.lab_schema import SLUG as SLUG_PATTERN
from ansible_collections.cka.lab.plugins.module_utils.lab_engine import Engine, EngineError, converge, observe, remove
from ansible_collections.cka.lab.plugins.module_utils.lab_rules import RuleConflict
from ansible_collections.cka.lab.plugins.module_utils.topology import IpCommandError, command_string

# One definition of each, with the declaration's schema.
SLUG = re.compile(SLUG_PATTERN)
LAB = re.compile(LAB_ID)


def _every_stage(machine):
    """The objects of every stage, without the keys that select stages."""
    return {kind: [{k: v for k, v in item.items() if k not in ('stages', 'when', 'environment')} for item in items]
            for kind, items in (machine or {}).items()}


class LockHeld(Exception):
    """Another run holds the machine's lock."""


def machine_lock(path, timeout, lab):
    """Hold the machine's lock (flock on `path`) for the whole run: runs on one machine, of any lab, go one
    after the other. Waits up to `timeout` seconds; raises LockHeld naming the holder. The lock lives in a
    directory only root may write (no other user can take it first), and is never opened through a link."""
    try:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise LockHeld('Lab %s: cannot open the machine\'s lock %s: %s (see: ls -ld %s %s)'
                       % (lab, path, exc.strerror or exc, os.path.dirname(path), path)) from None
    handle = os.fdopen(fd, 'r+', encoding='utf-8')
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() >= deadline:
                handle.seek(0)
                holder = handle.read().strip() or 'unknown'
                handle.close()
                raise LockHeld('Lab %s: another lab run holds this machine (%s; lock %s) and did not finish '
                               'within %d s; wait for it and run again (see: fuser -v %s)'
                               % (lab, holder, path, timeout, path)) from None
            time.sleep(0.5)
    handle.seek(0)
    handle.truncate()
    handle.write('pid %d, lab %s, since %s' % (os.getpid(), lab, time.strftime('%Y-%m-%d %H:%M:%S')))
    handle.flush()
    return handle



def run_command(argv, env, data=None):
    """(rc, stdout, stderr) of `argv` run with `env` added to the module's environment, `data` on its standard
    input (/dev/null when None); the output as text (undecodable bytes kept as surrogates). OSError when it
    cannot be started.

    Not AnsibleModule.run_command: its select loop (ansible-core 2.19) waits a whole second, now and then, for a
    command that ends at once. Measured on a lab machine: 2-5 of 100 runs of `cat` or `echo`; a lab's re-run
    reads about 30 commands, so one run in four took a second longer. subprocess.run waits for the process
    instead. Arguments are passed as they are (no ~ or $VAR expansion).
    """
    done = subprocess.run(argv, input=data.encode() if isinstance(data, str) else data,
                          stdin=subprocess.DEVNULL if data is None else None, capture_output=True,
                          env=dict(os.environ, **env), check=False)
    return (done.returncode, done.stdout.decode('utf-8', 'surrogateescape'),
            done.stderr.decode('utf-8', 'surrogateescape'))


def main():
    module = AnsibleModule(argument_spec=dict(
        lab=dict(type='str', required=True),
        name=dict(type='str', required=True),
        state=dict(type='str', default='present', choices=['present', 'absent', 'observed']),
        stage=dict(type='str'),
        machine=dict(type='dict', default={}),
        record_dir=dict(type='path', default='/var/lib/cka-lab'),
        every_stage=dict(type='dict', default={}),
        variables=dict(type='dict', default={}),
        lock_path=dict(type='path', default='/run/cka-lab/lock'),
        lock_timeout=dict(type='int', default=300),
    ), supports_check_mode=True)
    params = module.params
    problems = []
    if not LAB.match(params['lab']):
        problems.append("lab: %r is not usable; allowed: %s" % (params['lab'], LAB_ID_RULE))
    if not SLUG.match(params['name']):
        problems.append("name: '%s' is not usable; 1-24 lower-case letters, digits or '-', starting with a letter"
                        % params['name'])
    if problems:
        module.fail_json(msg='; '.join(problems), errors=problems)

    bins = {name: module.get_bin_path(name, required=True) for name in ('ip', 'iptables', 'systemctl')}
    bins['bridge'] = module.get_bin_path('bridge') or 'bridge'

    def which(name):
        if name not in bins:
            bins[name] = module.get_bin_path(name)
        return bins[name]

    def run(argv):
        found = argv[0] if argv[0].startswith('/') else which(argv[0])
        if found is None:
            return 127, '', '%s: command not found' % argv[0]
        try:
            return run_command([found] + list(argv[1:]), {'LC_ALL': 'C'})
        except OSError as exc:
            return 126, '', '%s: %s' % (found, exc.strerror or exc)

    def run_plugin(argv, env, data):
        # A CNI plugin: its CNI_* environment and the network configuration on standard input (CNI SPEC.md);
        # with nothing to say (VERSION), /dev/null rather than the module's own standard input.
        return run_command(list(argv), dict(env), data)

    engine = Engine(run, params['lab'], params['name'], params['record_dir'], check_mode=module.check_mode,
                    run_plugin=run_plugin, which=which)
    engine.variables = params['variables']
    if params['state'] == 'observed':
        # Reads only, and takes no lock: a picture of the machine while a student works on it.
        try:
            module.exit_json(changed=False, observed=observe(engine))
        except IpCommandError as exc:
            module.fail_json(msg='Lab %s: %s failed (rc %d): %s' % (params['lab'], command_string(exc.argv), exc.rc,
                                                                   (exc.stderr or exc.stdout).strip()))
    try:
        lock = machine_lock(params['lock_path'], params['lock_timeout'], params['lab'])
    except LockHeld as exc:
        module.fail_json(msg=str(exc), changed=False)
    try:
        if params['state'] == 'present':
            record = converge(engine, params['machine'], params['stage'], _every_stage(params['every_stage']))
        else:
            record = remove(engine, also=_every_stage(params['every_stage'])) or {}
    except (EngineError, RuleConflict) as exc:
        module.fail_json(msg='Lab %s: %s' % (params['lab'], '; '.join(exc.errors)), errors=exc.errors,
                         commands=engine.commands, changed=bool(engine.commands))
    except IpCommandError as exc:
        cmd = command_string(exc.argv) if exc.argv[0] == 'ip' else shlex.join(exc.argv)
        module.fail_json(msg='Lab %s: %s failed (rc %d): %s; a run again repairs what was done so far, a reset '
                             'removes it' % (params['lab'], cmd, exc.rc, (exc.stderr or exc.stdout).strip()),
                         cmd=cmd, rc=exc.rc, stdout=exc.stdout, stderr=exc.stderr,
                         commands=engine.commands, changed=bool(engine.commands))
    except CniError as exc:
        module.fail_json(msg='Lab %s: %s; a run again repairs what was done so far, a reset removes it'
                             % (params['lab'], exc), commands=engine.commands, changed=bool(engine.commands))
    except OSError as exc:
        module.fail_json(msg='Lab %s: %s%s; a run again repairs what was done so far, a reset removes it'
                             % (params['lab'], exc.strerror or exc, ': %s' % exc.filename if exc.filename else ''),
                         commands=engine.commands, changed=bool(engine.commands))
    finally:
        lock.close()
    module.exit_json(changed=bool(engine.commands), commands=engine.commands, record=record)


if __name__ == '__main__':
    main()
