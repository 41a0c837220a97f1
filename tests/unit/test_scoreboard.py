"""The classroom's scoreboard built from the checks' JUnit XML (checks/scoreboard.py): the students x checks matrix,
its totals, the students' mapping, escaping, the CSV, a machine the grader could not reach, the command line."""
import csv
import io
import json
import pathlib

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

from scoreboard_room import (CELLS, CHECK_TOTALS, COLUMNS, FORWARDS, NAMESPACES, PODS, QUIZ, REACHED, ROOM_TOTAL,
                             STUDENT_TOTALS, Page, render_room, scoreboard, write_room)

CHECK_YML = pathlib.Path(__file__).resolve().parents[2] / "playbooks" / "check.yml"
LABS = ["cni_lab", "dns_lab", "docker_lab", "netns_lab", "routing_lab", "weave_lab"]

JUNIT = """<?xml version="1.0"?><testsuites><testsuite name="pytest">
<testcase classname="c" name="test_namespace_exists_with_loopback_up[student01-lab: red]"/>
<testcase classname="c" name="test_host_forwards_packets[student01-lab]">
  <failure message="AssertionError: assert '0' == '1'&#10;more">trace</failure></testcase>
<testcase classname="c" name="test_host_forwards_packets[student02-lab]"/>
<testcase classname="c" name="test_first_stage_cable_joins_the_two_namespaces[student02-lab]">
  <skipped message="the full stage replaces the cable"/></testcase>
<testcase classname="c" name="test_node_listens_on_its_role_port[NOTSET]"><skipped message="empty"/></testcase>
</testsuite></testsuites>"""


@pytest.fixture
def report(tmp_path):
    path = tmp_path / "checks.xml"
    path.write_text(JUNIT)
    return path


def test_results_are_grouped_by_machine_with_item_and_first_line_of_the_reason(report):
    assert scoreboard.results(report) == {
        "student01-lab": [
            ("namespace exists with loopback up", "red", "passed", ""),
            ("host forwards packets", "", "failed", "AssertionError: assert '0' == '1'"),
        ],
        "student02-lab": [
            ("host forwards packets", "", "passed", ""),
            ("first stage cable joins the two namespaces", "", "skipped", "the full stage replaces the cable"),
        ],
    }


def test_without_students_each_machine_is_a_row_and_skips_are_not_counted(report):
    # cka-lab practice writes its page this way (cka_lab/cli.py): render(results(path)).
    page = Page(scoreboard.render(scoreboard.results(report)))

    assert page.student_totals == {"student01-lab": "1/2", "student02-lab": "1/1"}
    assert page.columns == ["first stage cable joins the two namespaces", "host forwards packets",
                            "namespace exists with loopback up"]
    assert page.check_totals == {"first stage cable joins the two namespaces": "0/0",
                                 "host forwards packets": "1/2", "namespace exists with loopback up": "1/1"}
    assert page.cells["student02-lab"]["first stage cable joins the two namespaces"][:2] == ("skipped", "skipped")
    assert page.cells["student02-lab"]["namespace exists with loopback up"][:2] == ("none", "")
    assert "NOTSET" not in scoreboard.render(scoreboard.results(report))


def test_the_matrix_of_a_room_sums_each_students_machines_and_items(tmp_path):
    paths = write_room(tmp_path)
    by_machine = scoreboard.results(paths["checks"])
    for machine, checks in scoreboard.results(paths["practice"]).items():
        by_machine[machine].extend(checks)
    board = scoreboard.room(scoreboard.with_unreachable(by_machine, scoreboard.unreachable(paths["unreachable"])),
                            json.loads(paths["students"].read_text()))

    assert board.students == ["student01", "student02", "student03"]
    assert board.checks == COLUMNS
    assert board.machines["student03"] == ["s03-netns", "s03-node01", "s03-node02"]
    # The practice test's cases name the student (an answers file's `student`): the same row.
    assert board.machines["student01"] == ["s01-netns", "s01-node01", "s01-node02", "student01"]
    for student, row in CELLS.items():
        assert {check: (board.cell(student, check).state, board.cell(student, check).text)
                for check in board.checks} == row, student
        assert "%d/%d" % board.student_total(student) == STUDENT_TOTALS[student]
    assert {check: "%d/%d" % board.check_total(check) for check in board.checks} == CHECK_TOTALS
    assert board.item_total("student01") == (9, 10)
    assert [case[:3] for case in board.cell("student02", PODS).cases] == [
        ("s02-node01", "pod-a", "failed"), ("s02-node02", "pod-c", "passed")]


def test_the_page_shows_the_matrix_totals_and_every_failure_on_hover_and_on_click(tmp_path):
    page = Page(render_room(tmp_path).read_text(encoding="utf-8"))

    assert page.columns == COLUMNS
    assert {s: {c: cell[:2] for c, cell in row.items()} for s, row in page.cells.items()} == CELLS
    assert page.student_totals == STUDENT_TOTALS
    assert page.check_totals == CHECK_TOTALS
    assert page.room_total == ROOM_TOTAL
    state, text, title, details = page.cells["student02"][PODS]
    # Hover (title) and click (details) both say which item of which machine fails, and why.
    assert title == "s02-node01: pod-a - pod-a cannot reach pod-c (10.244.2.2)"
    assert details == ["s02-node01: pod-a pod-a cannot reach pod-c (10.244.2.2)"]
    # A practice test's answers: the item is the question.
    assert page.cells["student01"][QUIZ][2] == "gateway-to-lan - wrong: 10.0.0.1 - see `ip netns exec blue ip route`"
    assert page.cells["student03"][NAMESPACES][2].splitlines() == [
        "s03-netns: blue - failed on setup with \"ip: command not found\"",
        "s03-netns: red - namespace red is missing - see `ip netns list`"]
    # A cell that passes says so on hover and has nothing to open.
    assert page.cells["student01"][NAMESPACES][2:] == (
        "namespace exists with loopback up: every item passes (s01-netns: blue, s01-netns: red)", [])


def test_a_machine_the_grader_could_not_reach_fails_its_students_check_saying_why(tmp_path):
    paths = write_room(tmp_path)

    assert scoreboard.unreachable(paths["unreachable"]) == {"s03-node02": paths["unreachable"].read_text().strip()}
    page = Page(render_room(tmp_path).read_text(encoding="utf-8"))

    state, text, title, details = page.cells["student03"][REACHED]
    assert (state, text) == ("partial", "2/3")
    assert title.startswith("s03-node02 - s03-node02 (10.213.0.108): cannot be reached (ssh: connect to host")
    assert details == ["s03-node02 " + paths["unreachable"].read_text().strip()]
    # Its other checks did not run: only its reached machines count.
    assert page.cells["student03"][PODS][:2] == ("passed", "1/1")


def test_every_line_of_the_graders_unreachable_file_names_its_machine(tmp_path):
    path = tmp_path / "unreachable.txt"
    path.write_text("a-1: SSH refused the grader's login with no key set in the inventory (Permission denied) - "
                    "see `ssh a true`\n\nb (10.0.0.2): cannot be reached (timed out) - see `ssh 10.0.0.2 true`\n"
                    "c: sudo asks for a password (sudo: a password is required) - see `ssh c sudo -n true`\n")

    assert sorted(scoreboard.unreachable(path)) == ["a-1", "b", "c"]
    # With no machine unreachable nothing is added: a room's page has no column for it.
    assert scoreboard.with_unreachable({"m": [("x", "", "passed", "")]}, {}) == {"m": [("x", "", "passed", "")]}


def test_every_text_of_the_reports_is_escaped(tmp_path):
    report = tmp_path / "checks.xml"
    report.write_text('<?xml version="1.0"?><testsuites><testsuite name="t">'
                      '<testcase classname="c" name="test_a_check[m&lt;1&gt;: &quot;item&quot; &amp; co]">'
                      '<failure message="&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&lt;b&gt;bold"/>'
                      '</testcase></testsuite></testsuites>')
    students = {"m<1>": "<img src=x onerror=alert(1)>"}

    text = scoreboard.render(scoreboard.results(report), students, title="Room <1>")

    assert "<script" not in text and "<img" not in text and "<b>bold" not in text
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in text
    page = Page(text)
    assert page.student_totals == {"<img src=x onerror=alert(1)>": "0/1"}
    assert page.scripts == 0
    cell = page.cells["<img src=x onerror=alert(1)>"]["a check"]
    assert cell[2] == 'm<1>: "item" & co - <script>alert("x")</script><b>bold'


def test_the_output_is_the_same_whatever_the_order_of_the_reports(tmp_path):
    paths = write_room(tmp_path)
    by_machine = scoreboard.results(paths["checks"])
    students = json.loads(paths["students"].read_text())
    backwards = {machine: list(reversed(checks)) for machine, checks in reversed(list(by_machine.items()))}

    assert scoreboard.render(by_machine, students) == scoreboard.render(backwards, students)
    assert scoreboard.csv_rows(by_machine, students) == scoreboard.csv_rows(backwards, students)


def test_students_are_sorted_as_people_count():
    by_machine = {name: [("x", "", "passed", "")] for name in ("student10", "student9", "student1")}

    assert scoreboard.room(by_machine).students == ["student1", "student9", "student10"]


def test_the_csv_has_one_line_per_item_with_its_student(tmp_path):
    out = tmp_path / "scoreboard.csv"
    render_room(tmp_path, "--csv", str(out))

    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"), newline="")))
    assert list(rows[0]) == ["student", "machine", "check", "item", "outcome", "message"]
    assert len(rows) == 29  # 16 graded cases (NOTSET left out), 4 answers, 8 machines reached and 1 not
    assert rows[0] == {"student": "student01", "machine": "s01-netns", "check": REACHED, "item": "",
                       "outcome": "passed", "message": ""}
    assert {"student": "student03", "machine": "s03-netns", "check": FORWARDS, "item": "", "outcome": "failed",
            "message": '<script>alert(1)</script> forwarding is off & "quoted"'} in rows
    assert [r["machine"] for r in rows if r["check"] == REACHED and r["outcome"] == "failed"] == ["s03-node02"]
    assert [(r["student"], r["item"], r["outcome"]) for r in rows if r["check"] == QUIZ] == [
        ("student01", "bridge-address", "passed"), ("student01", "gateway-to-lan", "failed"),
        ("student02", "bridge-address", "passed"), ("student02", "gateway-to-lan", "passed")]
    assert [r["student"] for r in rows] == sorted(r["student"] for r in rows)


def test_a_csv_field_a_spreadsheet_would_run_as_a_formula_is_text(tmp_path):
    out = tmp_path / "out.csv"
    scoreboard.write_csv(out, [("s", "m", "practice 202", "q1", "failed", "wrong: x - see `a`"),
                               ("s", "m", "practice 202", "q2", "failed", '=HYPERLINK("http://x")')])

    rows = list(csv.reader(io.StringIO(out.read_text(), newline="")))
    assert rows[1][5] == "wrong: x - see `a`" and rows[2][5] == "'=HYPERLINK(\"http://x\")"


def test_the_command_line_of_check_yml_reads_the_students_from_standard_input(tmp_path, monkeypatch):
    paths = write_room(tmp_path)
    page, table = tmp_path / "out.html", tmp_path / "out.csv"
    monkeypatch.setattr("sys.stdin", io.StringIO(paths["students"].read_text()))

    scoreboard.main(["scoreboard.py", "--students", "-", "--csv", str(table), "--unreachable",
                     str(paths["unreachable"]), str(paths["checks"]), str(page)])

    assert Page(page.read_text()).student_totals == {"student01": "4/4", "student02": "2/4", "student03": "1/4"}
    assert table.read_bytes().startswith(b"student,machine,check,item,outcome,message\r\n")


def test_the_graders_report_and_a_practice_tests_make_one_page_as_before(tmp_path, report):
    practice = tmp_path / "practice-202.xml"
    practice.write_text('<?xml version="1.0"?><testsuites><testsuite name="practice 202">'
                        '<testcase classname="p" name="test_practice_202[student01-lab: bridge-address]"/>'
                        '<testcase classname="p" name="test_practice_202[student01-lab: gateway-to-lan]">'
                        '<failure message="wrong: 10.0.0.1 - see `ip netns exec blue ip route`"/></testcase>'
                        '</testsuite></testsuites>')
    out = tmp_path / "room.html"
    scoreboard.main(["scoreboard.py", str(report), str(practice), str(out)])

    page = Page(out.read_text())
    assert page.student_totals == {"student01-lab": "1/3", "student02-lab": "1/1"}
    assert page.cells["student01-lab"]["practice 202"][:3] == (
        "partial", "1/2", "gateway-to-lan - wrong: 10.0.0.1 - see `ip netns exec blue ip route`")


@pytest.mark.parametrize("content, said", [
    ("[1, 2]", "not a JSON object {machine: student}"),
    ('{"m1": ""}', "not a student's name (a non-empty string) for m1"),
    ("{", "cannot read it"),
])
def test_a_bad_students_file_is_refused_saying_why(tmp_path, report, capsys, content, said):
    students = tmp_path / "students.json"
    students.write_text(content)

    with pytest.raises(SystemExit) as exit_:
        scoreboard.main(["scoreboard.py", "--students", str(students), str(report), str(tmp_path / "x.html")])

    assert exit_.value.code == 2
    assert "--students %s: %s" % (students, said) in capsys.readouterr().err
    assert not (tmp_path / "x.html").exists()


def test_a_report_that_is_not_junit_is_refused_saying_which(tmp_path, capsys):
    bad = tmp_path / "checks.xml"
    bad.write_text("not xml")

    with pytest.raises(SystemExit):
        scoreboard.main(["scoreboard.py", str(bad), str(tmp_path / "x.html")])

    assert "%s is not a readable JUnit XML report" % bad in capsys.readouterr().err


def test_an_empty_report_makes_a_page_that_says_so(tmp_path):
    empty = tmp_path / "checks.xml"
    empty.write_text("<testsuites/>")

    assert "No results in these reports." in scoreboard.render(scoreboard.results(empty))


def students_of(groups, graded):
    """The {machine: student} playbooks/check.yml gives scoreboard.py for an inventory's `groups`."""
    plays = yaml.safe_load(CHECK_YML.read_text())
    task = next(task for play in plays for entry in play.get("tasks", []) for task in entry.get("block", [entry])
                if task.get("name", "").startswith("Write the scoreboard"))
    variables = {name: trust_as_template(text) for name, text in task["vars"].items()}
    variables.update(groups=dict(groups, all=sorted({h for hosts in groups.values() for h in hosts})),
                     __check_asked=graded, __check_all_labs=LABS)
    return Templar(loader=DataLoader(), variables=variables).template(trust_as_template("{{ __check_students }}"))


def test_check_yml_gives_each_machine_of_a_room_its_students_group():
    # inventory/rehearsal's room (plugin cka.lab.classroom): the labs' groups hold every student's machines.
    room = {"students": ["s1-netns", "s1-cni", "s2-netns", "s2-cni"], "student1": ["s1-netns", "s1-cni"],
            "student2": ["s2-netns", "s2-cni"], "netns_lab": ["s1-netns", "s2-netns"], "cni_lab": ["s1-cni", "s2-cni"],
            "local_lab_machines": ["s1-netns", "s1-cni", "s2-netns", "s2-cni"], "ungrouped": ["demo"]}

    assert students_of(room, ["s1-netns", "s2-cni", "demo"]) == {
        "s1-netns": "student1", "s1-cni": "student1", "s2-netns": "student2", "s2-cni": "student2", "demo": "demo"}


def test_check_yml_finds_the_student_of_a_room_of_one_with_the_weave_labs_node_groups():
    room = {"students": ["cp", "n1"], "student07": ["cp", "n1"], "weave_lab": ["cp", "n1"],
            "kube_control_plane": ["cp"], "kube_workers": ["n1"], "local_lab_machines": ["cp", "n1"]}

    assert students_of(room, ["cp", "n1"]) == {"cp": "student07", "n1": "student07"}


def test_check_yml_takes_a_students_group_not_a_group_of_several_students():
    room = {"students": ["a", "b", "c"], "morning": ["a", "b"], "ana": ["a"], "ben": ["b"], "cy": ["c"],
            "netns_lab": ["a", "b", "c"]}

    assert students_of(room, ["a", "b", "c"]) == {"a": "ana", "b": "ben", "c": "cy"}


def test_check_yml_without_a_students_group_makes_each_machine_its_own_row():
    room = {"netns_lab": ["a", "b"], "local_lab_machines": ["a", "b"]}

    assert students_of(room, ["a", "b"]) == {"a": "a", "b": "b"}


def check_workers(asked, given=0):
    """__check_workers of playbooks/vars/check.yml: the pytest-xdist processes the grader runs."""
    text = yaml.safe_load((CHECK_YML.parent / "vars" / "check.yml").read_text())["__check_workers"]
    variables = {"check_workers": given, "__check_asked": ["m%02d" % n for n in range(asked)]}
    return int(Templar(loader=DataLoader(), variables=variables).template(trust_as_template(text)))


@pytest.mark.parametrize("asked, workers", [(1, 1), (4, 1), (5, 2), (10, 3), (16, 4), (30, 8), (200, 8)])
def test_a_room_is_graded_by_one_worker_per_four_machines_up_to_eight(asked, workers):
    assert check_workers(asked) == workers


def test_check_workers_given_is_used_up_to_the_machines_graded():
    assert check_workers(30, given=3) == 3 and check_workers(30, given=64) == 30 and check_workers(1, given=2) == 1


def test_the_grader_passes_the_workers_to_pytest_xdist_with_one_group_per_machine():
    task = next(t for t in yaml.safe_load(CHECK_YML.read_text())[3]["tasks"][0]["block"]
                if t["name"] == "Run the Testinfra checks")
    assert "['-n', __check_workers | string, '--dist', 'loadgroup'] if __check_workers | int > 1" in \
        task["ansible.builtin.command"]["argv"]
