"""BFL's status words beyond the known ones through the Procfile's processes: callbacks with FLUX 3 video's
Reasoning and Generating, or any word BFL adds later, keep the job running until Ready; a long word is cut."""

from __future__ import annotations

from helpers import serve_png


def test_callbacks_with_new_words_keep_the_job_running_until_ready(api, sim, spy):
    job = api.submit("[pending] a video that thinks first")

    for word, progress in (("Reasoning", 0.1), ("Generating", 0.6)):
        answer = api.callback(job["id"], {"id": job["bfl_id"], "status": word, "progress": progress})
        assert answer.status_code == 200, answer.text
        seen = api.job(job["id"])
        assert (seen["status"], seen["bfl_status"], seen["progress"]) == ("submitted", word, progress)
        assert seen["error"] is None

    url = serve_png(spy, "after-generating")
    answer = api.callback(job["id"], {"id": job["bfl_id"], "status": "Ready", "result": {"sample": url}})
    assert answer.status_code == 200, answer.text
    done = api.wait_for(job["id"])
    assert (done["status"], done["bfl_status"], done["progress"]) == ("stored", "Ready", None)


def test_a_long_unknown_word_is_cut_not_stored_whole(api, sim):
    job = api.submit("[pending] a chatty BFL")

    answer = api.callback(job["id"], {"id": job["bfl_id"], "status": "Rendering" + "z" * 10_240})

    assert answer.status_code == 200, answer.text
    seen = api.job(job["id"])
    assert seen["status"] == "submitted"
    assert seen["bfl_status"] == ("Rendering" + "z" * 40)[:40]
