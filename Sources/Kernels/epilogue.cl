// What a product kernel does to each result before storing it: the fused layer ops (a layer's
// bias and ReLU, the L2 term of a weight gradient, ReLU's gradient) ride on the product
// instead of costing a launch and a pass over memory each. The flags (EPI_*) are the host's
// `Epilogue` option set, defined in the prelude; v and D are the op's extra operands, unused
// ones may be any buffer.
//
//   EPI_BIAS   c += v[j]                       v: bias [N]
//   EPI_ADD    c += alpha · D[i, j]            D [M, N] (the L2 term: alpha = λ/m, D = w)
//   EPI_RELU   c = max(0, c)
//   EPI_MASK   c = D[i, j] > 0 ? c : 0         D [M, N] (ReLU's gradient: D = the layer's output)
//   EPI_ROW_SUMS  v[i] = Σ_p op(A)[i, p]       written by matmul_rows itself (see matmul.cl)
// The epilogue of one element C[i, j] of an [M, N] result.
static inline real epilogue(real c, const int flags, const int i, const int j, const int N, const real alpha,
                            __global const real* D, __global const real* v) {
    const size_t at = (size_t)i * N + j;
    if (flags & EPI_BIAS) c += v[j];
    if (flags & EPI_ADD) c += alpha * D[at];
    if (flags & EPI_RELU) c = c > 0 ? c : (real)0;
    if (flags & EPI_MASK) c = D[at] > 0 ? c : (real)0;
    return c;
}

// The same for the W elements C[i, j .. j+W-1] in one vector: epilogue8 for matmul_rows,
// epilogue16 for input_product (whole 16-wide vectors: taking a 16-wide vector's .hi half,
// Oclgrind's uninitialized-value checker loses track of it).
#define DEFINE_VECTOR_EPILOGUE(W) \
static inline real##W epilogue##W(real##W c, const int flags, const int i, const int j, const int N, const real alpha, \
                                  __global const real* D, __global const real* v) { \
    const size_t at = (size_t)i * N + j; \
    if (flags & EPI_BIAS) c += vload##W(0, v + j); \
    if (flags & EPI_ADD) c += alpha * vload##W(0, D + at); \
    if (flags & EPI_RELU) c = select((real##W)0, c, c > (real##W)0); \
    if (flags & EPI_MASK) c = select((real##W)0, c, vload##W(0, D + at) > (real##W)0); \
    return c; \
}
DEFINE_VECTOR_EPILOGUE(8)
DEFINE_VECTOR_EPILOGUE(16)

// The lane reductions of the *_lanes kernels (work-groups of LANE_COLUMNS x LANES items):
// returns, to the items of lane 0, their column's sum over the lanes, added in lane order
// (reproducible). partial [LANES * LANE_COLUMNS] local. Every item of the group must call it
// (it has a barrier).
static inline real sum_lanes(real acc, __local real* partial) {
    const int column = get_local_id(0), lane = get_local_id(1);
    partial[lane * LANE_COLUMNS + column] = acc;
    barrier(CLK_LOCAL_MEM_FENCE);
    if (lane != 0) return 0;
    for (int l = 1; l < LANES; ++l) acc += partial[l * LANE_COLUMNS + column];
    return acc;
}

// Stores a weight-gradient kernel's sum for column c of row j: dw[j, c] = sum + alpha · w[j, c].
// w, dw [n, k]
static inline void store_weight_gradient(const real sum, const int c, const int j, const int k, const real alpha,
                                         __global const real* w, __global real* dw) {
    dw[(size_t)j * k + c] = sum + alpha * w[(size_t)j * k + c];
}

// Whether this work-group is a gradient lanes kernel's bias group: the last along dimension 0,
// after the column groups (the host launches one more group than the columns need).
static inline bool is_bias_group(void) { return get_group_id(0) == get_num_groups(0) - 1; }

// The bias gradient db[j] = Σ_r dz[r, j] (dz [m, n]) by one work-group of a lanes kernel, lane l
// summing rows l, l + LANES, ...; column 0 stores it. The lanes kernels give the bias a
// work-group of its own, after their column groups, so that all of its items take the same
// branch: as a constant-1 column among the others' (a select between 1 and the column's
// values), Mesa's llvmpipe (22.3) computed it wrongly, all zeros or scaled.
static inline void bias_gradient_lanes(const int m, const int n, const int j, __global const real* dz, __global real* db,
                                       __local real* partial) {
    real acc = 0;
    for (int r = get_local_id(1); r < m; r += LANES) acc += dz[(size_t)r * n + j];
    acc = sum_lanes(acc, partial);
    if (get_local_id(0) == 0 && get_local_id(1) == 0) db[j] = acc;
}
