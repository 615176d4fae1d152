"""Publish a prepared data set to the Hugging Face Hub as Parquet with a dataset card (`python -m loaders push`).

`DatasetDict.push_to_hub` (datasets 5.2) builds its own `HfApi` and reads the repository back through
`HfFileSystem` while it commits, so nothing short of the network can stand in for it. This writes the same
repository layout locally instead: `data/<split>-NNNNN-of-NNNNN.parquet` shards and a README.md whose `configs` and
`dataset_info` YAML (features with ClassLabel names, split sizes) come from the helpers push_to_hub itself uses,
then uploads that folder in one commit. A local folder in that layout loads with `datasets.load_dataset(folder)`
as the repository does with `load_dataset(repo_id)`, which is how the tests check what a Hub user gets.
"""

from __future__ import annotations

import logging
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path

import datasets
from datasets.info import DatasetInfo, DatasetInfosDict
from datasets.splits import SplitDict, SplitInfo
from datasets.utils.metadata import MetadataConfigs
from datasets.utils.py_utils import convert_file_size_to_int
from huggingface_hub import DatasetCard, DatasetCardData, HfApi

logger = logging.getLogger(__name__)

README = "README.md"
DATA_DIR = "data"


@dataclass(frozen=True)
class SourceFormat:
    task_category: str
    description: str


# Per loader name: the Hub task category of the data and what the raw files were.
FORMATS: dict[str, SourceFormat] = {
    "imdb": SourceFormat(
        "text-classification", "one text file per example under one folder per label (IMDb's aclImdb layout)"
    ),
    "wnut17": SourceFormat("token-classification", "CoNLL `token<TAB>tag` files with W-NUT 17's 13 labels"),
    "conll": SourceFormat(
        "token-classification", "CoNLL `token<TAB>tag` files, with the tag set collected from the train file"
    ),
    "squad_v2": SourceFormat(
        "question-answering", "SQuAD-format JSON (v1.1, or v2.0 with unanswerable questions)"
    ),
}


def push_dataset(
    dataset: datasets.DatasetDict,
    name: str,
    repo_id: str,
    *,
    api: HfApi | None = None,
    private: bool = False,
    license: str = "unknown",
    pretty_name: str | None = None,
    command: str | None = None,
    commit_message: str = "Upload data set as Parquet with its dataset card",
) -> str:
    """Create the dataset repository if needed and upload the Parquet shards and card in one commit.

    Shards of splits no longer in `dataset` are deleted in the same commit, as `push_to_hub` does, so the
    repository holds exactly these splits. `private` applies only when the repository is created. Returns the
    commit URL. `HfApi` finds the token itself; nothing here reads or logs it.
    """
    api = api or HfApi()
    # Created first, so a missing or read-only token fails before minutes of Parquet writing.
    repo = api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="hub-dataset-") as tmp:
        folder = write_hub_folder(
            dataset,
            Path(tmp),
            name=name,
            repo_id=repo.repo_id,
            license=license,
            pretty_name=pretty_name,
            command=command,
        )
        logger.info("Uploading %s to the dataset repository %s", sorted(dataset), repo.repo_id)
        commit = api.upload_folder(
            repo_id=repo.repo_id,
            repo_type="dataset",
            folder_path=folder,
            delete_patterns=[f"{DATA_DIR}/*"],
            commit_message=commit_message,
        )
    return commit.commit_url


def write_hub_folder(
    dataset: datasets.DatasetDict,
    folder: Path,
    *,
    name: str,
    repo_id: str,
    license: str = "unknown",
    pretty_name: str | None = None,
    command: str | None = None,
    max_shard_size: int | str = datasets.config.MAX_SHARD_SIZE,
) -> Path:
    """Write `dataset` into `folder` as a Hub dataset repository: Parquet shards under data/ (split into shards of
    at most `max_shard_size` of Arrow data, push_to_hub's default) and README.md."""
    folder = Path(folder)
    shard_bytes = convert_file_size_to_int(max_shard_size)
    parquet_sizes = {
        split: _write_shards(rows, folder / DATA_DIR, split, shard_bytes) for split, rows in dataset.items()
    }
    dataset_card(
        dataset,
        name,
        repo_id,
        parquet_sizes=parquet_sizes,
        license=license,
        pretty_name=pretty_name,
        command=command,
    ).save(folder / README)
    return folder


def dataset_card(
    dataset: datasets.DatasetDict,
    name: str,
    repo_id: str,
    *,
    parquet_sizes: dict[str, int],
    license: str = "unknown",
    pretty_name: str | None = None,
    command: str | None = None,
) -> DatasetCard:
    """The dataset card: Hub metadata (license, task category, pretty name, `configs` pointing each split at its
    shards, `dataset_info` with the features) and a body on splits, features, labels, source and usage."""
    source = FORMATS[name]
    features = next(iter(dataset.values())).features
    card_data = DatasetCardData(
        license=license,
        task_categories=[source.task_category],
        pretty_name=pretty_name or repo_id.split("/")[-1],
    )
    info = DatasetInfo(features=features, splits=SplitDict(), download_size=0, dataset_size=0)
    for split, rows in dataset.items():
        info.splits.add(SplitInfo(name=split, num_bytes=rows.data.nbytes, num_examples=len(rows)))
        info.download_size += parquet_sizes[split]
        info.dataset_size += rows.data.nbytes
    info.size_in_bytes = info.download_size + info.dataset_size
    DatasetInfosDict({"default": info}).to_dataset_card_data(card_data)
    data_files = [{"split": split, "path": f"{DATA_DIR}/{split}-*"} for split in dataset]
    MetadataConfigs({"default": {"data_files": data_files}}).to_dataset_card_data(card_data)
    body = _card_body(dataset, name, repo_id, card_data["pretty_name"], license, command)
    return DatasetCard(f"---\n{card_data.to_yaml()}\n---\n\n{body}")


def _write_shards(rows: datasets.Dataset, data_dir: Path, split: str, shard_bytes: int) -> int:
    """Write one split as Parquet shards named the way push_to_hub names them; return their total size in bytes."""
    data_dir.mkdir(parents=True, exist_ok=True)
    num_shards = max(1, math.ceil(rows.data.nbytes / shard_bytes))
    total = 0
    for index in range(num_shards):
        path = data_dir / f"{split}-{index:05d}-of-{num_shards:05d}.parquet"
        rows.shard(num_shards, index, contiguous=True).to_parquet(str(path))
        total += path.stat().st_size
    return total


def _card_body(
    dataset: datasets.DatasetDict,
    name: str,
    repo_id: str,
    pretty_name: str,
    license: str,
    command: str | None,
) -> str:
    source = FORMATS[name]
    features = next(iter(dataset.values())).features
    lines = [
        f"# {pretty_name}",
        "",
        f"Prepared from {source.description} with rawtune's `loaders.load_dataset({name!r})` and stored as "
        f"Parquet. License: {license}.",
        "",
        "## Splits",
        "",
        "| split | rows |",
        "|---|---|",
        *(f"| {split} | {len(rows)} |" for split, rows in dataset.items()),
        "",
        "## Features",
        "",
        "| column | type |",
        "|---|---|",
        *(f"| {column} | {_describe(feature)} |" for column, feature in features.items()),
    ]
    labels = _class_labels(features)
    if labels:
        lines += ["", "## Labels", ""]
        for column, names in labels.items():
            lines.append(f"- `{column}`: " + ", ".join(f"{i} `{label}`" for i, label in enumerate(names)))
            top_level = isinstance(features[column], datasets.ClassLabel)
            unlabelled = [split for split, rows in dataset.items() if top_level and -1 in set(rows[column])]
            if unlabelled:
                lines.append(f"  (-1 marks unlabelled rows, in {', '.join(unlabelled)})")
    lines += [
        "",
        "## Usage",
        "",
        "```python",
        "from datasets import load_dataset",
        "",
        f'ds = load_dataset("{repo_id}")',
        "```",
    ]
    if labels:
        lines += ["", "Labels load as ids, with their names in the features: `ClassLabel.names`, `int2str`."]
    if command:
        lines += ["", "## How it was made", "", "```", command, "```"]
    return "\n".join(lines) + "\n"


def _describe(feature: datasets.features.features.FeatureType) -> str:
    """A short type for the features table (the YAML has the full definition)."""
    if isinstance(feature, datasets.ClassLabel):
        return f"class label ({feature.num_classes} names)"
    if isinstance(feature, datasets.Value):
        return feature.dtype
    if isinstance(feature, datasets.List | datasets.LargeList):
        return f"list of {_describe(feature.feature)}"
    if isinstance(feature, dict):
        return "{" + ", ".join(f"{key}: {_describe(value)}" for key, value in feature.items()) + "}"
    return type(feature).__name__


def _class_labels(features: datasets.Features) -> dict[str, list[str]]:
    """Names of every ClassLabel column, also inside lists (CoNLL's `ner_tags`)."""
    labels = {}
    for column, feature in features.items():
        inner = feature
        while isinstance(inner, datasets.List | datasets.LargeList):
            inner = inner.feature
        if isinstance(inner, datasets.ClassLabel):
            labels[column] = list(inner.names)
    return labels
