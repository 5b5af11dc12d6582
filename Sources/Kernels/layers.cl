// layers_after_first: every layer after the first, one batch row per work-group, in one launch
// (a row's later layers read no other row; the separate ops cost a launch each, seven a step).
//
//   a[l] = max(0, a[l-1] · w[l]ᵀ + b[l])       0 < l < L-1
//   logits = a[L-2] · w[L-1]ᵀ + b[L-1];  p = softmax(logits)
//   has_dz:  dz[L-1] = (p - y) · inverse_m;  dz[l-1] = (dz[l] · w[l]) ⊙ 1[a[l-1] > 0]   l = L-1 ... 1
//   row_stats[r, 0] = -log p[r, label_r],  row_stats[r, 1] = (argmax p[r, :] == label_r)
//   row_stats[r, 2] = Σ W[i]² over row r's slice of the first weight_count elements of W
//   (row_stats_sum then adds the rows up: the batch's loss, hits and the L2 penalty's sum)
//
// layout [L, 8] int, per layer l: n_in, n_out, and the offsets in elements of w[l] in W, b[l] in
// Bs, its input a[l-1] in A, its output a[l] in A (unused for the last layer: logits), dz[l]
// in DZ, dz[l-1] in DZ. Row r of a tensor [m, n] at offset o starts at o + r·n.
// Work-groups of ROW_WG items (the host's choice), one per row; items stride over a layer's
// units, and a barrier separates the layers. row_stats [m, STATS_WIDTH].
__kernel void layers_after_first(const int layers, const int m, const int has_dz, const real inverse_m,
                                 const int weight_count, __global const int* layout, __global const real* W, __global const real* Bs,
                                 __global real* A, __global real* logits, __global const real* y, __global real* p,
                                 __global real* DZ, __global real* row_stats) {
    __local real scratch[ROW_WG];
    const int r = get_group_id(0), lid = get_local_id(0);
    for (int l = 1; l < layers; ++l) {
        __global const int* d = layout + 8 * l;
        const int n_in = d[0], n_out = d[1];
        __global const real* w = W + d[2];
        __global const real* x = A + d[4] + (size_t)r * n_in;
        __global real* out = (l == layers - 1 ? logits : A + d[5]) + (size_t)r * n_out;
        for (int j = lid; j < n_out; j += ROW_WG) {
            real s = 0;
            for (int k = 0; k < n_in; ++k) s += x[k] * w[(size_t)j * n_in + k];
            s += Bs[d[3] + j];
            out[j] = l < layers - 1 && !(s > 0) ? (real)0 : s;   // ReLU as relu(): NaN becomes 0
        }
        barrier(CLK_GLOBAL_MEM_FENCE);
    }
    __global const int* top = layout + 8 * (layers - 1);
    const int classes = top[1];
    __global const real* zr = logits + (size_t)r * classes;
    __global const real* yr = y + (size_t)r * classes;
    __global real* pr = p + (size_t)r * classes;
    __global real* dzr = DZ + top[6] + (size_t)r * classes;
    // softmax.cl's row, by one item: a row has few classes (the host sends wider layers to the
    // separate ops), and one definition of softmax serves every kernel that takes whole rows.
    if (lid == 0) softmax_row(zr, pr, classes);
    barrier(CLK_GLOBAL_MEM_FENCE);
    if (has_dz) for (int j = lid; j < classes; j += ROW_WG) dzr[j] = (pr[j] - yr[j]) * inverse_m;
    barrier(CLK_GLOBAL_MEM_FENCE);
    if (lid == 0) {
        real loss = 0, hits = 0;
        add_row_stats(pr, yr, classes, &loss, &hits);
        row_stats[STATS_WIDTH * r] = loss;
        row_stats[STATS_WIDTH * r + 1] = hits;
    }
    // This row's slice of the weights for Σ w²: every group a share, so no one group walks them all.
    const int slice = (weight_count + m - 1) / m;
    real square = 0;
    for (int i = r * slice + lid; i < min((r + 1) * slice, weight_count); i += ROW_WG) square += W[i] * W[i];
    square = group_sum(square, scratch, ROW_WG);
    if (lid == 0) row_stats[STATS_WIDTH * r + 2] = square;
    for (int l = has_dz ? layers - 1 : 0; l >= 1; --l) {
        __global const int* d = layout + 8 * l;
        const int n_in = d[0], n_out = d[1];
        __global const real* w = W + d[2];
        __global const real* below = A + d[4] + (size_t)r * n_in;
        __global const real* dz = DZ + d[6] + (size_t)r * n_out;
        __global real* dz_below = DZ + d[7] + (size_t)r * n_in;
        for (int k = lid; k < n_in; k += ROW_WG) {
            real s = 0;
            for (int j = 0; j < n_out; ++j) s += dz[j] * w[(size_t)j * n_in + k];
            dz_below[k] = below[k] > 0 ? s : (real)0;
        }
        barrier(CLK_GLOBAL_MEM_FENCE);
    }
}

// row_stats_sum: stats[at] = Σ_r row_stats[r, 0], stats[at + 1] = Σ_r row_stats[r, 1] and, when
// has_norms, stats[at + 2] = Σ_r row_stats[r, 2]: layers_after_first's rows added up, in a
// fixed order, by one work-group of ROW_WG items. A launch of its own, because OpenCL promises
// no work-group sees another's writes before the launch that made them has finished.
__kernel void row_stats_sum(const int m, const int at, const int has_norms, __global const real* row_stats,
                            __global real* stats) {
    __local real scratch[ROW_WG];
    const int lid = get_local_id(0);
    real loss = 0, hits = 0, square = 0;
    for (int i = lid; i < m; i += ROW_WG) {
        loss += row_stats[STATS_WIDTH * i];
        hits += row_stats[STATS_WIDTH * i + 1];
        square += row_stats[STATS_WIDTH * i + 2];
    }
    store_stats(loss, hits, scratch, stats, at, ROW_WG);
    square = group_sum(square, scratch, ROW_WG);
    if (lid == 0 && has_norms) stats[at + 2] = square;
}
