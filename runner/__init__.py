"""The run layer: what one training run does around the loop, shared by the PyTorch and the Keras loops.

Config and its checks, loading and the validation split, evaluation features, checkpoints, the one finishing step
(score, tune, analyse, save, card, Hub). It sits above `loaders` and `processing` and below the commands.
"""
