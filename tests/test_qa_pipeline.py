"""The extractive QA pipeline answers exactly as evaluation post-processing does, on long contexts too."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from datasets import Dataset
from transformers import AutoModelForQuestionAnswering, pipeline

import processing  # noqa: F401  (registers the pipeline)
from processing.qa_pipeline import TASK_NAME
from processing.question_answering import postprocess_predictions, prepare_eval_features

CONTEXT = " ".join(["the film was played in london and paris"] * 12) + " john smith went to new york."


@pytest.fixture(scope="module")
def qa_model_dir(tiny_model_dir, tmp_path_factory):
    torch.manual_seed(1)
    directory = tmp_path_factory.mktemp("tiny_qa")
    AutoModelForQuestionAnswering.from_pretrained(tiny_model_dir).save_pretrained(directory)
    return directory


def test_pipeline_answer_is_the_evaluation_answer_over_several_windows(qa_model_dir, tiny_tokenizer):
    qa = pipeline(TASK_NAME, model=str(qa_model_dir), tokenizer=tiny_tokenizer)
    answer = qa(question="who went to new york?", context=CONTEXT, max_seq_len=64, doc_stride=16)

    example = {"id": ["q"], "question": ["who went to new york?"], "context": [CONTEXT]}
    features = prepare_eval_features(example, tiny_tokenizer, 64, 16)
    assert len(features["input_ids"]) >= 3  # the context really is cut into several windows
    batch = tiny_tokenizer.pad(
        {k: features[k] for k in ("input_ids", "token_type_ids", "attention_mask")}, return_tensors="pt"
    )
    with torch.no_grad():
        outputs = qa.model(**batch)
    predictions, _ = postprocess_predictions(
        Dataset.from_dict(example),
        Dataset.from_dict(
            {"example_id": features["example_id"], "offset_mapping": features["offset_mapping"]}
        ),
        outputs.start_logits.numpy(),
        outputs.end_logits.numpy(),
        null_score_diff_threshold=np.inf,
    )
    assert answer["answer"] == predictions["q"] != ""
    assert CONTEXT[answer["start"] : answer["end"]] == answer["answer"]
    assert 0.0 < answer["score"] < 1.0


def test_handle_impossible_answer_returns_the_empty_answer_when_null_wins(qa_model_dir, tiny_tokenizer):
    qa = pipeline(TASK_NAME, model=str(qa_model_dir), tokenizer=tiny_tokenizer)
    always_null = qa(
        question="where?", context="in london", handle_impossible_answer=True, null_score_diff_threshold=-1e9
    )
    assert always_null == {"answer": "", "start": 0, "end": 0, "score": pytest.approx(always_null["score"])}
    never_null = qa(
        question="where?", context="in london", handle_impossible_answer=True, null_score_diff_threshold=1e9
    )
    assert never_null["answer"] != ""


def test_lists_of_questions_give_lists_of_answers(qa_model_dir, tiny_tokenizer):
    qa = pipeline(TASK_NAME, model=str(qa_model_dir), tokenizer=tiny_tokenizer)
    answers = qa(question=["who?", "where?"], context=["john smith went home", "in paris"])
    assert [a["answer"] in c for a, c in zip(answers, ["john smith went home", "in paris"], strict=True)] == [
        True,
        True,
    ]


def test_the_threshold_defaults_to_the_one_saved_in_the_models_config(qa_model_dir, tiny_tokenizer, tmp_path):
    model = AutoModelForQuestionAnswering.from_pretrained(qa_model_dir)
    model.config.null_score_diff_threshold = -1e9
    model.save_pretrained(tmp_path)
    qa = pipeline(TASK_NAME, model=str(tmp_path), tokenizer=tiny_tokenizer)

    assert qa(question="where?", context="in london", handle_impossible_answer=True)["answer"] == ""
    asked = qa(
        question="where?", context="in london", handle_impossible_answer=True, null_score_diff_threshold=1e9
    )
    assert asked["answer"] != ""
    assert qa(question="where?", context="in london")["answer"] != ""  # abstains only when asked to
