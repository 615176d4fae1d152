"""One text file per example under one folder per label: the IMDb `aclImdb` layout, generalised to any labels.

```
root/train/<label>/*.txt    root/test/<label>/*.txt    root/validation/<label>/*.txt (optional)
root/train/unsup/*.txt      -> an `unsupervised` split with label -1, as in the Hub's `imdb`
```
`root` may be a folder, a tar or zip archive of one, or absent, in which case the original Stanford aclImdb tarball
is downloaded. Archives, downloaded or not, are extracted by `archives.extract_archive` (files and folders only,
nothing outside the extraction folder) into the `downloads/extracted/` folder of the `datasets` cache, where
`datasets` extracts its own; label names are then read from the extracted folders, never from member names.

Only the files directly in a label folder are examples. Files in folders nested under a label folder are not read
(they are more often a misplaced copy than more texts of that label): they are counted and logged, and the data
report shows the count. An empty or blank text file is an error naming it.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import datasets

from . import repairs
from .archives import extract_archive
from .errors import DataFormatError
from .files import decode_text

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
    `download_url`: where to fetch the archive when neither `data_dir` nor `data_files` is given ("" for none:
    the generic `folders` config has no public default).
    """

    label_names: list[str] | None = None
    unlabelled_folder: str = "unsup"
    extension: str = ".txt"
    download_url: str = IMDB_URL


class TextFolders(datasets.GeneratorBasedBuilder):
    SCHEMA = "text-classification"
    """The table it produces: the `datasets` schema the task of that name reads."""

    BUILDER_CONFIG_CLASS = TextFoldersConfig
    BUILDER_CONFIGS = [
        TextFoldersConfig(name="imdb", version=datasets.Version("1.0.0")),
        TextFoldersConfig(name="folders", version=datasets.Version("1.0.0"), download_url=""),
    ]
    DEFAULT_CONFIG_NAME = "imdb"

    def __init__(self, *args, cache_dir: str | None = None, **kwargs) -> None:
        """`_info` runs inside `DatasetBuilder.__init__` and needs an archive's labels, so the extraction folder
        is known before it: the one `datasets`' own `ExtractManager` uses under the builder's downloads folder."""
        downloads = (
            os.path.join(cache_dir, datasets.config.DOWNLOADED_DATASETS_DIR)
            if cache_dir
            else str(datasets.config.DOWNLOADED_DATASETS_PATH)
        )
        self._extracted_root = Path(os.path.expanduser(downloads)) / datasets.config.EXTRACTED_DATASETS_DIR
        super().__init__(*args, cache_dir=cache_dir, **kwargs)

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
        if not self.config.download_url:
            raise ValueError(
                f"a {self.config.name} data set needs data_dir or data_files (no public default)"
            )
        return None

    def _local_folder(self, source: str) -> Path:
        """The folder to read: `source` itself, or where its archive was extracted (the features need the labels
        when the builder is created, so a local archive is extracted then, once per content)."""
        path = Path(source)
        if path.is_dir():
            return path
        if not path.exists():
            raise DataFormatError(
                source, "does not exist (expected a folder or archive in the aclImdb layout)"
            )
        if not path.is_file():  # a FIFO or a device such as /dev/zero would be read forever
            raise DataFormatError(
                source, "is neither a folder nor a regular file (expected a folder or archive)"
            )
        return extract_archive(path, self._extracted_root)

    def _discover_label_names(self) -> list[str]:
        source = self._source()
        if source is None:
            return ["neg", "pos"]
        root = _find_root(self._local_folder(source), source)
        train = _split_folder(root, SPLIT_FOLDERS[datasets.Split.TRAIN])
        if train is None:
            raise _missing_train(source)
        names = [
            d.name for d in train.iterdir() if _is_label_folder(d) and d.name != self.config.unlabelled_folder
        ]
        if not names:
            raise DataFormatError(
                source, "found no label folders under train/ (expected train/<label>/*.txt)"
            )
        return sorted(names)

    def _split_generators(self, dl_manager: datasets.DownloadManager) -> list[datasets.SplitGenerator]:
        source = self._source()
        if source is None:
            url = self.config.download_url
            root = _find_root(extract_archive(Path(dl_manager.download(url)), self._extracted_root, url), url)
        else:
            root = _find_root(self._local_folder(source), source)
        label_names = self.info.features["label"].names
        generators = []
        for split, folder_names in SPLIT_FOLDERS.items():
            folder = _split_folder(root, folder_names)
            if folder is None:
                continue
            files = self._labelled_files(folder, label_names, split)
            generators.append(
                datasets.SplitGenerator(name=split, gen_kwargs={"files": files, "split": split})
            )
            unlabelled = folder / self.config.unlabelled_folder
            if split == datasets.Split.TRAIN and unlabelled.is_dir():
                _log_nested_files(unlabelled)
                texts = self._texts_in(unlabelled)
                if not texts:
                    raise DataFormatError(
                        unlabelled,
                        f"is an empty folder of unlabelled texts (expected *{self.config.extension} files)",
                    )
                repairs.save(self, UNSUPERVISED_SPLIT, "listing", _listing_counts([unlabelled], len(texts)))
                files = [(str(p), -1) for p in texts]
                generators.append(
                    datasets.SplitGenerator(
                        name=UNSUPERVISED_SPLIT, gen_kwargs={"files": files, "split": UNSUPERVISED_SPLIT}
                    )
                )
        if not any(g.name == datasets.Split.TRAIN for g in generators):
            raise _missing_train(root)
        return generators

    def _labelled_files(
        self, split_folder: Path, label_names: list[str], split: str
    ) -> list[tuple[str, int]]:
        """The texts of every label folder, with their label ids; what the folders hold besides is counted."""
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
            _log_nested_files(folder)
            if not texts:
                raise DataFormatError(
                    folder, f"is an empty label folder (expected *{self.config.extension} files)"
                )
            files.extend((str(p), label_names.index(folder.name)) for p in texts)
        repairs.save(self, split, "listing", _listing_counts(label_folders, len(files)))
        return files

    def _texts_in(self, folder: Path) -> list[Path]:
        """Hidden files are skipped: macOS archives carry a binary `._name.txt` beside each `name.txt`."""
        return sorted(
            p
            for p in folder.iterdir()
            if p.is_file() and p.name.endswith(self.config.extension) and not p.name.startswith(".")
        )

    def _generate_examples(self, files: list[tuple[str, int]], split: str) -> Iterator[tuple[str, dict]]:
        counts = repairs.file_counts(b"")
        for path, label in files:
            data = Path(path).read_bytes()
            counts.update(repairs.file_counts(data))
            text = decode_text(path, data)
            if not text.strip():
                raise DataFormatError(
                    path, "holds no text (empty or only whitespace); every file is an example"
                )
            yield path, {"text": text, "label": label}
        repairs.save(self, split, f"files {files[0][0] if files else ''}", counts)


def _is_label_folder(path: Path) -> bool:
    """Folders that tools leave behind (`.ipynb_checkpoints`, macOS zips' `__MACOSX`) are not labels or roots."""
    return path.is_dir() and not path.name.startswith((".", "__MACOSX"))


def _split_folder(root: Path, names: tuple[str, ...]) -> Path | None:
    return next((root / n for n in names if (root / n).is_dir()), None)


def _find_root(path: Path, source: str) -> Path:
    """Accept both `aclImdb/` and the folder an archive was extracted to, which holds `aclImdb/`; errors name
    `source`, the folder, archive or URL the user gave."""
    if (path / "train").is_dir():
        return path
    children = [d for d in path.iterdir() if _is_label_folder(d)]
    if len(children) == 1 and (children[0] / "train").is_dir():
        return children[0]
    raise _missing_train(source)


def _missing_train(path: str | Path) -> DataFormatError:
    return DataFormatError(path, "has no train/ folder (expected train/<label>/*.txt, the aclImdb layout)")


def _listing_counts(folders: list[Path], texts: int) -> Counter[str]:
    """Files in the folders that are not texts the loader reads (hidden, another extension), and files in their
    subfolders, which are never read."""
    files = sum(p.is_file() for folder in folders for p in folder.iterdir())
    return Counter(
        skipped_files=files - texts, nested_files=sum(len(nested_files(folder)) for folder in folders)
    )


def nested_files(label_folder: Path) -> list[Path]:
    """Files in folders under a label folder, at any depth: the loader does not read them (see the module doc)."""
    return sorted(
        Path(parent) / name
        for sub in label_folder.iterdir()
        if sub.is_dir()
        for parent, _, names in os.walk(sub)
        for name in names
    )


def _log_nested_files(label_folder: Path) -> None:
    nested = nested_files(label_folder)
    if nested:
        logger.warning(
            f"{label_folder}: {len(nested)} files in subfolders are not read, such as {nested[0]} "
            "(a label's texts must be directly in its folder)"
        )
