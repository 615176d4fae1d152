"""The commands above the run layer: predict on new files, the data report."""
