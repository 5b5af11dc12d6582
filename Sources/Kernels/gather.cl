// gather_batch: build one batch on the device from the resident example set.
//
//   x[r, f] = scale[pixel f of example order[start + r]]   x [m, features]
//   y[r, c] = (labels[order[start + r]] == c)              y [m, classes]  (one-hot)
//
// The pixels are the set's compressed sparse rows (offsets, columns, values: see input.cl);
// scale [256] holds v / 255 as the host rounds it, so both backends see the same inputs.
// labels [count] uchar, order [>= start + m] int. Item r writes row r of y and, unless has_x is
// 0 (only the labels are wanted; the first layer reads the pixels itself), row r of x: zeros,
// then the non-zero pixels. The host checked that every index in order is below count.
__kernel void gather_batch(const int m, const int features, const int classes, const int start, const int has_x,
                           __global const int* offsets, __global const ushort* columns,
                           __global const uchar* values, __global const uchar* labels,
                           __global const int* order, __global const real* scale,
                           __global real* x, __global real* y) {
    const int r = get_global_id(0);
    if (r >= m) return;
    const int example = order[start + r];
    for (int c = 0; c < classes; ++c) y[r * classes + c] = labels[example] == c ? (real)1 : (real)0;
    if (!has_x) return;
    __global real* row = x + (size_t)r * features;
    for (int f = 0; f < features; ++f) row[f] = 0;
    for (int q = offsets[example]; q < offsets[example + 1]; ++q) row[columns[q]] = scale[values[q]];
}

// gather_rows: a batch from a data set kept as a matrix (float inputs, or one-hot targets).
//
//   rows[r, c] = table[order[start + r], c]   table [count, n], rows [m, n]
//
// Item (c, r) copies one element, so neighbouring items read neighbouring addresses. The host
// checked that every index in order is below count.
__kernel void gather_rows(const int m, const int n, const int start, __global const int* order,
                          __global const real* table, __global real* rows) {
    const int c = get_global_id(0), r = get_global_id(1);
    if (c >= n || r >= m) return;
    rows[(size_t)r * n + c] = table[(size_t)order[start + r] * n + c];
}
