#!/usr/bin/env python3
# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""Print, as JSON, how many inotify instances root may hold on this computer and how many it holds now.

Every lab machine runs systemd, and every process in a machine runs as the host's root (no user namespace):
their inotify instances all count against root's fs.inotify.max_user_instances (inotify(7), "/proc
interfaces"). A machine that cannot get one exits at boot without a word. Reads only /proc.
    {"limit": 128, "used": 8}
"""
import json
import os


def main():
    with open('/proc/sys/fs/inotify/max_user_instances', encoding='ascii') as handle:
        limit = int(handle.read())
    used = 0
    for pid in filter(str.isdigit, os.listdir('/proc')):
        try:
            if os.stat('/proc/%s' % pid).st_uid != 0:
                continue
            fds = os.listdir('/proc/%s/fd' % pid)
            used += sum(1 for fd in fds if os.readlink('/proc/%s/fd/%s' % (pid, fd)) == 'anon_inode:inotify')
        except OSError:
            continue  # gone meanwhile
    print(json.dumps({'limit': limit, 'used': used}))


if __name__ == '__main__':
    main()
