import pytest

from brats_seg.files import atomic_path, write_text


def test_failed_write_keeps_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "a" / "summary.json"
    write_text(target, "old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert [p.name for p in target.parent.iterdir()] == ["summary.json"]


@pytest.mark.parametrize("name,suffix", [("x.nii.gz", ".nii.gz"), ("last.pt", ".pt"), ("c_image.npy", ".npy")])
def test_temporary_keeps_the_format_suffix(tmp_path, name, suffix):
    with atomic_path(tmp_path / name, fsync=True) as tmp:
        assert tmp.name.endswith(suffix) and tmp.name.startswith(f".{name}.tmp") and tmp.parent == tmp_path
        tmp.write_bytes(b"data")
    assert (tmp_path / name).read_bytes() == b"data" and not tmp.exists()
