"""DEXTR inference: object masks from four extreme points (left, right, top, bottom).

The pipeline is that of DEXTR-PyTorch's ``demo.py``, step by step:
box of the points enlarged by ``pad`` (50, or the model's ``crop_pad``; not clamped) -> crop with zero
padding -> bicubic resize to ``input_size`` (512; a model may carry its own) -> points mapped into the
crop (truncated) -> Gaussian heatmap (sigma 10, or the model's ``heatmap_sigma``) rescaled to 0..255 as
4th channel -> network -> bilinear upsampling (align_corners) -> sigmoid -> bicubic resize back to the
crop -> paste into the image -> zero outside the points' own box. Masks (:meth:`predict_mask`,
:meth:`predict_masks`) are that map thresholded, refined by GrabCut when the model asks for it
(``grabcut_refine``, our bundled model; :mod:`isegm.inference.grabcut_refine`).

Example::

    predictor = ExtremePointsPredictor(DextrModel.from_state_dict(torch.load(path)))
    points = [[120, 10], [130, 300], [5, 150], [240, 160]]       # (y, x) rows: left, right, top, bottom
    prob = predictor.predict(image, points)
    mask = predictor.predict_mask(image, points)   # prob > predictor.threshold (+ GrabCut if enabled)
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from isegm.errors import InputError
from isegm.inference.predictors.base import parse_device
from isegm.utils.extreme_geometry import (Box, crop_with_zero_pad, extreme_points_bbox, gaussian_heatmap,
                                      paste_crop_probability, points_to_crop_grid, rescale_to_range,
                                      resize_crop)
from isegm.utils.image_io import to_rgb_uint8

logger = logging.getLogger(__name__)

PointsLike = Union[np.ndarray, Sequence[Sequence[float]]]

DEXTR_INPUT_SIZE = 512  # network input side and heatmap width of DEXTR (used unless the model says otherwise)
DEXTR_SIGMA = 10.0
DEXTR_THRESHOLD = 0.8     # DEXTR's demo binarises at 0.8
DEXTR_PAD = 50            # context around the points' box, DEXTR's relax_crop / demo pad


@dataclass
class DextrSample:
    """One object prepared for the network: its input and how to map the output back."""

    net_input: np.ndarray  # 4 x input_size x input_size float32, C-contiguous: R, G, B, heatmap (0..255)
    bbox: Box              # crop box in the image, inclusive, may leave the image
    keep_box: Box          # the points' own box: the result is zero outside it
    image_hw: Tuple[int, int]


def validate_extreme_points(points_yx: PointsLike, image_hw: Tuple[int, int]) -> np.ndarray:
    """Check ``points_yx`` (4 x 2, ``(y, x)`` rows, any order) and return them as int64 ``(x, y)`` rows.

    Points outside the image are clipped into it; fractional coordinates are truncated to whole pixels
    (as DEXTR's demo does with mouse clicks). Raises :class:`InputError` for anything but 4 x 2 finite
    numbers.
    """
    try:
        pts = np.asarray(points_yx, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f'extreme points must be a 4 x 2 array of numbers (y, x), got {points_yx!r}') from exc
    if pts.shape != (4, 2):
        raise InputError(f'extreme points must be a 4 x 2 array of (y, x) rows (left, right, top, bottom '
                         f'points of the object), got shape {pts.shape}')
    if not np.isfinite(pts).all():
        raise InputError(f'extreme points must be finite numbers, got {pts.tolist()}')
    h, w = image_hw
    ys = np.clip(pts[:, 0], 0, h - 1)
    xs = np.clip(pts[:, 1], 0, w - 1)
    return np.stack([xs, ys], axis=1).astype(np.int64)


def _as_rgb(image: np.ndarray) -> np.ndarray:
    if not isinstance(image, np.ndarray):
        raise InputError(f'the image must be a numpy array (H x W x 3 uint8 RGB), got {type(image).__name__}')
    if image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8 and image.size:
        return image
    return to_rgb_uint8(image)   # converts, or raises InputError (also for an empty image)


class ExtremePointsPredictor:
    """DEXTR predictor: a probability map per object from its four extreme points.

    Args:
        model: a DEXTR network (:class:`isegm.model.is_dextr_model.DextrModel`): ``B x 4 x S x S`` in 0..255
            -> logits at stride 8.
        device: ``'cpu'`` or ``'cuda:N'``; the model is moved there and put in eval mode.
        pad: context added around the points' box before cropping; default: the model's ``crop_pad``
            attribute (the relaxation it was trained with), else DEXTR's 50 pixels.
        threshold: default threshold of :meth:`predict_masks`; default: the model's ``mask_threshold``
            attribute (what it was validated at), else DEXTR's demo value 0.8.
        input_size: side of the square network input; default: the model's ``input_size`` attribute
            (what it was trained with), else DEXTR's 512.
        zero_pad_crop: True (DEXTR) lets the crop box leave the image and pads with zeros; False clamps it.
        sigma: width (FWHM) of the Gaussian drawn at each point of the heatmap channel; default: the
            model's ``heatmap_sigma`` attribute, else DEXTR's 10.
        clip_probs: clip the bicubic overshoot of the returned map to [0, 1] (thresholds above 0 and below
            1 give the same masks either way); False returns DEXTR's values unchanged.
        batch_size: objects per network call in :meth:`predict_masks`.
        grabcut_refine: masks are refined by GrabCut seeded with the network's map
            (:func:`~isegm.inference.grabcut_refine.refine_with_grabcut`); default: the model's
            ``grabcut_refine`` attribute (True for the bundled model), else False (DEXTR).
    """

    def __init__(self, model: nn.Module, device: Union[str, torch.device] = 'cpu', pad: Optional[int] = None,
                 threshold: Optional[float] = None, input_size: Optional[int] = None, zero_pad_crop: bool = True,
                 sigma: Optional[float] = None, clip_probs: bool = True, batch_size: int = 4,
                 grabcut_refine: Optional[bool] = None):
        if not isinstance(model, nn.Module):
            raise InputError(f'model must be a torch.nn.Module (a DextrModel), got {type(model).__name__}')
        if getattr(model, 'task', 'extreme') != 'extreme':
            raise InputError(f'{type(model).__name__} is a click model, not an extreme-point model: use '
                             'isegm.inference.predictors.get_predictor for it')
        if threshold is None:
            threshold = getattr(model, 'mask_threshold', DEXTR_THRESHOLD)
        if pad is None:
            pad = getattr(model, 'crop_pad', DEXTR_PAD)
        if input_size is None:
            input_size = getattr(model, 'input_size', DEXTR_INPUT_SIZE)
        if sigma is None:
            sigma = getattr(model, 'heatmap_sigma', DEXTR_SIGMA)
        try:
            bad = int(pad) < 0 or int(input_size) < 8 or int(batch_size) < 1 or not float(sigma) > 0
        except (TypeError, ValueError):
            bad = True
        if bad:
            raise InputError('pad must be >= 0, input_size >= 8, batch_size >= 1 and sigma > 0; got '
                             f'pad={pad}, input_size={input_size}, batch_size={batch_size}, sigma={sigma}')
        self.device = parse_device(device)
        self.model = model.to(self.device).eval()
        self.pad = int(pad)
        self.threshold = self._check_threshold(threshold)
        self.input_size = int(input_size)
        self.zero_pad_crop = bool(zero_pad_crop)
        self.sigma = float(sigma)
        self.clip_probs = bool(clip_probs)
        self.batch_size = int(batch_size)
        if grabcut_refine is None:
            grabcut_refine = getattr(model, 'grabcut_refine', False)
        self.grabcut_refine = bool(grabcut_refine)

    @staticmethod
    def _check_threshold(threshold: float) -> float:
        try:
            value = float(threshold)
        except (TypeError, ValueError) as exc:
            raise InputError(f'threshold must be a number in [0, 1], got {threshold!r}') from exc
        if not 0.0 <= value <= 1.0:
            raise InputError(f'threshold must be in [0, 1], got {threshold}')
        return value

    # ---- the three stages -------------------------------------------------------------------------
    def prepare(self, image: np.ndarray, points_yx: PointsLike) -> DextrSample:
        """Crop, resize and heatmap for one object. ``image``: H x W x 3 uint8 RGB (grey / RGBA accepted)."""
        image = _as_rgb(image)
        image_hw = image.shape[:2]
        points_xy = validate_extreme_points(points_yx, image_hw)
        keep_box = extreme_points_bbox(points_xy, 0)
        bbox = extreme_points_bbox(points_xy, self.pad, None if self.zero_pad_crop else image_hw)
        crop = crop_with_zero_pad(image, bbox)
        resized = resize_crop(crop, self.input_size)
        grid_points = points_to_crop_grid(points_xy, bbox, crop.shape[:2], self.input_size)
        heatmap = gaussian_heatmap(resized.shape[:2], grid_points, self.sigma).astype(np.float32)
        heatmap = rescale_to_range(heatmap, 255)
        # C-contiguous NCHW: a channels-last array would send torch down another conv path (other rounding).
        stacked = np.concatenate([resized, heatmap[:, :, None]], axis=2)
        net_input = np.ascontiguousarray(stacked.transpose(2, 0, 1))
        return DextrSample(net_input, bbox, keep_box, image_hw)

    def predict_torch(self, net_input: torch.Tensor) -> torch.Tensor:
        """Network on ``B x 4 x S x S`` (0..255) -> logits upsampled to ``B x 1 x S x S`` (align_corners)."""
        with torch.inference_mode():
            logits = self.model(net_input.to(self.device, torch.float32))
            return F.interpolate(logits, size=net_input.shape[-2:], mode='bilinear', align_corners=True)

    def predict_crops(self, samples: Sequence[DextrSample]) -> List[np.ndarray]:
        """Crop-level probabilities (``S x S`` float32, DEXTR's ``pred``) of prepared samples, in batches."""
        out: List[np.ndarray] = []
        for start in range(0, len(samples), self.batch_size):
            chunk = samples[start:start + self.batch_size]
            batch = torch.from_numpy(np.ascontiguousarray(np.stack([s.net_input for s in chunk])))
            logits = self.predict_torch(batch)[:, 0].cpu().numpy()
            with np.errstate(over='ignore'):  # exp overflow -> inf -> probability 0, as intended
                out.extend(1 / (1 + np.exp(-logits)))  # numpy float32 sigmoid, as the reference
        return out

    def paste(self, sample: DextrSample, crop_prob: np.ndarray) -> np.ndarray:
        """Crop-level probabilities -> ``H x W`` float32 map of the whole image (zero outside the points' box)."""
        prob = paste_crop_probability(crop_prob, sample.bbox, sample.image_hw, keep_box=sample.keep_box)
        return np.clip(prob, 0.0, 1.0) if self.clip_probs else prob

    # ---- public API -------------------------------------------------------------------------------
    def predict(self, image: np.ndarray, points_yx: PointsLike) -> np.ndarray:
        """Probability map of the object whose extreme points are ``points_yx``.

        Args:
            image: ``H x W x 3`` uint8 RGB (``H x W`` grey and ``H x W x 4`` RGBA are converted).
            points_yx: 4 x 2 ``(y, x)`` rows in image pixels: the leftmost, rightmost, topmost and
                bottommost points of the object (order does not matter). Points outside the image are
                clipped into it; fractional coordinates are truncated.
        Returns:
            float32 ``H x W`` probabilities; zero outside the box spanned by the points.
        """
        sample = self.prepare(image, points_yx)
        return self.paste(sample, self.predict_crops([sample])[0])

    def predict_mask(self, image: np.ndarray, points_yx: PointsLike,
                     threshold: Optional[float] = None) -> np.ndarray:
        """Boolean ``H x W`` mask of the object: :meth:`predict` above ``threshold`` (default: the
        predictor's), GrabCut-refined when ``grabcut_refine`` is set."""
        thr = self.threshold if threshold is None else self._check_threshold(threshold)
        image = _as_rgb(image)
        return self._to_mask(image, points_yx, self.predict(image, points_yx), thr)

    def _to_mask(self, image: np.ndarray, points_yx: PointsLike, prob: np.ndarray, threshold: float) -> np.ndarray:
        if not self.grabcut_refine:
            return prob > threshold
        from isegm.inference.grabcut_refine import refine_with_grabcut
        return refine_with_grabcut(image, prob, validate_extreme_points(points_yx, prob.shape), threshold)

    def predict_masks(self, images: Sequence[np.ndarray], extreme_points: Sequence[PointsLike],
                      threshold: Optional[float] = None) -> List[List[np.ndarray]]:
        """Boolean masks for many objects in many images; network calls are batched across all of them.

        Args:
            images: list of images (as in :meth:`predict`).
            extreme_points: one entry per image: ``N x 4 x 2`` ``(y, x)`` points of its N objects
                (N may be 0; a single ``4 x 2`` array counts as N = 1).
            threshold: probability above which a pixel is set (default: the predictor's, 0.8).
        Returns:
            one list per image with one bool ``H x W`` mask per object, in input order.
        """
        thr = self.threshold if threshold is None else self._check_threshold(threshold)
        if len(images) != len(extreme_points):
            raise InputError(f'got {len(images)} images but {len(extreme_points)} sets of extreme points; '
                             'pass one N x 4 x 2 array per image')
        samples: List[DextrSample] = []
        owners: List[Tuple[int, np.ndarray, np.ndarray]] = []   # image index, image, points of each object
        for idx, (image, points) in enumerate(zip(images, extreme_points)):
            image = _as_rgb(image)
            objects = self._split_objects(points, idx)
            samples.extend(self.prepare(image, obj) for obj in objects)
            owners.extend((idx, image, obj) for obj in objects)
        masks: List[List[np.ndarray]] = [[] for _ in images]
        for (owner, image, points), sample, crop_prob in zip(owners, samples, self.predict_crops(samples)):
            masks[owner].append(self._to_mask(image, points, self.paste(sample, crop_prob), thr))
        logger.debug('DEXTR: %d objects in %d images', len(samples), len(images))
        return masks

    @staticmethod
    def _split_objects(points: PointsLike, image_index: int) -> List[np.ndarray]:
        try:
            arr = np.asarray(points, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise InputError(f'extreme points of image {image_index} must be an N x 4 x 2 array of numbers') from exc
        if arr.shape == (4, 2):
            arr = arr[None]
        if arr.size == 0:
            return []
        if arr.ndim != 3 or arr.shape[1:] != (4, 2):
            raise InputError(f'extreme points of image {image_index} must be N x 4 x 2 ((y, x) rows), '
                             f'got shape {arr.shape}')
        return list(arr)


def predict_masks(model: nn.Module, images: Sequence[np.ndarray], extreme_points: Sequence[PointsLike],
                  threshold: Optional[float] = None, device: Union[str, torch.device] = 'cpu',
                  pad: Optional[int] = None,
                  input_size: Optional[int] = None, batch_size: int = 4) -> List[List[np.ndarray]]:
    """Functional form of :meth:`ExtremePointsPredictor.predict_masks` (the ``dextr`` library's batch API);
    ``threshold`` / ``pad`` / ``input_size`` None: the model's own (DEXTR: 0.8 / 50 / 512)."""
    predictor = ExtremePointsPredictor(model, device=device, pad=pad, threshold=threshold,
                                       input_size=input_size, batch_size=batch_size)
    return predictor.predict_masks(images, extreme_points)
