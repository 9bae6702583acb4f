"""The review report renders in a real headless Chromium, offline, with every section.

Chromium comes from Debian's ``chromium`` package: installed here when missing and we are
root; otherwise the test is skipped with the reason.
"""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from pipeline import review
from pipeline.report import write_report
from pipeline.report.html import anchor
from pipeline.warehouse import connect
from tests.fixtures.review_seed import seed_upstream

CHROMIUM = Path("/usr/bin/chromium")
SECTIONS = ("summary", "by-check", "by-site", "by-site-type", "plots", "queue", "sessions", "quality")


def _chromium() -> Path:
    if CHROMIUM.exists():
        return CHROMIUM
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.skip("chromium missing and cannot be installed (not root or no apt-get)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    done = subprocess.run(["apt-get", "install", "-y", "chromium"], capture_output=True, env=env,
                          timeout=600, check=False)
    if done.returncode != 0:
        subprocess.run(["apt-get", "update"], capture_output=True, env=env, timeout=300, check=False)
        done = subprocess.run(["apt-get", "install", "-y", "chromium"], capture_output=True,
                              env=env, timeout=600, check=False)
    if not CHROMIUM.exists():
        pytest.skip(f"chromium could not be installed: {done.stderr.decode()[-300:]}")
    return CHROMIUM


def _headless(chromium: Path, profile: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(chromium), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={profile}", "--window-size=1280,2000", *args],
        capture_output=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    from assets.marts import build_marts

    tmp = tmp_path_factory.mktemp("report")
    with connect(tmp / "w.duckdb") as conn:
        seed_upstream(conn)
        review.sync_review(conn)
        build_marts(conn)
        review.set_status(conn, "sk-1", "confirmed", note="refund <script>alert(1)</script>",
                          reviewer="ana")
        return write_report(conn, tmp / "reports")


def test_report_is_self_contained(report):
    # xmlns values name XML vocabularies; they are never fetched
    page = re.sub(r'xmlns(:\w+)?="[^"]*"', "", report.read_text())
    # nothing fetched from anywhere: no URL-bearing attributes or CSS imports
    for needle in ("http://", "https://", "src=", "@import", "<link"):
        assert needle not in page, needle
    assert "<script>alert(1)</script>" not in page        # user text is escaped


def test_report_renders_in_headless_chromium(report, tmp_path):
    chromium = _chromium()
    dom = _headless(chromium, tmp_path / "profile-dom", "--dump-dom", report.as_uri())
    assert dom.returncode == 0, dom.stderr.decode()[-500:]
    html = dom.stdout.decode()
    for section in SECTIONS:
        assert f'id="{section}"' in html, section
    for figure in ("plot-drift", "plot-ems", "plot-money"):
        start = html.index(f'id="{figure}"')
        assert "<svg" in html[start:start + 400], figure
    assert html.count('class="queue-row"') == 5
    assert html.index(">sk-3<") < html.index(">sk-1<")           # most money at risk first
    assert f'id="{anchor("sk-1")}"' in html and 'href="#item-sk-1"' in html
    assert "cost_mismatch" in html and "tolerance" in html       # evidence in the drill-down
    assert "ocpp_energy_kwh" in html                             # the lineage row

    shot = tmp_path / "shot.png"
    run = _headless(chromium, tmp_path / "profile-shot", f"--screenshot={shot}", report.as_uri())
    assert run.returncode == 0 and shot.exists(), run.stderr.decode()[-500:]
    assert shot.stat().st_size > 30_000
    import matplotlib.image as mpimg

    pixels = mpimg.imread(shot)
    assert pixels.shape[:2] == (2000, 1280)
    rgb = pixels[..., :3].reshape(-1, 3)
    assert rgb.std(axis=0).max() > 0.05                          # not one flat colour
    dark_header = pixels[20, 20, :3]
    assert dark_header.max() < 0.3                               # the CSS was applied
