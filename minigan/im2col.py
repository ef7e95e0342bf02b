"""The machinery under minigan/conv.py: im2col, its adjoint col2im, and the memory layout.

conv.py writes a convolution as one matrix product, ``out = W_flat @ cols + b``; this module
builds ``cols`` (:func:`im2col`: every k x k window of the padded input as one column) and
scatters columns back onto images (:func:`col2im`, the adjoint: a pixel that lies in several
windows receives the sum of their columns). Derivations: lessons/12_convolutions.md.

The memory layout. Shapes are NCHW, as in torch; *memory* is batch-last. The images a convolution
returns (and the input gradient it passes back) are transposed views of a (C, H, W, N) array, with
the batch the fastest-moving axis. Nothing outside conv.py and this file needs to know (but
Flatten.backward, which gives dx its input's memory order): a view has the (N, C, H, W) shape and
the same numbers, and elementwise layers keep their input's memory order. It pays twice: im2col's
copy moves runs of N contiguous numbers instead of single ones, and BatchNorm's per-channel sums
read one contiguous block per channel; and nothing is copied back to NCHW order. The columns are
ordered (i, j, n), pixel by pixel with the batch innermost, so that a product with them comes out
(C, H, W, N) in memory, and :func:`as_matrix` / :func:`as_images` turn images into that matrix and
back as views. col2im alone works in (H, W, N, C) memory, where its adds are fastest (its columns
come by kernel offset from :func:`products_by_offset`), and :func:`unpad` copies its result to
batch-last once. Why each choice: benchmarks/bench_layouts.py (col2im's adds, BatchNorm's layouts;
im2col's copy was measured once, when it changed); what the step gained: BENCHMARKS.md ("The DCGAN
step").
"""

from minigan import backend


def as_matrix(x):
    """Images x (N, C, H, W) as the matrix (C, H*W*N), columns (i, j, n): the layout of a
    convolution's product. A view when x is batch-last in memory, else one copy."""
    return x.transpose(1, 2, 3, 0).reshape(x.shape[1], -1)


def as_images(out_flat, n, h, w):
    """The inverse of :func:`as_matrix`: a (C, H*W*N) matrix as images (N, C, H, W), a view
    (batch-last in memory, no copy)."""
    return out_flat.reshape(out_flat.shape[0], h, w, n).transpose(3, 0, 1, 2)


def pad_images(x, padding):
    """x (N, C, H, W) with ``padding`` zeros on every side: (N, C, H + 2p, W + 2p), batch-last
    in memory (a view of a (C, Hp, Wp, N) array). The array itself when padding is 0."""
    if padding == 0:
        return x
    n, c, h, w = x.shape
    out = backend.xp.zeros((c, h + 2 * padding, w + 2 * padding, n), dtype=x.dtype)
    out = out.transpose(3, 0, 1, 2)  # (N, C, Hp, Wp), a view
    out[:, :, padding:padding + h, padding:padding + w] = x
    return out


def unpad(x_pad, padding):
    """The inverse of :func:`pad_images`: x_pad (N, C, Hp, Wp) without its border,
    (N, C, Hp - 2p, Wp - 2p), copied once into fresh batch-last memory.

    The cut-out is a strided view of col2im's (H, W, N, C) memory; the copy puts it where the
    layers after a convolution (BatchNorm, LeakyReLU) run fastest (benchmarks/bench_layouts.py,
    part 3).
    """
    p = padding
    hp, wp = x_pad.shape[2:]
    return batch_last_copy(x_pad[:, :, p:hp - p, p:wp - p])


def batch_last_copy(x):
    """x (N, C, H, W) copied into fresh contiguous batch-last memory: a view of (C, H, W, N)."""
    n, c, h, w = x.shape
    out = backend.xp.empty((c, h, w, n), dtype=x.dtype).transpose(3, 0, 1, 2)
    out[...] = x
    return out


def im2col(x_pad, kernel_size, stride, h_out, w_out):
    """Every k x k window of x_pad (N, C, Hp, Wp) as one column: cols (C * k * k,
    H_out * W_out * N).

    Column ``(i, j, n)`` holds ``x_pad[n, :, i*s : i*s + k, j*s : j*s + k]`` flattened in
    (C, k, k) order, the order of a flattened weight ``W[o]``; so ``W.reshape(C_out, -1) @ cols``
    is the whole convolution. The windows are first a strided *view* of x_pad (no copy:
    overlapping windows share memory), laid out (C, k, k, H_out, W_out, N); the one reshape
    below is the only copy. The batch is the last axis so that the product with the weights
    comes out batch-last in memory. x_pad may have any memory order; batch-last
    (:func:`pad_images`'s) makes the copy read N contiguous numbers at a time: 5.5 ms -> 1.4-1.7
    ms on the DCGAN's conv2 (64 -> 128 channels, 14 x 14, batch 64), measured once when the
    change was made (BENCHMARKS.md, "The DCGAN step"; no script reruns it).
    """
    xp = backend.xp
    n, c, hp, wp = x_pad.shape
    k, s = kernel_size, stride
    # as_strided checks nothing: a window past the edge would read whatever memory lies there
    need_h, need_w = (h_out - 1) * s + k, (w_out - 1) * s + k  # where the last windows end
    if need_h > hp or need_w > wp:
        raise ValueError(f"im2col: {h_out} x {w_out} windows of {k} x {k} at stride {s} need "
                         f"a padded input of at least {need_h} x {need_w}, got {hp} x {wp}")
    sn, sc, sh, sw = x_pad.strides  # in bytes
    windows = xp.lib.stride_tricks.as_strided(
        x_pad, shape=(c, k, k, h_out, w_out, n), strides=(sc, sh, sw, sh * s, sw * s, sn))
    return windows.reshape(c * k * k, h_out * w_out * n)  # the one copy


def col2im(cols, x_pad_shape, kernel_size, stride, h_out, w_out):
    """The adjoint of :func:`im2col`: add every column of cols back onto the window it came from.

    cols (C * k * k, H_out * W_out * N), or the same numbers as a (C, k, k, H_out, W_out, N)
    array -> (N, C, Hp, Wp). Windows overlap when stride < k, so the values are *added* (a
    scatter-add): one vectorised add per kernel offset (k * k of them), none per image or per
    pixel. Fast when each offset's block, (H_out, W_out, N, C), is contiguous in memory, as
    :func:`products_by_offset` lays them out.
    """
    xp = backend.xp
    n, c, hp, wp = x_pad_shape
    k, s = kernel_size, stride
    cols = cols.reshape(c, k, k, h_out, w_out, n)
    # Accumulate in (Hp, Wp, N, C) memory: the slice each add writes is then made of runs of
    # N * C contiguous numbers (4,096 on the DCGAN), where (C, Hp, Wp, N) memory gives runs of
    # N (64). NumPy's add on a strided target is ~3.6x slower than on contiguous memory unless
    # the runs are thousands long: about 4.4x faster for D's conv2 (benchmarks/bench_layouts.py,
    # part 2: 4.33 -> 0.97 ms; an earlier hand-written copy measured 4.08 -> 0.93; BENCHMARKS.md).
    out = xp.zeros((hp, wp, n, c), dtype=cols.dtype)
    for di in range(k):
        for dj in range(k):
            # the pixels kernel offset (di, dj) touched: rows di, di+s, ..., columns dj, dj+s, ...
            out[di:di + s * h_out:s, dj:dj + s * w_out:s] += cols[:, di, dj].transpose(1, 2, 3, 0)
    return out.transpose(2, 3, 0, 1)  # (N, C, Hp, Wp), a view


def products_by_offset(W, a_rows, h, w, n):
    """``W_flat.T @ a_rows.T``, W_flat = W.reshape(W.shape[0], -1), one kernel offset at a
    time, laid out for :func:`col2im`.

    W: (C_a, C_o, k, k), a Conv2D's weight (C_a = C_out, C_o = C_in) or a ConvTranspose2D's
    (C_a = C_in, C_o = C_out); a_rows: (H*W*N, C_a), the transposed image matrix, rows (i, j, n).
    Returns the (C_o, k, k, H, W, N) column array as a view of (k, k, H, W, N, C_o) memory: the
    rows of W_flat.T @ a that belong to offset (u, v) are ``W[:, :, u, v].T @ a``, and each such
    block, (H, W, N, C_o), lands contiguous, which is what col2im's adds want. One batched
    product: its k*k matrix products do the single product's multiply-adds, and measured alone
    take 6 to 10% longer than it, which col2im's contiguous adds repay several times over
    (benchmarks/bench_layouts.py, part 2; BENCHMARKS.md).
    """
    c_a, c_o, k = W.shape[:3]
    W_offsets = W.transpose(2, 3, 0, 1).reshape(k * k, c_a, c_o)  # W[:, :, u, v] by offset
    blocks = a_rows @ W_offsets  # (k*k, H*W*N, C_o)
    return blocks.reshape(k, k, h, w, n, c_o).transpose(5, 0, 1, 2, 3, 4)
