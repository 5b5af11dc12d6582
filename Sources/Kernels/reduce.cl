// Sums.

// column_sums: s[0, j] = Σ_i x[i, j]   x [rows, cols] -> s [1, cols]. One item per column.
__kernel void column_sums(const int rows, const int cols, __global const real* x, __global real* s) {
    const int j = get_global_id(0);
    if (j >= cols) return;
    real sum = 0;
    for (int i = 0; i < rows; ++i) sum += x[(size_t)i * cols + j];
    s[j] = sum;
}

// row_sums: s[i, 0] = Σ_j x[i, j]   x [rows, cols] -> s [rows, 1]. One item per row.
__kernel void row_sums(const int rows, const int cols, __global const real* x, __global real* s) {
    const int i = get_global_id(0);
    if (i >= rows) return;
    real sum = 0;
    for (int j = 0; j < cols; ++j) sum += x[(size_t)i * cols + j];
    s[i] = sum;
}

// sum_of_squares: out[index] = Σ x²   x [n]; other elements of out untouched.
// One work-group of REDUCE_WG items (a power of two) with a fixed-order tree reduction. Each
// item takes every REDUCE_WG-th run of 16 elements as one vector (a CPU device ran the
// element-wise loop scalar: PoCL, 37 µs for the 26,000 weights), then the ragged end.
__kernel void sum_of_squares(const int n, const int index, __global const real* x, __global real* out) {
    __local real partial[REDUCE_WG];
    const int lid = get_local_id(0);
    real16 squares = 0;
    for (int v = lid; v < n / 16; v += REDUCE_WG) {
        const real16 x16 = vload16(v, x);
        squares += x16 * x16;
    }
    const real8 s8 = squares.lo + squares.hi;
    const real4 s4 = s8.lo + s8.hi;
    const real2 s2 = s4.lo + s4.hi;
    real sum = s2.lo + s2.hi;
    for (int i = n / 16 * 16 + lid; i < n; i += REDUCE_WG) sum += x[i] * x[i];
    partial[lid] = sum;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int width = REDUCE_WG / 2; width > 0; width /= 2) {
        if (lid < width) partial[lid] += partial[lid + width];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (lid == 0) out[index] = partial[0];
}
