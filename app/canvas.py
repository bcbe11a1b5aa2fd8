"""Zoomable, pannable image canvas that maps screen events to image pixels.

Wheel zooms at the cursor; a right-button drag pans (a short right press without movement is a
negative click); arrow keys scroll; :meth:`CanvasImage.fit` shows the whole image. The canvas asks
its source for the visible part only, at screen resolution, so large images stay fast.
"""
from __future__ import annotations

import tkinter as tk
from typing import Callable, Optional, Tuple

from PIL import Image, ImageTk

DRAG_THRESHOLD = 4      # pixels of movement that turn a right press into a pan
MIN_SCALE, MAX_SCALE = 0.02, 40.0


class CanvasImage:
    """A ``tk.Canvas`` showing an RGB array with zoom and pan.

    Callbacks (image coordinates, floats): ``on_left_press(y, x)``, ``on_left_drag(y, x)``,
    ``on_left_release(y, x)``, ``on_right_click(y, x)``.
    """

    def __init__(self, parent: tk.Widget, width: int = 800, height: int = 600):
        self.canvas = tk.Canvas(parent, width=width, height=height, background='#202020', highlightthickness=0,
                                cursor='crosshair')
        self.scale = 1.0
        self.offset_x = 0.0    # image coordinate shown at canvas x = 0
        self.offset_y = 0.0
        self._size: Optional[Tuple[int, int]] = None     # (height, width) of the image shown
        self._render: Optional[Callable] = None
        self._photo = None
        self._item = None
        self._right_start: Optional[Tuple[int, int]] = None
        self._right_dragging = False
        self._left_down = False
        self.on_left_press: Callable[[float, float], None] = lambda y, x: None
        self.on_left_drag: Callable[[float, float], None] = lambda y, x: None
        self.on_left_release: Callable[[float, float], None] = lambda y, x: None
        self.on_right_click: Callable[[float, float], None] = lambda y, x: None
        c = self.canvas
        c.bind('<ButtonPress-1>', self._left_press)
        c.bind('<B1-Motion>', self._left_motion)
        c.bind('<ButtonRelease-1>', self._left_release)
        c.bind('<ButtonPress-3>', self._right_press)
        c.bind('<B3-Motion>', self._right_motion)
        c.bind('<ButtonRelease-3>', self._right_release)
        c.bind('<MouseWheel>', self._wheel)                      # Windows / macOS
        c.bind('<Button-4>', lambda e: self.zoom_at(e.x, e.y, 1.2))  # X11 wheel up
        c.bind('<Button-5>', lambda e: self.zoom_at(e.x, e.y, 1 / 1.2))
        c.bind('<Configure>', lambda e: self.redraw())

    # ------------------------------------------------------------------ geometry
    def view_size(self) -> Tuple[int, int]:
        return max(1, self.canvas.winfo_width()), max(1, self.canvas.winfo_height())

    def canvas_to_image(self, cx: float, cy: float) -> Tuple[float, float]:
        """Canvas pixel -> image (y, x)."""
        return self.offset_y + cy / self.scale, self.offset_x + cx / self.scale

    def image_to_canvas(self, y: float, x: float) -> Tuple[float, float]:
        """Image (y, x) pixel centre -> canvas (cx, cy)."""
        return (x + 0.5 - self.offset_x) * self.scale, (y + 0.5 - self.offset_y) * self.scale

    def image_to_screen(self, y: float, x: float) -> Tuple[int, int]:
        """Image (y, x) -> absolute screen coordinates (used by tests that drive the mouse)."""
        cx, cy = self.image_to_canvas(y, x)
        return int(round(self.canvas.winfo_rootx() + cx)), int(round(self.canvas.winfo_rooty() + cy))

    # ------------------------------------------------------------------ image
    def set_source(self, size: Tuple[int, int], render: Callable[[Tuple[int, int, int, int], Tuple[int, int]], object],
                   reset_view: bool = False) -> None:
        """Show an image of ``size`` (height, width) drawn by ``render(box, out_size)``: the part ``box``
        (x0, y0, x1, y1, image pixels) as an RGB uint8 array of ``out_size`` (width, height). Only the
        visible part is ever drawn, at screen resolution. ``reset_view`` fits the image to the window
        (also done when the size changes)."""
        size = (int(size[0]), int(size[1]))
        first = self._size != size
        self._size = size
        self._render = render
        if reset_view or first:
            self.fit()
        else:
            self.redraw()

    def fit(self) -> None:
        """Zoom so that the whole image is visible, centred."""
        if self._size is None:
            return
        self.canvas.update_idletasks()
        vw, vh = self.view_size()
        h, w = self._size
        self.scale = min(vw / w, vh / h)
        self.offset_x = (w - vw / self.scale) / 2
        self.offset_y = (h - vh / self.scale) / 2
        self.redraw()

    def zoom_at(self, cx: float, cy: float, factor: float) -> None:
        """Zoom by ``factor`` keeping the image point under canvas (cx, cy) fixed."""
        new_scale = min(MAX_SCALE, max(MIN_SCALE, self.scale * factor))
        y, x = self.canvas_to_image(cx, cy)
        self.scale = new_scale
        self.offset_x = x - cx / new_scale
        self.offset_y = y - cy / new_scale
        self.redraw()

    def scroll(self, dx_frac: float, dy_frac: float) -> None:
        """Scroll by a fraction of the view (arrow keys)."""
        vw, vh = self.view_size()
        self.offset_x += dx_frac * vw / self.scale
        self.offset_y += dy_frac * vh / self.scale
        self.redraw()

    def visible_box(self) -> Optional[Tuple[Tuple[int, int, int, int], Tuple[int, int]]]:
        """(box, out_size) of the image part on screen, None when none is."""
        if self._size is None:
            return None
        vw, vh = self.view_size()
        h, w = self._size
        x0, y0 = max(0.0, self.offset_x), max(0.0, self.offset_y)
        x1 = min(float(w), self.offset_x + vw / self.scale)
        y1 = min(float(h), self.offset_y + vh / self.scale)
        if x1 <= x0 or y1 <= y0:
            return None
        ix0, iy0, ix1, iy1 = int(x0), int(y0), min(w, int(x1) + 1), min(h, int(y1) + 1)
        out_w = max(1, int(round((ix1 - ix0) * self.scale)))
        out_h = max(1, int(round((iy1 - iy0) * self.scale)))
        return (ix0, iy0, ix1, iy1), (out_w, out_h)

    def redraw(self) -> None:
        if self._render is None:
            return
        if self._item is not None:
            self.canvas.delete(self._item)
            self._item = None
        visible = self.visible_box()
        if visible is None:
            return
        (ix0, iy0, ix1, iy1), (out_w, out_h) = visible
        array = self._render((ix0, iy0, ix1, iy1), (out_w, out_h))
        if array is None:
            return
        self._photo = ImageTk.PhotoImage(Image.fromarray(array))
        cx, cy = (ix0 - self.offset_x) * self.scale, (iy0 - self.offset_y) * self.scale
        self._item = self.canvas.create_image(int(round(cx)), int(round(cy)), image=self._photo, anchor='nw')

    # ------------------------------------------------------------------ events
    def _left_press(self, event) -> None:
        self.canvas.focus_set()
        self._left_down = True
        self.on_left_press(*self.canvas_to_image(event.x, event.y))

    def _left_motion(self, event) -> None:
        if self._left_down:
            self.on_left_drag(*self.canvas_to_image(event.x, event.y))

    def _left_release(self, event) -> None:
        if self._left_down:
            self._left_down = False
            self.on_left_release(*self.canvas_to_image(event.x, event.y))

    def _right_press(self, event) -> None:
        self._right_start = (event.x, event.y)
        self._right_dragging = False

    def _right_motion(self, event) -> None:
        if self._right_start is None:
            return
        sx, sy = self._right_start
        if not self._right_dragging and abs(event.x - sx) + abs(event.y - sy) < DRAG_THRESHOLD:
            return
        self._right_dragging = True
        self.offset_x -= (event.x - sx) / self.scale
        self.offset_y -= (event.y - sy) / self.scale
        self._right_start = (event.x, event.y)
        self.redraw()

    def _right_release(self, event) -> None:
        if self._right_start is not None and not self._right_dragging:
            self.on_right_click(*self.canvas_to_image(event.x, event.y))
        self._right_start = None
        self._right_dragging = False

    def _wheel(self, event) -> None:
        self.zoom_at(event.x, event.y, 1.2 if event.delta > 0 else 1 / 1.2)
