// The first layer's two products, read from the resident example set (never from a batch of
// floats): the examples' non-zero pixels as compressed sparse rows, or, for the dense gradient,
// their bytes.
//
//   x[r, f] = scale[pixel f of example order[start + r]]     (scale[v] = v / 255, from the host)
//   input_product:   z = x · wᵀ, then the epilogue (bias, ReLU)    given wt = wᵀ [features, n], z [m, n]
//   input_gradient:  dw = dzᵀ · x + alpha · w and db = Σ_r dz[r, :]
//                    dz [m, n], w and dw [n, features], db [1, n]
//
// offsets [count + 1] int, columns [non-zeros] ushort, values [non-zeros] uchar: example e's
// non-zero pixels are columns[offsets[e] .. offsets[e+1]-1] with those values. scale [256] is
// computed on the host so that every backend rounds v / 255 the same way; the GPU (*_lanes)
// kernels instead sum bytes times weights and scale each sum by 1/255 (the same value up to
// rounding, without a table lookup per pixel). With classes > 0 the
// product kernels also write the batch's one-hot labels, targets[r, c] = (labels[example] == c),
// labels [count] uchar, targets [m, classes] (gather_batch's y). The host checked
// that every index in order is below count. Global sizes are rounded up: items guard their range.

// Row r's one-hot targets (see above), written by one item of the row.
static inline void write_targets(const int classes, const int example, const int r, __global const uchar* labels,
                                 __global real* targets) {
    for (int c = 0; c < classes; ++c) targets[r * classes + c] = labels[example] == c ? (real)1 : (real)0;
}

// input_product (CPU devices): item (g, r) computes z[r, 32g .. 32g+31] from strip g of wᵀ
// (pack_strips, 32 wide: [features, 32] contiguous, zeros past column n - 1), in two 16-wide
// vectors with two pixels in flight. A pixel's weights are then one 128-byte row of a strip that
// the group's items (rows of the batch) share from cache, where rows of wᵀ itself would be n
// floats apart. flags: EPI_BIAS and EPI_RELU (epilogue.cl), bias [n].
__kernel void input_product(const int m, const int n, const int features, const int start,
                            __global const int* offsets, __global const ushort* columns,
                            __global const uchar* values, __global const int* order,
                            __global const real* scale, __global const real* strips, __global real* z,
                            const int flags, __global const real* bias, const int classes,
                            __global const uchar* labels, __global real* targets) {
    const int j0 = get_global_id(0) * 32, r = get_global_id(1);
    if (r >= m || j0 >= n) return;
    const int example = order[start + r];
    if (j0 == 0) write_targets(classes, example, r, labels, targets);
    const int begin = offsets[example], end = offsets[example + 1];
    __global const real* wt = strips + (size_t)(j0 / 32) * features * 32;
    real16 a0 = 0, a1 = 0, b0 = 0, b1 = 0;
    int q = begin;
    for (; q + 2 <= end; q += 2) {
        __global const real* w0 = wt + (size_t)columns[q] * 32;
        __global const real* w1 = wt + (size_t)columns[q + 1] * 32;
        const real s0 = scale[values[q]], s1 = scale[values[q + 1]];
        a0 += s0 * vload16(0, w0); a1 += s0 * vload16(1, w0);
        b0 += s1 * vload16(0, w1); b1 += s1 * vload16(1, w1);
    }
    if (q < end) {
        __global const real* w0 = wt + (size_t)columns[q] * 32;
        const real s0 = scale[values[q]];
        a0 += s0 * vload16(0, w0); a1 += s0 * vload16(1, w0);
    }
    const real16 lo = a0 + b0, hi = a1 + b1;
    __global real* out = z + (size_t)r * n;
    if (j0 + 32 <= n) {
        vstore16(epilogue16(lo, flags, r, j0, n, 0, bias, bias), 0, out + j0);
        vstore16(epilogue16(hi, flags, r, j0 + 16, n, 0, bias, bias), 1, out + j0);
        return;
    }
    // The last strip sticks out of z: store the columns inside it one by one.
    real sums[32];
    vstore16(lo, 0, sums);
    vstore16(hi, 1, sums);
    for (int j = j0; j < n; ++j) out[j] = epilogue(sums[j - j0], flags, r, j, n, 0, bias, bias);
}

// input_product_lanes (GPUs): the same product with one work-group per (LANE_COLUMNS columns, row r) and
// LANES items per column (LANES is defined by the host), each walking every LANES-th non-zero
// pixel of the row: neighbouring items read neighbouring weights (one 128-byte line per pixel),
// and the row's pixels are spread over enough items to hide the memory's latency. The lanes'
// sums are added in a fixed order (reproducible). Local size (LANE_COLUMNS, LANES); global (n
// rounded up to LANE_COLUMNS, m · LANES).
__kernel void input_product_lanes(const int m, const int n, const int start,
                                  __global const int* offsets, __global const ushort* columns,
                                  __global const uchar* values, __global const int* order,
                                  __global const real* scale, __global const real* wt, __global real* z,
                                  const int flags, __global const real* bias, const int classes,
                                  __global const uchar* labels, __global real* targets) {
    __local real partial[LANES * LANE_COLUMNS];
    const int j = get_global_id(0), lane = get_local_id(1);
    const int r = get_group_id(1);
    real acc = 0;
    if (j < n && r < m) {
        const int example = order[start + r];
        const int end = offsets[example + 1];
        if (j == 0 && lane == 0) write_targets(classes, example, r, labels, targets);
        // The bytes as they are, scaled by 1/255 once at the end: a scale[] lookup per pixel
        // (32 items, 32 different table entries) was most of this kernel's time on the H200.
        for (int q = offsets[example] + lane; q < end; q += LANES)
            acc += (real)values[q] * wt[(size_t)columns[q] * n + j];
    }
    acc = sum_lanes(acc, partial) * ((real)1 / 255);
    if (lane == 0 && j < n && r < m) z[(size_t)r * n + j] = epilogue(acc, flags, r, j, n, 0, bias, bias);
}

// input_gradient_parts (CPU devices): the rows are split into `parts` parts; item (g, p) sums
// part p's rows into its own block of scratch, columns 32g .. 32g+31:
//   scratch[p, g, f, j - 32g] = Σ_{r in part p} x[r, f] · dz[r, j]     scratch [parts, ⌈n/32⌉, features + 1, 32]
// walking each row's non-zero pixels only; "feature" f = features is the constant 1, whose sums
// become the bias gradient. Each item's block is contiguous (a pixel updates one 128-byte row of
// it), and no two items write the same element, so no atomics; input_gradient_sum then adds
// the parts in a fixed order.
__kernel void input_gradient_parts(const int m, const int n, const int features, const int start, const int parts,
                                   __global const int* offsets, __global const ushort* columns,
                                   __global const uchar* values, __global const int* order,
                                   __global const real* scale, __global const real* dz, __global real* scratch) {
    const int g = get_global_id(0), j0 = g * 32, p = get_global_id(1);
    if (p >= parts || j0 >= n) return;
    __global real* block = scratch + ((size_t)p * ((n + 31) / 32) + g) * (features + 1) * 32;
    __global real* ones = block + (size_t)features * 32;
    const int width = min(32, n - j0);
    // Zeroed row by row: as one flat loop of (features + 1) · 32 stores, Mesa's llvmpipe (22.3)
    // gave wrong gradients (check's inputLinearGradient, 500 x 784, no zero pixels).
    for (int f = 0; f <= features; ++f) {
        vstore16((real16)0, 0, block + (size_t)f * 32);
        vstore16((real16)0, 1, block + (size_t)f * 32);
    }
    const int first = p * m / parts, last = (p + 1) * m / parts;
    real16 ones0 = 0, ones1 = 0;   // the bias gradient's part, in registers (a store per row cost 50%)
    for (int r = first; r < last; ++r) {
        const int example = order[start + r];
        const int begin = offsets[example], end = offsets[example + 1];
        __global const real* d = dz + (size_t)r * n + j0;
        if (width == 32) {
            const real16 d0 = vload16(0, d), d1 = vload16(1, d);
            ones0 += d0;
            ones1 += d1;
            for (int q = begin; q < end; ++q) {
                __global real* t = block + (size_t)columns[q] * 32;
                const real s = scale[values[q]];
                vstore16(vload16(0, t) + s * d0, 0, t);
                vstore16(vload16(1, t) + s * d1, 1, t);
            }
        } else {
            for (int j = 0; j < width; ++j) ones[j] += d[j];
            for (int q = begin; q < end; ++q) {
                __global real* t = block + (size_t)columns[q] * 32;
                const real s = scale[values[q]];
                for (int j = 0; j < width; ++j) t[j] += s * d[j];
            }
        }
    }
    if (width == 32) {
        vstore16(ones0, 0, ones);
        vstore16(ones1, 1, ones);
    }
}

// input_gradient_lanes (GPUs): dw = dzᵀ · x + alpha · w and db = Σ_r dz[r, :] from the bytes
// in one launch, as weight_gradient_lanes (matmul.cl) does for a tensor x: a work-group per
// (LANE_COLUMNS features, row j of dw), LANES items per feature splitting the batch's rows, and
// one more group per row j for db[j] (see bias_gradient_lanes). pixels [count, features] uchar;
// neighbouring items read neighbouring bytes of a row. Global (features rounded up to
// LANE_COLUMNS, plus LANE_COLUMNS; n · LANES).
__kernel void input_gradient_lanes(const int m, const int n, const int features, const int start, const real alpha,
                                   __global const uchar* pixels, __global const int* order,
                                   __global const real* dz, __global const real* w,
                                   __global real* dw, __global real* db) {
    __local real partial[LANES * LANE_COLUMNS];
    const int f = get_global_id(0), lane = get_local_id(1), j = get_group_id(1);
    if (is_bias_group()) {
        bias_gradient_lanes(m, n, j, dz, db, partial);
        return;
    }
    // Four rows in flight per item: each pixel is two dependent loads (order, byte).
    real acc = 0, acc1 = 0, acc2 = 0, acc3 = 0;
    if (f < features) {
        __global const uchar* column = pixels + f;
        int r = lane;
        for (; r + 3 * LANES < m; r += 4 * LANES) {
            acc += dz[(size_t)r * n + j] * column[(size_t)order[start + r] * features];
            acc1 += dz[(size_t)(r + LANES) * n + j] * column[(size_t)order[start + r + LANES] * features];
            acc2 += dz[(size_t)(r + 2 * LANES) * n + j] * column[(size_t)order[start + r + 2 * LANES] * features];
            acc3 += dz[(size_t)(r + 3 * LANES) * n + j] * column[(size_t)order[start + r + 3 * LANES] * features];
        }
        for (; r < m; r += LANES) acc += dz[(size_t)r * n + j] * column[(size_t)order[start + r] * features];
    }
    acc = sum_lanes((acc + acc1) + (acc2 + acc3), partial) * ((real)1 / 255);   // bytes to [0, 1], as input_product_lanes
    if (lane == 0 && f < features) store_weight_gradient(acc, f, j, features, alpha, w, dw);
}

// input_gradient_sum: dw[j, f] = Σ_p scratch[p, f, j] + alpha · w[j, f], and db[j] =
// Σ_p scratch[p, features, j]: the parts added in order (scratch in input_gradient_parts'
// blocks of 32 columns). Item (f, j), f in 0 ... features.
__kernel void input_gradient_sum(const int n, const int features, const int parts, const real alpha,
                                 __global const real* scratch, __global const real* w,
                                 __global real* dw, __global real* db) {
    const int f = get_global_id(0), j = get_global_id(1);
    if (f > features || j >= n) return;
    const size_t blocks = (n + 31) / 32, at = ((size_t)(j / 32) * (features + 1) + f) * 32 + j % 32;
    real sum = 0;
    for (int p = 0; p < parts; ++p) sum += scratch[(size_t)p * blocks * (features + 1) * 32 + at];
    if (f == features) db[j] = sum;
    else dw[(size_t)j * features + f] = sum + alpha * w[(size_t)j * features + f];
}
