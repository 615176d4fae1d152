"""Final outputs are written whole or not at all."""

from __future__ import annotations

import pytest

from processing.outputs import atomic_files_into, atomic_path, write_json, write_text


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = write_text(tmp_path / "results.json", "old")
    with pytest.raises(RuntimeError), atomic_path(target) as temporary:
        temporary.write_text("half of the new")
        raise RuntimeError("killed mid-write")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]


def test_a_finished_write_replaces_the_file(tmp_path):
    target = write_json(tmp_path / "out" / "results.json", {"f1": 0.5})
    assert target.read_text() == '{\n  "f1": 0.5\n}\n'
    assert sorted(p.name for p in target.parent.iterdir()) == ["results.json"]


def test_a_directory_as_target_is_refused(tmp_path):
    with pytest.raises(IsADirectoryError, match="is a directory"), atomic_path(tmp_path):
        pass


def test_files_written_into_a_folder_land_only_when_complete(tmp_path):
    with pytest.raises(RuntimeError), atomic_files_into(tmp_path) as staging:
        (staging / "model.safetensors").write_bytes(b"torn")
        raise RuntimeError("killed mid-save")
    assert list(tmp_path.iterdir()) == []
    with atomic_files_into(tmp_path) as staging:
        (staging / "model.safetensors").write_bytes(b"whole")
        (staging / "config.json").write_text("{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors"]
    assert (tmp_path / "model.safetensors").read_bytes() == b"whole"
