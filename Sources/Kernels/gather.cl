// gather_batch: build one batch on the device from the resident byte data set.
//
//   x[r, f] = pixels[order[start + r], f] / 255      x [m, features]
//   y[r, c] = (labels[order[start + r]] == c)         y [m, classes]  (one-hot)
//
// pixels [count, features] uchar, labels [count] uchar, order [>= start + m] int.
// Work item (g, r) writes x[r, 16g .. 16g+15] (16 pixels at a time as vectors) and, for
// g < classes, y[r, g]. The host checked that every index in order is below count. Global sizes
// are rounded up, so each item guards its range.
__kernel void gather_batch(const int m, const int features, const int classes, const int start,
                           __global const uchar* pixels, __global const uchar* labels,
                           __global const int* order,
                           __global real* x, __global real* y) {
    const int g = get_global_id(0);
    const int r = get_global_id(1);
    if (r >= m) return;
    const int example = order[start + r];
    const int f0 = g * 16;
    if (g < classes) y[r * classes + g] = labels[example] == g ? (real)1 : (real)0;
    if (f0 >= features) return;
    __global const uchar* source = pixels + (size_t)example * features;
    __global real* row = x + (size_t)r * features;
    if (f0 + 16 <= features) {
        // Division, not multiplication by 1/255: the reference's rounding.
        const real8 low = convert_real8(vload8(0, source + f0)) / (real)255;
        const real8 high = convert_real8(vload8(0, source + f0 + 8)) / (real)255;
        vstore8(low, 0, row + f0);
        vstore8(high, 0, row + f0 + 8);
    } else {
        for (int f = f0; f < features; ++f) row[f] = (real)source[f] / (real)255;
    }
}
