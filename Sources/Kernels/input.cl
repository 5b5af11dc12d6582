// The first layer's two products, read from the resident example set (never from a batch of
// floats): the examples' non-zero pixels as compressed sparse rows, or, for the dense gradient,
// their bytes.
//
//   x[r, f] = scale[pixel f of example order[start + r]]     (scale[v] = v / 255, from the host)
//   input_product:   z = x · wᵀ     given wt = wᵀ [features, n], z [m, n]
//   input_gradient:  dw = dzᵀ · x   dz [m, n], dw [n, features]
//
// offsets [count + 1] int, columns [non-zeros] ushort, values [non-zeros] uchar: example e's
// non-zero pixels are columns[offsets[e] .. offsets[e+1]-1] with those values. scale [256] is
// computed on the host so that every backend rounds v / 255 the same way. The host checked
// that every index in order is below count. Global sizes are rounded up: items guard their range.

// input_product: item (g, r) computes z[r, 32g .. 32g+31]: two 16-wide vectors with two pixels
// in flight where 32 columns fit, else 16-wide blocks, then one column at a time.
__kernel void input_product(const int m, const int n, const int start,
                            __global const int* offsets, __global const ushort* columns,
                            __global const uchar* values, __global const int* order,
                            __global const real* scale, __global const real* wt, __global real* z) {
    const int j0 = get_global_id(0) * 32, r = get_global_id(1);
    if (r >= m || j0 >= n) return;
    const int example = order[start + r];
    const int begin = offsets[example], end = offsets[example + 1];
    __global real* out = z + (size_t)r * n;
    if (j0 + 32 <= n) {
        real16 a0 = 0, a1 = 0, b0 = 0, b1 = 0;
        int q = begin;
        for (; q + 2 <= end; q += 2) {
            __global const real* w0 = wt + (size_t)columns[q] * n + j0;
            __global const real* w1 = wt + (size_t)columns[q + 1] * n + j0;
            const real s0 = scale[values[q]], s1 = scale[values[q + 1]];
            a0 += s0 * vload16(0, w0); a1 += s0 * vload16(1, w0);
            b0 += s1 * vload16(0, w1); b1 += s1 * vload16(1, w1);
        }
        if (q < end) {
            __global const real* w0 = wt + (size_t)columns[q] * n + j0;
            const real s0 = scale[values[q]];
            a0 += s0 * vload16(0, w0); a1 += s0 * vload16(1, w0);
        }
        vstore16(a0 + b0, 0, out + j0);
        vstore16(a1 + b1, 1, out + j0);
        return;
    }
    int j = j0;
    for (; j + 16 <= n; j += 16) {
        real16 acc = 0;
        for (int q = begin; q < end; ++q) acc += scale[values[q]] * vload16(0, wt + (size_t)columns[q] * n + j);
        vstore16(acc, 0, out + j);
    }
    for (; j < n; ++j) {
        real acc = 0;
        for (int q = begin; q < end; ++q) acc += scale[values[q]] * wt[(size_t)columns[q] * n + j];
        out[j] = acc;
    }
}

// input_gradient_parts (CPU devices): the rows are split into `parts` parts; item (g, p) sums
// part p's rows into its own slice of scratch, columns 32g .. 32g+31:
//   scratch[p, f, j] = Σ_{r in part p} x[r, f] · dz[r, j]       scratch [parts, features, n]
// walking each row's non-zero pixels only. No two items write the same element, so no atomics;
// input_gradient_sum then adds the parts in a fixed order.
__kernel void input_gradient_parts(const int m, const int n, const int features, const int start, const int parts,
                                   __global const int* offsets, __global const ushort* columns,
                                   __global const uchar* values, __global const int* order,
                                   __global const real* scale, __global const real* dz, __global real* scratch) {
    const int j0 = get_global_id(0) * 32, p = get_global_id(1);
    if (p >= parts || j0 >= n) return;
    __global real* part = scratch + (size_t)p * features * n;
    const int width = min(32, n - j0);
    for (int f = 0; f < features; ++f)
        for (int j = 0; j < width; ++j) part[(size_t)f * n + j0 + j] = 0;
    const int first = p * m / parts, last = (p + 1) * m / parts;
    for (int r = first; r < last; ++r) {
        const int example = order[start + r];
        const int begin = offsets[example], end = offsets[example + 1];
        __global const real* d = dz + (size_t)r * n + j0;
        if (width == 32) {
            const real16 d0 = vload16(0, d), d1 = vload16(1, d);
            for (int q = begin; q < end; ++q) {
                __global real* t = part + (size_t)columns[q] * n + j0;
                const real s = scale[values[q]];
                vstore16(vload16(0, t) + s * d0, 0, t);
                vstore16(vload16(1, t) + s * d1, 1, t);
            }
        } else {
            for (int q = begin; q < end; ++q) {
                __global real* t = part + (size_t)columns[q] * n + j0;
                const real s = scale[values[q]];
                for (int j = 0; j < width; ++j) t[j] += s * d[j];
            }
        }
    }
}

// input_gradient_sum: dw[j, f] = Σ_p scratch[p, f, j], parts added in order. Item (f, j).
__kernel void input_gradient_sum(const int n, const int features, const int parts,
                                 __global const real* scratch, __global real* dw) {
    const int f = get_global_id(0), j = get_global_id(1);
    if (f >= features || j >= n) return;
    real sum = 0;
    for (int p = 0; p < parts; ++p) sum += scratch[((size_t)p * features + f) * n + j];
    dw[(size_t)j * features + f] = sum;
}

// input_gradient_dense (GPUs): item (f, j) computes dw[j, f] = Σ_r dz[r, j] · x[r, f] from the
// bytes, pixels [count, features] uchar; neighbouring items read neighbouring bytes of a row.
__kernel void input_gradient_dense(const int m, const int n, const int features, const int start,
                                   __global const uchar* pixels, __global const int* order,
                                   __global const real* scale, __global const real* dz, __global real* dw) {
    const int f = get_global_id(0), j = get_global_id(1);
    if (f >= features || j >= n) return;
    real sum = 0;
    for (int r = 0; r < m; ++r) sum += dz[(size_t)r * n + j] * scale[pixels[(size_t)order[start + r] * features + f]];
    dw[(size_t)j * features + f] = sum;
}
