#!/usr/bin/env python3
"""Turn the checks' JUnit XML into an HTML scoreboard: one row per machine, one
line per check, so an instructor sees at a glance whose lab is right. Several
reports (the grader's and the practice tests', cka-lab practice) make one page.

    python checks/scoreboard.py reports/checks.xml reports/scoreboard.html
    python checks/scoreboard.py reports/checks.xml reports/practice-202.xml reports/room.html
"""
import html
import re
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict

# Test ids are "test_name[machine]" or "test_name[machine: item]" (checks/conftest.py).
TEST_ID = re.compile(r"^(?P<test>[^\[]+)\[(?P<machine>[^:\]]+)(?::\s*(?P<item>.*))?\]$")


def results(junit_path):
    """{machine: [(check, item, outcome, message)]} from a JUnit XML report."""
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
                message = (element.get("message") or "").splitlines()[0][:300] if element.get("message") else ""
                break
        check = match["test"].removeprefix("test_").replace("_", " ")
        by_machine[match["machine"]].append((check, match["item"] or "", outcome, message))
    return by_machine


def render(by_machine):
    rows = []
    for machine in sorted(by_machine):
        checks = by_machine[machine]
        counted = [c for c in checks if c[2] != "skipped"]
        passed = sum(1 for c in counted if c[2] == "passed")
        lines = "".join(
            '<tr class="%s"><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>' % (
                outcome, html.escape(check), html.escape(item), outcome, html.escape(message))
            for check, item, outcome, message in checks)
        rows.append('<h2>%s: %d of %d checks pass</h2><table><tr><th>check</th><th>item</th><th>result</th>'
                    '<th>why</th></tr>%s</table>' % (html.escape(machine), passed, len(counted), lines))
    return ("<!doctype html><html><head><meta charset='utf-8'><title>Lab checks</title><style>"
            "body{font-family:sans-serif} table{border-collapse:collapse} td,th{padding:2px 8px;text-align:left}"
            ".passed td:nth-child(3){color:#070} .failed td:nth-child(3){color:#b00;font-weight:bold}"
            ".skipped{color:#888}</style></head><body><h1>Lab checks</h1>%s</body></html>\n" % "".join(rows))


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    by_machine = defaultdict(list)
    for report in argv[1:-1]:
        for machine, checks in results(report).items():
            by_machine[machine].extend(checks)
    with open(argv[-1], "w", encoding="utf-8") as out:
        out.write(render(by_machine))


if __name__ == "__main__":
    main(sys.argv)
