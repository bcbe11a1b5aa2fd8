"""BasePredictor: the NoBRS predictor, and the frame the BRS predictors build on.

One predictor holds one image's state (as SAM's ``SamPredictor`` does)::

    predictor = BasePredictor(model, 'cpu', with_flip=True, zoom_in=ZoomIn())
    predictor.set_input_image(image)              # uint8 H x W x 3 RGB
    clicker = Clicker(image_shape=image.shape[:2])
    clicker.add_click(Click(is_positive=True, coords=(y, x)))
    prob = predictor.get_prediction(clicker)      # float32 H x W in [0, 1]

``get_prediction`` builds the network input (image, plus the previous prediction as 4th channel for
ITER-M models), runs the transform chain ``[ZoomIn?] + [LimitLongestSide?] + [SigmoidForPred] +
[AddHorizontalFlip?]``, calls :meth:`_get_prediction` (the part the BRS predictors override), upsamples the
logits to the transformed input size and applies the inverse transforms in reverse order.
"""
from __future__ import annotations

import logging
import math
import warnings
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from isegm.errors import InputError, PredictorStateError
from isegm.inference.clicker import Click, Clicker
from isegm.inference.transforms import AddHorizontalFlip, LimitLongestSide, SigmoidForPred, ZoomIn
from isegm.inference.transforms.base import BaseTransform, ClicksLists

logger = logging.getLogger(__name__)

MaskLike = Union[np.ndarray, torch.Tensor]


def image_to_tensor(image: np.ndarray, out: Optional[torch.Tensor] = None) -> torch.Tensor:
    """uint8 ``H x W x 3`` RGB -> float32 ``3 x H x W`` in [0, 1] (what torchvision's ``ToTensor`` gives).

    ``out`` (float32 ``3 x H x W``, may be a view into a larger buffer) receives the result without any
    other full-size temporary; it is returned.
    """
    image = _check_image(image)
    chw = torch.from_numpy(image).permute(2, 0, 1)   # a view: no uint8 copy
    if out is None:
        out = torch.empty(chw.shape, dtype=torch.float32)
    return out.copy_(chw).div_(255)   # same values as .to(float32).div(255), one float buffer


def parse_device(device: Union[str, torch.device]) -> torch.device:
    """``'cpu'``, ``'cuda'``, ``'cuda:N'`` or a torch.device; an InputError for anything else, and for CUDA
    on a machine without it (predictors do not fall back silently: the model would be elsewhere)."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise InputError(f"device must be 'cpu' or 'cuda:N', got {device!r}") from exc
    if dev.type not in ('cpu', 'cuda'):
        raise InputError(f"device must be 'cpu' or 'cuda:N', got {device!r}")
    if dev.type == 'cuda' and not torch.cuda.is_available():
        raise InputError(f'device {device!r} was requested but CUDA is not available; use device="cpu"')
    return dev


def _check_image(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise InputError(f'expected an RGB image H x W x 3, got shape {image.shape}; '
                         f'load images with isegm.utils.image_io to convert grey/RGBA files')
    if image.dtype != np.uint8:
        raise InputError(f'expected a uint8 image, got {image.dtype}; convert it to 8-bit RGB first')
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise InputError(f'the image is empty (shape {image.shape})')
    if any(stride < 0 for stride in image.strides):   # e.g. a flipped view: torch cannot wrap it
        image = np.ascontiguousarray(image)
    return image


class BasePredictor:
    """NoBRS predictor: the network's own output, with optional zoom-in, size limit and flip averaging.

    Args:
        model: a click model (``net(x, points)['instances']``; ``net.with_prev_mask`` for ITER-M models).
        device: where the image and the network input live (the model is expected to be there already).
        net_clicks_limit: pass only the first clicks to the network (BRS uses the rest in its loss).
        with_flip: average the logits of the image and of its mirror image.
        zoom_in: a :class:`ZoomIn` transform, or None.
        max_size: shrink inputs whose longer side exceeds it (:class:`LimitLongestSide`), or None.
        **kwargs: accepted for the BRS subclasses' options; ignored here.
    """

    def __init__(self, model: nn.Module, device: Union[str, torch.device], net_clicks_limit: Optional[int] = None,
                 with_flip: bool = False, zoom_in: Optional[ZoomIn] = None, max_size: Optional[int] = None,
                 **kwargs: Any):
        if kwargs:
            logger.debug('BasePredictor ignores options %s', sorted(kwargs))
        if not isinstance(model, nn.Module):
            raise InputError(f'model must be a torch.nn.Module (a click model), got {type(model).__name__}')
        if getattr(model, 'task', 'click') != 'click':
            raise InputError(f'{type(model).__name__} is an extreme-point model, not a click model: use '
                             'ExtremePointsPredictor for it')
        self.net = model
        self.device = parse_device(device)
        self.net_clicks_limit = net_clicks_limit
        self.with_flip = with_flip
        self.zoom_in = zoom_in
        self.max_size = max_size
        self.original_image: Optional[torch.Tensor] = None
        self._input_buffer: Optional[torch.Tensor] = None   # 1 x 4 x H x W for ITER-M models
        self.prev_prediction: Optional[torch.Tensor] = None
        self._prediction_on_cpu: Optional[Tuple[torch.Tensor, torch.Tensor]] = None   # (prediction, its CPU copy)
        self.to_tensor = image_to_tensor

        self.transforms: List[BaseTransform] = [zoom_in] if zoom_in is not None else []
        if max_size is not None:
            self.transforms.append(LimitLongestSide(max_size=max_size))
        self.transforms.append(SigmoidForPred())
        if with_flip:
            self.transforms.append(AddHorizontalFlip())

    # -- public -----------------------------------------------------------------------------------------
    @property
    def image_shape(self) -> Optional[Tuple[int, int]]:
        """``(H, W)`` of the current image, or None before :meth:`set_input_image`."""
        return None if self.original_image is None else tuple(self.original_image.shape[2:])

    def set_input_image(self, image: np.ndarray) -> None:
        """Take a new image (uint8 ``H x W x 3`` RGB): resets the transforms and the previous prediction."""
        for transform in self.transforms:
            transform.reset()
        self.original_image = None
        self._input_buffer = None
        if self.to_tensor is image_to_tensor and getattr(self.net, 'with_prev_mask', False):
            # One 1 x 4 x H x W buffer: the image in channels 0-2 (original_image is a view of it) and the
            # previous mask written into channel 3 for every click, instead of a full-size torch.cat.
            image = _check_image(image)
            height, width = image.shape[:2]
            buffer = torch.empty((1, 4, height, width), dtype=torch.float32)
            image_to_tensor(image, out=buffer[0, :3])
            self._input_buffer = buffer.to(self.device)
            self.original_image = self._input_buffer[:, :3]
        else:
            self.original_image = self.to_tensor(image).to(self.device).unsqueeze(0)
        self.prev_prediction = torch.zeros_like(self.original_image[:, :1, :, :])

    def reset(self) -> None:
        """Start a new object on the same image: clear the transforms' state and the previous prediction."""
        for transform in self.transforms:
            transform.reset()
        if self.original_image is not None:
            self.prev_prediction = torch.zeros_like(self.original_image[:, :1, :, :])

    def get_prediction(self, clicker: Clicker, prev_mask: Optional[MaskLike] = None) -> np.ndarray:
        """Probability map (float32 ``H x W`` in [0, 1]) of the object given the clicker's clicks.

        ``prev_mask`` (``H x W``, ``1 x H x W`` or ``1 x 1 x H x W``; bool, integer 0/1 or float
        probabilities) replaces the predictor's own previous prediction as the ITER-M input; None uses the
        previous prediction (zeros after :meth:`set_input_image`), as RITM does.
        """
        if self.original_image is None:
            raise PredictorStateError('no image: call set_input_image(image) before get_prediction')
        clicks_list = clicker.get_clicks()
        self._check_clicks(clicks_list)
        prev_mask_nd = self._prev_mask_tensor(prev_mask) if prev_mask is not None else None
        with torch.no_grad():
            prediction = self._predict(clicks_list, prev_mask_nd)
        self.prev_prediction = prediction
        on_cpu = prediction.cpu()
        self._prediction_on_cpu = (prediction, on_cpu)
        prob = on_cpu.numpy()[0, 0].astype(np.float32, copy=False)
        # The map is the predictor's state too (previous prediction, ZoomIn's map, the states handed out for
        # undo): it is returned read-only, so that no caller can change them through it.
        prob.flags.writeable = False
        return prob

    def get_states(self) -> Dict[str, Any]:
        """Transform states and previous prediction (what :meth:`set_states` restores, e.g. on undo).

        The maps in it are shared, not copied: predictions are never written in place (every click makes
        new tensors), so a state stays as it was. On the CPU the map :meth:`get_prediction` returned, the
        previous prediction and ZoomIn's map are one buffer, and a state costs no image-size memory of its
        own (on a 24 MP image three copies were 290 MB per click of undo history).
        """
        prev = self.prev_prediction
        if prev is not None:   # kept on the CPU: a history of GPU maps would fill the GPU's memory
            cached = self._prediction_on_cpu
            prev = cached[1] if cached is not None and cached[0] is prev else prev.cpu()
        return {'transform_states': self._get_transform_states(), 'prev_prediction': prev}

    def set_states(self, states: Dict[str, Any]) -> None:
        self._set_transform_states(states['transform_states'])
        prev = states['prev_prediction']
        self.prev_prediction = None if prev is None else prev.to(self.device)

    # -- internals the BRS predictors override or reuse ---------------------------------------------------
    def _predict(self, clicks_list: List[Click], prev_mask: Optional[torch.Tensor]) -> torch.Tensor:
        input_image = self.original_image
        if getattr(self.net, 'with_prev_mask', False):
            mask = self.prev_prediction if prev_mask is None else prev_mask
            if (self._input_buffer is not None
                    and self._input_buffer.data_ptr() == self.original_image.data_ptr()):
                self._input_buffer[:, 3:].copy_(mask)
                input_image = self._input_buffer
            else:
                input_image = torch.cat((input_image, mask), dim=1)
        image_nd, clicks_lists, is_image_changed = self.apply_transforms(input_image, [clicks_list])

        pred_logits = self._get_prediction(image_nd, clicks_lists, is_image_changed)
        prediction = F.interpolate(pred_logits, mode='bilinear', align_corners=True, size=image_nd.shape[2:])
        for t in reversed(self.transforms):
            prediction = t.inv_transform(prediction)

        if self.zoom_in is not None and self.zoom_in.check_possible_recalculation():
            return self._predict(clicks_list, prev_mask)
        return prediction

    def _get_prediction(self, image_nd: torch.Tensor, clicks_lists: ClicksLists,
                        is_image_changed: bool) -> torch.Tensor:
        points_nd = self.get_points_nd(clicks_lists)
        return self.net(image_nd, points_nd)['instances']

    def apply_transforms(self, image_nd: torch.Tensor, clicks_lists: ClicksLists
                         ) -> Tuple[torch.Tensor, ClicksLists, bool]:
        is_image_changed = False
        for t in self.transforms:
            image_nd, clicks_lists = t.transform(image_nd, clicks_lists)
            is_image_changed |= t.image_changed
        return image_nd, clicks_lists, is_image_changed

    def get_points_nd(self, clicks_lists: Sequence[Sequence[Click]]) -> torch.Tensor:
        """``B x 2N x 3`` float32 points: the first ``net_clicks_limit`` clicks of each list, positives then
        negatives, rows ``(y, x, indx)``, padded with ``(-1, -1, -1)``; ``N >= 1``."""
        num_pos = [sum(c.is_positive for c in clicks) for clicks in clicks_lists]
        num_neg = [len(clicks) - p for clicks, p in zip(clicks_lists, num_pos)]
        num_max_points = max(num_pos + num_neg) if clicks_lists else 0
        if self.net_clicks_limit is not None:
            num_max_points = min(self.net_clicks_limit, num_max_points)
        num_max_points = max(1, num_max_points)

        rows = []
        for clicks in clicks_lists:
            clicks = list(clicks)[:self.net_clicks_limit]
            pos = [_click_row(c, i) for i, c in enumerate(clicks) if c.is_positive]
            neg = [_click_row(c, i) for i, c in enumerate(clicks) if not c.is_positive]
            pad = (-1.0, -1.0, -1.0)
            rows.append(pos + [pad] * (num_max_points - len(pos)) + neg + [pad] * (num_max_points - len(neg)))
        return torch.tensor(rows, dtype=torch.float32, device=self.device)

    def _get_transform_states(self) -> List[Any]:
        return [t.get_state() for t in self.transforms]

    def _set_transform_states(self, states: Sequence[Any]) -> None:
        if len(states) != len(self.transforms):
            raise InputError(f'{len(states)} transform states given, the predictor has {len(self.transforms)} '
                             f'transforms; pass states from get_states() of a predictor built the same way')
        for state, transform in zip(states, self.transforms):
            transform.set_state(state)

    def _check_clicks(self, clicks: Sequence[Click]) -> None:
        height, width = self.image_shape
        for click in clicks:
            y, x = click.coords
            if not (0 <= y < height and 0 <= x < width):
                raise InputError(f'{click} lies outside the {height}x{width} image (H x W); '
                                 f'clicks must satisfy 0 <= y < {height}, 0 <= x < {width}')

    def _prev_mask_tensor(self, prev_mask: MaskLike) -> torch.Tensor:
        try:
            if isinstance(prev_mask, torch.Tensor):
                mask = prev_mask.detach().cpu()
            else:
                array = np.asarray(prev_mask)
                if array.dtype.kind in 'biu':    # any integer type (torch lacks uint16 comparisons) -> 0/1
                    array = array > 0
                elif array.dtype.kind == 'f':    # flipped views, big-endian data: copy to what torch wraps
                    array = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder('='))
                with warnings.catch_warnings():   # a read-only map (e.g. a returned prediction): only read here
                    warnings.filterwarnings('ignore', message='The given NumPy array is not writable')
                    mask = torch.from_numpy(array)
        except (TypeError, ValueError) as exc:
            raise InputError(f'prev_mask must be a numeric H x W array, got {type(prev_mask).__name__} '
                             f'({exc})') from None
        height, width = self.image_shape
        if mask.dim() < 2 or tuple(mask.shape[-2:]) != (height, width) or mask.numel() != height * width:
            raise InputError(f'prev_mask has shape {tuple(mask.shape)}, the image is {height}x{width}: '
                             f'pass an H x W mask of the image given to set_input_image')
        if mask.dtype == torch.bool or not mask.is_floating_point():
            mask = mask > 0
        elif mask.numel():
            # one pass (min and max propagate NaN, and an infinity is an extreme): on 24 MP, isfinite() + min()
            # + max() cost ~75 ms per click
            low, high = (float(v) for v in torch.aminmax(mask))
            if not (math.isfinite(low) and math.isfinite(high)):
                raise InputError('prev_mask contains NaN or infinite values: pass probabilities in [0, 1] or a 0/1 '
                                 'mask')
            if low < -1e-3 or high > 1 + 1e-3:
                raise InputError(f'a float prev_mask holds probabilities in [0, 1], but its values span '
                                 f'{low:g}..{high:g}: pass a bool / 0-1 integer mask, or divide a 0/255 mask by 255')
        return mask.to(torch.float32).reshape(1, 1, height, width).to(self.device)


def _click_row(click: Click, position: int) -> Tuple[float, float, float]:
    indx = click.indx if click.indx is not None else position
    return float(click.coords[0]), float(click.coords[1]), float(indx)
