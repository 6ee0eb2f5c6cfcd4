"""The HTML leaderboard in a real browser: the table renders, every image decodes, sorting works.

Needs the Debian `chromium` package (CI installs it in .ci/run); skipped with that reason if absent.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from leaderboard import build_leaderboard
from results_fixtures import realistic_suite, write_all

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="headless test needs the Debian 'chromium' package (apt-get install -y chromium)")

# Clicks sortable headers after the page has loaded and records the row order each time.
_SORT_PROBE = """
<script>
window.addEventListener('load', function () {
  function order() {
    return Array.prototype.map.call(document.querySelectorAll('#leaderboard tbody tr'), function (r) { return r.cells[0].textContent; });
  }
  var heads = document.querySelectorAll('#leaderboard thead th'), seen = {};
  heads[2].click(); seen.best_asc = order();
  heads[2].click(); seen.best_desc = order();
  heads[5].click(); seen.ic_asc = order();
  heads[5].click(); seen.ic_desc = order();
  seen.aria = heads[5].getAttribute('aria-sort');
  var pre = document.createElement('pre'); pre.id = 'sortprobe'; pre.textContent = JSON.stringify(seen);
  document.body.appendChild(pre);
});
</script>
"""


def _dump_dom(page, tmp_path) -> str:
    cmd = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=10000", "--dump-dom", page.as_uri(),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def _pre(dom: str, pre_id: str) -> dict:
    m = re.search(rf'<pre id="{pre_id}"[^>]*>(.*?)</pre>', dom, re.S)
    assert m, f"#{pre_id} missing from the rendered page"
    return json.loads(m.group(1))


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    root = tmp_path_factory.mktemp("html")
    paths = build_leaderboard(write_all(root / "results", realistic_suite()), root / "out")
    return paths["html"], sum(k.startswith("plot:") for k in paths)


def test_table_renders_and_images_load(page, tmp_path):
    html_path, n_plots = page
    state = _pre(_dump_dom(html_path, tmp_path), "selftest")
    assert state == {"rows": 2, "images": n_plots, "loaded": n_plots}


def test_headers_sort_rows(page, tmp_path):
    html_path, _ = page
    probe = tmp_path / "probe.html"
    probe.write_text(html_path.read_text().replace("</body>", _SORT_PROBE + "</body>"))
    seen = _pre(_dump_dom(probe, tmp_path), "sortprobe")
    # PR best-layer PER: HuBERT 20 < fbank 30.
    assert seen["best_asc"] == ["HuBERT tiny", "fbank"] and seen["best_desc"] == ["fbank", "HuBERT tiny"]
    # fbank has no IC score: it stays last in both directions.
    assert seen["ic_asc"] == seen["ic_desc"] == ["HuBERT tiny", "fbank"]
    assert seen["aria"] == "descending"
