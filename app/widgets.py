"""Side-panel widgets: display sliders, predictor settings, object list, navigation, status bar."""
from __future__ import annotations

import tkinter as tk
from tkinter import ttk
from typing import Callable, Iterable, Optional, Sequence

from isegm.annotation.engine import BRS_MODES, PredictorSettings

TEXT_INPUT_WIDGETS = (tk.Entry, ttk.Entry, tk.Spinbox, ttk.Spinbox, ttk.Combobox, tk.Text)


def labelled_scale(parent, text: str, var: tk.Variable, from_: float, to: float, resolution: float,
                   command: Callable[[float], None]) -> tk.Scale:
    frame = ttk.Frame(parent)
    frame.pack(fill='x', padx=4, pady=1)
    ttk.Label(frame, text=text, width=14).pack(side='left')
    scale = tk.Scale(frame, variable=var, from_=from_, to=to, resolution=resolution, orient='horizontal',
                     showvalue=True, length=150, command=lambda v: command(float(v)), takefocus=False)
    scale.pack(side='left', fill='x', expand=True)
    return scale


class DisplayPanel(ttk.LabelFrame):
    """Probability threshold, alpha blending, click radius and brush radius sliders."""

    def __init__(self, parent, on_threshold, on_alpha, on_click_radius, on_brush_radius,
                 threshold=0.5, alpha=0.5, click_radius=3, brush_radius=8):
        super().__init__(parent, text='Display')
        self.threshold = tk.DoubleVar(value=threshold)
        self.alpha = tk.DoubleVar(value=alpha)
        self.click_radius = tk.IntVar(value=click_radius)
        self.brush_radius = tk.IntVar(value=brush_radius)
        labelled_scale(self, 'Prob. threshold', self.threshold, 0.0, 1.0, 0.01, on_threshold)
        labelled_scale(self, 'Alpha blending', self.alpha, 0.0, 1.0, 0.05, on_alpha)
        labelled_scale(self, 'Click radius', self.click_radius, 0, 10, 1, lambda v: on_click_radius(int(v)))
        labelled_scale(self, 'Brush radius', self.brush_radius, 1, 60, 1, lambda v: on_brush_radius(int(v)))


class SettingsPanel(ttk.LabelFrame):
    """ZoomIn and BRS settings; they reach ``on_apply`` as a :class:`PredictorSettings`.

    Check boxes and the BRS mode apply at once; numbers apply with Return, the spin arrows or "Apply".
    The fields the panel does not show (threshold, flip, longest side) come from ``get_settings()``
    (the settings in use), so applying never resets the threshold slider. As in RITM's demo, network
    clicks and L-BFGS iterations are disabled for NoBRS (the network then sees every click).
    ``brs_modes`` lists the modes the model supports (the engine's ``brs_modes``; default: all).
    """

    def __init__(self, parent, settings: PredictorSettings, on_apply: Callable[[PredictorSettings], None],
                 get_settings: Optional[Callable[[], PredictorSettings]] = None,
                 brs_modes: Sequence[str] = BRS_MODES):
        super().__init__(parent, text='Predictor settings (apply from the next click)')
        self._get_settings = get_settings or (lambda: settings)
        self.on_apply = on_apply
        self.use_zoom_in = tk.BooleanVar(value=settings.use_zoom_in)
        self.fixed_crop = tk.BooleanVar(value=settings.fixed_crop)
        self.skip_clicks = tk.IntVar(value=settings.skip_clicks)
        self.target_size = tk.IntVar(value=settings.target_size)
        self.expansion_ratio = tk.DoubleVar(value=settings.expansion_ratio)
        self.brs_mode = tk.StringVar(value=settings.brs_mode)
        self.net_clicks_limit = tk.IntVar(value=settings.net_clicks_limit)
        self.lbfgs_max_iters = tk.IntVar(value=settings.lbfgs_max_iters)

        row = ttk.Frame(self)
        row.pack(fill='x', padx=4)
        self.zoom_in_check = ttk.Checkbutton(row, text='ZoomIn', variable=self.use_zoom_in, takefocus=False,
                                             command=self.apply)
        self.zoom_in_check.pack(side='left')
        ttk.Checkbutton(row, text='Fixed crop', variable=self.fixed_crop, takefocus=False,
                        command=self.apply).pack(side='left')
        self._spin('Skip clicks', self.skip_clicks, -1, 100, 1)
        self._spin('Target size', self.target_size, 100, 2000, 10)
        self._spin('Expand ratio', self.expansion_ratio, 1.0, 3.0, 0.1)
        frame = ttk.Frame(self)
        frame.pack(fill='x', padx=4, pady=1)
        ttk.Label(frame, text='BRS mode', width=14).pack(side='left')
        self.brs_combo = ttk.Combobox(frame, textvariable=self.brs_mode, values=tuple(brs_modes), state='readonly',
                                      width=12, takefocus=False)
        self.brs_combo.pack(side='left')
        self.brs_combo.bind('<<ComboboxSelected>>', lambda e: self.apply())
        self.net_clicks_spin = self._spin('Network clicks', self.net_clicks_limit, 1, 50, 1)
        self.lbfgs_spin = self._spin('L-BFGS max iters', self.lbfgs_max_iters, 1, 200, 1)
        self.apply_button = ttk.Button(self, text='Apply', command=self.apply, takefocus=False)
        self.apply_button.pack(anchor='e', padx=4, pady=2)
        self._update_states()

    def _spin(self, text, var, from_, to, inc) -> ttk.Spinbox:
        frame = ttk.Frame(self)
        frame.pack(fill='x', padx=4, pady=1)
        ttk.Label(frame, text=text, width=14).pack(side='left')
        spin = ttk.Spinbox(frame, textvariable=var, from_=from_, to=to, increment=inc, width=8, command=self.apply)
        spin.pack(side='left')
        spin.bind('<Return>', lambda e: self.apply())
        spin.bind('<KP_Enter>', lambda e: self.apply())
        return spin

    def _update_states(self) -> None:
        state = ['disabled'] if self.brs_mode.get() == 'NoBRS' else ['!disabled']
        self.net_clicks_spin.state(state)
        self.lbfgs_spin.state(state)

    def current(self, base: Optional[PredictorSettings] = None) -> PredictorSettings:
        """The panel's values over ``base`` (default: the settings in use)."""
        base = base or self._get_settings()
        return PredictorSettings(
            brs_mode=self.brs_mode.get(), use_zoom_in=self.use_zoom_in.get(), fixed_crop=self.fixed_crop.get(),
            skip_clicks=int(self.skip_clicks.get()), target_size=int(self.target_size.get()),
            expansion_ratio=float(self.expansion_ratio.get()), net_clicks_limit=int(self.net_clicks_limit.get()),
            lbfgs_max_iters=int(self.lbfgs_max_iters.get()), with_flip=base.with_flip, max_size=base.max_size,
            prob_thresh=base.prob_thresh)

    def apply(self) -> None:
        """Hand the panel's values to ``on_apply``; a field that is not a number opens a dialog."""
        self._update_states()
        try:
            settings = self.current()
        except (tk.TclError, ValueError) as exc:
            from tkinter import messagebox
            messagebox.showerror('Settings', f'A setting is not a valid number ({exc}); correct it and press '
                                 'Apply.', parent=self)
            return
        self.on_apply(settings)


class ObjectList(ttk.LabelFrame):
    """Finished objects: id, class label, colour, area; select, rename, reopen, delete."""

    def __init__(self, parent, on_select, on_reopen, on_rename, on_delete, on_overwrite):
        super().__init__(parent, text='Objects')
        self.tree = ttk.Treeview(self, columns=('label', 'color', 'area'), show='headings', height=8,
                                 selectmode='browse')
        for col, text, width in (('label', 'Label', 90), ('color', 'Colour', 60), ('area', 'Area', 60)):
            self.tree.heading(col, text=text)
            self.tree.column(col, width=width, stretch=True)
        self.tree.pack(fill='both', expand=True, padx=4)
        self.tree.bind('<<TreeviewSelect>>', lambda e: on_select(self.selected()))
        self.tree.bind('<Double-1>', lambda e: self.selected() is not None and on_reopen(self.selected()))
        row = ttk.Frame(self)
        row.pack(fill='x', padx=4, pady=2)
        self.label_var = tk.StringVar(value='object')
        ttk.Entry(row, textvariable=self.label_var, width=12).pack(side='left')
        ttk.Button(row, text='Rename', takefocus=False,
                   command=lambda: self.selected() is not None and on_rename(self.selected(),
                                                                           self.label_var.get())).pack(side='left')
        row2 = ttk.Frame(self)
        row2.pack(fill='x', padx=4, pady=2)
        ttk.Button(row2, text='Reopen', takefocus=False,
                   command=lambda: self.selected() is not None and on_reopen(self.selected())).pack(side='left')
        ttk.Button(row2, text='Delete', takefocus=False,
                   command=lambda: self.selected() is not None and on_delete(self.selected())).pack(side='left')
        self.overwrite = tk.BooleanVar(value=False)
        ttk.Checkbutton(row2, text='New objects overwrite', variable=self.overwrite, takefocus=False,
                        command=lambda: on_overwrite(self.overwrite.get())).pack(side='left')
        self._colors = set()

    def selected(self) -> Optional[int]:
        sel = self.tree.selection()
        return int(sel[0]) if sel else None

    def update_objects(self, objects: Iterable, selected_id: Optional[int]) -> None:
        items = {o.id: o for o in objects}
        current = set(self.tree.get_children())
        for iid in current - {str(i) for i in items}:
            self.tree.delete(iid)
        for index, (oid, obj) in enumerate(items.items()):
            color = '#%02x%02x%02x' % tuple(obj.color)
            tag = f'c{color[1:]}'
            if tag not in self._colors:
                self.tree.tag_configure(tag, background=color)
                self._colors.add(tag)
            values = (obj.label, color, obj.area)
            if str(oid) in current:
                self.tree.item(str(oid), values=values, tags=(tag,))
                self.tree.move(str(oid), '', index)
            else:
                self.tree.insert('', index, iid=str(oid), values=values, tags=(tag,))
        want = () if selected_id is None or selected_id not in items else (str(selected_id),)
        if tuple(self.tree.selection()) != want:
            self.tree.selection_set(want)


class StatusBar(ttk.Label):
    def __init__(self, parent):
        self.var = tk.StringVar(value='')
        super().__init__(parent, textvariable=self.var, anchor='w', relief='sunken', padding=(4, 1))

    def set(self, text: str) -> None:
        if self.var.get() != text:
            self.var.set(text)
