"""The README's first video, as `make run`'s simulator answers it: its example's request, sent as written, comes back
with the video the README says (its size, length, frame rate, sound) and the price it names. The README said
"3 seconds" where 5 s came back: the simulator makes the length it prices, 5 s when none is asked, as BFL does."""

from __future__ import annotations

import json
import re
import shlex

from devtools.processes import ROOT

README = (ROOT / "README.md").read_text()


def _example() -> tuple[dict, dict, str]:
    """The README's video request (its ``-d`` body), the video its answer shows, and its words on the simulator."""
    block = README[README.index('"model": "flux-3-video"') - 400:]
    command = next(line for line in block.splitlines() if '"flux-3-video"' in line)
    body = json.loads(shlex.split(command[command.index("-d "):])[1])
    shown = re.search(r'"video": \{"content_type": "video/mp4", "width": (\d+),\s*#?\s*"height": (\d+), '
                      r'"duration": ([\d.]+), "fps": ([\d.]+), "has_audio": (true|false)', block)
    assert shown, "the README's video answer, as this test reads it"
    width, height, duration, fps, audio = shown.groups()
    video = {"content_type": "video/mp4", "width": int(width), "height": int(height), "duration": float(duration),
             "fps": float(fps), "has_audio": audio == "true"}
    return body, video, re.search(r"\(landscapes as[^)]*\)", README).group(0)


def test_the_readmes_video_example_comes_back_as_the_readme_shows_it(api, sim):
    body, video, words = _example()
    answer = api.post("/v1/jobs", json=body, headers={"Prefer": "wait=60"}, timeout=70)
    assert answer.status_code == 202, answer.text
    job = answer.json()
    assert job["status"] == "stored", job
    assert {name: job["video"][name] for name in video} == video
    assert job["cost"]["credits"] == 85.0 and '"cost": {"credits": 85.0' in README
    seconds = f"{video['duration']:g}-second MP4s for video models"
    assert seconds in words, f"the README says {words!r}, the simulator makes {seconds}"
