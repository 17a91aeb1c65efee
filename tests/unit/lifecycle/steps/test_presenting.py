"""The job JSON (fluxhook/lifecycle/steps/presenting.py; pure): the API's fields, with the window's signed link for each
stored file that opens that file of that job only, and none for a file the job does not have."""

from __future__ import annotations

import types
from urllib.parse import parse_qs, urlsplit

import itsdangerous.timed
import pytest

from fluxhook.core import job as st
from fluxhook.core import signing
from fluxhook.core.config import Config
from fluxhook.core.job import Job, new_job_id
from fluxhook.lifecycle.steps import bfl_presenting, presenting

CONFIG = Config.from_env({"REDIS_URL": "redis://localhost:6379/0", "SECRET_KEY": "s" * 32,
                          "API_TOKENS": "token-aaaaaaaa", "PUBLIC_BASE_URL": "https://fluxhook.example"})
IMAGE = {"key": "k.png", "content_type": "image/png", "size": 10, "sha256": "ab" * 32, "width": 4, "height": 4}
VIDEO = {"key": "k.mp4", "content_type": "video/mp4", "size": 99, "sha256": "cd" * 32, "width": 64, "height": 48,
         "duration": 5.0, "fps": 24.0, "has_audio": True}
DRAFT = {"key": "k-draft.mp4", "size": 3, "sha256": "ef" * 32}


def _token(url: str, job_id: str, kind: str) -> str:
    """The link's token, once its path is checked: the job's ``kind`` file on PUBLIC_BASE_URL."""
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == CONFIG.public_base_url
    assert parts.path == f"/v1/jobs/{job_id}/{kind}"
    [token] = parse_qs(parts.query)["token"]
    return token


def _opens(token: str, job_id: str) -> list[str]:
    """The kinds of file of ``job_id`` the token opens."""
    return [kind for kind in signing.FILE_KINDS
            if presenting.link_opens(CONFIG, token, job_id, kind)]


def test_a_stored_image_has_a_link_that_opens_its_image_only():
    job = Job(id=new_job_id(), status=st.STORED, model="flux-2-pro", image=IMAGE, prompt="a fox", seed=7)
    body = presenting.present(CONFIG, job)
    srcset = body["image"].pop("srcset")
    assert body == job.to_api(body["image"]["url"])  # the API's fields, the link and its srcset aside
    assert srcset == f"{body['image']['url']}&w=4&format=auto 4w"  # narrower than every listed width: its own
    token = _token(body["image"]["url"], job.id, "image")
    assert _opens(token, job.id) == ["image"]
    assert _opens(token, new_job_id()) == []  # nor any file of another job
    assert body["video"] is None and body["draft_cache"] is None


def test_a_video_links_its_video_its_poster_and_its_draft_cache_each_with_a_token_of_its_own():
    job = Job(id=new_job_id(), status=st.STORED, model="flux-3-video", video=VIDEO, draft_cache=DRAFT)
    body = presenting.present(CONFIG, job)
    assert body["image"] is None
    links = {"video": body["video"]["url"], "poster": body["video"]["poster_url"],
             "draft_cache": body["draft_cache"]["url"]}
    for kind, url in links.items():
        assert _opens(_token(url, job.id, kind), job.id) == [kind]
    assert (body["video"]["duration"], body["draft_cache"]["size"]) == (5.0, 3)


def test_a_job_without_stored_files_has_no_link():
    job = Job(id=new_job_id(), status=st.SUBMITTED, model="flux-2-pro", bfl_id="task-1", bfl_status="Pending")
    body = presenting.present(CONFIG, job)
    assert (body["image"], body["video"], body["draft_cache"]) == (None, None, None)
    assert body == job.to_api()


ROTATED_ENV = {"REDIS_URL": "redis://localhost:6379/0", "SECRET_KEY": "n" * 32, "SECRET_KEY_PREVIOUS": "s" * 32,
               "API_TOKENS": "token-aaaaaaaa", "PUBLIC_BASE_URL": "https://fluxhook.example"}


def test_each_link_is_signed_with_the_current_key_and_a_previous_one_still_opens_it():
    job = Job(id=new_job_id(), status=st.STORED, image=IMAGE)
    url = presenting.file_url(CONFIG, job.id, "image")
    assert url.startswith(f"https://fluxhook.example/v1/jobs/{job.id}/image?token=")
    rotated = Config.from_env(ROTATED_ENV)
    token = _token(url, job.id, "image")
    # Made before the rotation: still opens the image while the old key is listed as previous.
    assert presenting.link_opens(rotated, token, job.id, "image")
    assert not presenting.link_opens(Config.from_env({**ROTATED_ENV, "SECRET_KEY_PREVIOUS": ""}), token, job.id, "image")


def test_a_stored_images_srcset_is_its_link_at_each_listed_width_up_to_its_own():
    job = Job(id=new_job_id(), status=st.STORED, model="flux-2-pro", image={**IMAGE, "width": 1440, "height": 960})
    image = presenting.present(CONFIG, job)["image"]
    entries = [entry.split(" ") for entry in image["srcset"].split(", ")]
    assert [w for _, w in entries] == ["64w", "128w", "256w", "384w", "512w", "640w", "768w", "1024w", "1280w", "1440w"]
    assert all(url == f"{image['url']}&w={w[:-1]}&format=auto" for url, w in entries)
    assert _opens(_token(entries[0][0], job.id, "image"), job.id) == ["image"]


WINDOWED = Config.from_env({"REDIS_URL": "redis://localhost:6379/0", "SECRET_KEY": "s" * 32,
                            "API_TOKENS": "token-aaaaaaaa", "PUBLIC_BASE_URL": "https://fluxhook.example",
                            "IMAGE_URL_TTL_SECONDS": "60", "IMAGE_URL_WINDOW_SECONDS": "30"})


def _read_at(monkeypatch, when: float, job: Job) -> tuple[dict, dict]:
    """The job JSON and the drop-in's result, both read at ``when``."""
    monkeypatch.setattr(presenting, "time", types.SimpleNamespace(time=lambda: when))
    return presenting.present(WINDOWED, job), bfl_presenting.result(WINDOWED, job)


def _links(shown: dict, result: dict) -> list[str]:
    image, video, draft = shown["image"] or {}, shown["video"] or {}, shown["draft_cache"] or {}
    found = [image.get("url"), image.get("srcset"), video.get("url"), video.get("poster_url"), draft.get("url"),
             (result.get("result") or {}).get("sample"), (result.get("result") or {}).get("draft_cache")]
    return [link for link in found if link]


@pytest.mark.parametrize("files", [{"image": {**IMAGE, "width": 1024}},
                                   {"model": "flux-3-video", "video": VIDEO, "draft_cache": DRAFT}], ids=["image", "video"])
def test_every_read_within_a_window_gives_byte_identical_links_and_the_next_window_new_ones(monkeypatch, files):
    job = Job(id=new_job_id(), status=st.STORED, **{"model": "flux-2-pro", **files})
    start = 1_700_000_010 + signing.window_offset(job.id, 30)  # the first second of one of its 30-s windows
    first = _links(*_read_at(monkeypatch, start + 0.1, job))
    assert len(first) == (3 if "image" in files else 5)
    assert _links(*_read_at(monkeypatch, start + 2.5, job)) == first  # two reads 2 s apart
    assert _links(*_read_at(monkeypatch, start + 29.9, job)) == first
    after = _links(*_read_at(monkeypatch, start + 30, job))
    assert all(new != old for new, old in zip(after, first, strict=True))


def test_a_catalogs_links_turn_a_few_a_second_over_the_window_never_all_at_once(monkeypatch):
    catalog = [Job(id=new_job_id(), status=st.STORED, model="flux-2-pro", image={**IMAGE, "width": 1024})
               for _ in range(300)]
    start = 1_700_000_010
    reads = [[_links(*_read_at(monkeypatch, second + 0.5, job)) for job in catalog]
             for second in range(start, start + 31)]
    turned = [sum(new != old for new, old in zip(now, before, strict=True))
              for before, now in zip(reads, reads[1:], strict=False)]
    # Over a whole window each job's links turn once, about 10 of the 300 a second: a cache in front refills a few
    # a second, where windows aligned for all turned the 300 in one second.
    assert sum(turned) == len(catalog)
    assert max(turned) <= 30, turned


def _clock(monkeypatch, when: float) -> None:
    """Both clocks a link's check reads at ``when``: the window's and itsdangerous's (a token's age)."""
    for module in (presenting, itsdangerous.timed):
        monkeypatch.setattr(module, "time", types.SimpleNamespace(time=lambda: when))


def test_a_link_opens_its_ttl_after_the_windows_last_read_and_not_a_window_later(monkeypatch):
    job = Job(id=new_job_id(), status=st.STORED, model="flux-2-pro", image=IMAGE)
    start = 1_700_000_010 + signing.window_offset(job.id, 30)  # the first second of one of its windows
    token = _token(_read_at(monkeypatch, start + 29.9, job)[0]["image"]["url"], job.id, "image")
    _clock(monkeypatch, start + 29.9 + 60)  # the window's last read, its TTL later
    assert presenting.link_opens(WINDOWED, token, job.id, "image")
    assert not presenting.link_opens(WINDOWED, token, job.id, "video")
    _clock(monkeypatch, start + 90)  # its age past TTL + window - 1
    assert not presenting.link_opens(WINDOWED, token, job.id, "image")
