"""The HTML scoreboard built from the checks' JUnit XML."""
import importlib.util
import pathlib

SPEC = importlib.util.spec_from_file_location(
    "scoreboard", pathlib.Path(__file__).resolve().parents[2] / "checks" / "scoreboard.py")
scoreboard = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(scoreboard)

JUNIT = """<?xml version="1.0"?><testsuites><testsuite name="pytest">
<testcase classname="c" name="test_namespace_exists_with_loopback_up[student01-lab: red]"/>
<testcase classname="c" name="test_host_forwards_packets[student01-lab]">
  <failure message="AssertionError: assert '0' == '1'&#10;more">trace</failure></testcase>
<testcase classname="c" name="test_host_forwards_packets[student02-lab]"/>
<testcase classname="c" name="test_first_stage_cable_joins_the_two_namespaces[student02-lab]">
  <skipped message="the full stage replaces the cable"/></testcase>
<testcase classname="c" name="test_node_listens_on_its_role_port[NOTSET]"><skipped message="empty"/></testcase>
</testsuite></testsuites>"""


def test_results_are_grouped_by_machine_with_item_and_first_line_of_the_reason(tmp_path):
    report = tmp_path / "checks.xml"
    report.write_text(JUNIT)

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


def test_page_counts_passed_checks_without_skips(tmp_path):
    report = tmp_path / "checks.xml"
    report.write_text(JUNIT)

    page = scoreboard.render(scoreboard.results(report))

    assert "<h2>student01-lab: 1 of 2 checks pass</h2>" in page
    assert "<h2>student02-lab: 1 of 1 checks pass</h2>" in page
    assert "NOTSET" not in page


def test_the_graders_report_and_a_practice_tests_make_one_page(tmp_path):
    checks = tmp_path / "checks.xml"
    checks.write_text(JUNIT)
    practice = tmp_path / "practice-202.xml"
    practice.write_text('<?xml version="1.0"?><testsuites><testsuite name="practice 202">'
                        '<testcase classname="p" name="test_practice_202[student01-lab: bridge-address]"/>'
                        '<testcase classname="p" name="test_practice_202[student01-lab: gateway-to-lan]">'
                        '<failure message="wrong: 10.0.0.1 - see `ip netns exec blue ip route`"/></testcase>'
                        '</testsuite></testsuites>')
    page = tmp_path / "room.html"
    scoreboard.main(["scoreboard.py", str(checks), str(practice), str(page)])

    text = page.read_text()
    assert "student01-lab: 2 of 4 checks pass" in text and "student02-lab: 1 of 1 checks pass" in text
    assert "practice 202" in text and "wrong: 10.0.0.1 - see `ip netns exec blue ip route`" in text
