"""Helpers the weave lab's checks share."""


def listening(lab, protocol):
    """Ports a node listens on (any address) for `tcp` or `udp`, from `ss`."""
    flag = "-tlnH" if protocol == "tcp" else "-ulnH"
    return {int(line.split()[3].rsplit(":", 1)[1]) for line in lab.host.check_output("ss %s", flag).splitlines()}
