"""The main window: toolbar, canvas, side panels, status bar and key bindings.

The view only draws and forwards events to :class:`~app.controller.InteractiveController`.
"""
from __future__ import annotations

import logging
import math
import tkinter as tk
from pathlib import Path
from tkinter import filedialog, messagebox, ttk
from typing import List, Tuple

from app.canvas import CanvasImage
from app.controller import InteractiveController
from app.widgets import TEXT_INPUT_WIDGETS, DisplayPanel, ObjectList, SettingsPanel, StatusBar

logger = logging.getLogger(__name__)

POLL_MS = 30
TITLE = 'isegm annotation'

# key -> (description, handler name); the README's controls table is generated from the same facts
KEYS = [
    ('<space>', 'finish_object'), ('a', 'partially_finish'), ('<Control-z>', 'undo'), ('<Control-y>', 'redo'),
    ('<Control-Z>', 'redo'), ('<Control-s>', 'request_save'), ('e', 'toggle_extreme_mode'), ('b', 'toggle_brush'),
    ('x', 'toggle_eraser'), ('n', 'next_image'), ('<Next>', 'next_image'), ('p', 'previous_image'),
    ('<Prior>', 'previous_image'), ('u', 'next_unannotated'), ('r', 'reset_clicks'), ('f', 'fit'),
    ('<Delete>', 'delete_selected'), ('<Control-q>', 'quit_app'),
]
VIEW_COMMANDS = {'fit', 'toggle_eraser', 'delete_selected', 'quit_app'}
ANYWHERE_COMMANDS = ('undo', 'redo', 'request_save', 'quit_app')   # also while typing in a text field


class AnnotationApp(ttk.Frame):
    """The annotation window around a controller."""

    def __init__(self, root: tk.Tk, controller: InteractiveController):
        super().__init__(root)
        self.root = root
        self.controller = controller
        self._stroke: List[Tuple[float, float]] = []
        self._closing = False
        self._quit_pending = False   # Yes in the Quit dialog: saving waits for the running prediction
        self._poll_id = None
        root.title(TITLE)
        root.protocol('WM_DELETE_WINDOW', self.quit_app)
        root.report_callback_exception = self._report_callback_exception
        self.pack(fill='both', expand=True)
        self._build()
        self._bind_keys()
        controller.on_change = self.refresh
        controller.on_error = self.show_error
        self._poll()

    # ------------------------------------------------------------------ layout
    def _build(self) -> None:
        c = self.controller
        menubar = tk.Menu(self.root)
        file_menu = tk.Menu(menubar, tearoff=False)
        file_menu.add_command(label='Open image...', command=self.open_image_dialog)
        file_menu.add_command(label='Open folder...', command=self.open_folder_dialog)
        file_menu.add_command(label='Load mask...', command=self.load_mask_dialog)
        file_menu.add_command(label='Save', accelerator='Ctrl+S', command=c.request_save)
        file_menu.add_separator()
        file_menu.add_command(label='Quit', accelerator='Ctrl+Q', command=self.quit_app)
        menubar.add_cascade(label='File', menu=file_menu)
        self.root.config(menu=menubar)

        toolbar = ttk.Frame(self)
        toolbar.pack(side='top', fill='x')
        for text, cmd in (('Finish object (Space)', c.finish_object), ('Partial finish (a)', c.partially_finish),
                          ('Undo', c.undo), ('Redo', c.redo), ('Reset clicks', c.reset_clicks),
                          ('Load mask', self.load_mask_dialog), ('Fit', self.fit)):
            ttk.Button(toolbar, text=text, command=cmd, takefocus=False).pack(side='left', padx=1)
        self.extreme_btn = ttk.Button(toolbar, text='Extreme points (e)', command=c.toggle_extreme_mode,
                                      takefocus=False)
        self.extreme_btn.pack(side='left', padx=1)
        self.grabcut_var = tk.BooleanVar(value=c.engine.extreme_grabcut_refine)
        self.grabcut_check = ttk.Checkbutton(toolbar, text='GrabCut refine', variable=self.grabcut_var, takefocus=False,
                                             command=lambda: c.set_extreme_refine(self.grabcut_var.get()))
        if c.engine.has_extreme_model:
            self.grabcut_check.pack(side='left')
        self.brush_btn = ttk.Button(toolbar, text='Brush (b)', command=c.toggle_brush, takefocus=False)
        self.brush_btn.pack(side='left', padx=1)
        self.eraser_var = tk.BooleanVar(value=False)
        ttk.Checkbutton(toolbar, text='Eraser (x)', variable=self.eraser_var, takefocus=False,
                        command=lambda: setattr(c, 'brush_erase', self.eraser_var.get())).pack(side='left')

        self.status = StatusBar(self)
        self.status.pack(side='bottom', fill='x')

        body = ttk.Frame(self)
        body.pack(side='top', fill='both', expand=True)
        side = ttk.Frame(body, width=300)
        side.pack(side='right', fill='y')
        self.canvas = CanvasImage(body, width=800, height=600)
        self.canvas.canvas.pack(side='left', fill='both', expand=True)
        self.canvas.on_left_press = self._left_press
        self.canvas.on_left_drag = self._left_drag
        self.canvas.on_left_release = self._left_release
        self.canvas.on_right_click = lambda y, x: self._click(y, x, False)

        nav = ttk.LabelFrame(side, text='Images')
        nav.pack(fill='x', padx=2, pady=2)
        ttk.Button(nav, text='< Prev (p)', command=c.previous_image, takefocus=False).pack(side='left')
        self.progress_var = tk.StringVar(value='')
        ttk.Label(nav, textvariable=self.progress_var, width=10, anchor='center').pack(side='left')
        ttk.Button(nav, text='Next (n) >', command=c.next_image, takefocus=False).pack(side='left')
        ttk.Button(nav, text='Unannotated (u)', command=c.next_unannotated, takefocus=False).pack(side='left')

        self.display = DisplayPanel(side, on_threshold=c.set_threshold, on_alpha=self._set_alpha,
                                    on_click_radius=self._set_click_radius, on_brush_radius=self._set_brush_radius,
                                    threshold=c.settings.prob_thresh, alpha=c.alpha, click_radius=c.click_radius,
                                    brush_radius=c.brush_radius)
        self.display.pack(fill='x', padx=2, pady=2)
        self.objects = ObjectList(side, on_select=c.select_object, on_reopen=c.reopen_object,
                                  on_rename=c.rename_object, on_delete=self._confirm_delete,
                                  on_overwrite=c.set_overwrite)
        self.objects.pack(fill='both', expand=True, padx=2, pady=2)
        self.settings = SettingsPanel(side, c.settings, on_apply=c.apply_settings, get_settings=lambda: c.settings,
                                      brs_modes=c.engine.brs_modes)
        self.settings.pack(fill='x', padx=2, pady=2)

    def _bind_keys(self) -> None:
        for key, name in KEYS:
            self.root.bind(key, self._key_handler(name))
        for key, (dx, dy) in (('<Left>', (-0.1, 0)), ('<Right>', (0.1, 0)), ('<Up>', (0, -0.1)),
                              ('<Down>', (0, 0.1)), ('A', (-0.1, 0)), ('D', (0.1, 0)), ('W', (0, -0.1)),
                              ('S', (0, 0.1))):
            self.root.bind(key, self._scroll_handler(dx, dy))

    def _key_handler(self, name: str):
        def handler(event):
            if isinstance(event.widget, TEXT_INPUT_WIDGETS) and not name.startswith(ANYWHERE_COMMANDS):
                return None
            target = self if name in VIEW_COMMANDS else self.controller
            getattr(target, name)()
            return 'break'
        return handler

    def _scroll_handler(self, dx: float, dy: float):
        def handler(event):
            if isinstance(event.widget, TEXT_INPUT_WIDGETS):
                return None
            self.canvas.scroll(dx, dy)
            return 'break'
        return handler

    # ------------------------------------------------------------------ events
    @staticmethod
    def _pixel(y: float, x: float) -> Tuple[int, int]:
        return int(math.floor(y)), int(math.floor(x))

    def _click(self, y: float, x: float, positive: bool) -> None:
        py, px = self._pixel(y, x)
        self.controller.add_click(py, px, positive)

    def _left_press(self, y: float, x: float) -> None:
        if self.controller.mode == 'brush':
            self._stroke = [self._pixel(y, x)]

    def _left_drag(self, y: float, x: float) -> None:
        if self.controller.mode == 'brush' and self._stroke:
            self._stroke.append(self._pixel(y, x))

    def _left_release(self, y: float, x: float) -> None:
        if self.controller.mode == 'brush':
            stroke, self._stroke = self._stroke, []
            if stroke:
                self.controller.paint(stroke)
        else:
            self._click(y, x, True)

    def fit(self) -> None:
        self.canvas.fit()

    def toggle_eraser(self) -> None:
        self.eraser_var.set(not self.eraser_var.get())
        self.controller.brush_erase = self.eraser_var.get()
        self.refresh()

    def delete_selected(self) -> None:
        if self.controller.selected_id is not None:
            self._confirm_delete(self.controller.selected_id)

    def _confirm_delete(self, object_id: int) -> None:
        if messagebox.askyesno('Delete object', f'Delete object {object_id}? (Ctrl+Z restores it)', parent=self.root):
            self.controller.delete_object(object_id)

    def _set_alpha(self, value: float) -> None:
        self.controller.alpha = value
        self.refresh()

    def _set_click_radius(self, value: int) -> None:
        self.controller.click_radius = value
        self.refresh()

    def _set_brush_radius(self, value: int) -> None:
        self.controller.brush_radius = value

    # ------------------------------------------------------------------ dialogs
    def open_image_dialog(self) -> None:
        path = filedialog.askopenfilename(parent=self.root, title='Open image')
        if path:
            self._open_source(Path(path))

    def open_folder_dialog(self) -> None:
        path = filedialog.askdirectory(parent=self.root, title='Open folder of images')
        if path:
            self._open_source(Path(path))

    def _open_source(self, path: Path) -> None:
        self.controller.open_source(path)

    def load_mask_dialog(self) -> None:
        path = filedialog.askopenfilename(parent=self.root, title='Load mask')
        if path:
            self.controller.load_mask(Path(path))

    def show_error(self, title: str, message: str) -> None:
        logger.error('%s: %s', title, message)
        if not self._closing:
            messagebox.showerror(title, message, parent=self.root)

    def _report_callback_exception(self, exc_type, exc, tb) -> None:
        """Last line of defence: an unexpected error in a Tk callback opens a dialog; the window stays."""
        logger.error('unexpected error in the GUI', exc_info=(exc_type, exc, tb))
        self.show_error('Unexpected error', f'{exc_type.__name__}: {exc}\nThe annotation in memory is kept: save it '
                                            'with Ctrl+S. Please report this problem with the log.')

    def quit_app(self) -> None:
        """Close the window (Ctrl+Q, File > Quit, the window's close button); asks when work is unsaved.

        Yes saves first (after the running prediction and queued commands) and quits only if the save
        worked; No quits without saving; Cancel keeps the window. While a save (Space) still runs in the
        background, quitting waits for it and asks only if something is left unsaved.
        """
        c = self.controller
        if self._closing:
            return
        if self._quit_pending:   # a save-and-quit already waits for the running prediction: no second dialog
            c.message = 'saving before quitting...'
            self.refresh()
            return
        if c.saving:             # Space's save still runs: ask (only if work is left unsaved) once it is done
            self._quit_pending = True
            c.message = 'finishing the save before quitting...'
            c.run_when_idle(self._quit_after_save)
            self.refresh()
            return
        if c.has_unsaved_work:
            answer = messagebox.askyesnocancel(
                'Quit', 'Save changes before quitting?\n\nYes: save and quit.  No: quit without saving.  '
                        'Cancel: keep working.', parent=self.root)
            if answer is None:
                return
            if answer:
                c.message = 'saving before quitting...'
                self._quit_pending = True
                c.save_then(self._close, on_failure=self._quit_failed)
                self.refresh()
                return
        self._close()

    def _quit_after_save(self) -> None:
        self._quit_pending = False
        self.quit_app()

    def _quit_failed(self) -> None:
        """The save before quitting failed (reported in a dialog): the window stays, quitting asks again."""
        self._quit_pending = False

    def _close(self) -> None:
        if self._closing:
            return
        self._closing = True
        if self._poll_id is not None:
            self.root.after_cancel(self._poll_id)
        self.controller.close()
        self.root.destroy()

    # ------------------------------------------------------------------ drawing
    def refresh(self) -> None:
        c = self.controller
        if self._closing:
            return
        if c.doc is not None:
            same_image = getattr(self, '_shown_path', None) == c.image_path
            self.canvas.set_source(c.doc.image_shape, c.render_view, reset_view=not same_image)
            self._shown_path = c.image_path
            self.objects.update_objects(c.doc.objects, c.selected_id)
            self.root.title(f'{TITLE} - {c.image_path.name}' + (' *' if c.has_unsaved_work else ''))
        self.progress_var.set(c.workspace.progress)
        self.status.set(c.status_text())
        self.extreme_btn.state(['pressed'] if c.mode == 'extreme' else ['!pressed'])
        self.brush_btn.state(['pressed'] if c.mode == 'brush' else ['!pressed'])

    def _poll(self) -> None:
        if self._closing:
            return
        try:
            self.controller.poll()
        finally:
            if not self._closing:
                self._poll_id = self.root.after(POLL_MS, self._poll)
