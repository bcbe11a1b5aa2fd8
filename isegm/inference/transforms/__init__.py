"""Test-time transforms: ZoomIn, LimitLongestSide, AddHorizontalFlip, SigmoidForPred."""
from isegm.inference.transforms.base import BaseTransform, SigmoidForPred
from isegm.inference.transforms.flip import AddHorizontalFlip
from isegm.inference.transforms.limit_longest_side import LimitLongestSide
from isegm.inference.transforms.zoom_in import ZoomIn

__all__ = ['BaseTransform', 'SigmoidForPred', 'AddHorizontalFlip', 'LimitLongestSide', 'ZoomIn']
