"""Colour overlays of annotations: the GUI canvas's view and the preview export.

:func:`render_overlay` draws at full image resolution (the preview PNG). :class:`ViewRenderer` draws
only the part of the image shown on screen, at screen resolution, so the cost of a redraw does not
grow with the image: a 6000 x 4000 photo redraws as fast as a 640 x 480 one.
"""
from __future__ import annotations

import math
from typing import Callable, Iterable, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from isegm.annotation.box_mask import BoxMask, mask_box
from isegm.annotation.document import AnnotationObject, ClickRecord
from isegm.utils.image_io import to_rgb_uint8

POSITIVE_COLOR = (0, 220, 0)
NEGATIVE_COLOR = (230, 0, 0)
DRAFT_COLOR = (255, 60, 220)
EXTREME_COLOR = (255, 200, 0)

Box = Tuple[int, int, int, int]            # x0, y0, x1, y1 (image pixels, end exclusive)
Sampler = Callable[[np.ndarray], np.ndarray]


def blend_into(out: np.ndarray, mask: Union[np.ndarray, BoxMask], color: Sequence[int], alpha: float,
               border: bool = True) -> None:
    """Fill ``mask`` (H x W bool array or :class:`BoxMask`) in ``out`` (RGB uint8, modified in place) with
    ``color`` at opacity ``alpha``; with ``border`` the mask's edge pixels get the plain colour. Only the
    mask's bounding box is touched."""
    box = mask.box if isinstance(mask, BoxMask) else mask_box(mask)
    if box is None:
        return
    x0, y0, x1, y1 = box
    h, w = mask.shape
    # one pixel of context, so the erosion sees the same neighbours as on the whole mask
    cx0, cy0, cx1, cy1 = max(0, x0 - 1), max(0, y0 - 1), min(w, x1 + 1), min(h, y1 + 1)
    window = mask.window(cy0, cy1, cx0, cx1) if isinstance(mask, BoxMask) else mask[cy0:cy1, cx0:cx1]
    m8 = window.astype(np.uint8)
    region = out[cy0:cy1, cx0:cx1]
    blended = cv2.LUT(region, _blend_table(color, alpha))
    if border:
        edge = m8 - cv2.erode(m8, np.ones((3, 3), np.uint8))
        scalar = tuple(float(c) for c in color) + (0.0,)
        cv2.subtract(blended, blended, dst=blended, mask=edge)      # edge pixels to 0, then to the colour
        cv2.add(blended, scalar, dst=blended, mask=edge)
    # cv2.copyTo writes through the (strided) view; the assignment covers a binding that would copy it
    written = cv2.copyTo(blended, m8, region)
    if written is not region:
        region[...] = written


def _blend_table(color: Sequence[int], alpha: float) -> np.ndarray:
    """``trunc(v * (1 - alpha) + colour * alpha)`` in float32 for every uint8 value v, per channel
    (a 256 x 1 x 3 table for ``cv2.LUT``): the blend's arithmetic done once per value, not per pixel."""
    values = np.arange(256, dtype=np.float32)[:, None] * (1.0 - alpha) + np.asarray(color, np.float32) * alpha
    return np.clip(values, 0, 255).astype(np.uint8)[:, None, :]


def blend_mask(image: np.ndarray, mask: np.ndarray, color: Sequence[int], alpha: float,
               border: bool = True) -> np.ndarray:
    """Return a copy of ``image`` (RGB uint8) with ``mask`` filled with ``color`` at opacity ``alpha``."""
    out = image.copy()
    blend_into(out, mask, color, alpha, border)
    return out


def draw_points(image: np.ndarray, clicks: Iterable[ClickRecord], radius: int,
                extreme_points: Iterable[Tuple[int, int]] = (),
                to_view: Callable[[float, float], Tuple[int, int]] = lambda y, x: (int(x), int(y))) -> np.ndarray:
    """Draw clicks (green positive, red negative) and extreme points (yellow) as filled circles of
    ``radius`` pixels of ``image``; ``to_view`` maps an image pixel (y, x) to ``image``'s (x, y)."""
    out = np.ascontiguousarray(image)
    r = max(1, int(radius))
    for c in clicks:
        color = POSITIVE_COLOR if c.is_positive else NEGATIVE_COLOR
        centre = to_view(c.y, c.x)
        cv2.circle(out, centre, r, color, thickness=-1)
        cv2.circle(out, centre, r, (255, 255, 255), thickness=1)
    for y, x in extreme_points:
        centre = to_view(y, x)
        cv2.circle(out, centre, r, EXTREME_COLOR, thickness=-1)
        cv2.circle(out, centre, r, (0, 0, 0), thickness=1)
    return out


def render_overlay(image: np.ndarray, objects: Iterable[AnnotationObject], alpha: float = 0.5,
                   draft_mask: Optional[np.ndarray] = None, clicks: Iterable[ClickRecord] = (),
                   click_radius: int = 3, extreme_points: Iterable[Tuple[int, int]] = (),
                   selected_id: Optional[int] = None) -> np.ndarray:
    """Full-resolution image with finished objects in their colours, the draft mask, clicks and extreme
    points (radius in image pixels)."""
    out = np.ascontiguousarray(image[:, :, :3]).copy()
    for obj in objects:
        blend_into(out, obj.region, obj.color, _object_alpha(obj, alpha, selected_id))
    if draft_mask is not None:
        blend_into(out, draft_mask, DRAFT_COLOR, alpha)
    return draw_points(out, clicks, click_radius, extreme_points)


def render_preview(image: np.ndarray, objects: Iterable[AnnotationObject], alpha: float = 0.5) -> np.ndarray:
    """Colour preview of finished objects (no clicks), as written to ``<stem>_preview.png``."""
    return render_overlay(image, objects, alpha=alpha)


def _object_alpha(obj: AnnotationObject, alpha: float, selected_id: Optional[int]) -> float:
    return min(1.0, alpha + 0.25) if obj.id == selected_id else alpha


class NearestSampler:
    """Called on an H x W (x ...) array, gives the ``out_size`` (width, height) view of ``box``: each view
    pixel takes the image pixel under its centre (masks stay exact 0/1, maps stay maps). ``rows`` and
    ``cols`` are the image rows / columns picked."""

    def __init__(self, box: Box, out_size: Tuple[int, int]):
        x0, y0, x1, y1 = box
        ow, oh = out_size
        self.rows = np.minimum(y0 + ((np.arange(oh) + 0.5) * ((y1 - y0) / oh)).astype(np.intp), y1 - 1)
        self.cols = np.minimum(x0 + ((np.arange(ow) + 0.5) * ((x1 - x0) / ow)).astype(np.intp), x1 - 1)

    def __call__(self, array: np.ndarray) -> np.ndarray:
        return array[self.rows[:, None], self.cols[None, :]]

    def region(self, mask: BoxMask) -> np.ndarray:
        """The view of a :class:`BoxMask`, made from its box only."""
        return mask.take(self.rows, self.cols)


def nearest_sampler(box: Box, out_size: Tuple[int, int]) -> NearestSampler:
    """The :class:`NearestSampler` of ``box`` shown at ``out_size`` (width, height)."""
    return NearestSampler(box, out_size)


class ViewRenderer:
    """Draws the part ``box`` of an image and its annotation at ``out_size`` (the canvas's view).

    The image is resampled from a pyramid of halved copies (built once, about a third of the image's
    size more memory), from the level closest above the screen resolution, with bilinear
    interpolation (nearest when zoomed in 2x or more, to see single pixels); the last view is cached,
    so redraws after a click resample only the masks. Masks are sampled at the view's pixel centres
    and their borders drawn at screen resolution; click markers have a radius in screen pixels, so
    they stay visible on a large image shown whole.
    """

    MIN_LEVEL_SIDE = 16    # no pyramid level smaller than this

    def __init__(self, image: np.ndarray):
        self.image = np.ascontiguousarray(to_rgb_uint8(image))
        self.levels: List[np.ndarray] = [self.image]
        self._cache_key: Optional[tuple] = None
        self._cache: Optional[np.ndarray] = None

    @property
    def shape(self) -> Tuple[int, int]:
        return self.image.shape[0], self.image.shape[1]

    def _level(self, k: int) -> np.ndarray:
        while len(self.levels) <= k:
            prev = self.levels[-1]
            h, w = prev.shape[:2]
            self.levels.append(cv2.resize(prev, ((w + 1) // 2, (h + 1) // 2), interpolation=cv2.INTER_AREA))
        return self.levels[k]

    def base(self, box: Box, out_size: Tuple[int, int]) -> np.ndarray:
        """The image alone in the view (a fresh copy to draw on)."""
        key = (tuple(box), tuple(out_size))
        if key != self._cache_key:
            self._cache = self._resample(box, out_size)
            self._cache_key = key
        return self._cache.copy()

    def _resample(self, box: Box, out_size: Tuple[int, int]) -> np.ndarray:
        x0, y0, x1, y1 = box
        ow, oh = out_size
        sx, sy = ow / (x1 - x0), oh / (y1 - y0)       # view pixels per image pixel
        scale = min(sx, sy)
        if scale >= 2:
            return nearest_sampler(box, out_size)(self.image)
        h, w = self.shape
        k = 0
        while scale * 2 ** (k + 1) <= 1 and min(h, w) / 2 ** (k + 1) >= self.MIN_LEVEL_SIDE:
            k += 1
        level = self._level(k)
        lh, lw = level.shape[:2]
        fy, fx = lh / h, lw / w                        # level pixels per image pixel
        # view pixel centre u + 0.5 -> image coordinate x0 + (u + 0.5) / sx -> level pixel index
        ax, ay = fx / sx, fy / sy
        bx = (x0 + 0.5 / sx) * fx - 0.5
        by = (y0 + 0.5 / sy) * fy - 0.5
        matrix = np.array([[ax, 0.0, bx], [0.0, ay, by]], dtype=np.float64)
        return cv2.warpAffine(level, matrix, (ow, oh), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                              borderMode=cv2.BORDER_REPLICATE)

    def render(self, box: Box, out_size: Tuple[int, int], objects: Iterable[AnnotationObject],
               alpha: float = 0.5, draft_mask: Optional[Callable[[Sampler], Optional[np.ndarray]]] = None,
               clicks: Iterable[ClickRecord] = (), click_radius: int = 3,
               extreme_points: Iterable[Tuple[int, int]] = (), selected_id: Optional[int] = None) -> np.ndarray:
        """RGB uint8 (height, width) view of ``box``; ``draft_mask(sampler)`` returns the draft mask
        already sampled to the view (so it is computed at screen resolution only)."""
        box = _checked_box(box, self.shape)
        ow, oh = int(out_size[0]), int(out_size[1])
        if ow < 1 or oh < 1:
            raise ValueError(f'view size must be positive, got {out_size}')
        out = self.base(box, (ow, oh))
        sample = nearest_sampler(box, (ow, oh))
        x0, y0, x1, y1 = box
        for obj in objects:
            ox, oy, ow_, oh_ = obj.bbox          # remembered per mask: objects off screen cost nothing
            if ox < x1 and oy < y1 and ox + ow_ > x0 and oy + oh_ > y0:
                blend_into(out, sample.region(obj.region), obj.color, _object_alpha(obj, alpha, selected_id))
        if draft_mask is not None:
            m = draft_mask(sample)
            if m is not None:
                blend_into(out, m, DRAFT_COLOR, alpha)
        sx, sy = ow / (x1 - x0), oh / (y1 - y0)

        def to_view(y: float, x: float) -> Tuple[int, int]:
            return int(math.floor((x + 0.5 - x0) * sx)), int(math.floor((y + 0.5 - y0) * sy))
        return draw_points(out, clicks, click_radius, extreme_points, to_view=to_view)


def _checked_box(box: Sequence[int], shape: Tuple[int, int]) -> Box:
    h, w = shape
    x0, y0, x1, y1 = (int(v) for v in box)
    x0, y0 = max(0, x0), max(0, y0)
    x1, y1 = min(w, x1), min(h, y1)
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f'view box {tuple(box)} has no pixels inside the {h}x{w} image')
    return x0, y0, x1, y1
