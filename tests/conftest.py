"""Shared fixtures: a tiny WordPiece tokenizer and tiny random BERT models built in the test, never downloaded."""

from __future__ import annotations

import socket
import string
from pathlib import Path

import pytest
import torch
from accelerate.state import AcceleratorState, GradientState
from transformers import BertConfig, BertTokenizerFast

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLES = REPO_ROOT / "samples"
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"

WHOLE_WORDS = [
    "the",
    "a",
    "an",
    "movie",
    "film",
    "was",
    "is",
    "good",
    "bad",
    "great",
    "awful",
    "i",
    "it",
    "and",
    "of",
    "to",
    "in",
    "new",
    "york",
    "london",
    "paris",
    "what",
    "where",
    "who",
    "when",
    "did",
    "does",
    "play",
    "played",
    "city",
    "capital",
    "france",
    "england",
    "john",
    "smith",
    "apple",
    "google",
    "went",
]


def build_tiny_tokenizer(directory: Path) -> BertTokenizerFast:
    """A real uncased WordPiece tokenizer whose vocabulary splits most words into several sub-tokens.

    Letters and `##letters` guarantee that every lowercase ASCII word tokenizes without [UNK], so word/sub-token
    alignment is exercised for real.
    """
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    chars = list(string.ascii_lowercase + string.digits + string.punctuation)
    vocab = specials + chars + ["##" + c for c in string.ascii_lowercase + string.digits] + WHOLE_WORDS
    vocab = list(dict.fromkeys(vocab))
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = BertTokenizerFast(
        vocab={token: i for i, token in enumerate(vocab)}, do_lower_case=True, model_max_length=512
    )
    tokenizer.save_pretrained(directory)
    return tokenizer


def tiny_bert_config(vocab_size: int, **kwargs) -> BertConfig:
    """A 2-layer, 32-wide BERT: trains a few steps in well under a second on a CPU."""
    return BertConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
        **kwargs,
    )


@pytest.fixture(scope="session")
def tiny_tokenizer(tmp_path_factory) -> BertTokenizerFast:
    return build_tiny_tokenizer(tmp_path_factory.mktemp("tiny_tokenizer"))


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tiny_tokenizer) -> Path:
    """A saved random tiny BERT with the tiny tokenizer: a stand-in for a Hub checkpoint that trains in seconds."""
    from transformers import BertModel

    directory = tmp_path_factory.mktemp("tiny_bert")
    torch.manual_seed(0)
    BertModel(tiny_bert_config(len(tiny_tokenizer))).save_pretrained(directory)
    tiny_tokenizer.save_pretrained(directory)
    return directory


def free_port() -> int:
    """A TCP port nothing listens on now, for a test's own process group (fixed ports collide across runs)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def reset_accelerate() -> None:
    """Accelerate keeps process-wide singletons; an in-process run must start as a new process would."""
    AcceleratorState._reset_state(True)
    GradientState._reset_state()


@pytest.fixture
def fresh_accelerate_state():
    """Runs in one test process must not see each other's Accelerator state."""
    reset_accelerate()
    yield
    reset_accelerate()


def refused_before_loading(monkeypatch, capsys, argv: list[str]) -> str:
    """`train.py` with `argv` exits 2 with one `error:` line (returned) and without loading any data: flags that
    cannot take effect are refused before any work."""
    import loaders
    import train

    def no_loading(*args, **kwargs):
        raise AssertionError("data loaded before the flags were checked")

    monkeypatch.setattr(loaders, "load_dataset", no_loading)
    assert train.main([*argv, "--report_to", "none"]) == 2
    (error,) = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")]
    return error
