"""The GUI's logic, free of Tk: it talks to the document, the workspace and the engine.

The view forwards events here (image coordinates, already mapped) and redraws when told to through
the ``on_change`` callback; errors go to ``on_error`` (a dialog in the app). Inference runs on an
:class:`~app.worker.InferenceWorker`; commands that need a finished prediction (finish, save, switch
image ...) are queued behind it in order, so nothing the user does during inference is lost. Saves run
on a second worker, so the click after Space is predicted while its save is written (on a large image
the save takes longer than a prediction); saves are written one after the other, in order, and leaving
the image or quitting waits for them.
"""
from __future__ import annotations

import dataclasses
import logging
import shutil
import time
from collections import deque
from pathlib import Path
from typing import Callable, Deque, List, Optional, Sequence, Tuple

import numpy as np

from app.worker import InferenceWorker
from isegm.annotation.document import AnnotationDocument, AnnotationStateError
from isegm.annotation.engine import AnnotationEngine, PredictorSettings
from isegm.annotation.export import export_image, output_paths
from isegm.annotation.render import ViewRenderer
from isegm.annotation.storage import ProjectFileError, load_project, remove_stale_temp_files
from isegm.annotation.workspace import Workspace
from isegm.errors import ImageLoadError, InputError, IsegmError

logger = logging.getLogger(__name__)

MODES = ('click', 'extreme', 'brush')


def _load_image(path: Path) -> np.ndarray:
    from isegm.utils.image_io import load_image
    return load_image(path)


def _load_mask(path: Path, shape) -> np.ndarray:
    from isegm.utils.image_io import load_mask
    return load_mask(path, shape)


class InteractiveController:
    """State of an annotation session and every command the GUI offers.

    Args:
        engine: the models (:class:`AnnotationEngine`).
        workspace: images and output folder.
        model_name: shown in the status bar.
        worker: background thread for inference (a new one by default).
        output: the session's output folder (``--output``), kept for every image or folder opened later;
            None: each source writes into its own ``annotations`` folder.
    """

    def __init__(self, engine: AnnotationEngine, workspace: Workspace, model_name: str = '',
                 worker: Optional[InferenceWorker] = None, settings: Optional[PredictorSettings] = None,
                 output: Optional[Path] = None, saver: Optional[InferenceWorker] = None):
        self.engine = engine
        self.workspace = workspace
        self.output = Path(output) if output is not None else None
        self.model_name = model_name
        self.worker = worker or InferenceWorker()
        self.saver = saver or InferenceWorker(name='isegm-save')
        self.settings = settings or PredictorSettings()
        self.on_change: Callable[[], None] = lambda: None
        self.on_error: Callable[[str, str], None] = lambda title, msg: logger.error('%s: %s', title, msg)
        self.mode = 'click'
        self.alpha = 0.5
        self.click_radius = 3
        self.brush_radius = 8
        self.brush_erase = False
        self.overwrite_finished = False
        self.selected_id: Optional[int] = None
        self.extreme_points: List[Tuple[int, int]] = []
        self.last_latency: Optional[float] = None
        self.message = ''
        self.image: Optional[np.ndarray] = None
        self.image_path: Optional[Path] = None
        self.doc: Optional[AnnotationDocument] = None
        self._view: Optional[ViewRenderer] = None
        self._image_serial = 0
        self._deferred: Deque[Callable[[], None]] = deque()
        self._blocked: Optional[Tuple] = None
        self._saving = False
        self._save_requests: List[Callable[[bool], None]] = []   # saves asked for while one is written
        self._when_saved: List[Callable[[], None]] = []          # run once no save runs or waits
        self._closed = False
        self._extreme_pending = False   # an extreme-point prediction runs: clicks wait for its result
        self._leaving = False           # an image switch (or quit) is saving: clicks wait, then are dropped

    # ------------------------------------------------------------------ status
    @property
    def device_name(self) -> str:
        return str(self.engine.device)

    @property
    def busy(self) -> bool:
        """A prediction or a save runs in the background."""
        return self.worker.busy or self._saving

    def status_text(self) -> str:
        parts = [f'device: {self.device_name}', f'model: {self.model_name or "?"}']
        if self.last_latency is not None:
            parts.append(f'last: {self.last_latency * 1000:.0f} ms')
        if self.worker.busy:
            parts.append('computing...')
        if self._saving:
            parts.append('saving...')
        parts.append(f'mode: {self.mode}')
        if len(self.workspace) > 1:
            parts.append(f'image {self.workspace.progress}')
        if self.message:
            parts.append(self.message)
        return '   |   '.join(parts)

    def _notify(self) -> None:
        self.on_change()

    def _error(self, title: str, exc: BaseException | str) -> None:
        self.message = f'{title} failed'
        self.on_error(title, str(exc))

    # ------------------------------------------------------------------ images
    def open_image(self, path: Optional[Path] = None) -> bool:
        """Load an image (default: the workspace's current one) and its saved annotation.

        An unreadable image is reported (``on_error``) and the current image stays; returns success.
        """
        path = Path(path) if path is not None else self.workspace.current
        try:
            image = _load_image(path)
        except (ImageLoadError, InputError, OSError) as exc:
            self.workspace.unreadable.add(path)
            self._error('Open image', exc)
            return False
        self._show(path, image)
        return True

    def start(self) -> bool:
        """Open the workspace's current image; in folder mode unreadable images are skipped (reported)."""
        return self._open_stepping(self.workspace.next, first=self.workspace.current)

    def _open_stepping(self, move: Callable[[], Optional[Path]], first: Optional[Path] = None) -> bool:
        """Open ``first`` (default: ``move()``, which moves the workspace); while the image cannot be
        read, step on with ``move``.

        Every image that fails is reported once in a single dialog; when none can be opened the
        workspace goes back to where it was and the current image stays. Returns success.
        """
        old = self.workspace.index
        target = first if first is not None else move()
        skipped: List[str] = []
        seen = set()
        while target is not None and target not in seen:
            seen.add(target)
            known_bad = target in self.workspace.unreadable
            try:
                image = _load_image(target)
            except (ImageLoadError, InputError, OSError) as exc:
                self.workspace.unreadable.add(target)
                if not known_bad:
                    skipped.append(str(exc))
                logger.warning('skipping unreadable image %s: %s', target, exc)
                target = move()
                continue
            self.workspace.unreadable.discard(target)
            self._show(target, image)
            if skipped:
                self._error('Open image', 'Skipped images that cannot be read:\n' + '\n'.join(skipped)
                            + f'\n\nNow showing {target.name}.')
                self.message = f'{target.name} (skipped {len(skipped)} unreadable)'
                self._notify()
            return True
        if self.workspace.index != old:
            self.workspace.go(old)
        if skipped:
            self._error('Open image', 'Cannot read:\n' + '\n'.join(skipped)
                        + ('\n\nThe current image stays open.' if self.doc is not None else ''))
        else:
            self.message = 'no more images in that direction'
        self._notify()
        return False

    def _show(self, path: Path, image: np.ndarray) -> None:
        out_dir = self.workspace.output_dir
        remove_stale_temp_files(out_dir)
        project = output_paths(out_dir, self.workspace.stem(path))['project']
        doc = None
        if project.exists():
            try:
                doc = load_project(project, image_shape=image.shape[:2], image_name=path.name)
            except ProjectFileError as exc:
                backup = project.with_name(f'{project.stem}.damaged-{int(time.time())}.json.bak')
                try:
                    shutil.copy2(project, backup)
                    note = f'The file was copied to {backup.name}; starting empty.'
                except OSError as copy_exc:
                    note = f'It could not be backed up ({copy_exc}); starting empty, it is overwritten on save.'
                self._error('Open annotation', f'{exc}\n{note}')
        if doc is None:
            doc = AnnotationDocument(image.shape[:2], image_name=path.name)
        doc.prob_thresh = self.settings.prob_thresh
        doc.overwrite_finished = self.overwrite_finished
        self.image, self.image_path, self.doc = image, path, doc
        self._view = ViewRenderer(image)
        self._image_serial += 1
        self.extreme_points = []
        self.selected_id = None
        self._blocked = None
        self.message = f'{path.name}: {len(doc.objects)} objects loaded' if doc.objects else path.name
        logger.info('opened %s (%dx%d)', path, image.shape[1], image.shape[0])
        self._notify()

    def _switch(self, move: Callable[[], Optional[Path]]) -> None:
        self._run_or_defer(lambda: self._autosave_before_leaving(lambda: self._open_stepping(move)))

    def next_image(self) -> None:
        """Autosave, then the next readable image of the folder (n, PageDown)."""
        self._switch(self.workspace.next)

    def previous_image(self) -> None:
        """Autosave, then the previous readable image of the folder (p, PageUp)."""
        self._switch(self.workspace.previous)

    def next_unannotated(self) -> None:
        """Autosave, then the next image without a project file (u)."""
        self._switch(self.workspace.next_unannotated)

    def open_source(self, source: Path, output: Optional[Path] = None) -> None:
        """Autosave, then open another image or folder (File menu); a bad path is reported. The output
        folder is ``output``, else the session's (``--output``), else the source's own."""
        def open_it():
            try:
                workspace = Workspace(source, output=output if output is not None else self.output)
            except InputError as exc:
                self._error('Open', exc)
                return
            old, self.workspace = self.workspace, workspace
            if not self.start():
                self.workspace = old
        self._run_or_defer(lambda: self._autosave_before_leaving(open_it))

    def save_then(self, callback: Callable[[], None], on_failure: Optional[Callable[[], None]] = None) -> None:
        """After the running prediction and queued commands: save (finishing the open object) and,
        if that worked, call ``callback`` (quitting). A failed save is reported, then ``on_failure`` runs."""
        self._run_or_defer(lambda: self._autosave_before_leaving(callback, on_failure))

    def _autosave_before_leaving(self, then: Callable[[], None],
                                 on_failure: Optional[Callable[[], None]] = None) -> None:
        """Finish the open object, save if the objects changed, then call ``then`` (after the background
        save, only if it worked; a failed save is reported and ``on_failure`` runs instead)."""
        doc = self.doc
        if doc is None:
            then()
            return
        note = ''
        if not doc.draft.is_empty and doc.finish_object() is None:
            note = ('the open object was not kept: all its pixels belong to finished objects (tick "New objects '
                    'overwrite" to let it take them)')

        def leave(ok: bool = True) -> None:
            if not ok:
                if on_failure is not None:
                    on_failure()
                return
            then()
            if note:
                self.message = f'{note}; {self.message}' if self.message else note
                self._notify()
        if not doc.is_modified and not self._saving:
            leave()
            return
        self._leaving = True

        def written(ok: bool = True) -> None:
            self._leaving = False
            leave(ok)
        if doc.is_modified:
            self._save(written)
        else:                          # an earlier save still writes this image's files: leave after it
            self._when_saved.append(written)

    # ------------------------------------------------------------------ queueing
    def _must_wait(self) -> bool:
        if self.worker.busy or self._leaving:
            return True
        draft = self.doc.draft if self.doc is not None else None
        return bool(draft is not None and draft.needs_prediction and self._blocked != (draft.session, draft.clicks))

    def _for_this_image(self, fn: Callable[[], None]) -> Callable[[], None]:
        """``fn`` bound to the image shown now: if it only runs after an image switch (it waited in the
        queue), it is dropped with a note, since a click, stroke or object command aimed at one image must
        not land on the next one."""
        doc = self.doc

        def run() -> None:
            if self.doc is not doc:
                self.message = ('a command given before the image switch was dropped: it was meant for the '
                                'previous image')
                self._notify()
                return
            fn()
        return run

    def _run_or_defer(self, fn: Callable[[], None]) -> None:
        if self._deferred or self._must_wait():
            self._deferred.append(fn)
            self._notify()
        else:
            fn()

    def _drain(self) -> None:
        while self._deferred and not self._must_wait():
            self._deferred.popleft()()
        self._request_prediction()

    def poll(self) -> bool:
        """Deliver finished predictions and saves (call periodically from the GUI thread)."""
        predicted = self.worker.poll()
        return self.saver.poll() or predicted

    @property
    def idle(self) -> bool:
        """True when no inference or save runs and no command waits."""
        return not self.busy and not self._deferred and not (
            self.doc is not None and self._must_wait())

    # ------------------------------------------------------------------ predictions
    def _request_prediction(self) -> None:
        doc = self.doc
        if doc is None or self.worker.busy:
            return
        req = doc.prediction_request()
        if req is None or self._blocked == (req.session, req.clicks):
            return
        image, serial, settings, engine = self.image, self._image_serial, self.settings, self.engine

        def job():
            return engine.predict_clicks(serial, image, settings, req)

        def done(result, seconds):
            self.last_latency = seconds
            if doc is self.doc:
                prob, state = result
                doc.set_prediction(req, prob, state)
                self.message = ''
            self._drain()
            self._notify()

        def failed(exc):
            self._blocked = (req.session, req.clicks)
            self._error('Prediction', _describe(exc))
            self._drain()
            self._notify()

        self.worker.submit(job, done, failed)
        self._notify()

    # ------------------------------------------------------------------ clicks and modes
    def add_click(self, y: float, x: float, is_positive: bool) -> None:
        """A left (positive) or right (negative) click at image pixel (y, x), in the current mode.

        While an extreme-point prediction runs, clicks wait for its result and are then taken in the
        mode of that moment (click mode: corrections of the new mask), so none becomes a stray fifth
        extreme point or lands on the draft the result replaces.
        """
        if self.doc is None:
            return
        if self._extreme_pending or self._deferred or self._leaving:
            self._deferred.append(self._for_this_image(lambda: self._click_now(y, x, is_positive, queued=True)))
            self._notify()
            return
        self._click_now(y, x, is_positive, queued=False)

    def _click_now(self, y: float, x: float, is_positive: bool, queued: bool) -> None:
        """Apply a click; ``queued``: run from the queue, so the worker is idle and nothing must wait."""
        if self.mode == 'extreme':
            if is_positive:
                if queued:
                    self._add_extreme_point(y, x)
                else:
                    self._run_or_defer(self._for_this_image(lambda: self._add_extreme_point(y, x)))
            return
        if self.mode == 'brush':
            if queued:
                self._paint_now([(y, x)], self.brush_erase)
            else:
                self.paint([(y, x)])
            return
        self.message = ''
        try:
            self.doc.add_click(y, x, is_positive)
        except InputError as exc:
            self.message = str(exc)
            self._notify()
            return
        self._request_prediction()
        self._notify()

    def set_mode(self, mode: str) -> None:
        if mode not in MODES:
            raise InputError(f'unknown mode {mode!r}; one of {MODES}')
        if mode == 'extreme' and not self.engine.has_extreme_model:
            self._error('Extreme points', 'no extreme-point model is loaded; start the demo with '
                                          '--extreme-checkpoint=NAME_OR_PATH')
            return
        self.mode = mode
        self.extreme_points = []
        self._notify()

    def toggle_extreme_mode(self) -> None:
        self.set_mode('click' if self.mode == 'extreme' else 'extreme')

    def toggle_brush(self) -> None:
        self.set_mode('click' if self.mode == 'brush' else 'brush')

    def _add_extreme_point(self, y: float, x: float) -> None:
        try:
            pixel = self.doc.pixel_at(y, x)   # the same pixel mapping as clicks
        except InputError:
            self.message = 'extreme points must lie inside the image'
            self._notify()
            return
        self.extreme_points.append(pixel)
        if len(self.extreme_points) < 4:
            self.message = f'extreme point {len(self.extreme_points)} / 4'
            self._notify()
            return
        points = list(self.extreme_points)
        doc, image, engine = self.doc, self.image, self.engine

        def done(mask, seconds):
            self._extreme_pending = False
            self.last_latency = seconds
            if doc is self.doc:
                try:
                    doc.set_initial_mask(mask, as_prev_mask=engine.with_prev_mask, extreme_points=points)
                except InputError as exc:
                    self._error('Extreme points', exc)
                self.extreme_points = []
                self.mode = 'click'
                self.message = 'extreme-point mask ready: refine with clicks, Space to finish'
            self._drain()
            self._notify()

        def failed(exc):
            self._extreme_pending = False
            self.extreme_points = []
            self._error('Extreme points', _describe(exc))
            self._drain()
            self._notify()

        self.worker.submit(lambda: engine.predict_extreme(image, points), done, failed)
        self._extreme_pending = True
        self._notify()

    def paint(self, points: Sequence[Tuple[float, float]], erase: Optional[bool] = None) -> None:
        """A brush/eraser stroke through image points (y, x)."""
        if self.doc is None or not points:
            return
        erase = self.brush_erase if erase is None else erase
        pts = list(points)
        self._run_or_defer(self._for_this_image(lambda: self._paint_now(pts, erase)))

    def _paint_now(self, points: Sequence[Tuple[float, float]], erase: bool) -> None:
        self.doc.paint(points, self.brush_radius, erase=erase)
        self._notify()

    # ------------------------------------------------------------------ history and objects
    def undo(self) -> None:
        if self.doc is None:
            return
        if self.extreme_points and not self.worker.busy:
            self.extreme_points.pop()
            self._notify()
            return

        def run():
            self.message = ''
            if self.doc.undo():
                self._request_prediction()
            elif self.doc.forgotten_steps:
                self.message = (f'nothing more to undo: the {self.doc.forgotten_steps} oldest steps were '
                                'forgotten to bound the memory the history takes')
            self._notify()
        self._run_or_defer(self._for_this_image(run))

    def redo(self) -> None:
        if self.doc is None:
            return
        def run():
            if self.doc.redo():
                self._request_prediction()
            self._notify()
        self._run_or_defer(self._for_this_image(run))

    def reset_clicks(self) -> None:
        if self.doc is None:
            return
        def run():
            self.extreme_points = []
            self.doc.reset_clicks()
            self._notify()
        self._run_or_defer(self._for_this_image(run))

    def finish_object(self) -> None:
        """Space: the draft becomes an object; autosave follows."""
        if self.doc is None:
            return
        def run():
            obj = self.doc.finish_object(overwrite=self.overwrite_finished)
            if obj is None:
                self.message = 'nothing to finish: the current mask is empty'
                self._notify()
                return
            self.selected_id = obj.id
            self.message = f'object {obj.id} finished ({obj.area} px)'
            self._save()
        self._run_or_defer(self._for_this_image(run))

    def partially_finish(self) -> None:
        """'a': freeze the current mask and continue the same object with new clicks."""
        if self.doc is None:
            return
        def run():
            if self.doc.partially_finish():
                self.message = 'part frozen: new clicks add to the object'
            self._notify()
        self._run_or_defer(self._for_this_image(run))

    def select_object(self, object_id: Optional[int]) -> None:
        self.selected_id = object_id
        self._notify()

    def reopen_object(self, object_id: int) -> None:
        if self.doc is None:
            return
        def run():
            try:
                self.doc.reopen_object(object_id, as_prev_mask=self.engine.with_prev_mask)
            except (AnnotationStateError, InputError) as exc:
                self._error('Reopen object', exc)
                return
            self.selected_id = object_id
            self.message = f'editing object {object_id}: click to correct, Space to finish'
            self._notify()
        self._run_or_defer(self._for_this_image(run))

    def delete_object(self, object_id: int) -> None:
        if self.doc is None:
            return
        def run():
            try:
                self.doc.delete_object(object_id)
            except InputError as exc:
                self._error('Delete object', exc)
                return
            if self.selected_id == object_id:
                self.selected_id = None
            self.message = f'object {object_id} deleted (Ctrl+Z restores it)'
            self._notify()
        self._run_or_defer(self._for_this_image(run))

    def rename_object(self, object_id: int, label: str) -> None:
        if self.doc is None:
            return
        def run():
            try:
                self.doc.rename_object(object_id, label)
            except InputError as exc:
                self._error('Rename object', exc)
                return
            self._notify()
        self._run_or_defer(self._for_this_image(run))

    def set_draft_label(self, label: str) -> None:
        if self.doc is None:
            return
        try:
            self.doc.set_draft_label(label)
        except InputError as exc:
            self._error('Label', exc)
        self._notify()

    def load_mask(self, path: Path) -> None:
        """An external mask becomes the previous mask of the next click (ITER-M models only)."""
        if self.doc is None:
            return
        if not self.engine.with_prev_mask:
            self._error('Load mask', f'the model {self.model_name or ""} has no previous-mask input (it is not an '
                                     'ITER-M model), so it cannot start from a mask; load an ITER-M checkpoint '
                                     '(e.g. coco_lvis_h18_itermask) to use this')
            return
        try:
            mask = _load_mask(Path(path), self.doc.image_shape)
        except (ImageLoadError, InputError, OSError) as exc:
            self._error('Load mask', exc)
            return

        def run():
            try:
                self.doc.set_initial_mask(np.asarray(mask) > 0, as_prev_mask=True)
            except InputError as exc:
                self._error('Load mask', exc)
                return
            self.message = f'mask {Path(path).name} loaded: clicks refine it'
            self._notify()
        self._run_or_defer(self._for_this_image(run))

    # ------------------------------------------------------------------ settings and display
    def apply_settings(self, settings: PredictorSettings) -> None:
        """New predictor settings; they apply from the next click."""
        try:
            self.settings = settings.validated()
        except InputError as exc:
            self._error('Settings', exc)
            return
        if self.doc is not None:
            self.doc.prob_thresh = self.settings.prob_thresh
        st = self.settings
        zoom = f'ZoomIn {st.target_size}' if st.use_zoom_in else 'ZoomIn off'
        self.message = f'settings applied from the next click: {st.brs_mode}, {zoom}'
        self._notify()

    def set_extreme_refine(self, value: bool) -> None:
        """GrabCut refinement of extreme-point masks on/off, from the next object."""
        def run():
            self.engine.extreme_grabcut_refine = bool(value)
            self.message = f'GrabCut refinement of extreme-point masks {"on" if value else "off"}'
            self._notify()
        self._run_or_defer(run)

    def set_threshold(self, value: float) -> None:
        self.settings = dataclasses.replace(self.settings, prob_thresh=float(value))
        if self.doc is not None:
            self.doc.prob_thresh = float(value)
        self._notify()

    def set_overwrite(self, value: bool) -> None:
        self.overwrite_finished = bool(value)
        if self.doc is not None:
            self.doc.overwrite_finished = self.overwrite_finished

    def render_view(self, box: Tuple[int, int, int, int], out_size: Tuple[int, int]) -> Optional[np.ndarray]:
        """The part ``box`` (x0, y0, x1, y1) of the image with objects, the current mask, clicks and pending
        extreme points, drawn at ``out_size`` (width, height): what the canvas shows."""
        if self.doc is None or self._view is None:
            return None
        doc = self.doc
        draft = doc.draft
        draft_mask = None if draft.is_empty else (lambda sample: doc.current_mask(view=sample))
        points = list(draft.extreme_points) + list(self.extreme_points)
        return self._view.render(box, out_size, doc.visible_objects(), alpha=self.alpha, draft_mask=draft_mask,
                                 clicks=draft.all_clicks(), click_radius=self.click_radius,
                                 extreme_points=points, selected_id=self.selected_id)

    # ------------------------------------------------------------------ saving
    def _save(self, on_done: Callable[[bool], None] = lambda ok: None) -> None:
        """Write the project file and all exports of the current image on the save thread, so the window
        stays responsive and predictions go on meanwhile. ``on_done(success)`` runs on the GUI thread
        afterwards. The objects are saved as they are when the write starts (a snapshot: masks are
        immutable); a save asked for while another is written starts after it, with the state of then
        (saves never overlap, so the files always end with the newest state). A failure is reported and
        the document stays unsaved."""
        if self.doc is None:
            on_done(False)
            return
        self._save_requests.append(on_done)
        if not self._saving:
            self._start_save()
        self._notify()

    def _start_save(self) -> None:
        doc, callbacks, self._save_requests = self.doc, self._save_requests, []
        snapshot, image = doc.snapshot(), self.image
        out_dir, stem = self.workspace.output_dir, self.workspace.stem(self.image_path)
        self._saving = True

        def job():
            export_image(snapshot, image, out_dir, stem)

        def done(_, seconds):
            doc.mark_saved(snapshot.serial)
            if not self._save_requests:
                self.message = f'saved to {out_dir}'
            logger.info('saved %s in %.2f s', stem, seconds)
            self._save_ended(callbacks, True)

        def failed(exc):
            text = str(exc) if isinstance(exc, (OSError, IsegmError)) else f'{type(exc).__name__}: {exc}'
            self._error('Save', f'{text}\nYour work is still in memory; fix the problem and save again.')
            self._save_ended(callbacks, False)

        self.saver.submit(job, done, failed)

    @property
    def saving(self) -> bool:
        """True while a save is written (its result not yet taken by :meth:`poll`) or waits for one."""
        return self._saving

    def run_when_idle(self, fn: Callable[[], None]) -> None:
        """Call ``fn`` after the running prediction, the commands queued before it and every save."""
        def after_saves() -> None:
            if self._saving:
                self._when_saved.append(fn)
            else:
                fn()
        self._run_or_defer(after_saves)

    def _save_ended(self, callbacks: List[Callable[[bool], None]], ok: bool) -> None:
        self._saving = False
        if self._save_requests and not self._closed:
            self._start_save()      # asked for during this save: before anything else changes the image
        for callback in callbacks:
            callback(ok)
        if not self._saving:
            waiting, self._when_saved = self._when_saved, []
            for fn in waiting:
                fn()
        if self._closed:       # quitting after the save closed the window
            return
        self._drain()
        self._notify()

    def request_save(self) -> None:
        """Ctrl+S: saves after the running prediction and queued commands."""
        self._run_or_defer(self._save)

    @property
    def has_unsaved_work(self) -> bool:
        """Changes not on disk: the document's, queued commands, or extreme points of an object not yet
        predicted (quitting asks instead of dropping them silently)."""
        return self.doc is not None and (self.doc.has_unsaved_work or bool(self._deferred)
                                         or bool(self.extreme_points))

    def close(self) -> None:
        self._closed = True
        self.worker.close()
        self.saver.close()


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if 'out of memory' in text.lower():
        return (f'{text}\nThe GPU ran out of memory. Lower "--limit-longest-size", switch ZoomIn on, use NoBRS, '
                'or restart with --cpu. Your annotation is kept.')
    return text
