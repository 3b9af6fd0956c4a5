"""QA page cost, weight and time to first render on the benchmark study.

Measures, on the 512 x 512 x N study of ``make_study.py`` (DICOM CT + SEG, liver + 40 lesions):

* ``netlm analyze`` vs ``netlm analyze --html``, fresh processes, interleaved (min and median);
* the page's size and what it says was downsampled;
* time to first render in headless Chromium (selenium + chromium-driver) and Firefox ESR
  (Marionette): ``performance.now()`` when the viewer has decoded its data and drawn the three
  views, i.e. milliseconds after the page started loading (min and median of fresh browsers).

Usage::

    python benchmarks/html_page.py [--slices 200] [--repeat 3]
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, netlm_script, run_child, warm_page_cache
from make_study import make_study

sys.path.insert(0, str(ROOT / "tests"))


def _stats(values: list[float]) -> str:
    return f"min {min(values):.2f}, median {statistics.median(values):.2f}"


def _first_render_chromium(page: Path) -> float:
    from browsers import chromium
    from selenium.webdriver.support.ui import WebDriverWait

    with chromium() as d:
        d.get(page.as_uri())
        WebDriverWait(d, 300).until(lambda d: d.execute_script("return window.netlmViewer !== undefined"))
        return float(d.execute_script("return window.netlmViewer.readyMs"))


def _first_render_firefox(page: Path) -> float:
    from browsers import firefox

    with firefox() as ff:
        ff.navigate(page.as_uri())
        return float(ff.execute("return window.netlmViewer.readyMs"))


def main(argv: list[str] | None = None) -> int:
    """Run the measurements and print them."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--slices", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args(argv)
    paths = make_study(a.slices)
    warm_page_cache([paths.dicom_dir])
    plain: list[float] = []
    with_html: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        base = [netlm_script(), "analyze", str(paths.dicom_dir), "--quiet"]
        run_child([*base, "--out", str(out / "warm")])  # warm-up, discarded
        for n in range(a.repeat):
            for html in (n % 2 == 0, n % 2 == 1):  # alternate which goes first
                run = run_child([*base, "--out", str(out / "p"), *(["--html"] if html else [])])
                if run.returncode != 0:
                    raise SystemExit(run.stderr)
                (with_html if html else plain).append(run.wall_s)
        page = out / "p" / "report.html"
        size_mb = page.stat().st_size / 1e6
        block = re.search(r'id="viewer-notes">(.*?)</ul>', page.read_text(), re.S)
        notes = re.findall(r"<li>(.*?)</li>", block.group(1)) if block else []
        chrome = [_first_render_chromium(page) for _ in range(a.repeat)]
        fox = [_first_render_firefox(page) for _ in range(a.repeat)]
    print(f"study {paths.dicom_dir.parent.name}: 512 x 512 x {a.slices}, 40 lesions ({time.strftime('%Y-%m-%d')})")
    print(f"netlm analyze         (s): {_stats(plain)}")
    print(f"netlm analyze --html  (s): {_stats(with_html)}")
    print(
        f"--html extra          (s): min {min(with_html) - min(plain):.2f}, "
        f"median {statistics.median(with_html) - statistics.median(plain):.2f}  (target <= 1 s)"
    )
    print(f"page weight          (MB): {size_mb:.1f}  (budget 25)")
    for n in notes:
        print("  " + n.strip())
    print(f"first render Chromium (ms): {_stats(chrome)}")
    print(f"first render Firefox  (ms): {_stats(fox)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
