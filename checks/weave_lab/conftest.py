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
def cluster(lab):
    return Cluster(_control_plane(lab), lab.data["kubeconfig"])


@pytest.fixture(scope="session")
def _probe_registry():
    yield _PROBES
    for probes in _PROBES.values():
        probes.stop()


@pytest.fixture
def probes(lab, peers, cluster, _probe_registry):
    key = lab.data["control_plane"]
    if key not in _probe_registry:
        started = Probes(cluster, lab.data["probe_image"], [peer.name for peer in peers])
        _probe_registry[key] = started
        started.start()
    found = _probe_registry[key]
    found.require()
    return found
