"""Extracting a data archive without trusting it: a tar or zip passed as `--data_dir` may come from anyone.

Only regular files and folders are extracted. Links are refused outright rather than checked: a link is the only
way an archive member can reach outside the folder it is extracted to, checking them safely needs the `tarfile`
fixes of Python 3.11.13 / 3.12.11 (CVE-2025-4517, CVE-2025-4330), and a data layout has no use for them. Names
that are absolute, climb out with `..`, repeat an earlier member or pass through a member that is a file are
refused too, so every file written is a new file inside the extraction folder.

Each archive is extracted once per content, into `<extracted_root>/<sha256 of the archive>`: a replaced archive
(even with the same size and modification time) gets a new folder. Extraction goes to a temporary folder beside it
that is renamed when complete, so an interrupted extraction is never mistaken for a finished one.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import lzma
import stat
import tarfile
import tempfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from .errors import DataFormatError

NOT_AN_ARCHIVE = (
    "is neither a folder nor a tar/zip archive in the aclImdb layout (or it is truncated or damaged)"
)
CORRUPT_ARCHIVE_ERRORS = (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, lzma.LZMAError)
"""What a truncated or damaged archive raises while it is read; gzip and bz2 damage comes as an OSError with no
errno (a real OSError, such as a full disk, has one and is not the archive's fault)."""
READ_CHUNK = 1 << 20


def extract_archive(archive: Path, extracted_root: Path, shown_as: str | None = None) -> Path:
    """The folder holding `archive`'s files, extracted safely on first use.

    `shown_as` names the archive in errors when `archive` is a download's cache file (its URL means more).
    """
    target = extracted_root / content_key(archive)
    if target.is_dir():
        return target
    extracted_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{target.name[:16]}-partial-", dir=extracted_root) as partial:
        content = Path(partial) / "content"
        content.mkdir()
        _extract(archive, content, shown_as or str(archive))
        try:
            content.rename(target)
        except OSError:
            if not target.is_dir():  # else another process finished the same extraction first
                raise
    return target


def content_key(path: Path) -> str:
    """The sha256 of the file's bytes: tens of milliseconds against seconds to extract (`benchmarks/archive_key.py`
    measures it); a key of size, time and the first and last MiB is faster but misses a rewrite of the middle that
    keeps both.

    Memoised per process on the file's identity and change time, which any rewrite or replacement updates.
    """
    info = path.stat()
    return _sha256(
        str(path.resolve()), info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns
    )


@functools.lru_cache(maxsize=16)
def _sha256(path: str, *identity: int) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _extract(archive: Path, dest: Path, shown: str) -> None:
    """Tar (plain, gz, bz2, xz) is tried first: its header has a checksum at offset 0, while a zip's directory is
    looked for at the end, where a tar holding a zip could have one."""
    try:
        try:
            tar = _CheckedTarFile.open(archive, "r:*", tarinfo=_EndRecordingTarInfo, errorlevel=2)
        except tarfile.ReadError:
            if not zipfile.is_zipfile(archive):
                raise DataFormatError(shown, NOT_AN_ARCHIVE) from None
            with zipfile.ZipFile(archive) as zip_archive:
                _extract_zip(zip_archive, dest, shown)
            return
        with tar:
            _extract_tar(tar, dest, shown)
    except CORRUPT_ARCHIVE_ERRORS as err:
        raise DataFormatError(shown, f"is truncated or corrupt ({err or type(err).__name__})") from None
    except OSError as err:
        if err.errno == errno.ENAMETOOLONG:
            raise DataFormatError(
                shown, f"holds a member whose name is too long to extract: {err.filename}"
            ) from None
        if err.errno is not None:
            raise
        raise DataFormatError(shown, f"is truncated or corrupt ({err})") from None


class _CheckedTarFile(tarfile.TarFile):
    end_error: tarfile.HeaderError | None = None
    """Why reading headers stopped: only `EOFHeaderError` (a zero block) is the end-of-archive marker; an empty,
    short or garbled header after a member is where a truncated or damaged archive stops."""


class _EndRecordingTarInfo(tarfile.TarInfo):
    @classmethod
    def fromtarfile(cls, tar: _CheckedTarFile) -> tarfile.TarInfo:
        try:
            return super().fromtarfile(tar)
        except tarfile.HeaderError as err:
            tar.end_error = err
            raise


def _extract_tar(tar: _CheckedTarFile, dest: Path, shown: str) -> None:
    names = _MemberNames(shown)

    def only_files_and_folders(member: tarfile.TarInfo, path: str) -> tarfile.TarInfo:
        where = f"member {member.name}"
        names.add(member.name, member.isdir())
        if member.issym() or member.islnk():
            raise DataFormatError(
                shown, f"is a link to {member.linkname!r}; archives may hold only files and folders", where
            )
        if not (member.isfile() or member.isdir()):
            raise DataFormatError(
                shown,
                "is a device, FIFO or other special file; archives may hold only files and folders",
                where,
            )
        return tarfile.data_filter(member, path)

    tar.extractall(dest, filter=only_files_and_folders)
    _check_tar_end(tar, shown)


def _check_tar_end(tar: _CheckedTarFile, shown: str) -> None:
    """`tarfile` stops quietly at a member boundary when the rest is missing or garbled; a cut there would load
    fewer files, so the end-of-archive marker is required, and nothing but padding may follow it. Reading to the
    end also makes gzip check its CRC and length."""
    if not isinstance(tar.end_error, tarfile.EOFHeaderError):
        last = tar.members[-1].name if tar.members else None
        raise DataFormatError(
            shown,
            "is truncated or corrupt: no end-of-archive marker where the next member should start",
            f"after member {last}" if last else None,
        )
    while chunk := tar.fileobj.read(READ_CHUNK):
        if chunk.count(0) != len(chunk):
            raise DataFormatError(
                shown,
                "holds data after its end-of-archive marker (archives joined together?), which would be lost",
            )


def _extract_zip(archive: zipfile.ZipFile, dest: Path, shown: str) -> None:
    """All members are checked before any is written: a zip lists them up front."""
    names = _MemberNames(shown)
    for info in archive.infolist():
        where = f"member {info.filename}"
        names.add(info.filename, info.is_dir())
        kind = stat.S_IFMT(info.external_attr >> 16)
        if kind == stat.S_IFLNK:
            raise DataFormatError(
                shown, "is a symbolic link; archives may hold only files and folders", where
            )
        if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
            raise DataFormatError(
                shown,
                "is a device, FIFO or other special file; archives may hold only files and folders",
                where,
            )
        if info.flag_bits & 0x1:
            raise DataFormatError(shown, "is encrypted; extract it yourself and pass the folder", where)
    try:
        archive.extractall(dest)
    except NotImplementedError as err:  # a compression method zipfile cannot read (deflate64, ...)
        raise DataFormatError(shown, f"cannot be read: {err}") from None


class _MemberNames:
    """Names seen so far, so that each member is a new file or folder strictly inside the extraction folder.

    `tarfile`'s data filter would strip a leading `/` and `zipfile` drops `..`: both change what the archive says
    without a word, so such names are refused here instead.
    """

    def __init__(self, shown: str) -> None:
        self.shown = shown
        self.files: set[str] = set()
        self.folders: set[str] = set()

    def add(self, name: str, is_folder: bool) -> None:
        where = f"member {name}"
        parts = PurePosixPath(name).parts
        if name.startswith("/") or ".." in parts:
            raise DataFormatError(
                self.shown,
                "has an absolute path or a '..' part, which would put it outside the archive's folder",
                where,
            )
        key = "/".join(parts)
        parents = ["/".join(parts[:i]) for i in range(1, len(parts))]
        if key in self.files or (not is_folder and key in self.folders):
            raise DataFormatError(
                self.shown, "appears twice in the archive; the second would replace the first", where
            )
        if any(parent in self.files for parent in parents):
            raise DataFormatError(self.shown, "is inside a member that the archive holds as a file", where)
        (self.folders if is_folder else self.files).add(key)
        self.folders.update(parents)
