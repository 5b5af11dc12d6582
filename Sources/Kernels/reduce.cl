// Sums, and the work-group sums the other kernels share (this file comes before theirs).

// The sum of `value` over a work-group of `size` items (a power of two), added as a tree in
// local memory (a fixed order: reproducible). The result is returned to item 0 only; every item
// must call it (it has barriers). scratch [size] local; it may be reused by the next call.
static inline real group_sum(const real value, __local real* scratch, const int size) {
    const int lid = get_local_id(0);
    scratch[lid] = value;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int width = size / 2; width > 0; width /= 2) {
        if (lid < width) scratch[lid] += scratch[lid + width];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    return lid == 0 ? scratch[0] : (real)0;
}

// Halves `t` [2 · width] as a tree, t[i] = op(t[i], t[i + width]), until t[0] holds the result:
// for a vector's lanes the same order as (v.lo op v.hi), then its halves again. Written on a
// private array rather than with .lo / .hi: the compilers turn it into the same shuffles, and
// Oclgrind's uninitialized-value checker misreads chained vector halves (docs/PORTABILITY.md).
#define HALVING_TREE(t, width, op) \
    for (int w_ = (width); w_ >= 1; w_ /= 2) for (int i_ = 0; i_ < w_; ++i_) t[i_] = op(t[i_], t[i_ + w_])
static inline real add_reals(const real a, const real b) { return a + b; }

// The sum of a vector's 16 lanes, as a tree.
static inline real sum16(const real16 v) {
    real t[16];
    vstore16(v, 0, t);
    HALVING_TREE(t, 8, add_reals);
    return t[0];
}

// column_sums: s[0, j] = Σ_i x[i, j]   x [rows, cols] -> s [1, cols]. One item per column.
__kernel void column_sums(const int rows, const int cols, __global const real* x, __global real* s) {
    const int j = get_global_id(0);
    if (j >= cols) return;
    real sum = 0;
    for (int i = 0; i < rows; ++i) sum += x[(size_t)i * cols + j];
    s[j] = sum;
}

// sum_of_squares: out[index] = Σ x²   x [n]; other elements of out untouched.
// One work-group of REDUCE_WG items (a power of two) with a fixed-order tree reduction. Each
// item takes every REDUCE_WG-th run of 16 elements as one vector, because a CPU device runs an
// element-wise loop scalar (docs/PERFORMANCE.md, "figures behind the code"), then the ragged end.
__kernel void sum_of_squares(const int n, const int index, __global const real* x, __global real* out) {
    __local real partial[REDUCE_WG];
    const int lid = get_local_id(0);
    real16 squares = 0;
    for (int v = lid; v < n / 16; v += REDUCE_WG) {
        const real16 x16 = vload16(v, x);
        squares += x16 * x16;
    }
    real sum = sum16(squares);
    for (int i = n / 16 * 16 + lid; i < n; i += REDUCE_WG) sum += x[i] * x[i];
    sum = group_sum(sum, partial, REDUCE_WG);
    if (lid == 0) out[index] = sum;
}
