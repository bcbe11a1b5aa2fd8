"""Colour overlays of annotations (used by the GUI canvas and the preview export)."""
from __future__ import annotations

from typing import Iterable, Optional, Sequence, Tuple

import cv2
import numpy as np

from isegm.annotation.document import AnnotationObject, ClickRecord

POSITIVE_COLOR = (0, 220, 0)
NEGATIVE_COLOR = (230, 0, 0)
DRAFT_COLOR = (255, 60, 220)
EXTREME_COLOR = (255, 200, 0)


def blend_mask(image: np.ndarray, mask: np.ndarray, color: Sequence[int], alpha: float,
               border: bool = True) -> np.ndarray:
    """Return ``image`` (RGB uint8) with ``mask`` filled with ``color`` at opacity ``alpha``."""
    out = image.copy()
    if not mask.any():
        return out
    color_arr = np.asarray(color, dtype=np.float32)
    region = out[mask].astype(np.float32)
    out[mask] = np.clip(region * (1.0 - alpha) + color_arr * alpha, 0, 255).astype(np.uint8)
    if border:
        edge = mask.astype(np.uint8) - cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8))
        out[edge.astype(bool)] = np.asarray(color, dtype=np.uint8)
    return out


def draw_points(image: np.ndarray, clicks: Iterable[ClickRecord], radius: int,
                extreme_points: Iterable[Tuple[int, int]] = ()) -> np.ndarray:
    """Draw clicks (green positive, red negative) and extreme points (yellow) as filled circles."""
    out = np.ascontiguousarray(image)
    r = max(1, int(radius))
    for c in clicks:
        color = POSITIVE_COLOR if c.is_positive else NEGATIVE_COLOR
        cv2.circle(out, (int(c.x), int(c.y)), r, color, thickness=-1)
        cv2.circle(out, (int(c.x), int(c.y)), r, (255, 255, 255), thickness=1)
    for y, x in extreme_points:
        cv2.circle(out, (int(x), int(y)), r, EXTREME_COLOR, thickness=-1)
        cv2.circle(out, (int(x), int(y)), r, (0, 0, 0), thickness=1)
    return out


def render_overlay(image: np.ndarray, objects: Iterable[AnnotationObject], alpha: float = 0.5,
                   draft_mask: Optional[np.ndarray] = None, clicks: Iterable[ClickRecord] = (),
                   click_radius: int = 3, extreme_points: Iterable[Tuple[int, int]] = (),
                   selected_id: Optional[int] = None) -> np.ndarray:
    """Image with finished objects in their colours, the draft mask, clicks and extreme points."""
    out = np.ascontiguousarray(image[:, :, :3]).copy()
    for obj in objects:
        a = min(1.0, alpha + 0.25) if obj.id == selected_id else alpha
        out = blend_mask(out, obj.mask, obj.color, a)
    if draft_mask is not None:
        out = blend_mask(out, draft_mask, DRAFT_COLOR, alpha)
    return draw_points(out, clicks, click_radius, extreme_points)


def render_preview(image: np.ndarray, objects: Iterable[AnnotationObject], alpha: float = 0.5) -> np.ndarray:
    """Colour preview of finished objects (no clicks), as written to ``<stem>_preview.png``."""
    return render_overlay(image, objects, alpha=alpha)
