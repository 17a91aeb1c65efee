"""``fluxhook batch download --name-from FIELD``: each stored file named from its item's metadata, never a
path outside the directory, never two files one name, an item without the field kept at its index name. The naming
rule is fluxhook/media/archives.py's, which the API's ``?name_from=`` archive follows too."""

from __future__ import annotations

import json
import zipfile

import pytest

from fluxhook.cli import batches
from fluxhook.media import archives


@pytest.mark.parametrize(("value", "stem"), [
    ("sku-123", "sku-123"), (42, "42"), (1.5, "1.5"), ("../../etc/passwd", "_.._etc_passwd"), ("a/b\\c", "a_b_c"),
    ("nul\x00here", "nul_here"), ("line\nbreak\x1b[31m", "line_break_[31m"), ("..", None), ("...hidden", "hidden"),
    ("  ", None), ("", None), (None, None), (True, None), ({"x": 1}, None), (["a"], None), ("C:evil", "C_evil"),
    ("x" * 500, "x" * archives.NAME_MOST), ("café ☕", "café ☕"),
])
def test_safe_name_keeps_what_a_file_name_may_hold_and_nothing_else(value, stem):
    assert archives.safe_name(value) == stem


def test_file_names_take_the_field_suffix_the_index_on_a_clash_and_fall_back_to_the_index():
    archived = ["00000.png", "00001.jpg", "00002.png", "00003.png", "00004.png", "00005.png", "results.jsonl"]
    metadata = {0: {"sku": "A-1"}, 1: {"sku": "A-1"}, 2: {"sku": "a-1"}, 3: {"other": 1}, 4: None,
                5: {"sku": "../00003"}}

    names = archives.file_names(archived, metadata, "sku")

    assert names == {"00000.png": "A-1.png", "00001.jpg": "A-1.jpg", "00002.png": "a-1-00002.png",
                     "00003.png": "00003.png", "00004.png": "00004.png", "00005.png": "_00003.png",
                     "results.jsonl": "results.jsonl"}
    assert len({n.lower() for n in names.values()}) == len(names)


def test_a_name_clashing_with_an_index_name_never_overwrites_it():
    archived = ["00000.png", "00001.png", "00002.png"]
    metadata = {0: {"sku": "00001"}, 1: {"sku": "00001"}, 2: {"sku": "results.jsonl"}}

    names = archives.file_names([*archived, "results.jsonl"], metadata, "sku")

    assert len(set(names.values())) == 4 and names["results.jsonl"] == "results.jsonl"
    assert names["00000.png"] == "00001.png" and names["00001.png"] == "00001-00001.png"


def test_extract_with_name_from_writes_each_file_under_its_items_name_inside_the_directory(tmp_path):
    archive = tmp_path / "a.zip"
    lines = [{"index": 0, "metadata": {"sku": "../../escape"}}, {"index": 1, "metadata": {"sku": "shoe/red"}},
             {"index": 2, "metadata": {}}]
    with zipfile.ZipFile(archive, "w") as made:
        for index, suffix in ((0, ".png"), (1, ".jpg"), (2, ".png")):
            made.writestr(f"{index:05d}{suffix}", f"file {index}".encode())
        made.writestr("results.jsonl", "".join(json.dumps(line) + "\n" for line in lines))
    out = tmp_path / "deep" / "out"
    out.mkdir(parents=True)

    assert batches.extract(archive, out, name_from="sku") == (3, 18)

    assert sorted(p.name for p in out.iterdir()) == ["00002.png", "_.._escape.png", "results.jsonl", "shoe_red.jpg"]
    assert (out / "shoe_red.jpg").read_bytes() == b"file 1"
    assert sorted(p.name for p in (tmp_path / "deep").iterdir()) == ["out"]  # nothing outside it
    assert not (tmp_path / "escape.png").exists()
