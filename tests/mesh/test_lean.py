"""The lean sorts agree with NumPy's, and hold less on the way."""

import tracemalloc

import numpy as np
import pytest

from solver.mesh.lean import unique_inverse


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
@pytest.mark.parametrize("shape,high", [((0, 4), 5), ((1,), 3), ((7, 3), 2), ((5000, 4), 60), ((20000, 8), 10**9)])
def test_unique_inverse_is_numpy_s(dtype, shape, high):
    values = np.random.default_rng(7).integers(0, high, size=shape).astype(dtype)
    distinct, inverse = unique_inverse(values, chunk=1000)
    expected, expected_inverse = np.unique(values, return_inverse=True)
    assert distinct.dtype == values.dtype and np.array_equal(distinct, expected)
    assert inverse.shape == values.shape and inverse.dtype == np.int32
    assert np.array_equal(inverse, expected_inverse.reshape(values.shape))


def test_values_too_wide_to_pack_or_negative_go_to_numpy():
    for values in (np.array([[2**62, 1], [1, 5]]), np.array([3, -2, 3])):
        distinct, inverse = unique_inverse(values)
        assert np.array_equal(distinct[inverse], values)
        assert np.array_equal(distinct, np.unique(values))


def test_unique_inverse_holds_about_half_of_what_numpy_holds():
    values = np.random.default_rng(3).integers(0, 200_000, size=(250_000, 4)).astype(np.int32)

    def peak(fn):
        tracemalloc.start()
        try:
            fn(values)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    ours, numpys = peak(unique_inverse), peak(lambda v: np.unique(v, return_inverse=True))
    assert ours < 0.6 * numpys  # (17 bytes a value, against 34), (ours, numpys)
