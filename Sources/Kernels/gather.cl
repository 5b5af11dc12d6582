// gather_batch: build one batch on the device from the resident byte data set.
//
//   x[r, f] = scale[pixels[order[start + r], f]]     x [m, features]
//   y[r, c] = (labels[order[start + r]] == c)         y [m, classes]  (one-hot)
//
// pixels [count, features] uchar, labels [count] uchar, order [>= start + m] int; scale [256]
// holds v / 255 as the host rounds it (see input.cl), so both backends see the same inputs.
// Work item (g, r) writes x[r, 16g .. 16g+15] unless has_x is 0 (then x is not touched: only
// the labels are wanted), and, for g < classes, y[r, g]. The host checked that every index in
// order is below count. Global sizes are rounded up, so each item guards its range.
__kernel void gather_batch(const int m, const int features, const int classes, const int start, const int has_x,
                           __global const uchar* pixels, __global const uchar* labels,
                           __global const int* order, __global const real* scale,
                           __global real* x, __global real* y) {
    const int g = get_global_id(0);
    const int r = get_global_id(1);
    if (r >= m) return;
    const int example = order[start + r];
    const int f0 = g * 16;
    if (g < classes) y[r * classes + g] = labels[example] == g ? (real)1 : (real)0;
    if (!has_x || f0 >= features) return;
    __global const uchar* source = pixels + (size_t)example * features;
    __global real* row = x + (size_t)r * features;
    const int end = min(f0 + 16, features);
    for (int f = f0; f < end; ++f) row[f] = scale[source[f]];
}
