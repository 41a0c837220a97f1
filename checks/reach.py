#!/usr/bin/env python3
"""Before grading: can the grader reach each machine, the way its checks will?

    python checks/reach.py INVENTORY EXPORT_DIR

INVENTORY is the grader's inventory written by playbooks/check.yml (each
machine's connection as Ansible resolved it); EXPORT_DIR holds one exported
declaration per machine and lab (``<lab>-<host>.json``). Every machine is tried
at once through Testinfra (the checks' own connection): ``true``, and with
become ``sudo -n true``. A machine that cannot be reached is one line, saying
why in words and which command shows it; its declarations are renamed
(``.json.unreachable``) so that no check of it runs. Exit status: 0 when every
machine answered, 1 when some did not (the others are still graded), 2 on bad
input. The lines also go to EXPORT_DIR/unreachable.txt for the summary.
"""
import concurrent.futures
import json
import pathlib
import shlex
import sys

import testinfra
import yaml

def hosts_of(inventory):
    """{host: vars} of the grader's inventory (a flat `all.hosts` mapping)."""
    data = yaml.safe_load(pathlib.Path(inventory).read_text()) or {}
    return (data.get("all") or {}).get("hosts") or {}


def why(host, hostvars, result=None, error=None):
    """One line for a machine the grader cannot use."""
    address = hostvars.get("ansible_host", host)
    user = hostvars.get("ansible_user")
    target = "%s@%s" % (user, address) if user else address
    key = hostvars.get("ansible_ssh_private_key_file")
    port = hostvars.get("ansible_port")
    ssh = "ssh%s%s %s true" % (" -p %s" % port if port not in (None, 22, "22") else "",
                               " -i %s" % shlex.quote(key) if key else "", target)
    text = (error or (result.stderr if result is not None else "") or "").strip().splitlines()
    text = text[-1] if text else "no answer"
    if "Permission denied" in text:
        return ("%s: SSH refused the grader's login with %s (%s): the grader logs in with the inventory's SSH key "
                "(ansible_ssh_private_key_file; not --private-key, not a password) - see `%s`"
                % (host, "the key %s" % key if key else "no key set in the inventory", text, ssh))
    if "password is required" in text or "terminal is required" in text:
        return ("%s: sudo asks for a password (%s): the grader needs root (ansible_user: root) or sudo without "
                "a password (NOPASSWD) - see `%s`" % (host, text, ssh.replace(" true", " sudo -n true")))
    return "%s (%s): cannot be reached (%s) - see `%s`" % (host, address, text, ssh)


def try_host(inventory, host, hostvars):
    """None when the machine answers as the checks will use it, else the reason."""
    if hostvars.get("cka_lab_grader_password"):
        return ("%s: its inventory logs in with a password (ansible_password); the grader logs in with an SSH "
                "key only (ansible_ssh_private_key_file): give it one" % host)
    try:
        machine = testinfra.get_host("ansible://" + host, ansible_inventory=inventory)
        result = machine.run("true")
        if result.rc != 0:
            return why(host, hostvars, result)
        return None
    except Exception as exc:  # noqa: BLE001 - any failure to connect is the reason to report
        # Testinfra raises with the failed CommandResult as its argument.
        found = exc.args[0] if exc.args else None
        if "ansible-inventory" in str(exc):
            raise  # the grader's own tools are missing: not the machine's fault
        return why(host, hostvars, error=getattr(found, "stderr", None) or str(exc))


def main(argv):
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    inventory, export_dir = argv[1], pathlib.Path(argv[2])
    hosts = hosts_of(inventory)
    failed = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, min(32, len(hosts)))) as pool:
        futures = {pool.submit(try_host, inventory, host, hostvars): host for host, hostvars in hosts.items()}
        # SSH gives up by itself: the grader's inventory sets ConnectTimeout and ServerAlive* (check.yml).
        for future in concurrent.futures.as_completed(futures):
            reason = future.result()
            if reason:
                failed[futures[future]] = reason
    for host in sorted(failed):
        print(failed[host])
        for path in export_dir.rglob("*.json"):
            if json.loads(path.read_text()).get("host") == host:
                path.rename(path.with_name(path.name + ".unreachable"))
    (export_dir / "unreachable.txt").write_text("".join(failed[h] + "\n" for h in sorted(failed)))
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except Exception as exc:  # noqa: BLE001 - the grader's own failure, not a machine's: say so, status 2
        print("checks/reach.py could not try the machines: %s: %s" % (type(exc).__name__, exc), file=sys.stderr)
        sys.exit(2)
