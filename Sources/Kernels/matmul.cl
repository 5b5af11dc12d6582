// matmul: C = op(A) · op(B), tiled through local memory.
//
//   C[i, j] = Σ_p op(A)[i, p] · op(B)[p, j]        op(A) [M, K], op(B) [K, N], C [M, N]
//
// A is stored [M, K], or [K, M] when trans_a; B is stored [K, N], or [N, K] when trans_b; all
// row-major. Work-groups are TILE x TILE (TILE is defined by the host, 16 where the device
// allows 256 work items); item (j, i) computes C[i, j]. The global size is M and N rounded up
// to TILE: items outside C still load zeros and reach every barrier, and only store when inside.
__kernel void matmul(const int M, const int N, const int K, const int trans_a, const int trans_b,
                     __global const real* A, __global const real* B, __global real* C) {
    __local real a_tile[TILE][TILE];
    __local real b_tile[TILE][TILE];
    const int tx = get_local_id(0), ty = get_local_id(1);
    const int j = get_group_id(0) * TILE + tx;
    const int i = get_group_id(1) * TILE + ty;
    real acc = 0;
    for (int t = 0; t < K; t += TILE) {
        const int ka = t + tx, kb = t + ty;
        a_tile[ty][tx] = (i < M && ka < K) ? (trans_a ? A[ka * M + i] : A[i * K + ka]) : (real)0;
        b_tile[ty][tx] = (kb < K && j < N) ? (trans_b ? B[j * K + kb] : B[kb * N + j]) : (real)0;
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int p = 0; p < TILE; ++p) acc += a_tile[ty][p] * b_tile[p][tx];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (i < M && j < N) C[i * N + j] = acc;
}

// matmul_rows: the same product without local memory or barriers, for CPU devices (PoCL).
// Item (g, h) computes the 4 x 8 block C[4h .. 4h+3, 8g .. 8g+7] with explicit vectors
// (real8), so the kernel is vectorised whatever the compiler does across work items; each row
// of B loaded is used for four rows of C. B must be stored [K, N] (not transposed): the host
// first transposes a transposed B (here always a small weight matrix) with `transpose`.
// Rows past M are skipped; a ragged right edge (N not a multiple of 8) is done element by element.
__kernel void matmul_rows(const int M, const int N, const int K, const int trans_a,
                          __global const real* A, __global const real* B, __global real* C) {
    const int j0 = get_global_id(0) * 8, i0 = get_global_id(1) * 4;
    if (i0 >= M || j0 >= N) return;
    const int rows = min(4, M - i0);
    // op(A)[i, p] is A[i*K + p], or A[p*M + i] when trans_a.
    const int row_step = trans_a ? 1 : K, p_step = trans_a ? M : 1;
    if (j0 + 8 <= N) {
        real8 acc0 = 0, acc1 = 0, acc2 = 0, acc3 = 0;
        for (int p = 0; p < K; ++p) {
            const real8 b = vload8(0, B + (size_t)p * N + j0);
            __global const real* a = A + (size_t)i0 * row_step + (size_t)p * p_step;
            acc0 += a[0] * b;
            if (rows > 1) acc1 += a[row_step] * b;
            if (rows > 2) acc2 += a[2 * row_step] * b;
            if (rows > 3) acc3 += a[3 * row_step] * b;
        }
        vstore8(acc0, 0, C + (size_t)i0 * N + j0);
        if (rows > 1) vstore8(acc1, 0, C + (size_t)(i0 + 1) * N + j0);
        if (rows > 2) vstore8(acc2, 0, C + (size_t)(i0 + 2) * N + j0);
        if (rows > 3) vstore8(acc3, 0, C + (size_t)(i0 + 3) * N + j0);
        return;
    }
    for (int r = 0; r < rows; ++r) {
        for (int j = j0; j < N; ++j) {
            real acc = 0;
            for (int p = 0; p < K; ++p) acc += A[(size_t)(i0 + r) * row_step + (size_t)p * p_step] * B[(size_t)p * N + j];
            C[(size_t)(i0 + r) * N + j] = acc;
        }
    }
}

// transpose: dst[c, r] = src[r, c]   src [rows, cols], dst [cols, rows]. Item (r, c), so
// consecutive items write consecutive elements of dst.
__kernel void transpose(const int rows, const int cols, __global const real* src, __global real* dst) {
    const int r = get_global_id(0), c = get_global_id(1);
    if (r >= rows || c >= cols) return;
    dst[c * rows + r] = src[r * cols + c];
}
