"""The classroom's scoreboard (checks/scoreboard.py) as headless Chromium shows it: a screenshot of the room of
tests/unit/scoreboard_room.py (three students, four checks, a practice test, a machine the grader could not
reach) in the colours of its cells, and every total read back from the page as the browser parsed it
(--dump-dom: the browser's own tree, after its parser moved anything a table cannot hold)."""
import os
import shutil
import struct
import subprocess
import zlib

import pytest

from scoreboard_room import CELLS, CHECK_TOTALS, COLUMNS, ROOM_TOTAL, STUDENT_TOTALS, Page, counts, render_room

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH to render the scoreboard in: "
                                                         "install Debian's package chromium (scripts/setup does)")
WIDTH, HEIGHT = 800, 500  # the room's table is about 730 x 460 pixels
# The cells' colours (checks/scoreboard.py's STYLE).
COLOURS = {"passed": (0xbf, 0xe8, 0xbf), "failed": (0xf4, 0xb8, 0xb8), "partial": (0xfb, 0xe0, 0xa0)}


def chromium(profile, *args):
    """Run headless Chromium with a profile of its own in `profile`; its CompletedProcess."""
    argv = [CHROMIUM, "--headless", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
            "--user-data-dir=%s" % profile, *args]
    if os.geteuid() == 0:
        argv.insert(1, "--no-sandbox")  # Chromium refuses to run as root with its sandbox
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)


def png_pixels(data):
    """(width, height, {(r, g, b): pixels}) of an 8-bit RGB or RGBA PNG that is not interlaced (Chromium's)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    position, compressed, header = 8, b"", None
    while position < len(data):
        length, kind = struct.unpack(">I4s", data[position:position + 8])
        body = data[position + 8:position + 8 + length]
        position += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            compressed += body
    width, height, depth, colour_type, _, _, interlace = header
    assert depth == 8 and colour_type in (2, 6) and interlace == 0, header
    size = 3 if colour_type == 2 else 4
    raw, stride = zlib.decompress(compressed), width * size
    previous, histogram = bytearray(stride), {}
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        for x in range(stride):  # PNG's filters: none, sub, up, average, Paeth
            left = line[x - size] if x >= size else 0
            up, corner = previous[x], previous[x - size] if x >= size else 0
            if kind == 1:
                line[x] = (line[x] + left) & 0xff
            elif kind == 2:
                line[x] = (line[x] + up) & 0xff
            elif kind == 3:
                line[x] = (line[x] + (left + up) // 2) & 0xff
            elif kind == 4:
                guess = left + up - corner
                near = min((abs(guess - left), 0, left), (abs(guess - up), 1, up), (abs(guess - corner), 2, corner))
                line[x] = (line[x] + near[2]) & 0xff
        for x in range(0, stride, size):
            pixel = tuple(line[x:x + 3])
            histogram[pixel] = histogram.get(pixel, 0) + 1
        previous = line
    return width, height, histogram


def test_chromium_shows_the_rooms_matrix_in_colour_and_every_total(tmp_path):
    page = render_room(tmp_path)
    url = page.resolve().as_uri()
    screenshot = tmp_path / "scoreboard.png"

    shot = chromium(tmp_path / "profile", "--window-size=%d,%d" % (WIDTH, HEIGHT), "--screenshot=%s" % screenshot,
                    url)
    assert shot.returncode == 0 and screenshot.is_file(), shot.stderr[-2000:]
    assert 5_000 < screenshot.stat().st_size < 5_000_000, screenshot.stat().st_size
    width, height, histogram = png_pixels(screenshot.read_bytes())
    assert (width, height) == (WIDTH, HEIGHT)
    # Each kind of cell painted in its colour (a cell is about 55 x 25 pixels).
    for state, colour in COLOURS.items():
        assert histogram.get(colour, 0) > 1000, (state, histogram.get(colour, 0))

    dumped = chromium(tmp_path / "profile", "--dump-dom", url)
    assert dumped.returncode == 0 and "</table>" in dumped.stdout, dumped.stderr[-2000:]
    shown = Page(dumped.stdout)

    assert shown.columns == COLUMNS
    assert shown.student_totals == STUDENT_TOTALS
    assert shown.check_totals == CHECK_TOTALS
    assert shown.room_total == ROOM_TOTAL
    assert {s: {c: cell[:2] for c, cell in row.items()} for s, row in shown.cells.items()} == CELLS
    # Each student's total is the count of the cells of that row that pass, as laid out.
    for student, row in shown.cells.items():
        graded = [state for state, *_ in row.values() if state in ("passed", "failed", "partial")]
        assert counts(shown.student_totals[student]) == (graded.count("passed"), len(graded))
    # The message with <script> in it is text, and no script ran or exists.
    assert shown.scripts == 0
    assert shown.cells["student03"]["host forwards packets"][3] == [
        's03-netns <script>alert(1)</script> forwarding is off & "quoted"']
