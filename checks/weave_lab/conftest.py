"""Fixtures of the weave lab's checks: kubectl on the control plane, and the probe pods.

A check names ``cluster`` to ask the cluster (``kubectl`` on the control plane named
in the lab's export), and ``probes`` for traffic between pods; the probes are
started on the first check that needs them and removed when the run ends.
"""
import pytest
import testinfra

from weave_lab_helpers import Cluster, Probes

_PROBES = {}


def _control_plane(lab):
    return testinfra.get_host("ansible://" + lab.data["control_plane"], ansible_inventory=lab.inventory)


@pytest.fixture
def net(lab, exported):
    """Weave Net's export of `lab`'s node (lab weave_net: the control plane, kubeconfig, probe image), for the
    checks of another export of the node (the weave lab's probes, test_probes.py)."""
    return lab if lab.data["lab"] == "weave_net" else exported("weave_net")


@pytest.fixture
def cluster(net):
    return Cluster(_control_plane(net), net.data["kubeconfig"])


@pytest.fixture(scope="session")
def _probe_registry():
    yield _PROBES
    for probes in _PROBES.values():
        probes.stop()


@pytest.fixture
def probes(net, peers, cluster, _probe_registry):
    key = net.data["control_plane"]
    if key not in _probe_registry:
        started = Probes(cluster, net.data["probe_image"], [peer.name for peer in peers])
        _probe_registry[key] = started
        started.start()
    found = _probe_registry[key]
    found.require()
    return found
