"""A random tiny byte LM for the entropy-model patcher, with widely spread next-byte entropies."""
import functools

import torch

import bytelm


@functools.cache
def tiny_lm():
    torch.manual_seed(0)
    model = bytelm.create_model("transformer-tiny")  # context 128
    with torch.no_grad():
        # at init every prediction is near uniform (~8 bits); sharpen the head so that entropies
        # spread over 0..8 bits and a threshold splits them
        model.head.weight.mul_(100)
    return model.eval()
