"""Benchmark: one large MP4 (500 MB by default) from the simulator to ``stored``, to the filesystem and to the
moto S3 server, beside a plain ``requests`` streaming copy of the same URL to disk in the same run; the
worker's RSS growth during the download, and the web process's while it serves the video by ranges.

    .venv/bin/python -m bench.video [--mb 500] [--reps 2] [--stores file,s3]

The simulator delivers a real MP4 padded to the size with a top-level ``free`` box (streamed, never in
memory). fluxhook's time runs from the download task's start to its end (RQ's own record): fetch, sha256,
write, fdatasync, rename (or the multipart upload), probe, poster, the job's move to ``stored``. The
baseline streams the same URL in 1 MiB pieces into a file on the same disk (no hashing, no fsync). For S3,
boto3's own ``upload_file`` of the same bytes from disk is timed too: the S3 server's ceiling.
Memory is VmRSS of the process tree, sampled every 20 ms; the growth is the peak during the work over the
value just before it (the worker first stores a small video, so PyAV and the store are loaded).
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from pathlib import Path

import boto3
import requests
from botocore.config import Config as BotoConfig

from devtools.processes import free_port, python, start_process, stop_process, wait_until
from devtools.stack import SIMULATOR_KEY
from fluxhook.store.keys import KEYS

from .common import MB, BenchJob, BenchStack, log, median, signed_callback, stored_downloads, timelines, tree_memory

WORKER_GROWTH_TARGET = 50.0  # MB
WEB_GROWTH_TARGET = 20.0  # MB
AWS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1",
       "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull}
BUCKET = "fluxhook-bench"


class Peak:
    """Samples a process tree's RSS in a thread until stopped; the highest value seen."""

    def __init__(self, pid: int, every: float = 0.02):
        self.pid, self.every, self.peak = pid, every, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "Peak":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, tree_memory(self.pid)["rss"])
            self._stop.wait(self.every)


def video_task(stack: BenchStack, video_bytes: int | None) -> str:
    """A simulator video task, Ready, delivered at ``video_bytes``: its signed sample URL (valid 2 hours)."""
    stack.sim_settings(video_bytes=video_bytes, video_delay=0.05, max_active_video=1000)
    session = requests.Session()
    answer = session.post(f"{stack.sim_base}/v1/flux-3-video", json={"mode": "t2v", "prompt": "a fox runs through snow"},
                          headers={"x-key": SIMULATOR_KEY}, timeout=30)
    answer.raise_for_status()
    task = answer.json()["id"]

    def ready():
        body = session.get(f"{stack.sim_base}/v1/get_result", params={"id": task}, headers={"x-key": SIMULATOR_KEY},
                           timeout=30).json()
        return body["result"]["sample"] if body["status"] == "Ready" else None

    return wait_until(ready, timeout=60, interval=0.05, message="the simulator's video task")


def plain_copy(url: str, folder: Path, durable: bool = False) -> float:
    """Seconds for a plain ``requests`` streaming copy of ``url`` into a file in ``folder`` (``durable``: then
    fdatasync, as any store that survives a crash must: the disk's own pace, for reference)."""
    target = folder / "plain-copy.mp4"
    started = time.perf_counter()
    with requests.get(url, stream=True, timeout=(5, 30)) as response, open(target, "wb") as out:
        response.raise_for_status()
        for piece in response.iter_content(1024 * 1024):
            out.write(piece)
        if durable:
            out.flush()
            os.fdatasync(out.fileno())
    seconds = time.perf_counter() - started
    target.unlink()
    return seconds


def s3_ceiling(url: str, folder: Path, endpoint: str) -> float:
    """MB/s of boto3's own ``upload_file`` (its default transfer settings) of the same MP4 from disk to the
    moto server: the most any store can put there on this machine, whatever it does first."""
    source = folder / "ceiling.mp4"
    with requests.get(url, stream=True, timeout=(5, 30)) as response, open(source, "wb") as out:
        response.raise_for_status()
        for piece in response.iter_content(1024 * 1024):
            out.write(piece)
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="bench",
                          aws_secret_access_key="bench", config=BotoConfig(signature_version="s3v4"))
    started = time.perf_counter()
    client.upload_file(str(source), BUCKET, "ceiling.mp4")
    seconds = time.perf_counter() - started
    client.delete_object(Bucket=BUCKET, Key="ceiling.mp4")
    size = source.stat().st_size
    source.unlink()
    return size / MB / seconds


def video_job(stack: BenchStack) -> BenchJob:
    auth = {"Authorization": f"Bearer {stack.env['API_TOKENS'].split(',')[0]}"}
    answer = requests.post(stack.base_url + "/v1/jobs", headers=auth, timeout=30,
                           json={"model": "flux-3-video", "input": {"mode": "t2v", "prompt": "[pending] [drop] bench video"}})
    answer.raise_for_status()
    job = answer.json()
    return BenchJob(job["id"], job["bfl_id"])


def fluxhook_store(stack: BenchStack, url: str) -> dict[str, float]:
    """One video job to stored through the worker: its download's seconds (its timeline) and the worker's RSS
    growth."""
    db = stack.redis()
    job = video_job(stack)
    worker = stack.workers[0]
    before = tree_memory(worker.pid)["rss"]
    callback = signed_callback(stack, job, url)
    with Peak(worker.pid) as peak:
        answer = requests.post(callback.url, data=callback.body, headers=callback.headers, timeout=30)
        answer.raise_for_status()
        wait_until(lambda: db.hget(KEYS.job(job.job_id), "status") in ("stored", "failed", "expired"),
                   timeout=1800, interval=0.05, message="the video job to end")
    status = db.hget(KEYS.job(job.job_id), "status")
    if status != "stored":
        raise RuntimeError(f"the video job ended {status}: {db.hget(KEYS.job(job.job_id), 'error')}")
    [download] = stored_downloads([job.job_id], timelines(db, [job.job_id]))
    seconds = download.ended - download.started
    return {"seconds": seconds, "worker_growth": peak.peak - before, "job": job.job_id}


def serve_by_ranges(stack: BenchStack, job_id: str, size: int) -> dict[str, float]:
    """Read the stored video through the web process in 8 MB ranges, then whole; the web tree's RSS growth."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {stack.env['API_TOKENS'].split(',')[0]}"
    url = f"{stack.base_url}/v1/jobs/{job_id}/video"
    session.get(url, headers={"Range": "bytes=0-1023"}, timeout=30).raise_for_status()  # warm the route
    before = tree_memory(stack.web.pid)["rss"]
    read = 0
    started = time.perf_counter()
    with Peak(stack.web.pid) as peak:
        step = 8 * 1024 * 1024
        for start in range(0, size, step):
            answer = session.get(url, headers={"Range": f"bytes={start}-{min(size, start + step) - 1}"}, timeout=60)
            if answer.status_code != 206:
                raise RuntimeError(f"a range read answered {answer.status_code}")
            read += len(answer.content)
        with session.get(url, stream=True, timeout=60) as whole:
            for piece in whole.iter_content(1024 * 1024):
                read += len(piece)
    if read != 2 * size:
        raise RuntimeError(f"read {read} bytes, not {2 * size}")
    return {"web_growth": peak.peak - before, "serve_mb_s": read / MB / (time.perf_counter() - started)}


def start_moto(folder: Path):
    port = free_port()
    process = start_process([python(), "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], dict(os.environ),
                            log_path=str(folder / "moto.log"))
    url = f"http://127.0.0.1:{port}"

    def answers():
        try:
            return requests.get(url, timeout=1).status_code < 500
        except requests.RequestException:
            return False

    wait_until(answers, timeout=60, interval=0.1, message="the moto S3 server")
    client = boto3.client("s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id="bench",
                          aws_secret_access_key="bench", config=BotoConfig(signature_version="s3v4"))
    client.create_bucket(Bucket=BUCKET)
    return process, url


def run_store(kind: str, args) -> dict[str, list[float]]:
    size = args.mb * MB
    extra = {"MAX_VIDEO_BYTES": str(size + MB)}
    moto = endpoint = None
    stack = BenchStack(f"video-{kind}", log_level="WARNING", **extra)
    if kind == "s3":
        moto, endpoint = start_moto(stack.var_dir)
        stack.env.update(STORAGE_URL=f"s3://{BUCKET}/bench", S3_ENDPOINT_URL=endpoint,
                         S3_IMAGE_DELIVERY="stream", **AWS)
    figures: dict[str, list[float]] = {"plain": [], "durable": [], "fluxhook": [], "worker_growth": [],
                                       "web_growth": [], "serve": [], "s3_ceiling": []}
    try:
        stack.start(workers=1)
        folder = stack.var_dir
        warm = video_task(stack, None)
        fluxhook_store(stack, warm)  # loads PyAV, the store and the code paths before anything is measured
        url = video_task(stack, size)
        plain_copy(url, folder)  # untimed: the simulator renders the task's MP4 on its first delivery
        for rep in range(args.reps):
            figures["durable"].append(size / MB / plain_copy(url, folder, durable=True))
            if endpoint is not None:
                figures["s3_ceiling"].append(s3_ceiling(url, folder, endpoint))
            parts = ["plain", "fluxhook"] if rep % 2 == 0 else ["fluxhook", "plain"]
            for part in parts:
                if part == "plain":
                    figures["plain"].append(size / MB / plain_copy(url, folder))
                else:
                    result = fluxhook_store(stack, url)
                    figures["fluxhook"].append(size / MB / result["seconds"])
                    figures["worker_growth"].append(result["worker_growth"])
                    served = serve_by_ranges(stack, result["job"], size)
                    figures["web_growth"].append(served["web_growth"])
                    figures["serve"].append(served["serve_mb_s"])
                    requests.delete(f"{stack.base_url}/v1/jobs/{result['job']}", timeout=60,
                                    headers={"Authorization": f"Bearer {stack.env['API_TOKENS'].split(',')[0]}"})
            log(f"video {kind} rep {rep + 1}: fluxhook {figures['fluxhook'][-1]:.0f} MB/s, plain copy "
                f"{figures['plain'][-1]:.0f} MB/s, worker +{figures['worker_growth'][-1]:.1f} MB, web "
                f"+{figures['web_growth'][-1]:.1f} MB")
    finally:
        stack.stop()
        stack.cleanup()
        if moto is not None:
            stop_process(moto)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.video", description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=500, help="the MP4's size in MB (10^6 bytes)")
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--stores", default="file,s3")
    args = parser.parse_args(argv)
    failed = False
    for kind in args.stores.split(","):
        figures = run_store(kind, args)
        fh, plain = median(figures["fluxhook"]), median(figures["plain"])
        ratios = [f / p for f, p in zip(figures["fluxhook"], figures["plain"], strict=False)]
        worker, web = max(figures["worker_growth"]), max(figures["web_growth"])
        # Memory is the target (a 2 GB video must not need 2 GB); speed beside a plain copy is information.
        met = worker <= WORKER_GROWTH_TARGET and web <= WEB_GROWTH_TARGET
        failed |= not met
        print(f"[{kind}] {args.mb} MB MP4 to stored: fluxhook {fh:.0f} MB/s, plain requests copy {plain:.0f} MB/s, "
              f"ratio {median(ratios):.2f} (information); worker RSS +{worker:.1f} MB (target <= "
              f"{WORKER_GROWTH_TARGET:g}); web RSS +{web:.1f} MB while serving it by 8 MB ranges and whole at "
              f"{median(figures['serve']):.0f} MB/s (target <= {WEB_GROWTH_TARGET:g}); the same copy with fdatasync "
              f"(the disk's pace, any durable store's bound) {median(figures['durable']):.0f} MB/s, fluxhook at "
              f"{fh / median(figures['durable']):.2f} of it; per rep fluxhook/plain "
              + "; ".join(f"{f:.0f}/{p:.0f}" for f, p in zip(figures["fluxhook"], figures["plain"], strict=False))
              + (f"; boto3's own upload_file of the same file from disk to this S3 server (the server's ceiling) "
                 f"{median(figures['s3_ceiling']):.0f} MB/s, fluxhook at {fh / median(figures['s3_ceiling']):.2f} of it"
                 if figures["s3_ceiling"] else "")
              + f"; memory targets {'met' if met else 'NOT met'}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
