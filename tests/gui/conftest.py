"""Xvfb for the GUI tests: started once per session; the tests skip only when no X server starts."""
import gc
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest


def _free_display() -> int:
    for n in range(90, 200):
        if not Path(f'/tmp/.X{n}-lock').exists() and not Path(f'/tmp/.X11-unix/X{n}').exists():
            return n
    raise RuntimeError('no free X display number in 90..199')


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """The GUI tests share 2 cores with the Tk loop, Xvfb and xdotool: one torch thread (tests/conftest.py)."""
    yield
    # A closed window's Tk variables are freed here, on the Tk thread: a garbage collection that happens to
    # run on a prediction or save thread of a later test would call Tcl from there (Tk refuses: "main
    # thread is not in main loop"). The app itself keeps one window for the life of the process.
    gc.collect()


@pytest.fixture(scope='session')
def x_display():
    """DISPLAY of a private Xvfb server (set in os.environ for the session)."""
    xvfb = shutil.which('Xvfb')
    if xvfb is None:
        pytest.skip('Xvfb is not installed (apt-get install xvfb xdotool)')
    n = _free_display()
    proc = subprocess.Popen([xvfb, f':{n}', '-screen', '0', '1400x900x24', '-nolisten', 'tcp'],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    socket = Path(f'/tmp/.X11-unix/X{n}')
    deadline = time.time() + 15
    while not socket.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.1)
    if proc.poll() is not None or not socket.exists():
        proc.kill()
        pytest.skip(f'Xvfb could not be started on :{n}')
    old = os.environ.get('DISPLAY')
    os.environ['DISPLAY'] = f':{n}'
    yield f':{n}'
    if old is None:
        os.environ.pop('DISPLAY', None)
    else:
        os.environ['DISPLAY'] = old
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope='session')
def xdotool(x_display):
    exe = shutil.which('xdotool')
    if exe is None:
        pytest.fail('xdotool is missing: apt-get install xdotool (the GUI tests drive the window with it)')

    def run(*args):
        subprocess.run([exe, *[str(a) for a in args]], check=True, timeout=30,
                       env={**os.environ, 'DISPLAY': x_display})
    return run
