"""Speed of the "Try it in your browser" page in headless Chromium: time per image and bytes loaded.

    jupyter-book build . -W -n --keep-going            # the site, with the exported models
    python benchmarks/browser_speed.py                 # prints the table, writes results/browser_speed.json

The built site (``--site``, default ``_build/html``) is served on 127.0.0.1 and opened in Debian's
Chromium (``/usr/bin/chromium``, driven by playwright) with every request off the site blocked.
For each model of the page: the time to fetch it and create its ONNX Runtime session, its first
run, and its warm runs (median and 90th percentile over ``--images`` bundled test images), all
measured inside the page (``performance.now()`` around ``session.run``). The page's load size is
every byte the browser fetched until the first result was shown, split into the runtime, the
first model and the rest of the page.
"""
from __future__ import annotations

import argparse
import functools
import http.server
import json
import os
import shlex
import statistics
import sys
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
from cifar_quick import cpu_name  # noqa: E402  (the processor's name, as the other benchmarks record it)
from metaformer_mini._io import write_json  # noqa: E402
from metaformer_mini._names import flag  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PAGE = "book/try_in_browser.html"


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def wait_for_run(page, runs: int, model: str) -> dict:
    """Wait until the page has shown result number ``runs``, from ``model``; return its record."""
    page.wait_for_function(f"window.tryit && window.tryit.runs >= {runs} && "
                           f"window.tryit.last.model === {json.dumps(model)}", timeout=120_000)
    return page.evaluate("window.tryit.last")


def measure(site: Path, images: int) -> dict:
    """Open the page in Chromium; return the load size and, per model, load, first and warm times."""
    from playwright.sync_api import sync_playwright

    manifest = json.loads((site / "_static" / "tryit" / "models" / "manifest.json").read_text())
    rows = [entry["row"] for entry in manifest["models"]]
    if not rows:
        raise ValueError(f"{site} holds no exported models: build the site with checkpoints in results/checkpoints")
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(site)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    server = f"http://127.0.0.1:{httpd.server_address[1]}/"
    fetched: dict[str, int] = {}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(server)
                       else route.abort())
            page.on("requestfinished", lambda request: fetched.setdefault(
                request.url, request.sizes()["responseBodySize"]))
            page.goto(server + PAGE)
            first = wait_for_run(page, 1, rows[0])
            load = dict(fetched)
            buttons = page.locator(".tryit-gallery button")
            runs, models = 1, {}
            for row in rows:
                if row != rows[0]:
                    page.check(f'input[name="tryit-model"][value="{row}"]')
                    runs += 1
                    first = wait_for_run(page, runs, row)
                warm = []
                for i in range(1, images + 1):
                    buttons.nth(i % buttons.count()).click()
                    runs += 1
                    warm.append(wait_for_run(page, runs, row)["runMs"])
                models[row] = {"load_ms": round(first["loadMs"], 1), "first_run_ms": round(first["runMs"], 2),
                               "warm_ms_median": round(statistics.median(warm), 2),
                               "warm_ms_p90": round(sorted(warm)[int(0.9 * (len(warm) - 1))], 2),
                               "model_bytes": next(e["bytes"] for e in manifest["models"] if e["row"] == row)}
                if row == rows[0]:
                    models[row]["first_result_after_navigation_ms"] = round(first["at"], 1)
            version = browser.version
            browser.close()
    finally:
        httpd.shutdown()
        httpd.server_close()
    runtime = sum(size for url, size in load.items() if "/onnxruntime-web/" in url)
    model = sum(size for url, size in load.items() if url.endswith(".onnx"))
    return {"chromium": version, "models": models,
            "page_load_bytes": {"total": sum(load.values()), "onnxruntime_web": runtime, "first_model": model,
                                "rest": sum(load.values()) - runtime - model, "requests": len(load)}}


def main(argv: Optional[list[str]] = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--site", default=str(ROOT / "_build" / "html"), help="the built site (default: _build/html)")
    parser.add_argument("--images", type=flag("[1, inf)"), default=20, help="warm runs per model (default 20)")
    parser.add_argument("--out", default=str(ROOT / "results" / "browser_speed.json"), help="the JSON to write")
    args = parser.parse_args(argv)
    site = Path(args.site)
    if not (site / PAGE).is_file():
        raise FileNotFoundError(f"{site / PAGE} is missing: build the site first "
                                "(jupyter-book build . -W -n --keep-going)")
    if not Path(CHROMIUM).exists():
        raise FileNotFoundError(f"{CHROMIUM} is missing: apt-get install -y chromium")
    load_before = os.getloadavg()[0]
    result = measure(site, args.images)
    result.update(command=shlex.join(["python", "benchmarks/browser_speed.py", *argv]), date=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                  cpu=f"{cpu_name()}, {os.cpu_count()} cores", threads=1,
                  load=[round(load_before, 2), round(os.getloadavg()[0], 2)])
    print(f"Chromium {result['chromium']}, {result['cpu']}, ONNX Runtime Web wasm, 1 thread, "
          f"load {result['load'][0]} -> {result['load'][1]}")
    print(f"{'model':<12} {'MB':>5} {'load ms':>8} {'first run ms':>13} {'warm ms (median)':>17} {'warm ms (p90)':>14}")
    for row, m in result["models"].items():
        print(f"{row:<12} {m['model_bytes'] / 1e6:>5.2f} {m['load_ms']:>8.0f} {m['first_run_ms']:>13.1f} "
              f"{m['warm_ms_median']:>17.1f} {m['warm_ms_p90']:>14.1f}")
    sizes = result["page_load_bytes"]
    print(f"page load: {sizes['total'] / 1e6:.1f} MB in {sizes['requests']} requests (runtime "
          f"{sizes['onnxruntime_web'] / 1e6:.1f} MB, first model {sizes['first_model'] / 1e6:.1f} MB, "
          f"the rest {sizes['rest'] / 1e6:.1f} MB); first result "
          f"{next(iter(result['models'].values()))['first_result_after_navigation_ms'] / 1000:.2f} s after navigation")
    print(f"wrote {write_json(args.out, result, indent=1)}")


if __name__ == "__main__":
    main()
