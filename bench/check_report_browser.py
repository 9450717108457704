"""Open a report.html in headless Chromium and check that it renders cleanly.

Checks: no console errors, no page (JavaScript) errors, no failed or external
requests (the report must be self-contained), and every <img> decoded
(``naturalWidth > 0``) with a non-empty bounding box. Writes
``<report>.browser-check.json`` and a full-page ``<report>.screenshot.png`` next to
the report and exits with 1 if any check fails.

Needs the ``playwright`` Python package (``pip install playwright``; not a
dependency of fairreprogram) and a Chromium binary (``apt-get install chromium``).
It drives that binary directly: do not run ``playwright install``.

    .venv/bin/python bench/check_report_browser.py sweeps/tiny/report.html
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

_IMAGES_JS = """
() => Array.from(document.images).map((img, index) => {
  const box = img.getBoundingClientRect();
  const style = window.getComputedStyle(img);
  return {
    index,
    alt: img.alt,
    complete: img.complete,
    naturalWidth: img.naturalWidth,
    naturalHeight: img.naturalHeight,
    width: box.width,
    height: box.height,
    displayed: style.display !== "none" && style.visibility !== "hidden" && Number(style.opacity) > 0,
    srcPrefix: img.src.slice(0, 22),
  };
})
"""


def _local(url: str) -> bool:
    return url.startswith(("file://", "data:", "about:"))


def check(report: Path, *, executable: str, width: int = 1280, timeout_ms: int = 30_000) -> dict[str, Any]:
    """Render ``report`` and return the findings (also saving the screenshot)."""
    from playwright.sync_api import sync_playwright

    console_errors: list[str] = []
    page_errors: list[str] = []
    failed: list[str] = []
    external: list[str] = []
    screenshot = report.with_suffix(".screenshot.png")
    tic = time.perf_counter()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": width, "height": 900})
        page.on("console", lambda msg: console_errors.append(msg.text) if msg.type == "error" else None)
        page.on("pageerror", lambda error: page_errors.append(str(error)))
        page.on("requestfailed", lambda request: failed.append(f"{request.url} ({request.failure})"))
        page.on("request", lambda request: None if _local(request.url) else external.append(request.url))
        page.goto(report.resolve().as_uri(), wait_until="load", timeout=timeout_ms)
        images = page.evaluate(_IMAGES_JS)
        title = page.title()
        headings = page.eval_on_selector_all("h2", "nodes => nodes.map(n => n.textContent)")
        page_height = page.evaluate("() => document.documentElement.scrollHeight")
        page.screenshot(path=str(screenshot), full_page=True)
        browser.close()
    visible = [
        img
        for img in images
        if img["naturalWidth"] > 0 and img["width"] > 0 and img["height"] > 0 and img["displayed"]
    ]
    ok = not (console_errors or page_errors or failed or external) and len(visible) == len(images) > 0
    return {
        "report": str(report),
        "ok": ok,
        "title": title,
        "sections": headings,
        "images": len(images),
        "images_visible": len(visible),
        "image_details": images,
        "console_errors": console_errors,
        "page_errors": page_errors,
        "failed_requests": failed,
        "external_requests": external,
        "page_height_px": page_height,
        "screenshot": str(screenshot),
        "wall_time_s": round(time.perf_counter() - tic, 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path, help="Path of the report.html to check.")
    parser.add_argument("--chromium", default="/usr/bin/chromium", help="Chromium executable.")
    parser.add_argument("--width", type=int, default=1280, help="Viewport width in CSS pixels.")
    args = parser.parse_args(argv)
    if not args.report.is_file():
        parser.error(f"report={str(args.report)!r} does not exist; expected the path of a report.html.")
    result = check(args.report, executable=args.chromium, width=args.width)
    out = args.report.with_suffix(".browser-check.json")
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    summary = {k: result[k] for k in ("ok", "images", "images_visible", "console_errors", "page_errors")}
    print(json.dumps(summary), f"\nwrote {out} and {result['screenshot']}")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
