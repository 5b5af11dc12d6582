// Softmax over each row and the cross-entropy pieces that use it.
//
// softmax_rows: p[i, :] = exp(z[i, :] - max_j z[i, j]) / Σ_j exp(z[i, j] - max_j z[i, j])
//   z, p [rows, cols]. One work item per row (cols is small: the number of classes).
//   Subtracting the row's maximum keeps exp from overflowing for large logits.
__kernel void softmax_rows(const int rows, const int cols, __global const real* z, __global real* p) {
    const int i = get_global_id(0);
    if (i >= rows) return;
    __global const real* zi = z + (size_t)i * cols;
    __global real* pi = p + (size_t)i * cols;
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

// softmax_xent_backward: dz = (p - y) / m, the gradient of the mean cross-entropy with respect
// to the logits (the softmax Jacobian is never formed).   p, y, dz [n = m · classes]
__kernel void softmax_xent_backward(const int n, const real inverse_m, __global const real* p,
                                    __global const real* y, __global real* dz) {
    const int i = get_global_id(0);
    if (i >= n) return;
    dz[i] = (p[i] - y[i]) * inverse_m;
}

// Index of the largest of n values, the first on ties (numpy's argmax).
inline int argmax_row(__global const real* v, const int n) {
    int best = 0;
    for (int j = 1; j < n; ++j) if (v[j] > v[best]) best = j;
    return best;
}

// cross_entropy_stats: stats[0] = Σ_i -log p[i, label_i], stats[1] = #{i : argmax p[i,:] == label_i}
// with label_i = argmax y[i, :].   p, y [rows, cols]; stats [1, k >= 2], other elements untouched.
// One work-group of REDUCE_WG items (a power of two): each item walks rows lid, lid + WG, ...,
// then a tree reduction in local memory, so the order of additions is fixed (reproducible).
// A probability below REAL_MIN (softmax underflow) counts as REAL_MIN; NaN passes through.
__kernel void cross_entropy_stats(const int rows, const int cols, __global const real* p,
                                  __global const real* y, __global real* stats) {
    __local real loss[REDUCE_WG];
    __local real hits[REDUCE_WG];
    const int lid = get_local_id(0);
    real my_loss = 0, my_hits = 0;
    for (int i = lid; i < rows; i += REDUCE_WG) {
        __global const real* pi = p + (size_t)i * cols;
        const int label = argmax_row(y + (size_t)i * cols, cols);
        const real q = pi[label];
        my_loss -= log(q < REAL_MIN ? REAL_MIN : q);
        if (argmax_row(pi, cols) == label) my_hits += 1;
    }
    loss[lid] = my_loss;
    hits[lid] = my_hits;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int width = REDUCE_WG / 2; width > 0; width /= 2) {
        if (lid < width) {
            loss[lid] += loss[lid + width];
            hits[lid] += hits[lid + width];
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (lid == 0) {
        stats[0] = loss[0];
        stats[1] = hits[0];
    }
}
