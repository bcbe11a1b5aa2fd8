"""``SigmoidForPred``: the transform that turns the network's logits into probabilities."""
from isegm.inference.transforms.base import SigmoidForPred

__all__ = ['SigmoidForPred']
