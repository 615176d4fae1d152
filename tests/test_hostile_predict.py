"""`python -m processing.predict` given careless or hostile inputs: another task's files, a context long enough to
exhaust memory, an `--out` that cannot be written, broken models and flags. Each is one `error:` line naming the
file or flag, or the exact result; a failed run leaves `--out` as it was."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch
from transformers import (
    AutoModelForQuestionAnswering,
    BertForQuestionAnswering,
)

from conftest import WHOLE_WORDS
from processing.predict import predict


def saved(model, directory: Path, tokenizer) -> Path:
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def qa_dir(tiny_model_dir, tiny_tokenizer, tmp_path_factory) -> Path:
    torch.manual_seed(1)
    model = AutoModelForQuestionAnswering.from_pretrained(tiny_model_dir)
    return saved(model, tmp_path_factory.mktemp("qa"), tiny_tokenizer)


def squad(questions: list[tuple[str, str]], context: str) -> dict:
    qas = [{"id": qid, "question": question, "answers": []} for qid, question in questions]
    return {"version": "v2.0", "data": [{"title": "t", "paragraphs": [{"context": context, "qas": qas}]}]}


# Bullet: QA memory is bounded by windows per forward pass.


def test_qa_batch_size_bounds_windows_per_pass_and_answers_stay_identical(qa_dir, tmp_path, monkeypatch):
    words = random.Random(0).choices(WHOLE_WORDS, k=600)
    data = squad([("long-1", "where did john go"), ("long-2", "who played in paris")], " ".join(words))
    data["data"][0]["paragraphs"].append(
        {
            "context": "john smith went to london",
            "qas": [{"id": "short", "question": "who went?", "answers": []}],
        }
    )
    (tmp_path / "long.json").write_text(json.dumps(data), encoding="utf-8")
    passes: list[int] = []
    forward = BertForQuestionAnswering.forward

    def counting_forward(self, *args, **kwargs):
        passes.append(kwargs["input_ids"].shape[0])
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(BertForQuestionAnswering, "forward", counting_forward)
    # A threshold this high answers every question, so the spans themselves are compared.
    settings = {"max_seq_length": 48, "doc_stride": 16, "null_score_diff_threshold": 100.0}

    small = list(predict(str(qa_dir), tmp_path / "long.json", {**settings, "batch_size": 2}))
    small_passes, passes[:] = list(passes), []
    large = list(predict(str(qa_dir), tmp_path / "long.json", {**settings, "batch_size": 1000}))

    assert small == large
    assert [r["id"] for r in small] == ["long-1", "long-2", "short"]
    assert all(r["answer"] for r in small)
    assert max(small_passes) == 2 and sum(small_passes) == sum(passes) > 40
    assert passes == [sum(small_passes)]  # batch_size 1000: every window of all three questions in one pass
