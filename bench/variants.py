"""Benchmark: what variants of stored images cost, beside serving the original in the same run.

    .venv/bin/python -m bench.variants [--reps 30] [--reads 300] [--pyvips-python PATH]

The image is a photo-like 1024x1024 JPEG (the simulator's landscape: sky, sun, hills, grain; quality 90), the kind the
dev run's simulator delivers. Four parts:

* CPU per variant: ``media.variants.variant_bytes`` in this process, the median of ``--reps`` of CPU time (decode at
  the JPEG's reduced scale, resize, encode), for each format at 512 px and at 1024 px, q 75. Target: a 512-px WebP in
  at most 25 ms.
* Bytes per format at 1024 px, q 75, against the original's. Targets: WebP at most 0.7x, AVIF at most 0.55x.
* Over HTTP, the Procfile's web (one gunicorn process) and a worker on a fresh stack: a stored variant (a 512-px WebP,
  made by the first request) and the original read in turn, ``--reads`` times each, one at a time with a bearer
  token: p50 / p95. Target: the variant's p50 at most the original's (within 10%, a loaded host's noise).
* The web process's memory while 100 new variants are made (10 jobs, 10 widths and formats each, one at a time):
  VmRSS of the gunicorn process that serves them and, apart, of the maker processes it started, sampled every 20 ms,
  before (after 5 made, so each encoder is loaded), at the peak and after. Target: the web process's RSS flat (at most
  5 MB over its value before).

Pillow against libvips: with ``--pyvips-python`` (an interpreter with ``pip install "pyvips[binary]"``; this venv's
own when it has pyvips) the same CPU and bytes are measured with pyvips (``thumbnail_buffer``, shrink-on-load as Pillow's
draft, then ``write_to_buffer`` at the same encoder quality and efforts), in that interpreter, on the same bytes; its
CPU counts every thread libvips runs, as Pillow's does.
Not part of the test suite; it prints a table and changes nothing outside a temporary directory.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import PIL
import requests

from fluxhook.core.variants import Variant
from fluxhook.media.variants import variant_bytes
from simulator.images import render_scene

from .common import BenchStack, Row, Section, descendants, fmt, in_turn, log, percentile, print_report

CPU_TARGET_MS = 25.0
RATIO_TARGETS = {"webp": 0.7, "avif": 0.55}
SERVE_SLACK = 1.10
WEB_GROWTH_TARGET_MB = 5.0
FORMATS = ("jpeg", "png", "webp", "avif")
SIZE = 1024
MB = 1_000_000

_PYVIPS = r"""
import json, sys, time
import pyvips
pyvips.cache_set_max(0)
data = open(sys.argv[1], "rb").read()
reps = int(sys.argv[2])
suffixes = {"jpeg": ".jpg", "png": ".png", "webp": ".webp", "avif": ".avif"}
found = {"version": ".".join(str(pyvips.version(n)) for n in range(3))}
for fmt, suffix in suffixes.items():
    for width in (512, 1024):
        # What fluxhook sets Pillow to (media/variants.py): WebP method 2, AVIF speed 8 (libvips' effort 1) at q - 20.
        options = {"webp": {"Q": 75, "effort": 2}, "avif": {"Q": 55, "effort": 1}}.get(fmt, {} if fmt == "png" else {"Q": 75})
        times = []
        for _ in range(reps + 1):
            started = time.process_time()
            made = pyvips.Image.thumbnail_buffer(data, width, height=100000, size="down").write_to_buffer(suffix, **options)
            times.append((time.process_time() - started) * 1000)
        found[f"{fmt}/{width}"] = {"cpu_ms": sorted(times[1:])[len(times[1:]) // 2], "bytes": len(made)}
print(json.dumps(found))
"""


def cpu_and_bytes(original: bytes, reps: int) -> dict[str, dict[str, float]]:
    """Pillow's median CPU ms and bytes of each format at 512 and 1024 px (q 75)."""
    found = {}
    for name in FORMATS:
        for width in (512, SIZE):
            variant = Variant(width, name, None if name == "png" else 75)
            variant_bytes(original, variant)  # warm: the encoder loaded
            times, made = [], b""
            for _ in range(reps):
                started = time.process_time()
                made = variant_bytes(original, variant)
                times.append((time.process_time() - started) * 1000)
            found[f"{name}/{width}"] = {"cpu_ms": statistics.median(times), "bytes": len(made)}
    return found


def pyvips_figures(python: str | None, original: bytes, reps: int, folder: Path) -> dict | None:
    """The same figures by pyvips in ``python`` (or this interpreter); None when it has no pyvips."""
    path = folder / "original.jpg"
    path.write_bytes(original)
    ran = subprocess.run([python or sys.executable, "-c", _PYVIPS, str(path), str(reps)], capture_output=True,
                         text=True, timeout=600)
    if ran.returncode != 0:
        log(f"pyvips not measured: {(ran.stderr.strip().splitlines() or ['?'])[-1]}")
        return None
    return json.loads(ran.stdout)


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024 / MB
    return float("nan")


def _makers_mb(pid: int) -> float:
    total = 0.0
    for child in descendants(pid):
        try:
            if b"resource_tracker" not in Path(f"/proc/{child}/cmdline").read_bytes():
                total += _rss_mb(child)
        except OSError:
            continue
    return total


class Sampler:
    """The web process's and its makers' RSS every 20 ms until stopped: the highest of each."""

    def __init__(self, pid: int):
        self.pid, self.web, self.makers = pid, 0.0, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "Sampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.web, self.makers = max(self.web, _rss_mb(self.pid)), max(self.makers, _makers_mb(self.pid))
            self._stop.wait(0.02)


def _stored(stack: BenchStack, session: requests.Session, prompt: str) -> dict:
    body = {"model": "flux-2-pro", "input": {"prompt": prompt, "width": SIZE, "height": SIZE}}
    job = session.post(stack.base_url + "/v1/jobs", json=body, timeout=30).json()
    for _ in range(600):
        job = session.get(f"{stack.base_url}/v1/jobs/{job['id']}", timeout=30).json()
        if job["status"] == "stored":
            return job
        time.sleep(0.05)
    raise SystemExit(f"job {job['id']} not stored: {job['status']}")


def _timed_get(session: requests.Session, url: str, params: dict | None = None) -> float:
    started = time.perf_counter()
    answer = session.get(url, params=params, timeout=60)
    took = (time.perf_counter() - started) * 1000
    if answer.status_code != 200:
        raise SystemExit(f"GET {url} {params} answered {answer.status_code}: {answer.text[:200]}")
    return took


def over_http(reads: int) -> tuple[dict[str, list[float]], dict[str, float], list[float]]:
    """(reads of a stored variant and of the original, ms; RSS figures, MB; the first requests that made a
    variant, ms)."""
    with BenchStack("variants", log_level="WARNING", WEB_CONCURRENCY="1").start(workers=1) as stack:
        session = stack.api_session()
        # The key's reads out of READS_PER_MINUTE's way (signed links included): this times a read, not the limit.
        key = session.post(stack.base_url + "/v1/keys", json={"name": "bench-variants", "reads_per_minute": 1_000_000},
                           timeout=30).json()
        app = requests.Session()
        app.headers["Authorization"] = f"Bearer {key['key']}"
        log("storing 10 photo-like 1024x1024 JPEGs")
        jobs = [_stored(stack, app, f"a valley at dawn {n}") for n in range(10)]
        image = f"{stack.base_url}/v1/jobs/{jobs[0]['id']}/image"
        variant = {"w": 512, "format": "webp"}
        made_first = [_timed_get(app, image, variant)]
        cases = [("original", None), ("variant", variant)]
        for _, params in cases:  # warm: connections, the key's record cached
            for _ in range(10):
                _timed_get(app, image, params)
        times: dict[str, list[float]] = {name: [] for name, _ in cases}
        log(f"{reads} reads of the original and of the stored variant, in turn")
        for n in range(reads):
            for name, params in in_turn(cases, n):
                times[name].append(_timed_get(app, image, params))

        [worker] = [int(pid) for pid in stack.stack.web_workers()]
        # Each job at 11 widths, the formats in turn: 110 new variants, the first 5 to warm.
        widths = (96, 200, 300, 400, 450, 500, 600, 700, 800, 900, 1000)
        asks = [(job["id"], width, FORMATS[(n + m) % len(FORMATS)]) for n, job in enumerate(jobs)
                for m, width in enumerate(widths)]
        for job_id, width, name in asks[:5]:  # warm: each encoder loaded, the makers started
            made_first.append(_timed_get(app, f"{stack.base_url}/v1/jobs/{job_id}/image", {"w": width, "format": name,
                                                                                           "q": 90}))
        memory = {"web_before": _rss_mb(worker), "makers_before": _makers_mb(worker)}
        log("100 new variants, one at a time")
        with Sampler(worker) as sampled:
            for job_id, width, name in asks[5:105]:
                made_first.append(_timed_get(app, f"{stack.base_url}/v1/jobs/{job_id}/image",
                                             {"w": width, "format": name, "q": 90 if width % 200 else 50}))
        memory.update(web_peak=sampled.web, makers_peak=sampled.makers, web_after=_rss_mb(worker),
                      makers_after=_makers_mb(worker), made=len(asks[5:105]))
        return times, memory, made_first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=30)
    parser.add_argument("--reads", type=int, default=300)
    parser.add_argument("--pyvips-python", default=None, help="an interpreter with pyvips[binary] installed")
    args = parser.parse_args()
    original = render_scene("bench-variants", "jpeg", (SIZE, SIZE))
    log(f"Pillow: {args.reps} of each variant of a {len(original):,}-byte {SIZE}x{SIZE} JPEG")
    pillow = cpu_and_bytes(original, args.reps)
    folder = Path(tempfile.mkdtemp(prefix="fluxhook-bench-variants-"))
    vips = pyvips_figures(args.pyvips_python, original, args.reps, folder)
    times, memory, made_first = over_http(args.reads)

    cpu = Section(f"CPU per variant of a {SIZE}x{SIZE} JPEG, q 75 (ms, median of {args.reps}; baseline: libvips)")
    for key, figures in pillow.items():
        kind, width = key.split("/")
        target = kind == "webp" and width == "512"
        other = vips.get(key) if vips else None
        cpu.rows.append(Row(f"{kind.upper()} at {width} px", fmt(figures["cpu_ms"]),
                            fmt(other["cpu_ms"]) if other else "-",
                            f"{figures['cpu_ms'] / other['cpu_ms']:.2f}x" if other else "",
                            f"≤ {CPU_TARGET_MS:.0f}" if target else "",
                            figures["cpu_ms"] <= CPU_TARGET_MS if target else None))
    cpu.notes.append(f"Pillow {PIL.__version__}: decode at the JPEG's reduced scale (draft), resize, "
                     "encode (WebP method 2, AVIF speed 8 on one thread); " +
                     (f"libvips {vips['version']} (pyvips thumbnail_buffer, WebP effort 2, AVIF effort 1 at Q 55) in the same run"
                      if vips else "libvips not measured (no pyvips: --pyvips-python names an interpreter with it)"))

    size = Section(f"Bytes at {SIZE} px, q 75, against the original ({len(original):,} bytes, JPEG q 90)")
    for kind in FORMATS:
        made = pillow[f"{kind}/{SIZE}"]["bytes"]
        target = RATIO_TARGETS.get(kind)
        other = vips.get(f"{kind}/{SIZE}") if vips else None
        size.rows.append(Row(f"{kind.upper()} (Pillow)", f"{made:,}", f"{len(original):,}", f"{made / len(original):.2f}x",
                             f"≤ {target}x" if target else "", made / len(original) <= target if target else None))
        if other:
            size.rows.append(Row(f"{kind.upper()} (libvips)", f"{other['bytes']:,}", f"{len(original):,}",
                                 f"{other['bytes'] / len(original):.2f}x", "", None))

    serve = Section(f"GET /v1/jobs/{{id}}/image over HTTP, {args.reads} reads each in turn (ms, p50 / p95)")
    variant, base = times["variant"], times["original"]
    serve.rows.append(Row("a stored variant (512-px WebP)", f"{fmt(percentile(variant, 50))} / {fmt(percentile(variant, 95))}",
                          f"{fmt(percentile(base, 50))} / {fmt(percentile(base, 95))}",
                          f"{percentile(variant, 50) / percentile(base, 50):.2f}x", f"p50 ≤ {SERVE_SLACK:.1f}x original",
                          percentile(variant, 50) <= SERVE_SLACK * percentile(base, 50)))
    serve.rows.append(Row("a new variant, made by its first request", f"{fmt(percentile(made_first, 50))} / "
                          f"{fmt(percentile(made_first, 95))}", "", "", "", None))
    serve.notes.append("one web process (gunicorn, WEB_CONCURRENCY=1) with a bearer token, one request at a time; the "
                       f"original is a 1024x1024 JPEG; a new variant's figure is over {len(made_first)} firsts of "
                       "every format and width")

    rss = Section(f"RSS while {memory['made']} new variants are made (MB)")
    growth = memory["web_peak"] - memory["web_before"]
    rss.rows.append(Row("web process: before / peak / after", f"{fmt(memory['web_before'])} / {fmt(memory['web_peak'])} "
                        f"/ {fmt(memory['web_after'])}", "", f"+{fmt(growth)}", f"+≤ {WEB_GROWTH_TARGET_MB:.0f}",
                        growth <= WEB_GROWTH_TARGET_MB))
    rss.rows.append(Row("its maker processes: before / peak / after", f"{fmt(memory['makers_before'])} / "
                        f"{fmt(memory['makers_peak'])} / {fmt(memory['makers_after'])}", "",
                        f"+{fmt(memory['makers_peak'] - memory['makers_before'])}", "", None))
    rss.notes.append("VmRSS sampled every 20 ms; before: after 5 variants (each encoder loaded, the makers started); "
                     "the makers are the web process's own (receiver/variant_makers.py), counted apart")
    print_report([cpu, size, serve, rss], spaced=True)


if __name__ == "__main__":
    main()
