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
