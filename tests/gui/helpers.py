"""Shared helpers of the GUI tests: pumping the Tk loop, real input through xdotool, dialogs, files."""
import contextlib
import os
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / 'test_artifacts'


def wait_for(step, condition, timeout, what, interval=0.02):
    """Call ``step()`` (run the Tk loop, poll a controller) until ``condition()`` holds."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        step()
        if condition():
            return
        time.sleep(interval)
    raise AssertionError(f'timed out after {timeout:.0f} s waiting for {what}')


def pump(root, condition, timeout=120.0, what='condition'):
    """Run the Tk loop until ``condition()`` holds."""
    wait_for(root.update, condition, timeout, what)


def settle(root, seconds=0.3):
    end = time.time() + seconds
    while time.time() < end:
        root.update()
        time.sleep(0.02)


def screenshot(root, display, name):
    """Save a PNG of the window under test_artifacts/ (Pillow's X grab; ImageMagick's import as fallback)."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    x, y = root.winfo_rootx(), root.winfo_rooty()
    bbox = (x, y, x + root.winfo_width(), y + root.winfo_height())
    try:
        from PIL import ImageGrab
        ImageGrab.grab(bbox=bbox, xdisplay=display).save(path)
    except OSError:
        subprocess.run(['import', '-window', str(root.winfo_id()), str(path)], check=True, timeout=30,
                       env={**os.environ, 'DISPLAY': display})
    img = Image.open(path)
    assert img.size[0] >= 600 and img.size[1] >= 400
    assert np.asarray(img).std() > 10          # not a blank frame
    return path


def focus(root, xdotool):
    xdotool('windowfocus', '--sync', root.winfo_id())
    root.focus_force()
    settle(root, 0.2)


def move_pointer(xdotool, x, y):
    """Move the mouse to screen (x, y). ``mousemove --sync`` waits for a motion event, which never
    comes when the pointer is already there, so that case is skipped."""
    where = subprocess.run(['xdotool', 'getmouselocation', '--shell'], capture_output=True, text=True,
                           timeout=10).stdout
    pos = dict(line.split('=', 1) for line in where.split() if '=' in line)
    if (pos.get('X'), pos.get('Y')) != (str(int(x)), str(int(y))):
        xdotool('mousemove', '--sync', int(x), int(y))


def click_at(app, xdotool, y, x, button=1):
    """A real mouse click on image pixel (y, x)."""
    sx, sy = app.canvas.image_to_screen(y, x)
    move_pointer(xdotool, sx, sy)
    xdotool('click', button)


def click_widget(widget, xdotool, button=1, dx=None, dy=None):
    """A real mouse click on a widget (its centre, or (dx, dy) from its top-left corner)."""
    widget.update_idletasks()
    x = widget.winfo_rootx() + (widget.winfo_width() // 2 if dx is None else dx)
    y = widget.winfo_rooty() + (widget.winfo_height() // 2 if dy is None else dy)
    move_pointer(xdotool, x, y)
    xdotool('click', button)


def answer_dialog(display, title, key, timeout=30):
    """In the background: wait for the dialog window titled ``title``, focus it and press ``key``.

    Modal Tk dialogs run a nested event loop inside the test's ``root.update()``, so the answer must
    come from another process. Returns the Popen; ``wait_answered`` checks that it found the dialog.
    """
    script = (f'wid=$(timeout {timeout} xdotool search --sync --onlyvisible --name "^{title}$" | head -1); '
              f'[ -n "$wid" ] || exit 3; sleep 0.2; xdotool windowfocus --sync "$wid"; '
              f'xdotool key --clearmodifiers {key}')
    return subprocess.Popen(['bash', '-c', script], env={**os.environ, 'DISPLAY': display})


def wait_answered(root, proc, what='the dialog', timeout=40):
    pump(root, lambda: proc.poll() is not None, timeout, what)
    assert proc.returncode == 0, f'{what} did not appear'
    settle(root, 0.2)


def record_errors(app):
    """Error dialogs stay real; their titles and messages are also recorded in the returned list."""
    shown = []
    real = app.show_error

    def show(title, message):
        shown.append((title, message))
        real(title, message)
    app.show_error = show
    app.controller.on_error = show
    return shown


def save_tiny_checkpoint(path, with_prev_mask=True):
    """A small HRNet click model (random weights) saved in the RITM checkpoint format."""
    import torch
    from isegm.model.checkpoint import save_checkpoint
    from isegm.model.is_hrnet_model import HRNetModel
    torch.manual_seed(0)
    model = HRNetModel(width=8, ocr_width=8, small=True, with_prev_mask=with_prev_mask, use_disks=True,
                       norm_radius=5).eval()
    save_checkpoint(model, path)
    return path


def _is_writable(folder: Path) -> bool:
    probe = folder / '.write-probe'
    try:
        probe.write_bytes(b'x')
    except OSError:
        return False
    probe.unlink()
    return True


@contextlib.contextmanager
def read_only_folder(folder):
    """Make ``folder`` unwritable for this process: mode 555, and for root (which ignores modes) the
    immutable attribute. Skips the test when neither works here."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    mode = folder.stat().st_mode
    immutable = False
    folder.chmod(0o555)
    try:
        if _is_writable(folder) and shutil.which('chattr'):
            immutable = subprocess.run(['chattr', '+i', str(folder)], capture_output=True).returncode == 0
        if _is_writable(folder):
            pytest.skip('cannot make a folder read-only here (root without chattr +i)')
        yield folder
    finally:
        if immutable:
            subprocess.run(['chattr', '-i', str(folder)], check=False)
        folder.chmod(mode)


def folder_snapshot(folder):
    """{name: bytes} of the files in ``folder``."""
    return {p.name: p.read_bytes() for p in sorted(Path(folder).iterdir()) if p.is_file()}
