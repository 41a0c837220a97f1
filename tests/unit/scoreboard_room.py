"""A classroom of three students with known results, and a reader of the scoreboard page (checks/scoreboard.py)
for tests/unit/test_scoreboard*.py: the page is read back as a browser would show it, by the text of its cells."""
import html.parser
import importlib.util
import json
import pathlib
import re

SPEC = importlib.util.spec_from_file_location(
    "scoreboard", pathlib.Path(__file__).resolve().parents[2] / "checks" / "scoreboard.py")
scoreboard = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(scoreboard)

# The grader's report (playbooks/check.yml): student03-node02 could not be reached, so none of its checks ran.
CHECKS = """<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest">
<testcase classname="c" name="test_namespace_exists_with_loopback_up[s01-netns: red]"/>
<testcase classname="c" name="test_namespace_exists_with_loopback_up[s01-netns: blue]"/>
<testcase classname="c" name="test_namespace_exists_with_loopback_up[s02-netns: red]"/>
<testcase classname="c" name="test_namespace_exists_with_loopback_up[s02-netns: blue]">
  <failure message="namespace blue is missing - see `ip netns list`">trace</failure></testcase>
<testcase classname="c" name="test_namespace_exists_with_loopback_up[s03-netns: red]">
  <failure message="namespace red is missing - see `ip netns list`">trace</failure></testcase>
<testcase classname="c" name="test_namespace_exists_with_loopback_up[s03-netns: blue]">
  <error message="failed on setup with &quot;ip: command not found&quot;">trace</error></testcase>
<testcase classname="c" name="test_host_forwards_packets[s01-netns]"/>
<testcase classname="c" name="test_host_forwards_packets[s02-netns]"/>
<testcase classname="c" name="test_host_forwards_packets[s03-netns]">
  <failure message="&lt;script&gt;alert(1)&lt;/script&gt; forwarding is off &amp; &quot;quoted&quot;">x</failure>
</testcase>
<testcase classname="c" name="test_pods_reach_each_other[s01-node01: pod-a]"/>
<testcase classname="c" name="test_pods_reach_each_other[s01-node02: pod-c]"/>
<testcase classname="c" name="test_pods_reach_each_other[s02-node01: pod-a]">
  <failure message="pod-a cannot reach pod-c (10.244.2.2)">x</failure></testcase>
<testcase classname="c" name="test_pods_reach_each_other[s02-node02: pod-c]"/>
<testcase classname="c" name="test_pods_reach_each_other[s03-node01: pod-a]"/>
<testcase classname="c" name="test_first_stage_cable_joins_the_two_namespaces[s01-netns]">
  <skipped message="the full stage replaces the cable"/></testcase>
<testcase classname="c" name="test_first_stage_cable_joins_the_two_namespaces[s02-netns]">
  <skipped message="the full stage replaces the cable"/></testcase>
<testcase classname="c" name="test_node_listens_on_its_role_port[NOTSET]"><skipped message="empty"/></testcase>
</testsuite></testsuites>"""

# cka-lab practice 202 with answers files naming their student (student03 did not take it).
PRACTICE = """<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="practice 202">
<testcase classname="practice.202" name="test_practice_202[student01: bridge-address]"/>
<testcase classname="practice.202" name="test_practice_202[student01: gateway-to-lan]">
  <failure message="wrong: 10.0.0.1 - see `ip netns exec blue ip route`"/></testcase>
<testcase classname="practice.202" name="test_practice_202[student02: bridge-address]"/>
<testcase classname="practice.202" name="test_practice_202[student02: gateway-to-lan]"/>
</testsuite></testsuites>"""

UNREACHABLE = ("s03-node02 (10.213.0.108): cannot be reached (ssh: connect to host 10.213.0.108 port 22: "
               "No route to host) - see `ssh root@10.213.0.108 true`\n")

STUDENTS = {machine: "student0%s" % machine[2] for machine in
            ("s01-netns", "s01-node01", "s01-node02", "s02-netns", "s02-node01", "s02-node02",
             "s03-netns", "s03-node01", "s03-node02")}

REACHED, NAMESPACES, FORWARDS, PODS, CABLE, QUIZ = (
    "machine answers the grader", "namespace exists with loopback up", "host forwards packets",
    "pods reach each other", "first stage cable joins the two namespaces", "practice 202")
# What the page must say: the columns in order, each student's checks passed/graded, each check's students.
COLUMNS = [REACHED, CABLE, FORWARDS, NAMESPACES, PODS, QUIZ]
STUDENT_TOTALS = {"student01": "4/5", "student02": "3/5", "student03": "1/4"}
CHECK_TOTALS = {REACHED: "2/3", CABLE: "0/0", FORWARDS: "2/3", NAMESPACES: "1/3", PODS: "2/3", QUIZ: "1/2"}
ROOM_TOTAL = "0/3"
CELLS = {
    "student01": {REACHED: ("passed", "3/3"), CABLE: ("skipped", "skipped"), FORWARDS: ("passed", "1/1"),
                  NAMESPACES: ("passed", "2/2"), PODS: ("passed", "2/2"), QUIZ: ("partial", "1/2")},
    "student02": {REACHED: ("passed", "3/3"), CABLE: ("skipped", "skipped"), FORWARDS: ("passed", "1/1"),
                  NAMESPACES: ("partial", "1/2"), PODS: ("partial", "1/2"), QUIZ: ("passed", "2/2")},
    "student03": {REACHED: ("partial", "2/3"), CABLE: ("none", ""), FORWARDS: ("failed", "0/1"),
                  NAMESPACES: ("failed", "0/2"), PODS: ("passed", "1/1"), QUIZ: ("none", "")},
}


def write_room(folder):
    """The room's files in `folder`: {checks, practice, unreachable, students: path}."""
    folder = pathlib.Path(folder)
    paths = {name: folder / name for name in ("checks.xml", "practice-202.xml", "unreachable.txt", "students.json")}
    paths["checks.xml"].write_text(CHECKS, encoding="utf-8")
    paths["practice-202.xml"].write_text(PRACTICE, encoding="utf-8")
    paths["unreachable.txt"].write_text(UNREACHABLE, encoding="utf-8")
    paths["students.json"].write_text(json.dumps(STUDENTS), encoding="utf-8")
    return {"checks": paths["checks.xml"], "practice": paths["practice-202.xml"],
            "unreachable": paths["unreachable.txt"], "students": paths["students.json"]}


def render_room(folder, *options):
    """Write the room's page (and any `options`, e.g. --csv FILE) with scoreboard.py's command line; its path."""
    paths = write_room(folder)
    page = pathlib.Path(folder) / "scoreboard.html"
    scoreboard.main(["scoreboard.py", "--students", str(paths["students"]), "--unreachable",
                     str(paths["unreachable"]), *options, str(paths["checks"]), str(paths["practice"]), str(page)])
    return page


class Page(html.parser.HTMLParser):
    """The matrix as the page shows it: `columns` (the checks' headers, in order), `cells` {student: {check:
    (state, text, title, [detail lines])}}, `student_totals` {student: text}, `check_totals` {check: text},
    `room_total`, `scripts` (script elements seen). A cell's text is its summary's, a detail's its list item's."""

    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.columns, self.cells, self.student_totals, self.check_totals = [], {}, {}, {}
        self.room_total, self.scripts = None, 0
        self._section = self._student = self._cell = self._detail = None
        self._index = 0
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        classes = (attrs.get("class") or "").split()
        if tag == "script":
            self.scripts += 1
        elif tag in ("thead", "tbody", "tfoot"):
            self._section = tag
        elif tag == "tr":
            self._student, self._index = attrs.get("data-student"), 0
        elif tag == "th" and self._section == "thead" and "check" in classes:
            self._cell = {"kind": "column", "text": ""}
        elif tag == "td":
            kind = next((k for k in ("cell", "total", "check-total", "room-total") if k in classes), None)
            state = next((c for c in classes if c in ("passed", "failed", "partial", "skipped", "none")), None)
            self._cell = {"kind": kind, "state": state, "title": attrs.get("title", ""), "text": "",
                          "details": [], "summary": None}
        elif tag == "summary" and self._cell is not None:
            self._cell["summary"] = ""
        elif tag == "li" and self._cell is not None:
            self._detail = ""

    def handle_data(self, data):
        if self._cell is None:
            return
        if self._detail is not None:
            self._detail += data
        elif self._cell.get("summary") is not None and not self._cell.get("summary_done"):
            self._cell["summary"] += data
        else:
            self._cell["text"] += data

    def handle_endtag(self, tag):
        cell = self._cell
        if tag == "summary" and cell is not None:
            cell["summary_done"] = True
        elif tag == "li" and cell is not None and self._detail is not None:
            cell["details"].append(" ".join(self._detail.split()))
            self._detail = None
        elif tag in ("th", "td") and cell is not None:
            text = " ".join((cell["summary"] if cell.get("summary") is not None else cell["text"]).split())
            if cell["kind"] == "column":
                self.columns.append(text)
            elif cell["kind"] == "cell":
                check = self.columns[self._index]
                self.cells.setdefault(self._student, {})[check] = (cell["state"], text, cell["title"],
                                                                   cell["details"])
                self._index += 1
            elif cell["kind"] == "total":
                self.student_totals[self._student] = text
            elif cell["kind"] == "check-total":
                self.check_totals[self.columns[self._index]] = text
                self._index += 1
            elif cell["kind"] == "room-total":
                self.room_total = text
            self._cell = None


def counts(text):
    """(passed, of) from "3/4"."""
    match = re.fullmatch(r"(\d+)/(\d+)", text)
    assert match, "not a count: %r" % text
    return int(match[1]), int(match[2])
