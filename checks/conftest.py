"""Checks that grade a lab machine against a lab's own declaration.

The same checks are Molecule's verifier and a classroom's grader. They read what
each lab declares from JSON files written by ``playbooks/check.yml`` (one file
per machine, exported by the lab's role), and reach the machines through
Testinfra's Ansible backend, so any inventory works: local lab machines, or a
classroom's VMs over SSH.

A check module names its lab with ``LAB = "netns_lab"``. A test takes the
``lab`` fixture (one per machine of that lab), and with
``@pytest.mark.each("key")`` (dotted for nested keys) also ``item``, one per element of the exported
``key`` list, so each namespace, route or rule is its own test with its own id.
"""
import json
import pathlib
from dataclasses import dataclass, field

import pytest
import testinfra


def pytest_addoption(parser):
    parser.addoption(
        "--lab-data", action="append", default=[], metavar="PATH",
        help="a lab declaration exported by playbooks/check.yml, or a directory of them (repeatable)")


def pytest_configure(config):
    config.addinivalue_line("markers", "each(key): one test per element of the lab's exported `key` list")


@dataclass
class Lab:
    """One machine of a lab: its declaration and a Testinfra host to look at it."""

    data: dict
    inventory: str | None
    _host: object = field(default=None, repr=False)

    @property
    def name(self):
        return self.data["host"]

    @property
    def host(self):
        if self._host is None:
            self._host = testinfra.get_host("ansible://" + self.name, ansible_inventory=self.inventory)
        return self._host

    def run(self, command, *args):
        """Run a command on the machine; the result has rc, stdout, stderr."""
        return self.host.run(command, *args)

    def json(self, command, *args):
        """Run a command that prints JSON (``ip -j ...``) and parse its output.

        ``ip -j`` prints nothing at all for an empty list. A command that fails fails the check with
        its words, not a traceback."""
        result = self.host.run(command, *args)
        if result.rc != 0:
            pytest.fail("this check cannot run on %s: `%s` failed (rc %d): %s"
                        % (self.name, result.command.decode() if isinstance(result.command, bytes) else command,
                           result.rc, (result.stderr or result.stdout).strip() or "no message"), pytrace=False)
        return self.parse_json(result.stdout)

    @staticmethod
    def parse_json(out):
        return json.loads(out) if out.strip() else []


def _load(config):
    records = []
    for given in config.getoption("lab_data"):
        path = pathlib.Path(given)
        files = sorted(path.rglob("*.json")) if path.is_dir() else [path]
        records += [json.loads(f.read_text()) for f in files]
    return records


_LABS = {}


def _labs(config, lab_name):
    inventory = config.getoption("ansible_inventory", default=None)
    for record in _load(config):
        # LAB = "engine": every lab declared in labs/ (exported with engine: true).
        mine = record.get("engine") is True if lab_name == "engine" else record.get("lab") == lab_name
        if mine and (lab_name, record["host"]) not in _LABS:
            _LABS[(lab_name, record["host"])] = Lab(record, inventory)
    return [lab for (name, _), lab in _LABS.items() if name == lab_name]


def _item_id(item):
    if isinstance(item, dict):
        for key in ("name", "comment", "rule", "path", "chain", "id"):
            if key in item:
                return str(item[key])
        if "dst" in item:
            return "%s %s%s" % (item.get("namespace") or "host", item["dst"],
                                " via %s" % item["via"] if item.get("via") else "")
    return str(item)


def _lookup(data, dotted):
    """data["a"]["b"] for "a.b"; an empty list when any part is missing."""
    for part in dotted.split("."):
        data = data.get(part) if isinstance(data, dict) else None
    return data or []


def pytest_generate_tests(metafunc):
    if "lab" not in metafunc.fixturenames:
        return
    labs = _labs(metafunc.config, getattr(metafunc.module, "LAB", None))
    marker = metafunc.definition.get_closest_marker("each")
    if marker is None:
        metafunc.parametrize("lab", labs, ids=[lab.name for lab in labs])
        return
    key = marker.args[0]
    # What a lab needs only to run on a lab machine (environment: true) is not graded.
    pairs = [(lab, item) for lab in labs for item in _lookup(lab.data, key)
             if not (isinstance(item, dict) and item.get("environment"))]
    engine = getattr(metafunc.module, "LAB", None) == "engine"
    metafunc.parametrize(("lab", "item"), pairs,
                         ids=["%s: %s%s" % (lab.name, lab.data["lab"] + ": " if engine else "", _item_id(item))
                              for lab, item in pairs])


def pytest_collection_modifyitems(config, items):
    """One xdist group per machine, or per set of peers for a lab that spans machines (a student's CNI nodes, a
    student's cluster): with `pytest -n N --dist loadgroup` (playbooks/check.yml grading a room) each is graded
    by one worker, over the SSH connections that worker keeps, and a cluster's probe pods are started and
    removed by the one worker that uses them."""
    if not config.pluginmanager.hasplugin("xdist"):
        return
    for item in items:
        lab = getattr(getattr(item, "callspec", None), "params", {}).get("lab")
        if isinstance(lab, Lab):
            item.add_marker(pytest.mark.xdist_group(grading_group(lab)))


def grading_group(lab):
    """The xdist group of `lab`'s checks: its peers together (their names joined), else the machine alone."""
    return "+".join(sorted(lab.data["peers"])) if lab.data.get("peers") else lab.name


@pytest.fixture
def peers(lab):
    """The machines of `lab`'s lab (itself included), for checks that cross machines (a pod on another node)."""
    return peers_of(lab, _LABS.values())


def peers_of(lab, labs):
    """Of `labs`, the machines of `lab`'s lab: those its declaration names as its `peers` (each student's own,
    in a classroom), else every one of the same lab."""
    same = [other for other in labs if other.data.get("lab") == lab.data.get("lab")]
    if "peers" in lab.data:
        return [other for other in same if other.name in lab.data["peers"]]
    return same


@pytest.fixture
def exported(lab, request):
    """exported(name) -> the Lab of another export of `lab`'s machine (its `lab` is `name`: the weave lab's
    probes need its Weave Net export); fails saying which export is missing."""
    def find(name):
        for other in _labs(request.config, name):
            if other.name == lab.name:
                return other
        pytest.fail("no export of %s for %s in --lab-data: grade with playbooks/check.yml, which writes it"
                    % (name, lab.name), pytrace=False)
    return find
