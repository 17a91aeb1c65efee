"""How the dashboard shows a job's picture (receiver/dashboard_view.py, ``picture``; pure): its srcset of relative signed
links at the widths each place needs (the list's 64 px, a contact sheet's tiles, the job page), ``format=auto``, and
its sizes, never wider than the picture; a video's poster in the list and on the sheet; nothing for a job with no
stored file; the list's rows, the sheet's tiles and the job page carry them."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from fluxhook.core import job as st
from fluxhook.core.config import Config
from fluxhook.core.job import Job, new_job_id
from fluxhook.lifecycle.steps import presenting
from receiver.dashboard_batches import tile
from receiver.dashboard_view import LIST, PAGE, SHEET, detail, picture, row

CONFIG = Config.from_env({"REDIS_URL": "redis://localhost:6379/0", "SECRET_KEY": "s" * 32,
                          "API_TOKENS": "token-aaaaaaaa", "PUBLIC_BASE_URL": "https://fluxhook.example"})
IMAGE = {"content_type": "image/jpeg", "size": 10, "sha256": "ab" * 32, "width": 1024, "height": 768}


def _stored(**fields) -> Job:
    fields.setdefault("image", IMAGE)
    return Job(id=new_job_id(), status=st.STORED, model="flux-2-pro", storage_key="k.jpg", **fields)


def _entries(srcset: str) -> list[tuple[str, str]]:
    return [tuple(entry.rsplit(" ", 1)) for entry in srcset.split(", ")]


def test_each_place_offers_the_widths_its_size_needs_as_signed_auto_links():
    job = _stored()
    for place, widths in ((LIST, ["64w", "128w"]), (SHEET, ["128w", "256w"]),
                          (PAGE, ["64w", "128w", "256w", "384w", "512w", "640w", "768w", "1024w"])):
        shown = picture(CONFIG, job, place)
        entries = _entries(shown["srcset"])
        assert [w for _, w in entries] == widths
        for url, w in entries:
            parts = urlsplit(url)
            assert parts.path == f"/v1/jobs/{job.id}/image" and not parts.netloc  # relative: any host, the CSP's
            query = parse_qs(parts.query)
            assert query["w"] == [w[:-1]] and query["format"] == ["auto"]
            assert presenting.link_opens(CONFIG, query["token"][0], job.id, "image")
    assert picture(CONFIG, job, LIST)["sizes"] == "(max-width: 640px) 52px, 64px"
    assert picture(CONFIG, job, PAGE)["sizes"] == "(max-width: 820px) calc(100vw - 70px), 540px"


def test_a_picture_smaller_than_its_place_is_taken_at_its_own_size():
    small = _stored(image={**IMAGE, "width": 100, "height": 75})
    shown = picture(CONFIG, small, SHEET)
    assert [w for _, w in _entries(shown["srcset"])] == ["64w"]  # the narrowest there is
    assert shown["sizes"] == "(max-width: 640px) min(90px, 100px), 100px"
    assert [w for _, w in _entries(picture(CONFIG, small, PAGE)["srcset"])] == ["64w", "100w"]


def test_a_video_shows_its_poster_and_a_job_without_files_nothing():
    video = Job(id=new_job_id(), status=st.STORED, model="flux-3-video", storage_key="k.mp4",
                video={"content_type": "video/mp4", "size": 9, "sha256": "cd" * 32, "width": 3840, "height": 2160,
                       "duration": 5.0, "fps": 24.0, "has_audio": False},
                poster={"key": "k-poster.jpg", "size": 5, "sha256": "ef" * 32, "content_type": "image/jpeg"})
    entries = _entries(picture(CONFIG, video, LIST)["srcset"])
    assert all(urlsplit(url).path == f"/v1/jobs/{video.id}/poster" for url, _ in entries)
    assert _entries(picture(CONFIG, video, PAGE)["srcset"])[-1][1] == "1920w"  # the poster is fitted in 1920 px
    queued = Job(id=new_job_id(), status=st.QUEUED, model="flux-2-pro")
    assert picture(CONFIG, queued, LIST) == {"srcset": "", "sizes": ""}


def test_the_list_the_sheet_and_the_job_page_carry_them():
    job = _stored(thumbnail_key="k-thumb.webp", batch_id="bat_x", batch_index=3)
    listed = row(job, None, CONFIG)
    assert listed["srcset"] == picture(CONFIG, job, LIST)["srcset"] and listed["sizes"] == LIST.sizes(1024)
    assert listed["thumbnail"] == f"/jobs/{job.id}/thumbnail"  # still the src of a browser without srcset
    assert row(job)["srcset"] == ""  # without the configuration: no signed links
    on_sheet = tile(job, CONFIG)
    assert _entries(on_sheet["srcset"])[0][1] == "128w" and on_sheet["sizes"] == SHEET.sizes(1024)
    page = detail(CONFIG, job, [])
    assert page["image_srcset"] == picture(CONFIG, job, PAGE)["srcset"] and page["image_sizes"] == PAGE.sizes(1024)
    assert page["image_url"].startswith(f"/v1/jobs/{job.id}/image?token=")  # the original, one click away
