#!/usr/bin/env python3
"""Turn the checks' JUnit XML into one HTML page for a classroom: a matrix of students x checks, one row per
student and one column per check (its items summed up in the cell: "3/4"), the practice tests' answers as
columns too, each cell coloured passed, failed or partly passed, the failures' messages on hover and on click,
and totals per student and per check. Several reports (the grader's and the practice tests', cka-lab practice)
make one page; the same results can also be written as CSV, one line per item.

    python checks/scoreboard.py reports/checks.xml reports/scoreboard.html
    python checks/scoreboard.py reports/checks.xml reports/practice-202.xml reports/room.html
    python checks/scoreboard.py --students students.json --unreachable unreachable.txt \\
        --csv reports/scoreboard.csv reports/checks.xml reports/scoreboard.html

--students FILE: a JSON object {machine: student} ("-": read from standard input; playbooks/check.yml gives the
inventory's groups under `students`); a machine not in it is a student of its own. --unreachable FILE: the
grader's lines for the machines it could not reach (checks/reach.py's unreachable.txt), each a failed check
"machine answers the grader" of its student. --csv FILE: student, machine, check, item, outcome, message.
The page is self-contained (inline CSS, no script): it opens from a file.
"""
import argparse
import csv
import html
import json
import re
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict
from dataclasses import dataclass, field

# Test ids are "test_name[machine]" or "test_name[machine: item]" (checks/conftest.py).
TEST_ID = re.compile(r"^(?P<test>[^\[]+)\[(?P<machine>[^:\]]+)(?::\s*(?P<item>.*))?\]$")
# checks/reach.py's lines: "HOST: why" or "HOST (ADDRESS): cannot be reached (...) - see `ssh ...`".
REACH_LINE = re.compile(r"^(?P<machine>[^\s:()]+)(?: \([^)]*\))?: ")
# The check a machine the grader could not reach fails (its other checks did not run).
REACHED = "machine answers the grader"
# cka-lab practice names its cases test_practice_ID[...]: the column "practice ID".
PRACTICE = "practice "
CSV_FIELDS = ("student", "machine", "check", "item", "outcome", "message")
TITLE_LINES = 12  # failures listed in a cell's hover text; the cell's details list them all


def results(junit_path):
    """{machine: [(check, item, outcome, message)]} from a JUnit XML report, in the report's order.

    `check` is the test function's name in words ("host forwards packets"), `outcome` passed, failed (a
    failure or an error) or skipped, `message` the first line of the reason (at most 300 characters)."""
    by_machine = defaultdict(list)
    for case in ET.parse(junit_path).iter("testcase"):
        match = TEST_ID.match(case.get("name", ""))
        if not match or match["machine"] == "NOTSET":  # a lab with no machine in this inventory
            continue
        outcome, message = "passed", ""
        for tag in ("failure", "error", "skipped"):
            element = case.find(tag)
            if element is not None:
                outcome = "failed" if tag in ("failure", "error") else "skipped"
                text = (element.get("message") or element.text or "").strip()
                message = text.splitlines()[0][:300] if text else ""
                break
        check = match["test"].removeprefix("test_").replace("_", " ")
        by_machine[match["machine"]].append((check, match["item"] or "", outcome, message))
    return by_machine


def unreachable(path):
    """{machine: its line} from the grader's lines for the machines it could not reach (checks/reach.py)."""
    with open(path, encoding="utf-8") as handle:
        lines = [line.strip() for line in handle if line.strip()]
    out = {}
    for line in lines:
        match = REACH_LINE.match(line)
        out[match["machine"] if match else line.split()[0].rstrip(":")] = line
    return out


def with_unreachable(by_machine, lines):
    """`by_machine` ({machine: [(check, item, outcome, message)]}) with the check REACHED: failed, with its
    line, for each machine of `lines` ({machine: line}, unreachable()); passed for every machine the grader's
    checks ran on, when some machine could not be reached (a practice test's student is no machine)."""
    out = {machine: list(checks) for machine, checks in by_machine.items()}
    if not lines:
        return out
    for machine, checks in out.items():
        if machine not in lines and any(not check.startswith(PRACTICE) for check, *_ in checks):
            checks.insert(0, (REACHED, "", "passed", ""))
    for machine, line in lines.items():
        out.setdefault(machine, []).insert(0, (REACHED, "", "failed", line))
    return out


def load_students(source):
    """{machine: student} from a JSON file (source "-": standard input); ValueError says what is wrong."""
    try:
        if source == "-":
            data = json.load(sys.stdin)
        else:
            with open(source, encoding="utf-8") as handle:
                data = json.load(handle)
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError("cannot read it: %s" % exc) from None
    if not isinstance(data, dict):
        raise ValueError("not a JSON object {machine: student}")
    bad = sorted(str(k) for k, v in data.items() if not isinstance(v, str) or not v)
    if bad:
        raise ValueError("not a student's name (a non-empty string) for %s" % ", ".join(bad))
    return data


def _natural(text):
    """A sort key that puts student2 before student10."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)], text


def _check_order(check):
    """Whether the grader reached the machines, the grader's checks by name, then the practice tests."""
    return check != REACHED, check.startswith(PRACTICE), _natural(check)


@dataclass
class Cell:
    """What one student got for one check: the items, [(machine, item, outcome, message)]."""

    cases: list = field(default_factory=list)

    def count(self, outcome):
        return sum(1 for case in self.cases if case[2] == outcome)

    @property
    def state(self):
        """passed (every item counted passes), failed (none does), partial, skipped (every item), or none."""
        passed, failed = self.count("passed"), self.count("failed")
        if failed:
            return "partial" if passed else "failed"
        if passed:
            return "passed"
        return "skipped" if self.cases else "none"

    @property
    def text(self):
        """"3/4": items passed of the items counted (a skipped item is not counted)."""
        counted = self.count("passed") + self.count("failed")
        return "%d/%d" % (self.count("passed"), counted) if counted else ("skipped" if self.cases else "")


@dataclass
class Room:
    """The matrix: `students` and `checks` in the page's order, {(student, check): Cell}, {student: [machine]}."""

    students: list
    checks: list
    cells: dict
    machines: dict

    def cell(self, student, check):
        return self.cells.get((student, check)) or Cell()

    def student_total(self, student):
        """(checks passed, checks graded) of a student: a check passes when all its items do."""
        states = [self.cell(student, check).state for check in self.checks]
        return states.count("passed"), sum(1 for s in states if s in ("passed", "failed", "partial"))

    def check_total(self, check):
        """(students who pass it, students graded on it)."""
        states = [self.cell(student, check).state for student in self.students]
        return states.count("passed"), sum(1 for s in states if s in ("passed", "failed", "partial"))

    def item_total(self, student):
        """(items passed, items counted) of a student, over every check."""
        cells = [self.cell(student, check) for check in self.checks]
        passed = sum(c.count("passed") for c in cells)
        return passed, passed + sum(c.count("failed") for c in cells)


def room(by_machine, students=None):
    """The Room of `by_machine` ({machine: [(check, item, outcome, message)]}, results()), each machine the
    student `students` ({machine: student}) names, or a student of its own."""
    students = students or {}
    cells, machines = defaultdict(Cell), defaultdict(set)
    for machine, checks in by_machine.items():
        student = students.get(machine, machine)
        machines[student].add(machine)
        for check, item, outcome, message in checks:
            cells[(student, check)].cases.append((machine, item, outcome, message))
    for cell in cells.values():
        cell.cases.sort(key=lambda case: (_natural(case[0]), _natural(case[1])))
    return Room(students=sorted(machines, key=_natural),
                checks=sorted({check for _, check in cells}, key=_check_order),
                cells=dict(cells), machines={s: sorted(m, key=_natural) for s, m in machines.items()})


def _label(student, machine, item):
    """How an item is named in a student's cell: its machine only when that is not the student's own name."""
    return ": ".join(part for part in (machine if machine != student else "", item) if part) or machine


def _state_of(passed, graded):
    return "none" if not graded else "passed" if passed == graded else "failed" if not passed else "partial"


def _cell_html(student, check, cell):
    state, esc = cell.state, html.escape
    if state == "none":
        return '<td class="cell none" title="not graded"></td>'
    shown = [case for case in cell.cases if case[2] != "passed"]
    data = ' data-passed="%d" data-counted="%d"' % (cell.count("passed"), cell.count("passed") + cell.count("failed"))
    if not shown:
        names = [_label(student, machine, item) for machine, item, _, _ in cell.cases]
        if len(names) > TITLE_LINES:
            names = names[:TITLE_LINES] + ["and %d more" % (len(names) - TITLE_LINES)]
        return '<td class="cell passed"%s title="%s">%s</td>' % (
            data, esc("%s: every item passes (%s)" % (check, ", ".join(names))), esc(cell.text))
    lines = ["%s%s - %s" % ("skipped: " if outcome == "skipped" else "", _label(student, machine, item),
                            message or "no message")
             for machine, item, outcome, message in shown]
    if len(lines) > TITLE_LINES:
        lines = lines[:TITLE_LINES] + ["... and %d more: click the cell" % (len(lines) - TITLE_LINES)]
    items = "".join('<li class="%s"><b>%s</b> %s</li>' % (outcome, esc(_label(student, machine, item)),
                                                            esc(message or "no message"))
                    for machine, item, outcome, message in shown)
    return '<td class="cell %s"%s title="%s"><details><summary>%s</summary><ul>%s</ul></details></td>' % (
        state, data, esc("\n".join(lines)), esc(cell.text), items)


STYLE = """
body{font-family:system-ui,sans-serif;margin:1em;color:#111}
table.room{border-collapse:collapse}
th,td{border:1px solid #bbb;padding:3px 7px;text-align:center;vertical-align:top}
thead th{position:sticky;top:0;background:#fff}
thead th.check{vertical-align:bottom;font-weight:normal}
thead th.check div{writing-mode:vertical-rl;transform:rotate(180deg);text-align:left;max-height:12em}
thead th.practice{font-style:italic;background:#eef}
tbody th,tfoot th{text-align:left;white-space:nowrap;position:sticky;left:0;background:#fff}
td.passed,.legend .passed{background:#bfe8bf}
td.failed,.legend .failed{background:#f4b8b8}
td.partial,.legend .partial{background:#fbe0a0}
td.skipped,.legend .skipped{background:#eee;color:#666}
td.total,td.check-total,td.room-total{font-weight:bold}
tfoot th,tfoot td{border-top:2px solid #555}
details summary{cursor:pointer}
details ul{margin:4px 0;padding-left:1.2em;text-align:left;min-width:18em;max-width:36em;font-size:smaller;
  white-space:normal}
li.skipped{color:#666}
.legend span{padding:1px 6px;border:1px solid #bbb}
"""


def render(by_machine, students=None, title="Lab checks"):
    """The page of `by_machine` ({machine: [(check, item, outcome, message)]}, results()): one row per student
    of `students` ({machine: student}; without it, per machine), one column per check, a total per student
    (checks passed/graded) and per check (students who pass it/students graded); every text escaped."""
    esc, board = html.escape, room(by_machine, students)
    head = "".join('<th scope="col" class="check%s" title="%s"><div>%s</div></th>' % (
        " practice" if check.startswith(PRACTICE) else "", esc(check), esc(check)) for check in board.checks)
    rows = []
    for student in board.students:
        passed, graded = board.student_total(student)
        items_passed, items = board.item_total(student)
        rows.append('<tr data-student="%s"><th scope="row" title="%s">%s</th>%s'
                    '<td class="total %s" data-passed="%d" data-total="%d" title="%s">%d/%d</td></tr>' % (
                        esc(student), esc("machines: " + ", ".join(board.machines[student])), esc(student),
                        "".join(_cell_html(student, check, board.cell(student, check)) for check in board.checks),
                        _state_of(passed, graded), passed, graded,
                        esc("%s: %d of %d checks pass (%d of %d items)" % (student, passed, graded,
                                                                           items_passed, items)),
                        passed, graded))
    totals = []
    for check in board.checks:
        passed, graded = board.check_total(check)
        totals.append('<td class="check-total %s" data-check="%s" data-passed="%d" data-total="%d" title="%s">'
                      '%d/%d</td>' % (_state_of(passed, graded), esc(check), passed, graded,
                                      esc("%s: %d of %d students pass" % (check, passed, graded)), passed, graded))
    everything = sum(1 for student in board.students
                     if board.student_total(student)[0] == board.student_total(student)[1] > 0)
    practice = sum(1 for check in board.checks if check.startswith(PRACTICE))
    summary = "%d student%s, %d check%s%s; %d of %d pass%s every check." % (
        len(board.students), "" if len(board.students) == 1 else "s", len(board.checks) - practice,
        "" if len(board.checks) - practice == 1 else "s",
        " and %d practice test%s" % (practice, "" if practice == 1 else "s") if practice else "",
        everything, len(board.students), "es" if everything == 1 else "")
    table = ('<table class="room"><thead><tr><th scope="col">student</th>%s<th scope="col">checks passed</th></tr>'
             '</thead><tbody>%s</tbody><tfoot><tr><th scope="row">students passing</th>%s'
             '<td class="room-total %s" data-passed="%d" data-total="%d" title="students who pass every check">'
             '%d/%d</td></tr></tfoot></table>' % (
                 head, "".join(rows), "".join(totals), _state_of(everything, len(board.students)),
                 everything, len(board.students), everything, len(board.students)))
    return ('<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1"><title>%s</title><style>%s</style>'
            '</head><body><h1>%s</h1><p class="summary">%s</p><p class="legend">A cell is items passed of items '
            'graded: <span class="passed">all pass</span> <span class="partial">some fail</span> '
            '<span class="failed">all fail</span> <span class="skipped">skipped</span>. Point at a cell to see '
            'why it fails, or tap it.</p>%s</body></html>\n' % (
                esc(title), STYLE, esc(title), esc(summary),
                table if board.students else "<p>No results in these reports.</p>"))


def _csv_text(value):
    """A CSV field a spreadsheet shows as text (OWASP: a field starting with = + - @ would be a formula)."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def csv_rows(by_machine, students=None):
    """[(student, machine, check, item, outcome, message)] of `by_machine` (results()), in the page's order."""
    students = students or {}
    rows = [(students.get(machine, machine), machine, check, item, outcome, message)
            for machine, checks in by_machine.items() for check, item, outcome, message in checks]
    return sorted(rows, key=lambda r: (_natural(r[0]), _check_order(r[2]), _natural(r[1]), _natural(r[3]), r[4:]))


def write_csv(path, rows):
    """Write `rows` (csv_rows()) as CSV with a header line, every field text to a spreadsheet."""
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_FIELDS)
        writer.writerows([_csv_text(str(value)) for value in row] for row in rows)


def main(argv):
    parser = argparse.ArgumentParser(prog="scoreboard.py", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("reports", nargs="+", metavar="IN.xml", help="a JUnit report (the grader's, a practice's)")
    parser.add_argument("page", metavar="OUT.html", help="the page to write")
    parser.add_argument("--students", metavar="FILE.json", help='{machine: student} as JSON ("-": standard input)')
    parser.add_argument("--unreachable", metavar="FILE", help="the grader's lines for machines it could not reach")
    parser.add_argument("--csv", metavar="OUT.csv", help="also write the results as CSV, one line per item")
    parser.add_argument("--title", default="Lab checks", help="the page's title (default: %(default)s)")
    args = parser.parse_intermixed_args(argv[1:])
    try:
        students = load_students(args.students) if args.students else {}
    except ValueError as exc:
        parser.error("--students %s: %s" % (args.students, exc))
    by_machine = defaultdict(list)
    for report in args.reports:
        try:
            found = results(report)
        except (OSError, ET.ParseError) as exc:
            parser.error("%s is not a readable JUnit XML report: %s" % (report, exc))
        for machine, checks in found.items():
            by_machine[machine].extend(checks)
    if args.unreachable:
        try:
            by_machine = with_unreachable(by_machine, unreachable(args.unreachable))
        except OSError as exc:
            parser.error("--unreachable %s: cannot read it: %s" % (args.unreachable, exc))
    with open(args.page, "w", encoding="utf-8") as out:
        out.write(render(by_machine, students, args.title))
    if args.csv:
        write_csv(args.csv, csv_rows(by_machine, students))


if __name__ == "__main__":
    main(sys.argv)
