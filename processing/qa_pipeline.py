"""An extractive question-answering pipeline for `transformers.pipeline`, which removed its own in version 5.

Registered as `pipeline("extractive-question-answering", model=...)` when `processing` is imported. It cuts long
contexts into the same windows as evaluation and picks the answer with the same post-processing, so what a user
gets from the pipeline is what `eval_results.json` measured.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from datasets import Dataset
from transformers import AutoModelForQuestionAnswering, Pipeline
from transformers.pipelines import PIPELINE_REGISTRY

from .question_answering import (
    DOC_STRIDE,
    MAX_ANSWER_LENGTH,
    MAX_SEQ_LENGTH,
    N_BEST_SIZE,
    answer_windows,
    prepare_eval_features,
)

TASK_NAME = "extractive-question-answering"


class ExtractiveQuestionAnsweringPipeline(Pipeline):
    """`pipe(question=..., context=...)` -> `{"answer", "start", "end", "score"}`; lists give lists.

    `score` is the answer's odds against the no-answer (CLS) score squashed to (0, 1): the sigmoid of
    best span score - null score. With `handle_impossible_answer=True`, the empty answer (start = end = 0) is
    returned when the null score wins by more than `null_score_diff_threshold` (by default the threshold the model
    was tuned with, saved in its config), with score 1 - that value.
    """

    def _sanitize_parameters(
        self,
        max_seq_len: int | None = None,
        doc_stride: int | None = None,
        n_best_size: int | None = None,
        max_answer_len: int | None = None,
        handle_impossible_answer: bool | None = None,
        null_score_diff_threshold: float | None = None,
    ) -> tuple[dict, dict, dict]:
        preprocess = {
            k: v for k, v in {"max_seq_len": max_seq_len, "doc_stride": doc_stride}.items() if v is not None
        }
        postprocess = {
            k: v
            for k, v in {
                "n_best_size": n_best_size,
                "max_answer_len": max_answer_len,
                "handle_impossible_answer": handle_impossible_answer,
                "null_score_diff_threshold": null_score_diff_threshold,
            }.items()
            if v is not None
        }
        return preprocess, {}, postprocess

    def __call__(
        self,
        *args: Any,
        question: str | list[str] | None = None,
        context: str | list[str] | None = None,
        **kwargs: Any,
    ):
        if question is not None:
            if isinstance(question, str):
                return super().__call__({"question": question, "context": context}, **kwargs)
            args = ([{"question": q, "context": c} for q, c in zip(question, context, strict=True)], *args)
        return super().__call__(*args, **kwargs)

    def preprocess(
        self, inputs: dict[str, str], max_seq_len: int = MAX_SEQ_LENGTH, doc_stride: int = DOC_STRIDE
    ) -> dict[str, Any]:
        example = {"id": ["0"], "question": [inputs["question"]], "context": [inputs["context"]]}
        features = prepare_eval_features(example, self.tokenizer, max_seq_len, doc_stride)
        model_columns = [c for c in features if c not in ("example_id", "offset_mapping")]
        batch = self.tokenizer.pad({c: features[c] for c in model_columns}, return_tensors="pt")
        return {"batch": dict(batch), "example": example, "features": features}

    def _forward(self, model_inputs: dict[str, Any]) -> dict[str, Any]:
        with torch.no_grad():
            outputs = self.model(**model_inputs["batch"])
        return {
            "start_logits": outputs.start_logits.float().cpu().numpy(),
            "end_logits": outputs.end_logits.float().cpu().numpy(),
            "example": model_inputs["example"],
            "features": model_inputs["features"],
        }

    def postprocess(
        self,
        model_outputs: dict[str, Any],
        n_best_size: int = N_BEST_SIZE,
        max_answer_len: int = MAX_ANSWER_LENGTH,
        handle_impossible_answer: bool = False,
        null_score_diff_threshold: float | None = None,
    ) -> dict[str, Any]:
        features = Dataset.from_dict(
            {
                "example_id": model_outputs["features"]["example_id"],
                "offset_mapping": model_outputs["features"]["offset_mapping"],
            }
        )
        answers = answer_windows(
            Dataset.from_dict(model_outputs["example"]),
            features,
            model_outputs["start_logits"],
            model_outputs["end_logits"],
            n_best_size=n_best_size,
            max_answer_length=max_answer_len,
            null_score_diff_threshold=self._null_threshold(
                null_score_diff_threshold, handle_impossible_answer
            ),
        )
        null_odds = float(answers.null_odds[0])
        answer_probability = 1.0 / (1.0 + math.exp(min(null_odds, 700.0)))
        if not answers.answered[0]:
            return {"answer": "", "start": 0, "end": 0, "score": 1.0 - answer_probability}
        start, end = int(answers.start_chars[0]), int(answers.end_chars[0])
        return {"answer": answers.best_texts[0], "start": start, "end": end, "score": answer_probability}

    def _null_threshold(self, given: float | None, handle_impossible_answer: bool) -> float:
        """The threshold asked for, else the one the model was tuned with (its config's), else 0; never abstain
        unless `handle_impossible_answer`, as transformers' own pipeline did."""
        if not handle_impossible_answer:
            return math.inf
        return given if given is not None else getattr(self.model.config, "null_score_diff_threshold", 0.0)


def register() -> None:
    PIPELINE_REGISTRY.register_pipeline(
        TASK_NAME,
        pipeline_class=ExtractiveQuestionAnsweringPipeline,
        pt_model=AutoModelForQuestionAnswering,
        type="text",
    )
