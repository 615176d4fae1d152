"""Hostile and damaged archives as `data_dir`: built here, member by member, as an attacker or a broken copy would.

Every case must end in one `DataFormatError` naming the archive (and the member), with no file outside the
extraction folder created, read into the data or changed, and nothing left in the cache to be reused later.
"""

from __future__ import annotations

import gzip
import io
import os
import stat
import tarfile
import warnings
import zipfile
from collections import Counter
from pathlib import Path

import pytest

from loaders import DataFormatError, load_dataset
from loaders.archives import content_key

SECRET = "TOP SECRET: outside the archive"
ORIGINAL = "original content, must stay"
GOOD_FILES = {
    "aclImdb/train/pos/0_9.txt": "A great film.",
    "aclImdb/train/neg/0_2.txt": "Awful.",
    "aclImdb/test/pos/0_10.txt": "Wonderful.",
    "aclImdb/test/neg/0_1.txt": "Dull.",
}
UP = "../" * 30
"""Enough `..` to reach `/` from any extraction folder; the absolute path of a sentinel file follows it."""
DOWN_THROUGH_B = "b/" * 30
"""Cancels UP on paper while `b` does not exist; once `b` is a link to `.`, the system climbs UP all the same
(30: Linux follows at most 40 links in one path)."""


@pytest.fixture
def outside(tmp_path) -> Path:
    """Files the archives aim at: none may be read, changed, or joined by a new file."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "secret.txt").write_text(SECRET, encoding="utf-8")
    (folder / "target.txt").write_text(ORIGINAL, encoding="utf-8")
    return folder


def load(tmp_path: Path, archive: Path, **kwargs):
    return load_dataset("imdb", data_dir=archive, cache_dir=str(tmp_path / "cache"), **kwargs)


def extracted_root(tmp_path: Path) -> Path:
    return tmp_path / "cache" / "downloads" / "extracted"


def snapshot(tmp_path: Path) -> dict[str, tuple[bool, bytes, int]]:
    """Every path under tmp_path but the cache: whether it is a link, its bytes, its modification time."""
    state = {}
    for path in sorted(tmp_path.rglob("*")):
        if path.is_relative_to(tmp_path / "cache"):
            continue
        info = path.lstat()
        data = path.read_bytes() if path.is_file() and not path.is_symlink() else b""
        state[str(path.relative_to(tmp_path))] = (path.is_symlink(), data, info.st_mtime_ns)
    return state


# Archives built member by member.


def file_member(name: str, text: str) -> tuple[tarfile.TarInfo, bytes]:
    data = text.encode()
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 1_700_000_000
    return info, data


def link_member(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info, b""


def special_member(name: str, kind: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.devmajor, info.devminor = 1, 3  # /dev/null's numbers, for the device case
    return info, b""


def good_members() -> list[tuple[tarfile.TarInfo, bytes]]:
    return [file_member(name, text) for name, text in GOOD_FILES.items()]


def write_tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes]]) -> Path:
    compression = path.name.rpartition(".")[2]
    mode = f"w:{compression}" if compression in ("gz", "bz2", "xz") else "w"
    with tarfile.open(path, mode, format=tarfile.GNU_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return path


def write_zip(path: Path, members: list[tuple[zipfile.ZipInfo, str]]) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter(
            "ignore", UserWarning
        )  # zipfile warns about the duplicate names built on purpose
        with zipfile.ZipFile(path, "w") as archive:
            for name, text in GOOD_FILES.items():
                archive.writestr(name, text)
            for info, text in members:
                archive.writestr(info, text)
    return path


def zip_member(name: str, mode: int | None = None) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
    if mode is not None:
        info.create_system = 3  # Unix: the high 16 bits of external_attr are st_mode
        info.external_attr = mode << 16
    return info


def assert_refused(tmp_path: Path, archive: Path, *expected: str) -> DataFormatError:
    """One DataFormatError naming the archive; nothing outside the cache touched; nothing kept in the cache."""
    before = snapshot(tmp_path)
    with pytest.raises(DataFormatError) as err:
        load(tmp_path, archive)
    message = str(err.value)
    assert err.value.path == str(archive.resolve())
    for text in expected:
        assert text in message
    assert SECRET not in message and "root:" not in message
    assert snapshot(tmp_path) == before
    root = extracted_root(tmp_path)
    assert not root.exists() or list(root.iterdir()) == []
    return err.value


def hostile_tar_cases(outside: Path) -> dict[str, tuple[list, str, str]]:
    """Name: (members after the good ones, the member the error must name, what it must say)."""
    secret, target = str(outside / "secret.txt"), str(outside / "target.txt")
    pos = "aclImdb/train/pos"
    return {
        "absolute path": (
            [file_member(str(outside / "new.txt"), "x")],
            str(outside / "new.txt"),
            "absolute path",
        ),
        "dot-dot path": ([file_member(UP + str(outside / "new.txt")[1:], "x")], UP, "'..'"),
        "symlink to /etc/passwd": ([link_member(f"{pos}/1_1.txt", "/etc/passwd")], f"{pos}/1_1.txt", "link"),
        "symlink to a file outside": (
            [link_member(f"{pos}/1_1.txt", UP + secret[1:])],
            f"{pos}/1_1.txt",
            "link",
        ),
        "symlink to a file inside": ([link_member(f"{pos}/1_1.txt", "0_9.txt")], f"{pos}/1_1.txt", "link"),
        "symlink chain, target added later": (
            [link_member(f"{pos}/1_1.txt", "step"), link_member(f"{pos}/step", UP + secret[1:])],
            f"{pos}/1_1.txt",
            "link",
        ),
        "symlink chain, a later link makes it leave": (
            [link_member(f"{pos}/1_1.txt", DOWN_THROUGH_B + UP + secret[1:]), link_member(f"{pos}/b", ".")],
            f"{pos}/1_1.txt",
            "link",
        ),
        "symlink chain, then a file written through it": (
            [
                link_member(f"{pos}/1_1.txt", DOWN_THROUGH_B + UP + target[1:]),
                link_member(f"{pos}/b", "."),
                file_member(f"{pos}/1_1.txt", "overwritten"),
            ],
            f"{pos}/1_1.txt",
            "link",
        ),
        "hard link read from the archive's root, not the link's folder": (
            [
                link_member("aclImdb/b", "."),
                link_member(
                    f"{pos}/1_1.txt", "aclImdb/" + DOWN_THROUGH_B + "../" + UP + secret[1:], tarfile.LNKTYPE
                ),
            ],
            "aclImdb/b",
            "link",
        ),
        "hard link from the archive's root, then a file written through it": (
            [
                link_member("aclImdb/b", "."),
                link_member(
                    f"{pos}/1_1.txt", "aclImdb/" + DOWN_THROUGH_B + "../" + UP + target[1:], tarfile.LNKTYPE
                ),
                file_member(f"{pos}/1_1.txt", "overwritten"),
            ],
            "aclImdb/b",
            "link",
        ),
        "hard link to a file outside": (
            [link_member(f"{pos}/1_1.txt", UP + secret[1:], tarfile.LNKTYPE)],
            f"{pos}/1_1.txt",
            "link",
        ),
        "hard link by absolute path": (
            [link_member(f"{pos}/1_1.txt", secret, tarfile.LNKTYPE)],
            f"{pos}/1_1.txt",
            "link",
        ),
        "symlink, then a file written through it": (
            [link_member(f"{pos}/1_1.txt", target), file_member(f"{pos}/1_1.txt", "overwritten")],
            f"{pos}/1_1.txt",
            "link",
        ),
        "hard link, then a file written through it": (
            [
                link_member(f"{pos}/1_1.txt", target, tarfile.LNKTYPE),
                file_member(f"{pos}/1_1.txt", "overwritten"),
            ],
            f"{pos}/1_1.txt",
            "link",
        ),
        "symlinked folder, then a file in it": (
            [link_member("aclImdb/train/evil", str(outside)), file_member("aclImdb/train/evil/new.txt", "x")],
            "aclImdb/train/evil",
            "link",
        ),
        "character device": ([special_member(f"{pos}/dev.txt", tarfile.CHRTYPE)], f"{pos}/dev.txt", "device"),
        "block device": ([special_member(f"{pos}/dev.txt", tarfile.BLKTYPE)], f"{pos}/dev.txt", "device"),
        "fifo": ([special_member(f"{pos}/fifo.txt", tarfile.FIFOTYPE)], f"{pos}/fifo.txt", "FIFO"),
        "same file twice": ([file_member(f"{pos}/0_9.txt", "replaced")], f"{pos}/0_9.txt", "appears twice"),
        "file, then a file inside it": (
            [file_member(f"{pos}/x.txt", "a"), file_member(f"{pos}/x.txt/y.txt", "b")],
            f"{pos}/x.txt/y.txt",
            "inside a member that the archive holds as a file",
        ),
    }


HOSTILE_TAR_NAMES = list(hostile_tar_cases(Path("/o")))


@pytest.mark.parametrize("compression", ["tar.gz", "tar"])
@pytest.mark.parametrize("case", HOSTILE_TAR_NAMES)
def test_hostile_tar_is_refused_and_touches_nothing_outside(tmp_path, outside, case, compression):
    members, member, problem = hostile_tar_cases(outside)[case]
    archive = write_tar(tmp_path / f"aclImdb.{compression}", good_members() + members)

    error = assert_refused(tmp_path, archive, problem)

    assert error.where is not None and error.where.startswith("member ") and member in error.where


def test_hostile_tar_as_the_download_names_the_url(tmp_path, outside):
    """The public tarball goes through the same extraction: `download_url` is a local file here (no server)."""
    archive = write_tar(
        tmp_path / "aclImdb_v1.tar.gz",
        [*good_members(), link_member("aclImdb/train/pos/1_1.txt", "/etc/passwd")],
    )
    before = snapshot(tmp_path)

    with pytest.raises(DataFormatError) as err:
        load_dataset("imdb", download_url=str(archive), cache_dir=str(tmp_path / "cache"))

    assert err.value.path == str(archive)
    assert "member aclImdb/train/pos/1_1.txt" in str(err.value) and "link" in str(err.value)
    assert snapshot(tmp_path) == before
    assert list(extracted_root(tmp_path).iterdir()) == []


def hostile_zip_cases(outside: Path) -> dict[str, tuple[list, str, str]]:
    pos = "aclImdb/train/pos"
    return {
        "absolute path": (
            [(zip_member(str(outside / "new.txt")), "x")],
            str(outside / "new.txt"),
            "absolute path",
        ),
        "dot-dot path": ([(zip_member(UP + str(outside / "new.txt")[1:]), "x")], UP, "'..'"),
        "symlink to /etc/passwd": (
            [(zip_member(f"{pos}/1_1.txt", stat.S_IFLNK | 0o777), "/etc/passwd")],
            f"{pos}/1_1.txt",
            "symbolic link",
        ),
        "symlink to a file outside": (
            [(zip_member(f"{pos}/1_1.txt", stat.S_IFLNK | 0o777), UP + str(outside / "secret.txt")[1:])],
            f"{pos}/1_1.txt",
            "symbolic link",
        ),
        "fifo": ([(zip_member(f"{pos}/fifo.txt", stat.S_IFIFO | 0o644), "")], f"{pos}/fifo.txt", "FIFO"),
        "same file twice": ([(zip_member(f"{pos}/0_9.txt"), "replaced")], f"{pos}/0_9.txt", "appears twice"),
    }


@pytest.mark.parametrize("case", list(hostile_zip_cases(Path("/o"))))
def test_hostile_zip_is_refused_and_touches_nothing_outside(tmp_path, outside, case):
    members, member, problem = hostile_zip_cases(outside)[case]
    archive = write_zip(tmp_path / "aclImdb.zip", members)

    error = assert_refused(tmp_path, archive, problem)

    assert error.where is not None and member in error.where


def test_encrypted_zip_member_is_refused(tmp_path):
    archive = write_zip(tmp_path / "aclImdb.zip", [(zip_member("aclImdb/train/pos/1_1.txt"), "text")])
    data = bytearray(archive.read_bytes())
    # Set the "encrypted" flag bit in the last member's central directory entry (general purpose flags at +8).
    entry = data.rindex(b"PK\x01\x02")
    data[entry + 8] |= 0x1
    archive.write_bytes(bytes(data))

    assert_refused(tmp_path, archive, "member aclImdb/train/pos/1_1.txt", "is encrypted")


def test_label_names_come_from_the_extracted_train_folder_not_member_names(tmp_path):
    """A `train` folder nested in a label folder once made `x` a label, with no example."""
    archive = write_tar(
        tmp_path / "aclImdb.tar.gz", [*good_members(), file_member("aclImdb/train/pos/train/x/1.txt", "?")]
    )

    ds = load(tmp_path, archive)

    assert ds["train"].features["label"].names == ["neg", "pos"]
    assert sorted(ds["train"]["text"]) == ["A great film.", "Awful."]


def test_member_name_too_long_to_extract(tmp_path):
    archive = write_tar(
        tmp_path / "aclImdb.tar.gz", [*good_members(), file_member("aclImdb/" + "n" * 300, "x")]
    )

    assert_refused(tmp_path, archive, "holds a member whose name is too long to extract", "n" * 300)


def test_data_dir_that_is_a_fifo_is_refused_without_reading_it(tmp_path):
    fifo = tmp_path / "aclImdb.tar.gz"
    os.mkfifo(fifo)

    with pytest.raises(DataFormatError) as err:
        load(tmp_path, fifo)

    assert err.value.path == str(fifo)
    assert "is neither a folder nor a regular file" in str(err.value)


# Damaged archives: one error naming the archive, never fewer files.


def many_members(count: int = 12) -> list[tuple[tarfile.TarInfo, bytes]]:
    """Texts that do not compress, so that a cut lands inside the data."""
    return [
        file_member(f"aclImdb/train/{'pos' if i % 2 else 'neg'}/{i}_1.txt", os.urandom(3000).hex())
        for i in range(count)
    ]


@pytest.mark.parametrize("kind", ["tar", "tar.gz", "tar.bz2", "tar.xz"])
def test_every_kind_of_tar_loads(tmp_path, kind):
    ds = load(tmp_path, write_tar(tmp_path / f"aclImdb.{kind}", good_members()))

    assert sorted(ds["train"]["text"]) == ["A great film.", "Awful."]
    assert sorted(ds["test"]["text"]) == ["Dull.", "Wonderful."]


@pytest.mark.parametrize(
    ("kind", "problem"),
    [
        ("tar", "is truncated or corrupt"),
        ("tar.gz", "is truncated or corrupt"),
        ("tar.xz", "is truncated or corrupt"),
        # A bz2 file this small is one compressed block: cut, not even its first tar header can be read.
        (
            "tar.bz2",
            "is neither a folder nor a tar/zip archive in the aclImdb layout (or it is truncated or damaged)",
        ),
    ],
)
def test_tar_cut_in_the_middle(tmp_path, kind, problem):
    archive = write_tar(tmp_path / f"aclImdb.{kind}", many_members())
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])

    error = assert_refused(tmp_path, archive, problem)

    assert error.__cause__ is None and error.__suppress_context__


@pytest.mark.parametrize("compression", ["tar", "tar.gz"])
def test_tar_cut_exactly_at_a_member_boundary(tmp_path, compression):
    """The cut tar is complete up to a header boundary (and, for .tar.gz, a valid gzip of that), so `tarfile`
    alone would load the first members and stop without a word."""
    members = many_members()
    full = write_tar(tmp_path / "full.tar", members)
    with tarfile.open(full) as tar:
        last = tar.getmembers()[-1]
        kept_before = tar.getmembers()[-2].name
    cut = full.read_bytes()[: last.offset]
    archive = tmp_path / f"aclImdb.{compression}"
    archive.write_bytes(gzip.compress(cut) if compression == "tar.gz" else cut)
    full.unlink()

    assert_refused(tmp_path, archive, "no end-of-archive marker", f"after member {kept_before}")


def test_tar_with_a_garbled_header_in_the_middle(tmp_path):
    archive = write_tar(tmp_path / "aclImdb.tar", many_members())
    with tarfile.open(archive) as tar:
        middle = tar.getmembers()[5]
    data = bytearray(archive.read_bytes())
    data[middle.offset : middle.offset + 512] = b"garbage!" * 64
    archive.write_bytes(bytes(data))

    assert_refused(tmp_path, archive, "no end-of-archive marker")


def test_two_tars_joined_together(tmp_path):
    first = write_tar(tmp_path / "first.tar", good_members()).read_bytes()
    second = write_tar(
        tmp_path / "second.tar", [file_member("aclImdb/train/pos/9_9.txt", "later")]
    ).read_bytes()
    archive = tmp_path / "aclImdb.tar"
    archive.write_bytes(first + second)
    (tmp_path / "first.tar").unlink()
    (tmp_path / "second.tar").unlink()

    assert_refused(tmp_path, archive, "data after its end-of-archive marker")


def test_gzip_with_a_wrong_checksum(tmp_path):
    archive = write_tar(tmp_path / "aclImdb.tar.gz", good_members())
    data = bytearray(archive.read_bytes())
    data[-8] ^= 0xFF  # the CRC32 of the uncompressed tar, checked only when the stream is read to its end
    archive.write_bytes(bytes(data))

    assert_refused(tmp_path, archive, "is truncated or corrupt")


def test_zip_cut_short(tmp_path):
    archive = write_zip(tmp_path / "aclImdb.zip", [])
    archive.write_bytes(archive.read_bytes()[:-30])

    assert_refused(tmp_path, archive, "neither a folder nor a tar/zip archive", "truncated or damaged")


def test_zip_with_a_damaged_member(tmp_path):
    archive = tmp_path / "aclImdb.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, text in GOOD_FILES.items():
            zf.writestr(name, text)
    data = archive.read_bytes()
    start = data.index(b"Awful.")
    archive.write_bytes(data[:start] + b"Great!" + data[start + 6 :])

    assert_refused(tmp_path, archive, "is truncated or corrupt", "aclImdb/train/neg/0_2.txt")


# The extraction cache: keyed by content, and never a half-finished folder.


def test_replaced_archive_with_same_size_and_time_is_read_again(tmp_path):
    archive = write_tar(tmp_path / "aclImdb.tar", good_members())
    first = load(tmp_path, archive)
    first_key, times = content_key(archive), archive.stat()
    write_tar(archive, [file_member(n, t.replace("Awful.", "Superb")) for n, t in GOOD_FILES.items()])
    os.utime(archive, ns=(times.st_atime_ns, times.st_mtime_ns))
    assert (archive.stat().st_size, archive.stat().st_mtime_ns) == (times.st_size, times.st_mtime_ns)

    second = load(tmp_path, archive)

    assert sorted(first["train"]["text"]) == ["A great film.", "Awful."]
    assert sorted(second["train"]["text"]) == ["A great film.", "Superb"]
    assert {p.name for p in extracted_root(tmp_path).iterdir()} == {first_key, content_key(archive)}


def test_interrupted_extraction_is_never_reused(tmp_path, monkeypatch):
    archive = write_tar(tmp_path / "aclImdb.tar.gz", good_members())
    real_filter, seen = tarfile.data_filter, []

    def interrupted(member, path):
        seen.append(member.name)
        if len(seen) == 2:
            raise KeyboardInterrupt
        return real_filter(member, path)

    monkeypatch.setattr(tarfile, "data_filter", interrupted)
    with pytest.raises(KeyboardInterrupt):
        load(tmp_path, archive)
    monkeypatch.undo()
    key = content_key(archive)
    assert not (extracted_root(tmp_path) / key).exists()
    # A process killed outright leaves its temporary folder behind: it holds one member and must stay unused.
    leftover = extracted_root(tmp_path) / f".{key[:16]}-partial-killed" / "content" / "aclImdb/train/pos"
    leftover.mkdir(parents=True)
    (leftover / "0_9.txt").write_text("A great film.", encoding="utf-8")

    ds = load(tmp_path, archive)

    assert Counter(ds["train"]["label"]) == {0: 1, 1: 1}
    assert Counter(ds["test"]["label"]) == {0: 1, 1: 1}
    assert (extracted_root(tmp_path) / key / "aclImdb/test/neg/0_1.txt").read_text() == "Dull."
