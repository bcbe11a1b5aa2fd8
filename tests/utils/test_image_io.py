import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from isegm.errors import ImageLoadError, InputError
from isegm.utils.image_io import load_image, load_mask, save_image, to_rgb_uint8


def _gradient(h=30, w=40):
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 6, y * 8, (x + y) * 3], axis=2).astype(np.uint8)


def test_rgb_roundtrip(tmp_path):
    img = _gradient()
    Image.fromarray(img).save(tmp_path / 'a.png')
    out = load_image(tmp_path / 'a.png')
    assert out.dtype == np.uint8 and out.shape == (30, 40, 3)
    assert np.array_equal(out, img)


def test_grey_becomes_three_equal_channels(tmp_path):
    g = _gradient()[:, :, 0]
    Image.fromarray(g, mode='L').save(tmp_path / 'g.png')
    out = load_image(tmp_path / 'g.png')
    assert out.shape == (30, 40, 3)
    assert np.array_equal(out[:, :, 0], g) and np.array_equal(out[:, :, 2], g)


def test_rgba_drops_alpha(tmp_path):
    rgba = np.concatenate([_gradient(), np.full((30, 40, 1), 7, np.uint8)], axis=2)
    Image.fromarray(rgba, mode='RGBA').save(tmp_path / 'a.png')
    assert np.array_equal(load_image(tmp_path / 'a.png'), rgba[:, :, :3])


def test_palette_image_maps_through_palette(tmp_path):
    idx = (np.arange(30 * 40).reshape(30, 40) % 3).astype(np.uint8)
    img = Image.fromarray(idx, mode='P')
    img.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * (256 * 3 - 9))
    img.save(tmp_path / 'p.png')
    out = load_image(tmp_path / 'p.png')
    assert out.shape == (30, 40, 3)
    assert tuple(out[0, 0]) == (255, 0, 0) and tuple(out[0, 1]) == (0, 255, 0) and tuple(out[0, 2]) == (0, 0, 255)


def test_16bit_scaled_to_8bit(tmp_path):
    arr = np.linspace(0, 65535, 30 * 40).reshape(30, 40).astype(np.uint16)
    Image.fromarray(arr).save(tmp_path / 'd.png')
    out = load_image(tmp_path / 'd.png')
    assert out.dtype == np.uint8 and out.shape == (30, 40, 3)
    assert out[0, 0, 0] == 0 and out[-1, -1, 0] == 255
    assert abs(int(out[15, 20, 0]) - round(int(arr[15, 20]) * 255 / 65535)) <= 1


def test_exif_rotation_applied(tmp_path):
    img = Image.fromarray(_gradient(20, 50))
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    img.save(tmp_path / 'r.jpg', exif=exif.tobytes(), quality=95)
    out = load_image(tmp_path / 'r.jpg')
    assert out.shape == (50, 20, 3)


@pytest.mark.parametrize('content', [b'', b'not an image at all', None])
def test_bad_files_raise_clear_error(tmp_path, content):
    path = tmp_path / 'bad.png'
    if content is None:
        Image.fromarray(_gradient(100, 100)).save(path)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 3])  # truncated
    else:
        path.write_bytes(content)
    with pytest.raises(ImageLoadError) as e:
        load_image(path)
    assert 'bad.png' in str(e.value)


def test_missing_file(tmp_path):
    with pytest.raises(ImageLoadError, match='not found'):
        load_image(tmp_path / 'nope.jpg')
    with pytest.raises(ImageLoadError, match='is a folder'):
        load_image(tmp_path)


def test_to_rgb_uint8_arrays():
    assert to_rgb_uint8(np.zeros((5, 6), np.float32)).shape == (5, 6, 3)
    assert to_rgb_uint8(np.ones((5, 6, 4), np.uint8)).shape == (5, 6, 3)
    assert to_rgb_uint8(np.full((2, 2), 65535, np.uint16))[0, 0, 0] == 255
    with pytest.raises(InputError):
        to_rgb_uint8(np.zeros((5, 6, 7)))
    with pytest.raises(InputError):
        to_rgb_uint8(np.zeros((0, 6, 3), np.uint8))


def test_mask_loading_and_wrong_size(tmp_path):
    m = np.zeros((30, 40), np.uint8)
    m[5:10, 5:20] = 255
    Image.fromarray(m).save(tmp_path / 'm.png')
    Image.fromarray((m > 0).astype(np.uint8)).save(tmp_path / 'm01.png')
    assert np.array_equal(load_mask(tmp_path / 'm.png'), m > 0)
    assert np.array_equal(load_mask(tmp_path / 'm01.png', shape=(30, 40)), m > 0)
    with pytest.raises(InputError, match='40x30'):
        load_mask(tmp_path / 'm.png', shape=(31, 40))


def test_save_image_atomic(tmp_path):
    save_image(tmp_path / 'sub' / 'x.png', _gradient())
    assert np.array_equal(load_image(tmp_path / 'sub' / 'x.png'), _gradient())
    assert [p.name for p in (tmp_path / 'sub').iterdir()] == ['x.png']


def _png_header_only(path, width, height):
    """A PNG whose header claims ``width x height`` grey pixels (no real pixel data): cheap to write."""
    def chunk(kind, body):
        return struct.pack('>I', len(body)) + kind + body + struct.pack('>I', zlib.crc32(kind + body))
    ihdr = struct.pack('>IIBBBBB', width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', ihdr) + chunk(b'IDAT', zlib.compress(b'\0'))
                     + chunk(b'IEND', b''))


@pytest.mark.parametrize('loader', [load_image, load_mask])
def test_decompression_bomb_header_is_an_image_load_error(tmp_path, loader):
    path = tmp_path / 'bomb.png'
    _png_header_only(path, 100_000, 100_000)
    with pytest.raises(ImageLoadError, match='too large'):
        loader(path)


def test_16_bit_data_is_scaled_by_the_bit_depth_it_uses():
    # 12-bit sensor data in a 16-bit file: 4095 is white (it was 16: nearly black, while max <= 255 was
    # shown unscaled, a 257x brightness jump between two almost identical images).
    twelve = np.array([[0, 2048, 4095]], np.uint16)
    assert to_rgb_uint8(twelve)[0, :, 0].tolist() == [0, 128, 255]
    assert to_rgb_uint8(np.array([[0, 200, 255]], np.uint16))[0, :, 0].tolist() == [0, 200, 255]
    assert to_rgb_uint8(np.array([[0, 200, 256]], np.uint16))[0, :, 0].tolist() == [0, 100, 128]
    full = np.array([[0, 32768, 65535]], np.uint16)
    assert to_rgb_uint8(full)[0, :, 0].tolist() == [0, 128, 255]


def test_values_outside_the_standard_ranges_are_stretched_not_wrapped_or_saturated(tmp_path):
    signed = np.array([[-1000, 0, 1000]], np.int32)
    assert to_rgb_uint8(signed)[0, :, 0].tolist() == [0, 128, 255]
    assert to_rgb_uint8(np.array([[0, 100000, 200000]], np.int32))[0, :, 0].tolist() == [0, 128, 255]
    assert to_rgb_uint8(np.array([[-1.0, 0.0, 1.0]], np.float32))[0, :, 0].tolist() == [0, 128, 255]
    assert to_rgb_uint8(np.array([[0.0, 500.0, 1000.0]], np.float32))[0, :, 0].tolist() == [0, 128, 255]
    assert to_rgb_uint8(np.array([[0.0, 0.5, 1.0]], np.float32))[0, :, 0].tolist() == [0, 128, 255]
    assert to_rgb_uint8(np.array([[0.0, 100.0, 200.0]], np.float32))[0, :, 0].tolist() == [0, 100, 200]
    assert to_rgb_uint8(np.full((2, 2), -5, np.int16)).max() == 0   # constant: no division by zero
    # the same through files (32-bit integer and float TIFFs)
    ramp = np.linspace(-3000, 3000, 7 * 9, dtype=np.int32).reshape(7, 9)
    Image.fromarray(ramp, mode='I').save(tmp_path / 'signed.tif')
    loaded = load_image(tmp_path / 'signed.tif')[:, :, 0].astype(int)
    assert loaded[0, 0] == 0 and loaded[-1, -1] == 255 and np.all(np.diff(loaded.reshape(-1)) >= 0)
    Image.fromarray(np.arange(-31, 32, dtype=np.int32).reshape(7, 9), mode='I').save(tmp_path / 'small.tif')
    loaded = load_image(tmp_path / 'small.tif')[:, :, 0].astype(int)
    assert loaded[0, 0] == 0 and loaded[-1, -1] == 255 and np.all(np.diff(loaded.reshape(-1)) >= 0)
    Image.fromarray(np.linspace(-1, 1, 63, dtype=np.float32).reshape(7, 9), mode='F').save(tmp_path / 'f.tif')
    loaded = load_image(tmp_path / 'f.tif')[:, :, 0].astype(int)
    assert loaded[0, 0] == 0 and loaded[-1, -1] == 255 and np.all(np.diff(loaded.reshape(-1)) >= 0)


def test_float_probability_mask_is_thresholded_at_one_half(tmp_path):
    prob = np.zeros((6, 8), np.float32)
    prob[:, :4] = 0.2
    prob[:, 4:] = 0.9
    Image.fromarray(prob, mode='F').save(tmp_path / 'p.tif')
    np.testing.assert_array_equal(load_mask(tmp_path / 'p.tif'), prob > 0.5)
