"""Click simulation for training (RITM's MultiPointSampler).

``sample_object(sample)`` picks the target: one object, or with ``merge_objects_prob`` a union of up to
``max_num_merged_objects`` objects; ``sample_points()`` then draws positive clicks inside it (eroded
with ``positive_erode_prob``) and negative clicks from three strategies: background (``bg``), other
objects (``other``) and a band around the target (``border``). The number of clicks follows a
geometric law with ratio ``prob_gamma``: 1..N positives, 0..N negatives.
Returns ``2N x 3`` rows ``(y, x, order)``: N positive rows, then N negative, padded with -1;
``order`` is 0 for the first positive click and 100 for the others (as the reference).

``single_click_prob`` (ours, default 0 = the reference): that share of samples gets only a first click per
chosen object, drawn near the object's centre (``dt >= max(dt) / sfc_inner_k``, where the evaluation
clicker puts its first click), and no negatives. With ITER-M on top this trains the NoC regime itself
-- one click, then clicks on the errors -- which the geometric law alone reaches for ~1 % of samples.
"""
from __future__ import annotations

import random
from typing import Dict, List, Optional

import cv2
import numpy as np
from scipy.ndimage import distance_transform_edt

from isegm.data.base import DSample


def _geometric_probs(n: int, gamma: float) -> np.ndarray:
    p = gamma ** np.arange(n, dtype=np.float64)
    return p / p.sum()


class MultiPointSampler:
    def __init__(self, max_num_points: int, prob_gamma: float = 0.7, expand_ratio: float = 0.1,
                 positive_erode_prob: float = 0.9, positive_erode_iters: int = 3,
                 negative_bg_prob: float = 0.1, negative_other_prob: float = 0.4,
                 negative_border_prob: float = 0.5, merge_objects_prob: float = 0.0,
                 max_num_merged_objects: int = 2, first_click_center: bool = False,
                 sfc_inner_k: float = 1.7, single_click_prob: float = 0.0):
        self.max_num_points = max_num_points
        self.prob_gamma = prob_gamma
        self.expand_ratio = expand_ratio
        self.positive_erode_prob = positive_erode_prob
        self.positive_erode_iters = positive_erode_iters
        self.neg_strategies = ('bg', 'other', 'border')
        self.neg_probs = (negative_bg_prob, negative_other_prob, negative_border_prob)
        self.merge_objects_prob = merge_objects_prob
        self.max_num_merged_objects = max_num_merged_objects
        self.first_click_center = first_click_center
        self.sfc_inner_k = sfc_inner_k
        self.single_click_prob = single_click_prob
        self._pos_probs = _geometric_probs(max_num_points, prob_gamma)
        self._neg_probs = _geometric_probs(max_num_points + 1, prob_gamma)
        self.selected_mask: Optional[np.ndarray] = None
        self._pos_masks: List[np.ndarray] = []
        self._neg_masks: Dict[str, np.ndarray] = {}

    # -- target ---------------------------------------------------------------------------------------
    def sample_object(self, sample: DSample) -> None:
        h, w = sample.image.shape[:2]
        valid = np.ones((h, w), bool) if sample.ignore is None else ~sample.ignore
        n = sample.num_objects
        if n == 0:
            self.selected_mask = np.zeros((h, w), np.uint8)
            self._pos_masks = []
            empty = np.zeros((h, w), bool)
            self._neg_masks = {'bg': valid, 'other': empty, 'border': empty}
            return
        order = np.random.permutation(n)
        k = 1
        if n > 1 and self.max_num_merged_objects > 1 and random.random() < self.merge_objects_prob:
            k = np.random.randint(2, min(n, self.max_num_merged_objects) + 1)
        chosen = order[:k]
        masks = sample.masks.astype(bool)
        self._pos_masks = [masks[:, :, i] for i in chosen]
        selected = np.any(masks[:, :, chosen], axis=2)
        all_objects = np.any(masks, axis=2)
        others = np.any(masks[:, :, order[k:]], axis=2) if n > k else np.zeros((h, w), bool)
        self.selected_mask = selected.astype(np.uint8)
        self._neg_masks = {'bg': ~all_objects & valid, 'other': others & ~selected & valid,
                           'border': self._border_mask(selected) & valid}

    def _border_mask(self, mask: np.ndarray) -> np.ndarray:
        r = int(np.ceil(self.expand_ratio * np.sqrt(mask.sum())))
        expanded = cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8), iterations=max(r, 1)) > 0
        return expanded & ~mask

    def _positive_erode(self, mask: np.ndarray) -> np.ndarray:
        if random.random() >= self.positive_erode_prob:
            return mask
        eroded = cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8),
                           iterations=self.positive_erode_iters) > 0
        return eroded if eroded.sum() > 10 else mask

    # -- clicks ---------------------------------------------------------------------------------------
    def sample_points(self) -> List[List[float]]:
        if self.selected_mask is None:
            raise RuntimeError('MultiPointSampler.sample_points called before sample_object')
        single = self.single_click_prob > 0 and random.random() < self.single_click_prob
        pos = self._positive_points(single)
        neg = [] if single else self._negative_points()
        pad = [[-1.0, -1.0, -1.0]]
        return pos + pad * (self.max_num_points - len(pos)) + neg + pad * (self.max_num_points - len(neg))

    def _center_candidates(self, mask: np.ndarray) -> np.ndarray:
        dt = distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
        return np.argwhere(dt >= dt.max() / self.sfc_inner_k)

    def _positive_points(self, single: bool = False) -> List[List[float]]:
        if not self._pos_masks:
            return []
        per_object = []
        for obj_index, mask in enumerate(self._pos_masks):
            mask = self._positive_erode(mask)
            idx = np.argwhere(mask)
            if len(idx) == 0:
                continue
            num = 1 if single else 1 + np.random.choice(self.max_num_points, p=self._pos_probs)
            pts = []
            for j in range(num):
                central = j == 0 and (self.first_click_center or single)
                cand = self._center_candidates(mask) if central else idx
                y, x = cand[np.random.randint(len(cand))]
                pts.append([float(y), float(x)])
            per_object.append(pts)
        # the first click of every merged object is kept, the rest are shuffled together
        firsts = [p[0] for p in per_object]
        rest = [q for p in per_object for q in p[1:]]
        random.shuffle(rest)
        pts = (firsts + rest)[:self.max_num_points]
        return [[y, x, 0.0 if i == 0 else 100.0] for i, (y, x) in enumerate(pts)]

    def _negative_points(self) -> List[List[float]]:
        strategies = [(np.argwhere(self._neg_masks[name]), p)
                      for name, p in zip(self.neg_strategies, self.neg_probs)]
        strategies = [(idx, p) for idx, p in strategies if len(idx) > 0 and p > 0]
        if not strategies:
            return []
        probs = np.array([p for _, p in strategies])
        probs /= probs.sum()
        num = np.random.choice(self.max_num_points + 1, p=self._neg_probs)
        pts = []
        for _ in range(num):
            idx = strategies[np.random.choice(len(strategies), p=probs)][0]
            y, x = idx[np.random.randint(len(idx))]
            pts.append([float(y), float(x), 100.0])
        return pts
