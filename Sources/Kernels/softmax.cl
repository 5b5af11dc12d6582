// Softmax over each row and the cross-entropy pieces that use it.
//
// softmax_rows: p[i, :] = exp(z[i, :] - max_j z[i, j]) / Σ_j exp(z[i, j] - max_j z[i, j])
//   z, p [rows, cols]. One work item per row (cols is small: the number of classes).
//   Subtracting the row's maximum keeps exp from overflowing for large logits.
static inline void softmax_row(__global const real* zi, __global real* pi, const int cols) {
    real largest = zi[0];
    for (int j = 1; j < cols; ++j) largest = fmax(largest, zi[j]);
    real sum = 0;
    for (int j = 0; j < cols; ++j) {
        const real e = exp(zi[j] - largest);
        pi[j] = e;
        sum += e;
    }
    for (int j = 0; j < cols; ++j) pi[j] /= sum;
}

__kernel void softmax_rows(const int rows, const int cols, __global const real* z, __global real* p) {
    const int i = get_global_id(0);
    if (i >= rows) return;
    softmax_row(z + (size_t)i * cols, p + (size_t)i * cols, cols);
}

// softmax_xent_backward: dz = (p - y) / m, the gradient of the mean cross-entropy with respect
// to the logits (the softmax Jacobian is never formed).   p, y, dz [n = m · classes]
__kernel void softmax_xent_backward(const int n, const real inverse_m, __global const real* p,
                                    __global const real* y, __global real* dz) {
    const int i = get_global_id(0);
    if (i >= n) return;
    dz[i] = (p[i] - y[i]) * inverse_m;
}

// Index of the largest of n values, the first on ties (numpy's argmax).
static inline int argmax_row(__global const real* v, const int n) {
    int best = 0;
    for (int j = 1; j < n; ++j) if (v[j] > v[best]) best = j;
    return best;
}

// Row i's cross-entropy -log p[i, label] and whether argmax p[i, :] is the label, the label
// being argmax y[i, :]. A probability below REAL_MIN (softmax underflow) counts as REAL_MIN;
// NaN passes through.
static inline void add_row_stats(__global const real* pi, __global const real* yi, const int cols,
                                 real* loss, real* hits) {
    const int label = argmax_row(yi, cols);
    const real q = pi[label];
    *loss -= log(q < REAL_MIN ? REAL_MIN : q);
    if (argmax_row(pi, cols) == label) *hits += 1;
}

// Adds the work-group's loss and hits (see group_sum) and stores them at stats[at] and
// stats[at + 1]. size: the group's size, a power of two; scratch [size] local.
static inline void store_stats(real loss, real hits, __local real* scratch, __global real* stats, const int at,
                               const int size) {
    loss = group_sum(loss, scratch, size);
    hits = group_sum(hits, scratch, size);
    if (get_local_id(0) == 0) {
        stats[at] = loss;
        stats[at + 1] = hits;
    }
}

// cross_entropy_stats: stats[at] = Σ_i -log p[i, label_i], stats[at + 1] = #{i : argmax p[i,:] == label_i}
// with label_i = argmax y[i, :].   p, y [rows, cols]; other elements of stats untouched.
// One work-group of REDUCE_WG items (a power of two): each item walks rows lid, lid + WG, ...
__kernel void cross_entropy_stats(const int rows, const int cols, const int at, __global const real* p,
                                  __global const real* y, __global real* stats) {
    __local real scratch[REDUCE_WG];
    real loss = 0, hits = 0;
    for (int i = get_local_id(0); i < rows; i += REDUCE_WG)
        add_row_stats(p + (size_t)i * cols, y + (size_t)i * cols, cols, &loss, &hits);
    store_stats(loss, hits, scratch, stats, at, REDUCE_WG);
}

// One row of softmax_cross_entropy for up to SMALL_ROW classes (MNIST's 10), in registers: the
// row's logits and targets are loaded once, with all loads in flight together, where the
// general path's loops read global memory one dependent step at a time (one work-group walks
// the whole batch, so its latency is the kernel's time). The same formulas, in the same order.
#define SMALL_ROW 16
static inline void softmax_xent_small_row(__global const real* zi, __global const real* yi, __global real* pi,
                                          __global real* dzi, const int cols, const real inverse_m,
                                          real* loss, real* hits) {
    // Loops of constant length with the row's length as a guard, so that the compiler unrolls
    // them and keeps the arrays in registers; the exponentials as one 16-wide vector exp, since
    // a CPU device runs a scalar exp per element far slower (docs/PERFORMANCE.md, "figures
    // behind the code").
    // Lanes past the row hold -infinity, whose exponential is 0.
    real zr[SMALL_ROW], yr[SMALL_ROW];
    #pragma unroll
    for (int j = 0; j < SMALL_ROW; ++j) {
        zr[j] = j < cols ? zi[j] : -INFINITY;
        yr[j] = j < cols ? yi[j] : (real)0;
    }
    real m[SMALL_ROW];
    #pragma unroll
    for (int j = 0; j < SMALL_ROW; ++j) m[j] = zr[j];
    HALVING_TREE(m, SMALL_ROW / 2, fmax);
    const real largest = m[0];
    const real16 e16 = exp(vload16(0, zr) - largest);
    vstore16(e16, 0, zr);
    const real sum = sum16(e16);
    int label = 0, predicted = 0;
    real best_y = yr[0], best_p = zr[0] / sum;
    #pragma unroll
    for (int j = 0; j < SMALL_ROW; ++j) {
        if (j < cols) {
            zr[j] /= sum;
            pi[j] = zr[j];
            if (yr[j] > best_y) { best_y = yr[j]; label = j; }
            if (zr[j] > best_p) { best_p = zr[j]; predicted = j; }
            if (dzi) dzi[j] = (zr[j] - yr[j]) * inverse_m;
        }
    }
    const real q = label == predicted ? best_p : pi[label];
    *loss -= log(q < REAL_MIN ? REAL_MIN : q);
    if (predicted == label) *hits += 1;
}

// softmax_cross_entropy: the output layer's whole tail in one launch, for logits z [rows, cols]
// and one-hot targets y: p = softmax(z) (as softmax_rows), the stats of cross_entropy_stats at
// `at`, and when has_dz the gradient dz = (p - y) · inverse_m (as softmax_xent_backward).
// One work-group of REDUCE_WG items, rows lid, lid + WG, ...
__kernel void softmax_cross_entropy(const int rows, const int cols, const int at, const int has_dz,
                                    const real inverse_m, __global const real* z, __global const real* y,
                                    __global real* p, __global real* dz, __global real* stats) {
    __local real scratch[REDUCE_WG];
    real loss = 0, hits = 0;
    for (int i = get_local_id(0); i < rows; i += REDUCE_WG) {
        const size_t row = (size_t)i * cols;
        if (cols <= SMALL_ROW) {
            softmax_xent_small_row(z + row, y + row, p + row, has_dz ? dz + row : 0, cols, inverse_m, &loss, &hits);
            continue;
        }
        softmax_row(z + row, p + row, cols);
        add_row_stats(p + row, y + row, cols, &loss, &hits);
        if (has_dz) for (int j = 0; j < cols; ++j) dz[row + j] = (p[row + j] - y[row + j]) * inverse_m;
    }
    store_stats(loss, hits, scratch, stats, at, REDUCE_WG);
}
