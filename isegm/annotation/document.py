"""The annotation document of one image: finished objects, the object being edited, undo/redo.

Everything the GUI can do to an annotation is a method here, so scripts and tests can do it too.
The document never runs a network: the controller asks the predictor and hands the probability map
back with :meth:`AnnotationDocument.set_prediction`, tagged with the :class:`PredictionRequest` it got
from :meth:`AnnotationDocument.prediction_request`; a result that no longer fits (the user undid or
switched objects meanwhile) is ignored, so the latest state always wins.

State is kept as immutable snapshots (arrays are never written in place), which makes undo/redo a
matter of swapping snapshots and costs no copies.
"""
from __future__ import annotations

import colorsys
import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, List, NamedTuple, Optional, Sequence, Tuple

import cv2
import numpy as np

from isegm.annotation import mask_memo
from isegm.annotation.box_mask import BoxMask
from isegm.errors import InputError, IsegmError

DEFAULT_LABEL = 'object'
# Image-size arrays the undo history may hold beyond the current state (probability maps, masks, strokes):
# a 24 MP image costs ~100 MB per click, so an unbounded history would grow into gigabytes on one image.
# 512 MiB keeps a 24 MP session under 2 GB resident (scripts/benchmark.py --annotation-memory); 1 GiB did not.
DEFAULT_HISTORY_BYTES = 1 << 29
MIN_UNDO_STEPS = 5      # kept whatever they cost


class AnnotationStateError(IsegmError, RuntimeError):
    """A document command does not fit the current state (e.g. reopening while another object is open)."""


class ClickRecord(NamedTuple):
    """One user click in image pixels."""
    y: int
    x: int
    is_positive: bool


def object_color(object_id: int) -> Tuple[int, int, int]:
    """A distinct, stable RGB colour for an object id (golden-ratio hue walk)."""
    hue = (0.13 + 0.618033988749895 * object_id) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.75, 0.95)
    return int(r * 255), int(g * 255), int(b * 255)


@dataclass(frozen=True)
class AnnotationObject:
    """A finished object. Its mask is held as a :class:`BoxMask` (``region``: the content of its bounding
    box), so an object costs memory for its box, not for the whole image; a full-size bool array may be
    passed as ``region`` and is converted. Regions are immutable: edits make new ones."""
    id: int
    region: BoxMask
    label: str = DEFAULT_LABEL
    color: Tuple[int, int, int] = (255, 0, 0)
    clicks: Tuple[ClickRecord, ...] = ()
    extreme_points: Tuple[Tuple[int, int], ...] = ()

    def __post_init__(self):
        if not isinstance(self.region, BoxMask):
            object.__setattr__(self, 'region', BoxMask.from_mask(self.region))

    @property
    def mask(self) -> np.ndarray:
        """The full-size bool H x W mask: a new image-size array on every call (exports, tests); the
        annotation code itself works on :attr:`region`."""
        return self.region.to_array()

    @property
    def area(self) -> int:
        return mask_memo.fact(self.region, 'area', BoxMask.count)

    @property
    def bbox(self) -> Tuple[int, int, int, int]:
        """(x, y, width, height) of the mask, COCO style; zeros for an empty mask."""
        box = self.region.box
        if box is None:
            return 0, 0, 0, 0
        x0, y0, x1, y1 = box
        return x0, y0, x1 - x0, y1 - y0


@dataclass(frozen=True)
class Draft:
    """The object being edited.

    A draft is made of *sessions*: a session is a run of clicks sent to the click model together.
    ``prob`` is the latest probability map of the current session (it reflects the first
    ``prob_clicks`` clicks); ``init_mask`` is the map the session started from (a loaded external
    mask, an extreme-point result, a reopened object) and is the previous mask of the first click for
    ITER-M models; ``base`` is the frozen union of earlier sessions ('a' = partially finish).
    ``brush_add``/``brush_erase`` are pixel edits applied on top of everything.
    """
    session: int = 0
    object_id: Optional[int] = None
    label: str = DEFAULT_LABEL
    clicks: Tuple[ClickRecord, ...] = ()
    prob: Optional[np.ndarray] = None
    prob_clicks: int = 0
    engine_state: Any = None
    init_mask: Optional[np.ndarray] = None
    base: Optional[np.ndarray] = None
    brush_add: Optional[np.ndarray] = None
    brush_erase: Optional[np.ndarray] = None
    extreme_points: Tuple[Tuple[int, int], ...] = ()
    past_clicks: Tuple[ClickRecord, ...] = ()

    @property
    def is_empty(self) -> bool:
        """True when the draft holds nothing a user made (no clicks, masks or brush strokes)."""
        return (not self.clicks and self.prob is None and self.init_mask is None and self.base is None
                and self.brush_add is None and self.brush_erase is None and not self.extreme_points)

    @property
    def needs_prediction(self) -> bool:
        """True when clicks were added that no probability map reflects yet."""
        return len(self.clicks) > 0 and self.prob_clicks != len(self.clicks)

    @property
    def click_indx_offset(self) -> int:
        """1 when the session starts from a mask (RITM's convention for a loaded mask), else 0."""
        return 1 if self.init_mask is not None else 0

    def session_prob(self) -> Optional[np.ndarray]:
        """Probability map of the current session: the latest prediction, else the initial mask."""
        if self.prob is not None and self.clicks:
            return self.prob
        return self.init_mask

    def object_prob(self) -> Optional[np.ndarray]:
        """Probability map of the whole object: max of the frozen base and the session map."""
        current = self.session_prob()
        if self.base is None:
            return current
        if current is None:
            return self.base
        return np.maximum(self.base, current)

    def all_clicks(self) -> Tuple[ClickRecord, ...]:
        return self.past_clicks + self.clicks


class PredictionRequest(NamedTuple):
    """What the click model must compute for the current draft (see :meth:`prediction_request`)."""
    session: int
    clicks: Tuple[ClickRecord, ...]
    prev_mask: Optional[np.ndarray]
    engine_state: Any
    click_indx_offset: int


@dataclass(frozen=True)
class _State:
    objects: Tuple[AnnotationObject, ...] = ()
    draft: Draft = field(default_factory=Draft)
    next_id: int = 1
    serial: int = 0


class AnnotationDocument:
    """All annotation of one image.

    Args:
        image_shape: (H, W) of the image.
        image_name: file name of the image (stored in the project file and the COCO export).
        prob_thresh: threshold that turns probability maps into masks (the GUI slider).
        overwrite_finished: when False (default), a newly finished object takes no pixels from
            objects finished before it; when True it takes them over.
        history_bytes: memory the undo history may hold in arrays that the current state does not
            use; the oldest steps are forgotten beyond it (the last ``MIN_UNDO_STEPS`` always stay).
            None: unbounded.
    """

    def __init__(self, image_shape: Sequence[int], image_name: str = '', prob_thresh: float = 0.5,
                 overwrite_finished: bool = False, history_bytes: Optional[int] = DEFAULT_HISTORY_BYTES):
        try:
            ok = len(image_shape) >= 2 and int(image_shape[0]) > 0 and int(image_shape[1]) > 0
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise InputError(f'image_shape must be (H, W) with positive sizes, got {image_shape!r}')
        self.image_shape: Tuple[int, int] = (int(image_shape[0]), int(image_shape[1]))
        self.image_name = image_name
        self.prob_thresh = float(prob_thresh)
        self.overwrite_finished = overwrite_finished
        self._serial_counter = 0
        self._state = _State()
        self._undo: List[_State] = []
        self._redo: List[_State] = []
        self._saved_serial = 0
        self._session_counter = 0
        self.history_bytes = history_bytes
        self.forgotten_steps = 0    # undo steps dropped to stay within history_bytes

    # ------------------------------------------------------------------ read access
    @property
    def objects(self) -> Tuple[AnnotationObject, ...]:
        return self._state.objects

    @property
    def draft(self) -> Draft:
        return self._state.draft

    @property
    def next_id(self) -> int:
        return self._state.next_id

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    @property
    def is_modified(self) -> bool:
        """True when finished objects changed since the last :meth:`mark_saved`."""
        return self._state.serial != self._saved_serial

    @property
    def has_unsaved_work(self) -> bool:
        """True when something would be lost by closing now (modified objects or an open draft)."""
        return self.is_modified or not self.draft.is_empty

    @property
    def serial(self) -> int:
        """Version of the finished objects: changes whenever they do (and back on undo)."""
        return self._state.serial

    def mark_saved(self, serial: Optional[int] = None) -> None:
        """Record that the current objects (or the version ``serial`` of them) are on disk."""
        self._saved_serial = self._state.serial if serial is None else int(serial)

    def snapshot(self) -> 'AnnotationDocument':
        """The finished objects as they are now, in a new document without draft or history. Masks are
        shared, not copied (they are never modified in place): what a background save writes while
        editing goes on. Its :attr:`serial` is this document's."""
        copy = AnnotationDocument(self.image_shape, self.image_name, self.prob_thresh, self.overwrite_finished)
        copy._state = _State(objects=self._state.objects, next_id=self._state.next_id, serial=self._state.serial)
        copy._serial_counter = self._serial_counter
        copy._saved_serial = self._saved_serial
        return copy

    def get_object(self, object_id: int) -> AnnotationObject:
        for obj in self.objects:
            if obj.id == object_id:
                return obj
        raise InputError(f'no object with id {object_id}; existing ids: {[o.id for o in self.objects]}')

    def current_mask(self, prob_thresh: Optional[float] = None,
                     view: Optional[Callable[[np.ndarray], np.ndarray]] = None) -> np.ndarray:
        """Bool mask of the draft: thresholded object probability with brush edits applied.

        ``view`` (a pixel-picking function such as the canvas's nearest-neighbour sampler) is applied
        to every H x W map first, so the mask of just the part on screen costs screen-size work.
        """
        thresh = self.prob_thresh if prob_thresh is None else float(prob_thresh)
        draft = self.draft
        pick = view if view is not None else (lambda a: a)
        maps = [pick(m) for m in (draft.base, draft.session_prob()) if m is not None]
        if maps:
            prob = maps[0] if len(maps) == 1 else np.maximum(maps[0], maps[1])
            mask = prob > thresh
        else:   # a zero-strided view: picking from it allocates nothing of image size
            mask = np.array(pick(np.broadcast_to(np.zeros((), dtype=bool), self.image_shape)))
        if draft.brush_add is not None:
            mask = mask | pick(draft.brush_add)
        if draft.brush_erase is not None:
            mask = mask & ~pick(draft.brush_erase)
        return mask

    def model_prev_mask(self) -> Optional[np.ndarray]:
        """Previous mask for an ITER-M model: the session map with brush edits forced to 1/0, or None."""
        draft = self.draft
        prob = draft.session_prob()
        if prob is None and draft.brush_add is None:
            return None
        if draft.brush_add is None and draft.brush_erase is None:
            return prob.astype(np.float32, copy=False)   # maps are never written in place: no copy needed
        prob = np.zeros(self.image_shape, np.float32) if prob is None else prob.astype(np.float32, copy=True)
        if draft.brush_add is not None:
            prob[draft.brush_add] = 1.0
        if draft.brush_erase is not None:
            prob[draft.brush_erase] = 0.0
        return prob

    def visible_objects(self) -> Tuple[AnnotationObject, ...]:
        """Finished objects to draw: all but the one reopened in the draft."""
        editing = self.draft.object_id
        return tuple(o for o in self.objects if o.id != editing)

    def instance_map(self) -> np.ndarray:
        """Label map of finished objects: 0 background, k = k-th object (uint16 if > 255 objects)."""
        dtype = np.uint16 if len(self.objects) > 255 else np.uint8
        out = np.zeros(self.image_shape, dtype=dtype)
        for k, obj in enumerate(self.objects, start=1):
            if obj.region.any():
                x0, y0, x1, y1 = obj.region.box
                out[y0:y1, x0:x1][obj.region.crop] = k
        return out

    # ------------------------------------------------------------------ history
    def _commit(self, **changes) -> None:
        self._undo.append(self._state)
        self._redo.clear()
        self._replace(**changes)
        self._limit_history()

    def history_memory(self) -> int:
        """Bytes of the arrays held only by the undo/redo history (not by the current state). Arrays shared
        between states count once (states share every array that a command did not change)."""
        seen: set = set()
        _state_arrays(self._state, seen)
        return sum(_state_arrays(st, seen) for st in self._undo + self._redo)

    def _limit_history(self) -> None:
        """Forget the oldest undo steps while the history holds more than ``history_bytes``."""
        if self.history_bytes is None or len(self._undo) <= MIN_UNDO_STEPS:
            return
        seen: set = set()
        _state_arrays(self._state, seen)
        for st in self._redo:
            _state_arrays(st, seen)
        total, keep = 0, 0
        for st in reversed(self._undo):       # newest first: the steps a user undoes first stay
            total += _state_arrays(st, seen)
            if total > self.history_bytes and keep >= MIN_UNDO_STEPS:
                break
            keep += 1
        if keep < len(self._undo):
            self.forgotten_steps += len(self._undo) - keep
            del self._undo[:len(self._undo) - keep]

    def _replace(self, **changes) -> None:
        if 'objects' in changes or 'next_id' in changes:
            self._serial_counter += 1
            changes['serial'] = self._serial_counter
        self._state = dataclasses.replace(self._state, **changes)

    def undo(self) -> bool:
        """Go back one command. Returns False when there is nothing to undo."""
        if not self._undo:
            return False
        self._redo.append(self._state)
        self._state = self._undo.pop()
        return True

    def redo(self) -> bool:
        """Repeat the last undone command. Returns False when there is nothing to redo."""
        if not self._redo:
            return False
        self._undo.append(self._state)
        self._state = self._redo.pop()
        return True

    def clear_history(self) -> None:
        self._undo.clear()
        self._redo.clear()

    def _new_session(self) -> int:
        self._session_counter += 1
        return self._session_counter

    # ------------------------------------------------------------------ clicks and predictions
    def pixel_at(self, y: float, x: float) -> Tuple[int, int]:
        """The pixel ``(row, col)`` containing the image point ``(y, x)``: pixel k spans [k, k + 1), as the
        canvas maps it (its centre is k + 0.5), so fractional points are floored, not rounded. Raises :class:`InputError` outside the image."""
        h, w = self.image_shape
        try:
            yf, xf = float(y), float(x)
        except (TypeError, ValueError):
            raise InputError(f'a point must be two numbers (y, x), got ({y!r}, {x!r})') from None
        if not (0 <= yf < h and 0 <= xf < w):   # also False for NaN
            raise InputError(f'click (y={y}, x={x}) is outside the {h}x{w} image; click inside the image')
        return int(math.floor(yf)), int(math.floor(xf))

    def add_click(self, y: int, x: int, is_positive: bool) -> ClickRecord:
        """Record a click on the draft (undoable). The controller then asks for a prediction."""
        yi, xi = self.pixel_at(y, x)
        click = ClickRecord(yi, xi, bool(is_positive))
        draft = self.draft
        self._commit(draft=dataclasses.replace(draft, clicks=draft.clicks + (click,)))
        return click

    def prediction_request(self) -> Optional[PredictionRequest]:
        """Inputs for the click model, or None when the draft needs no new prediction."""
        draft = self.draft
        if not draft.needs_prediction:
            return None
        has_prob = draft.prob is not None and draft.prob_clicks > 0
        return PredictionRequest(session=draft.session, clicks=draft.clicks, prev_mask=self.model_prev_mask(),
                                 engine_state=draft.engine_state if has_prob else None,
                                 click_indx_offset=draft.click_indx_offset)

    def set_prediction(self, request: PredictionRequest, prob: np.ndarray, engine_state: Any = None) -> bool:
        """Attach a model result to the draft. Not an undo step of its own.

        Applied only when the draft is still in the same session and its clicks start with the
        request's clicks (clicks added meanwhile are kept and still need a prediction); returns
        whether it was applied.
        """
        prob = np.asarray(prob, dtype=np.float32)
        if prob.shape != self.image_shape:
            raise InputError(f'probability map has shape {prob.shape}, expected {self.image_shape}')
        draft = self.draft
        n = len(request.clicks)
        if (draft.session != request.session or n == 0 or draft.clicks[:n] != tuple(request.clicks)
                or n <= draft.prob_clicks and draft.prob is not None):
            return False
        self._replace(draft=dataclasses.replace(draft, prob=prob, prob_clicks=n, engine_state=engine_state))
        self._limit_history()
        # the undo history may hold the state this result was computed for (clicked again meanwhile):
        # give it the result too, so undoing back to it needs no new prediction
        for i, st in enumerate(self._undo):
            d = st.draft
            if d.session == request.session and d.clicks == tuple(request.clicks) and d.prob_clicks < n:
                self._undo[i] = dataclasses.replace(st, draft=dataclasses.replace(
                    d, prob=prob, prob_clicks=n, engine_state=engine_state))
        return True

    def reset_clicks(self) -> None:
        """Drop the draft's clicks, masks and brush edits (undoable); a reopened object stays open."""
        draft = self.draft
        if draft.is_empty:
            return
        init = None
        if draft.object_id is not None:
            init = self.get_object(draft.object_id).region.to_array().astype(np.float32)
        self._commit(draft=Draft(session=self._new_session(), object_id=draft.object_id, label=draft.label,
                                 init_mask=init))

    def partially_finish(self) -> bool:
        """Freeze the current object map and start a new click session for the same object ('a' key).

        Later clicks add to the frozen part (their maps are combined with max), as in RITM's demo.
        Returns False when there is nothing to freeze.
        """
        draft = self.draft
        prob = draft.object_prob()
        if prob is None:
            return False
        self._commit(draft=dataclasses.replace(
            draft, session=self._new_session(), clicks=(), prob=None, prob_clicks=0, engine_state=None,
            init_mask=None, base=prob, past_clicks=draft.all_clicks()))
        return True

    def set_initial_mask(self, mask: np.ndarray, as_prev_mask: bool = True,
                         extreme_points: Iterable[Sequence[int]] = ()) -> None:
        """Start a session from a mask (an external mask or an extreme-point result; undoable).

        Args:
            mask: H x W bool/uint8/float mask or probability map (values above 1 are scaled from 255).
            as_prev_mask: True for ITER-M models (the mask feeds the model as previous mask and the
                first click's prediction replaces it); False keeps it as a frozen base that later
                clicks add to.
            extreme_points: (y, x) points that produced the mask, stored with the object.
        """
        prob = _as_prob(mask, self.image_shape)
        points = tuple((int(p[0]), int(p[1])) for p in extreme_points)
        for y, x in points:
            self.pixel_at(y, x)
        draft = self.draft
        common = dict(session=self._new_session(), clicks=(), prob=None, prob_clicks=0, engine_state=None,
                      past_clicks=draft.all_clicks(), extreme_points=points or draft.extreme_points)
        if as_prev_mask:
            new = dataclasses.replace(draft, init_mask=prob, base=None, **common)
        else:
            base = prob if draft.object_prob() is None else np.maximum(draft.object_prob(), prob)
            new = dataclasses.replace(draft, init_mask=None, base=base, **common)
        self._commit(draft=new)

    # ------------------------------------------------------------------ brush
    def paint(self, points: Sequence[Sequence[float]], radius: float, erase: bool = False) -> None:
        """Brush (or eraser) stroke through (y, x) points with the given radius in pixels (undoable)."""
        if not radius > 0 or not math.isfinite(radius):
            raise InputError(f'brush radius must be a positive number, got {radius}')
        coords = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        if not np.isfinite(coords).all():
            raise InputError(f'brush points must be finite (y, x) numbers, got {coords.tolist()}')
        # The pixel containing each point (as for clicks); far-away points stay far away but fit OpenCV's int32.
        pts = [(int(y), int(x)) for y, x in np.floor(np.clip(coords, -2 ** 30, 2 ** 30))]
        if not pts:
            return
        stroke = np.zeros(self.image_shape, dtype=np.uint8)
        # A brush wider than the image covers it all; OpenCV refuses lines thicker than 32767.
        r = min(max(1, int(round(radius))), int(math.hypot(*self.image_shape)) + 1)
        for (y0, x0), (y1, x1) in zip(pts, pts[1:] + pts[-1:]):
            cv2.line(stroke, (x0, y0), (x1, y1), 1, thickness=2 * r, lineType=cv2.LINE_8)
            cv2.circle(stroke, (x0, y0), r, 1, thickness=-1)
        stroke = stroke.astype(bool)
        if not stroke.any():
            return
        draft = self.draft
        add = draft.brush_add if draft.brush_add is not None else np.zeros(self.image_shape, bool)
        rem = draft.brush_erase if draft.brush_erase is not None else np.zeros(self.image_shape, bool)
        if erase:
            add, rem = add & ~stroke, rem | stroke
        else:
            add, rem = add | stroke, rem & ~stroke
        self._commit(draft=dataclasses.replace(draft, brush_add=add if add.any() else None,
                                               brush_erase=rem if rem.any() else None))

    # ------------------------------------------------------------------ objects
    def finish_object(self, overwrite: Optional[bool] = None) -> Optional[AnnotationObject]:
        """Turn the draft into a finished object ('Space'; undoable). Returns it, or None if empty.

        A new object is appended; a reopened one is replaced in place. With ``overwrite`` False
        (default: the document's ``overwrite_finished``), pixels of other objects are kept; with
        True, the finished object takes them over.
        """
        overwrite = self.overwrite_finished if overwrite is None else overwrite
        draft = self.draft
        mask = np.array(self.current_mask(), dtype=bool)      # a copy of our own, cleared in place below
        others = [o for o in self.objects if o.id != draft.object_id]
        if not overwrite:
            for o in others:
                o.region.clear_from(mask)
        region = BoxMask.from_mask(mask)
        del mask
        if not region.any():
            return None
        if overwrite:
            others_map = {o.id: dataclasses.replace(o, region=o.region.minus(region)) for o in others}
        else:
            others_map = {o.id: o for o in others}
        next_id = self.next_id
        if draft.object_id is None:
            obj = AnnotationObject(id=next_id, region=region, label=draft.label, color=object_color(next_id),
                                   clicks=draft.all_clicks(), extreme_points=draft.extreme_points)
            objects = tuple(others_map[o.id] for o in self.objects) + (obj,)
            next_id += 1
        else:
            old = self.get_object(draft.object_id)
            obj = dataclasses.replace(old, region=region, label=draft.label,
                                      clicks=old.clicks + draft.all_clicks(),
                                      extreme_points=draft.extreme_points or old.extreme_points)
            objects = tuple(obj if o.id == old.id else others_map[o.id] for o in self.objects)
        objects = tuple(o for o in objects if o.region.any())
        self._commit(objects=objects, next_id=next_id, draft=Draft(session=self._new_session()))
        return obj

    def cancel_draft(self) -> None:
        """Close the draft without changing the objects (undoable); a reopened object stays as it was."""
        if self.draft.is_empty and self.draft.object_id is None:
            return
        self._commit(draft=Draft(session=self._new_session()))

    def reopen_object(self, object_id: int, as_prev_mask: bool = True) -> None:
        """Open a finished object for correction (undoable). The draft must be empty.

        Args:
            as_prev_mask: True for ITER-M models (the mask is the previous mask of the next click);
                False keeps the mask as a frozen base that clicks add to (negative clicks then
                cannot remove pixels: use the eraser).
        """
        if not self.draft.is_empty or self.draft.object_id is not None:
            raise AnnotationStateError('another object is being edited; finish it (Space) or reset it first')
        obj = self.get_object(object_id)
        prob = obj.region.to_array().astype(np.float32)
        draft = Draft(session=self._new_session(), object_id=obj.id, label=obj.label,
                      init_mask=prob if as_prev_mask else None, base=None if as_prev_mask else prob,
                      extreme_points=obj.extreme_points)
        self._commit(draft=draft)

    def delete_object(self, object_id: int) -> None:
        """Remove a finished object (undoable); if it is open in the draft, the draft is closed too."""
        self.get_object(object_id)
        objects = tuple(o for o in self.objects if o.id != object_id)
        draft = self.draft
        if draft.object_id == object_id:
            draft = Draft(session=self._new_session())
        self._commit(objects=objects, draft=draft)

    def rename_object(self, object_id: int, label: str) -> None:
        """Change an object's class label (undoable)."""
        label = _check_label(label)
        obj = self.get_object(object_id)
        if obj.label == label:
            return
        objects = tuple(dataclasses.replace(o, label=label) if o.id == object_id else o for o in self.objects)
        draft = self.draft
        if draft.object_id == object_id:
            draft = dataclasses.replace(draft, label=label)
        self._commit(objects=objects, draft=draft)

    def set_draft_label(self, label: str) -> None:
        """Class label the draft will be finished with (undoable)."""
        label = _check_label(label)
        if self.draft.label != label:
            self._commit(draft=dataclasses.replace(self.draft, label=label))

    def restore_objects(self, objects: Iterable[AnnotationObject], next_id: Optional[int] = None) -> None:
        """Replace all objects (used when loading a project); clears the history and marks it saved."""
        objects = tuple(objects)
        for o in objects:
            if o.region.shape != self.image_shape:
                raise InputError(f'object {o.id} has a {o.region.shape} mask but the image is {self.image_shape}; '
                                 'the project file belongs to another image')
        max_id = max((o.id for o in objects), default=0)
        self._replace(objects=objects, next_id=max(next_id or 1, max_id + 1), draft=Draft(session=self._new_session()))
        self.clear_history()
        self.mark_saved()


def _array_key(a: np.ndarray) -> Tuple[int, int]:
    return a.__array_interface__['data'][0], a.nbytes


def _state_arrays(state: _State, seen: set) -> int:
    """Bytes of the state's image-size arrays not in ``seen`` (which it updates): draft maps, strokes and object
    masks. The engine state is not walked: on the CPU its maps are the draft's probability map itself."""
    total = 0
    d = state.draft
    arrays = [a for a in (d.prob, d.init_mask, d.base, d.brush_add, d.brush_erase) if a is not None]
    objects_key = ('objects', id(state.objects))   # states that did not change the objects share the tuple
    if objects_key not in seen:
        seen.add(objects_key)
        arrays += [o.region.crop for o in state.objects if o.region.any()]
    for a in arrays:
        key = _array_key(a)
        if key not in seen:
            seen.add(key)
            total += a.nbytes
    return total


def _check_label(label: str) -> str:
    label = str(label).strip()
    if not label:
        raise InputError('a class label must not be empty')
    return label


def _as_prob(mask: np.ndarray, shape: Tuple[int, int]) -> np.ndarray:
    arr = np.asarray(mask)
    if arr.ndim == 3 and arr.shape[2] in (1, 3, 4):
        arr = arr[:, :, 0]
    if arr.shape != shape:
        raise InputError(f'the mask is {arr.shape[:2]} but the image is {shape}; use a mask of the image size')
    if arr.dtype == bool:
        return arr.astype(np.float32)
    arr = arr.astype(np.float32)
    if arr.size and arr.max() > 1.0:
        arr = arr / 255.0 if arr.max() <= 255.0 else (arr > 0).astype(np.float32)
    return np.clip(arr, 0.0, 1.0)
