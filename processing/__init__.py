"""Post-processing and evaluation for fine-tuned models (e.g. the official SQuAD metric)."""
