"""`Dataset.map` processors, metrics and post-processing, one module per task; `registry.TASKS` names them.

Importing the package registers the extractive question-answering pipeline with `transformers.pipeline`.
"""

from .qa_pipeline import register as _register_qa_pipeline

_register_qa_pipeline()
