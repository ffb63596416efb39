"""Artifact layout and the job-side writer on local files (no Spark needed)."""

from __future__ import annotations

import shutil

import pytest

from pipeline.data.labels import label_slug
from tasks.artifact_writer import ArtifactWriter
from tasks.layout import is_temp_of, temp_name, temp_token


def test_temp_names_match_only_their_own_label():
    slug = label_slug("x")
    other = label_slug(f"{slug} v2")  # a label whose slug starts with x's slug
    assert other.startswith(slug + "-")
    mine = temp_name(slug, temp_token(123, "0123456789"))
    theirs = temp_name(other, temp_token(123, "0123456789"))
    assert is_temp_of(mine, slug) and not is_temp_of(theirs, slug)
    assert is_temp_of(theirs, other)
    assert not is_temp_of(slug, slug) and not is_temp_of(f".tmp-{slug}-junk", slug)


def test_writer_publishes_only_by_rename_after_the_marker(tmp_path):
    root = f"file://{tmp_path}/root %41 ü"  # raw path: no percent-decoding
    with ArtifactWriter(None, root, "a-1") as writer:
        writer.write_bytes("model.txt", b"m")
        assert not (tmp_path / "root %41 ü" / "a-1").exists()
        final = writer.commit({"label": "a", "format_version": 1})
    assert final == str(tmp_path / "root %41 ü" / "a-1")
    assert sorted(p.name for p in (tmp_path / "root %41 ü" / "a-1").iterdir()) == ["_COMPLETE", "metadata.json", "model.txt"]
    assert [p.name for p in (tmp_path / "root %41 ü").iterdir()] == ["a-1"]


def test_a_temp_folder_removed_under_the_writer_is_never_published(tmp_path):
    root = f"file://{tmp_path}/root"
    with pytest.raises(RuntimeError, match="vanished"), ArtifactWriter(None, root, "a-1") as writer:
        writer.write_bytes("model.txt", b"m")
        shutil.rmtree(writer.temp)  # a concurrent run's cleanup
        writer.commit({"label": "a", "format_version": 1})
    assert not (tmp_path / "root" / "a-1").exists()


def test_leaving_without_commit_removes_the_temporary(tmp_path):
    with pytest.raises(ValueError), ArtifactWriter(None, f"file://{tmp_path}/root", "a-1") as writer:
        writer.write_bytes("model.txt", b"m")
        raise ValueError("training failed")
    assert list((tmp_path / "root").iterdir()) == []


def test_a_folder_without_its_marker_is_not_complete(tmp_path):
    # What a crashed writer that skipped the rename, or a user's mkdir, leaves: the
    # folder under the final name, no marker. Completion is the marker, not the folder.
    from pipeline.data.artifacts import ArtifactTarget, artifact_location
    from pipeline.data.outputs import SuccessTarget
    from pipeline.flows.train import TrainModel
    from pipeline.storage.locations import parse_location
    from tasks.layout import MARKER
    from tasks.outputs import SUCCESS

    task = TrainModel(label="label_00", config="lightgbm-0123abcd", data=str(tmp_path / "d"), models=str(tmp_path / "m"))
    folder = artifact_location(parse_location(str(tmp_path / "m" / "lightgbm-0123abcd")), "label_00")
    assert task.output().path == folder.path
    (tmp_path / "m" / "lightgbm-0123abcd" / folder.name).mkdir(parents=True)
    (tmp_path / "m" / "lightgbm-0123abcd" / folder.name / "model.txt").write_text("m")
    assert not ArtifactTarget(folder).exists() and not task.complete()
    (tmp_path / "m" / "lightgbm-0123abcd" / folder.name / MARKER).write_text("")
    assert ArtifactTarget(folder).exists() and task.complete()

    out = tmp_path / "scores"
    out.mkdir()
    assert not SuccessTarget(parse_location(str(out))).exists()
    (out / SUCCESS).write_text("")
    assert SuccessTarget(parse_location(str(out))).exists()


def test_a_rerun_removes_only_its_own_labels_temporaries(tmp_path):
    # Another label's temporary may belong to a job running right now (another worker,
    # another controller): only the temporaries of the labels about to run are stale.
    import subprocess
    import sys

    from pipeline.data.artifacts import remove_stale_temporaries
    from pipeline.storage.locations import parse_location

    def gone() -> int:  # a stale temporary's writer has exited
        proc = subprocess.Popen([sys.executable, "-c", "pass"])
        proc.wait()
        return proc.pid

    root = tmp_path / "lightgbm-0123abcd"
    a, b, a_v2 = label_slug("a"), label_slug("b"), label_slug(f"{label_slug('a')} v2")
    names = {
        "stale_a": temp_name(a, temp_token(gone(), "0123456789")),
        "stale_b": temp_name(b, temp_token(gone(), "0123456789")),
        "running_a_v2": temp_name(a_v2, temp_token(13, "0123456789")),
        "running_c": temp_name(label_slug("c"), temp_token(14, "0123456789")),
        "users": ".tmp-notes",
        "done_a": a,
    }
    for name in names.values():
        (root / name).mkdir(parents=True)
    remove_stale_temporaries(parse_location(str(root)), a)
    assert sorted(p.name for p in root.iterdir()) == sorted(n for k, n in names.items() if k != "stale_a")
    remove_stale_temporaries(parse_location(str(root)), [b, label_slug("d")])  # a batch's labels
    assert sorted(p.name for p in root.iterdir()) == sorted(
        n for k, n in names.items() if k not in ("stale_a", "stale_b"))
