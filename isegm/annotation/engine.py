"""The models behind an annotation session: click predictor (with its settings) and extreme points.

:class:`AnnotationEngine` turns a :class:`~isegm.annotation.document.PredictionRequest` into a
probability map. It is used from one thread at a time (the GUI's worker thread) and keeps the
predictor for the current image and settings; settings changes take effect from the next call.
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np

from isegm.annotation.document import PredictionRequest
from isegm.errors import InputError

logger = logging.getLogger(__name__)

BRS_MODES = ('NoBRS', 'RGB-BRS', 'DistMap-BRS', 'f-BRS-A', 'f-BRS-B', 'f-BRS-C')
# Upper bounds of the ZoomIn / BRS settings: beyond them one click would allocate gigabytes or run for minutes.
MAX_TARGET_SIZE = 4096
MAX_EXPANSION = 10.0
MAX_LBFGS_ITERS = 1000


@dataclass(frozen=True)
class PredictorSettings:
    """The settings panel of RITM's demo (same defaults)."""
    brs_mode: str = 'NoBRS'
    use_zoom_in: bool = True
    fixed_crop: bool = True
    skip_clicks: int = -1
    target_size: int = 400
    expansion_ratio: float = 1.4
    net_clicks_limit: int = 8
    lbfgs_max_iters: int = 20
    with_flip: bool = True
    max_size: Optional[int] = 800
    prob_thresh: float = 0.5

    def validated(self) -> 'PredictorSettings':
        if self.brs_mode not in BRS_MODES:
            raise InputError(f'unknown BRS mode {self.brs_mode!r}; choose one of {", ".join(BRS_MODES)}')
        if not (16 <= self.target_size <= MAX_TARGET_SIZE and 1.0 <= self.expansion_ratio <= MAX_EXPANSION
                and self.net_clicks_limit >= 1 and 1 <= self.lbfgs_max_iters <= MAX_LBFGS_ITERS
                and (self.max_size is None or self.max_size >= 16)):   # also refuses NaN
            raise InputError(f'settings out of range: target size 16..{MAX_TARGET_SIZE}, expansion ratio '
                             f'1..{MAX_EXPANSION:g}, network clicks >= 1, L-BFGS iterations 1..{MAX_LBFGS_ITERS}, '
                             f'longest side >= 16')
        return self

    def predictor_key(self) -> Tuple:
        """Settings that require a new predictor (the threshold matters to BRS modes only)."""
        d = dataclasses.asdict(self)
        if self.brs_mode == 'NoBRS':
            d.pop('prob_thresh')
        return tuple(sorted(d.items()))

    def get_predictor_kwargs(self) -> Dict[str, Any]:
        """Arguments of :func:`isegm.inference.predictors.get_predictor`, as RITM's demo builds them."""
        zoom_in = None
        if self.use_zoom_in:
            target = (self.target_size, self.target_size) if self.fixed_crop else self.target_size
            zoom_in = {'skip_clicks': self.skip_clicks, 'target_size': target,
                       'expansion_ratio': self.expansion_ratio}
        return {'brs_mode': self.brs_mode, 'prob_thresh': self.prob_thresh, 'with_flip': self.with_flip,
                'zoom_in_params': zoom_in,
                'predictor_params': {'net_clicks_limit': None if self.brs_mode == 'NoBRS' else self.net_clicks_limit,
                                     'max_size': self.max_size},
                'brs_opt_func_params': {'min_iou_diff': 1e-3},
                'lbfgs_params': {'maxfun': self.lbfgs_max_iters}}


class AnnotationEngine:
    """Click model + optional extreme-point model for one image at a time.

    Args:
        click_model: a click network (``net(x, points)``), already on ``device``.
        device: torch device string or object.
        extreme_model: optional DEXTR-style network for :meth:`predict_extreme`.
        extreme_threshold: the extreme-point map is binarised at this value; None: the model's own
            (``mask_threshold`` of our compact model, else DEXTR's 0.8).
    """

    def __init__(self, click_model, device='cpu', extreme_model=None, extreme_threshold: Optional[float] = None):
        if getattr(click_model, 'task', 'click') != 'click':
            raise InputError(f'{type(click_model).__name__} is an extreme-point model, not a click model; '
                             'load it as the extreme-point model (demo.py --extreme-checkpoint=...)')
        if extreme_model is not None and getattr(extreme_model, 'task', None) != 'extreme':
            raise InputError(f'{type(extreme_model).__name__} is not an extreme-point model; '
                             'load it as the click model (demo.py --checkpoint=...)')
        self.click_model = click_model
        self.device = device
        self.extreme_model = extreme_model
        self.extreme_threshold = extreme_threshold
        self._predictor = None
        self._predictor_key: Optional[Tuple] = None
        self._generation = 0
        self._image_key: Any = None
        self._extreme_predictor = None
        # GrabCut refinement of extreme-point masks: the model's own choice unless set (GUI check box)
        self.extreme_grabcut_refine: bool = bool(getattr(extreme_model, 'grabcut_refine', False))

    @property
    def with_prev_mask(self) -> bool:
        """True for ITER-M click models (they take the previous mask as input)."""
        return bool(getattr(self.click_model, 'with_prev_mask', False))

    @property
    def brs_modes(self) -> Tuple[str, ...]:
        """The BRS modes the click model supports (no f-BRS-A/B/C without insertion points)."""
        from isegm.inference.predictors import supported_brs_modes
        return supported_brs_modes(self.click_model)

    @property
    def has_extreme_model(self) -> bool:
        return self.extreme_model is not None

    def _get_predictor(self, image_key: Any, image: np.ndarray, settings: PredictorSettings):
        from isegm.inference.predictors import get_predictor
        key = settings.validated().predictor_key()
        if self._predictor is None or key != self._predictor_key:
            self._predictor = get_predictor(self.click_model, device=self.device, **settings.get_predictor_kwargs())
            self._predictor_key = key
            self._generation += 1
            self._image_key = None
            logger.info('predictor rebuilt: %s', settings)
        if image_key != self._image_key:
            self._predictor.set_input_image(image)
            self._image_key = image_key
        return self._predictor

    def predict_clicks(self, image_key: Any, image: np.ndarray, settings: PredictorSettings,
                       request: PredictionRequest) -> Tuple[np.ndarray, Any]:
        """Probability map (float32 H x W) for the request's clicks, and the engine state after it.

        The predictor state stored with the request (ZoomIn crop, previous prediction) is restored
        first, so undo and object switches predict exactly as a fresh sequence of the same clicks.
        """
        from isegm.inference.clicker import Click, Clicker
        predictor = self._get_predictor(image_key, image, settings)
        state = request.engine_state
        if state is not None and state[0] == self._generation and state[1] == image_key:
            predictor.set_states(state[2])
        else:
            predictor.reset()
        clicker = Clicker(click_indx_offset=request.click_indx_offset, image_shape=image.shape[:2])
        for c in request.clicks:
            clicker.add_click(Click(is_positive=c.is_positive, coords=(c.y, c.x)))
        prev_mask = request.prev_mask if self.with_prev_mask else None
        prob = predictor.get_prediction(clicker, prev_mask=prev_mask)
        return prob, (self._generation, image_key, predictor.get_states())

    def predict_extreme(self, image: np.ndarray, points_yx: Sequence[Sequence[int]]) -> np.ndarray:
        """Binary float32 mask of the object given its 4 extreme points (y, x) (GrabCut-refined when the
        model asks for it, see :meth:`ExtremePointsPredictor.predict_mask`)."""
        if self.extreme_model is None:
            raise InputError('no extreme-point model is loaded; start the app with --extreme-checkpoint=PATH')
        if self._extreme_predictor is None:
            from isegm.inference.predictors.extreme import ExtremePointsPredictor
            self._extreme_predictor = ExtremePointsPredictor(self.extreme_model, device=self.device)
        self._extreme_predictor.grabcut_refine = self.extreme_grabcut_refine
        mask = self._extreme_predictor.predict_mask(image, np.asarray(points_yx), threshold=self.extreme_threshold)
        return mask.astype(np.float32)
