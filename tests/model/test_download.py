"""Checkpoint download against a local HTTP server (no outside network here)."""
import hashlib
import http.server
import threading
from functools import partial

import pytest

from isegm.errors import CheckpointError
from isegm.model.download import download_checkpoint


@pytest.fixture
def server(tmp_path):
    root = tmp_path / 'www'
    root.mkdir()
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None
    httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield root, f'http://127.0.0.1:{httpd.server_address[1]}'
    httpd.shutdown()
    httpd.server_close()


def test_download_ok_with_checksum(server, tmp_path):
    root, base = server
    payload = b'x' * 3_000_000
    (root / 'model.pth').write_bytes(payload)
    dest = tmp_path / 'weights'
    path = download_checkpoint(f'{base}/model.pth', dest, sha256=hashlib.sha256(payload).hexdigest())
    assert path.read_bytes() == payload
    assert [p.name for p in dest.iterdir()] == ['model.pth']


def test_checksum_mismatch_leaves_nothing(server, tmp_path):
    root, base = server
    (root / 'model.pth').write_bytes(b'abc')
    dest = tmp_path / 'weights'
    with pytest.raises(CheckpointError, match='checksum'):
        download_checkpoint(f'{base}/model.pth', dest, sha256='0' * 64)
    assert list(dest.iterdir()) == []


def test_missing_url_is_clear_error(server, tmp_path):
    _, base = server
    with pytest.raises(CheckpointError, match='cannot download'):
        download_checkpoint(f'{base}/nope.pth', tmp_path)


def test_unknown_name(tmp_path):
    with pytest.raises(CheckpointError, match='unknown'):
        download_checkpoint('no_such_model', tmp_path)
