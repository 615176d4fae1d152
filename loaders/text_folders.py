"""One text file per example under one folder per label: the IMDb `aclImdb` layout, generalised to any labels.

```
root/train/<label>/*.txt    root/test/<label>/*.txt    root/validation/<label>/*.txt (optional)
root/train/unsup/*.txt      -> an `unsupervised` split with label -1, as in the Hub's `imdb`
```
`root` may be a folder, an archive of one (extracted through the `datasets` download manager), or absent, in which
case the original Stanford aclImdb tarball is downloaded.
"""

from __future__ import annotations

import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import datasets

from .errors import DataFormatError
from .files import read_text

logger = datasets.logging.get_logger(__name__)

IMDB_URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
SPLIT_FOLDERS = {
    datasets.Split.TRAIN: ("train",),
    datasets.Split.VALIDATION: ("validation", "valid", "dev"),
    datasets.Split.TEST: ("test",),
}
UNSUPERVISED_SPLIT = "unsupervised"


@dataclass
class TextFoldersConfig(datasets.BuilderConfig):
    """`label_names`: the class names in label-id order; by default the train folder's label folders, sorted.

    `unlabelled_folder`: the folder under train/ holding unlabelled texts (aclImdb's `unsup`).
    `extension`: only files ending with it are examples (aclImdb keeps other files beside the label folders).
    `download_url`: where to fetch the archive when neither `data_dir` nor `data_files` is given.
    """

    label_names: list[str] | None = None
    unlabelled_folder: str = "unsup"
    extension: str = ".txt"
    download_url: str = IMDB_URL


class TextFolders(datasets.GeneratorBasedBuilder):
    BUILDER_CONFIG_CLASS = TextFoldersConfig
    BUILDER_CONFIGS = [TextFoldersConfig(name="imdb", version=datasets.Version("1.0.0"))]
    DEFAULT_CONFIG_NAME = "imdb"

    def _info(self) -> datasets.DatasetInfo:
        names = self.config.label_names or self._discover_label_names()
        return datasets.DatasetInfo(
            description="Texts classified by the folder they are in (aclImdb layout).",
            features=datasets.Features(
                {"text": datasets.Value("string"), "label": datasets.ClassLabel(names=names)}
            ),
            supervised_keys=("text", "label"),
        )

    def _source(self) -> str | None:
        if self.config.data_dir:
            return self.config.data_dir
        if self.config.data_files:
            files = [f for split_files in self.config.data_files.values() for f in split_files]
            if len(files) != 1:
                raise DataFormatError(
                    ", ".join(files),
                    "expected a single folder or archive in the aclImdb layout, not several files",
                )
            return files[0]
        return None

    def _discover_label_names(self) -> list[str]:
        """Read label names before extraction too, so features are known when the builder is created."""
        source = self._source()
        if source is None:
            return ["neg", "pos"]
        path = Path(source)
        if path.is_dir():
            train = _split_folder(_find_root(path), SPLIT_FOLDERS[datasets.Split.TRAIN])
            if train is None:
                raise _missing_train(path)
            names = [
                d.name
                for d in train.iterdir()
                if _is_label_folder(d) and d.name != self.config.unlabelled_folder
            ]
        else:
            names = _label_folders_in_archive(path, self.config.unlabelled_folder)
        if not names:
            raise DataFormatError(path, "found no label folders under train/ (expected train/<label>/*.txt)")
        return sorted(names)

    def _split_generators(self, dl_manager: datasets.DownloadManager) -> list[datasets.SplitGenerator]:
        source = self._source()
        if source is None:
            source = dl_manager.download_and_extract(self.config.download_url)
        elif not Path(source).is_dir():
            if not Path(source).exists():
                raise DataFormatError(
                    source, "does not exist (expected a folder or archive in the aclImdb layout)"
                )
            source = dl_manager.extract(source)
        root = _find_root(Path(source))
        label_names = self.info.features["label"].names
        generators = []
        for split, folder_names in SPLIT_FOLDERS.items():
            folder = _split_folder(root, folder_names)
            if folder is None:
                continue
            files = self._labelled_files(folder, label_names)
            generators.append(datasets.SplitGenerator(name=split, gen_kwargs={"files": files}))
            unlabelled = folder / self.config.unlabelled_folder
            if split == datasets.Split.TRAIN and unlabelled.is_dir():
                files = [(str(p), -1) for p in self._texts_in(unlabelled)]
                generators.append(
                    datasets.SplitGenerator(name=UNSUPERVISED_SPLIT, gen_kwargs={"files": files})
                )
        if not any(g.name == datasets.Split.TRAIN for g in generators):
            raise _missing_train(root)
        return generators

    def _labelled_files(self, split_folder: Path, label_names: list[str]) -> list[tuple[str, int]]:
        files: list[tuple[str, int]] = []
        label_folders = sorted(
            d
            for d in split_folder.iterdir()
            if _is_label_folder(d) and d.name != self.config.unlabelled_folder
        )
        if not label_folders:
            raise DataFormatError(
                split_folder, f"has no label folders (expected one of {label_names} as folders)"
            )
        for folder in label_folders:
            if folder.name not in label_names:
                raise DataFormatError(folder, f"is not a known label folder (labels: {label_names})")
            texts = self._texts_in(folder)
            if not texts:
                raise DataFormatError(
                    folder, f"is an empty label folder (expected *{self.config.extension} files)"
                )
            files.extend((str(p), label_names.index(folder.name)) for p in texts)
        return files

    def _texts_in(self, folder: Path) -> list[Path]:
        """Hidden files are skipped: macOS archives carry a binary `._name.txt` beside each `name.txt`."""
        return sorted(
            p
            for p in folder.iterdir()
            if p.is_file() and p.name.endswith(self.config.extension) and not p.name.startswith(".")
        )

    def _generate_examples(self, files: list[tuple[str, int]]) -> Iterator[tuple[str, dict]]:
        for path, label in files:
            yield path, {"text": read_text(path), "label": label}


def _is_label_folder(path: Path) -> bool:
    """Folders that tools leave behind (`.ipynb_checkpoints`, macOS zips' `__MACOSX`) are not labels or roots."""
    return path.is_dir() and not path.name.startswith((".", "__MACOSX"))


def _split_folder(root: Path, names: tuple[str, ...]) -> Path | None:
    return next((root / n for n in names if (root / n).is_dir()), None)


def _find_root(path: Path) -> Path:
    """Accept both `aclImdb/` and the folder an archive was extracted to, which holds `aclImdb/`."""
    if (path / "train").is_dir():
        return path
    children = [d for d in path.iterdir() if _is_label_folder(d)]
    if len(children) == 1 and (children[0] / "train").is_dir():
        return children[0]
    raise _missing_train(path)


def _missing_train(path: str | Path) -> DataFormatError:
    return DataFormatError(path, "has no train/ folder (expected train/<label>/*.txt, the aclImdb layout)")


def _label_folders_in_archive(path: Path, unlabelled_folder: str) -> list[str]:
    """Label folders are the directories directly under a `train/` directory anywhere in the archive."""
    if tarfile.is_tarfile(path):
        with tarfile.open(path) as archive:
            members = [m.name for m in archive.getmembers()]
    elif zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            members = archive.namelist()
    else:
        raise DataFormatError(path, "is neither a folder nor a tar/zip archive in the aclImdb layout")
    names = set()
    for member in members:
        parts = Path(member).parts
        if parts and parts[0] == "__MACOSX":
            continue
        for i, part in enumerate(parts[:-2]):
            if part == "train" and parts[i + 1] != unlabelled_folder and not parts[i + 1].startswith("."):
                names.add(parts[i + 1])
    return sorted(names)
