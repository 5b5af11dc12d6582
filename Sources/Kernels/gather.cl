// gather_batch: build one batch on the device from the resident byte data set.
//
//   x[r, f] = pixels[order[start + r], f] / 255      x [m, features]
//   y[r, c] = (labels[order[start + r]] == c)         y [m, classes]  (one-hot)
//
// pixels [count, features] uchar, labels [count] uchar, order [>= start + m] int.
// Work item (f, r) for f < max(features, classes), r < m; the host checked that every index in
// order is below count. Global sizes are rounded up, so each item guards its range.
__kernel void gather_batch(const int m, const int features, const int classes, const int start,
                           __global const uchar* pixels, __global const uchar* labels,
                           __global const int* order,
                           __global real* x, __global real* y) {
    const int f = get_global_id(0);
    const int r = get_global_id(1);
    if (r >= m) return;
    const int example = order[start + r];
    if (f < features) x[r * features + f] = (real)pixels[(size_t)example * features + f] / (real)255;
    if (f < classes) y[r * classes + f] = labels[example] == f ? (real)1 : (real)0;
}
