// matmul: C = op(A) · op(B), tiled through local memory, then the epilogue (epilogue.cl).
//
//   C[i, j] = Σ_p op(A)[i, p] · op(B)[p, j]        op(A) [M, K], op(B) [K, N], C [M, N]
//
// A is stored [M, K], or [K, M] when trans_a; B is stored [K, N], or [N, K] when trans_b; all
// row-major. Work-groups are TILE x TILE (TILE is defined by the host, 16 where the device and
// the kernel allow 256 work items); item (j, i) computes C[i, j]. The global size is M and N rounded up
// to TILE: items outside C still load zeros and reach every barrier, and only store when inside.
__kernel void matmul(const int M, const int N, const int K, const int trans_a, const int trans_b,
                     __global const real* A, __global const real* B, __global real* C,
                     const int flags, const real alpha, __global const real* D, __global real* v) {
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
    if (i < M && j < N) C[i * N + j] = epilogue(acc, flags, i, j, N, alpha, D, v);
}

// matmul_blocked (GPUs, large products): the same product, each item computing an
// ITEM_BLOCK x ITEM_BLOCK block of C, so that every value read from local memory serves
// ITEM_BLOCK multiply-adds instead of one (the tiled kernel above does one load per
// multiply-add and is bound by local memory). A TILE x TILE work-group covers BLOCK x BLOCK of
// C (BLOCK = ITEM_BLOCK · TILE) and walks K in steps of TILE through two local tiles:
//   a_tile[p][r] = op(A)[i0 + r, t + p]     b_tile[p][c] = op(B)[t + p, j0 + c]
// Item (tx, ty) owns C[i0 + ty + TILE·a, j0 + tx + TILE·b] for a, b < ITEM_BLOCK: interleaved,
// so neighbouring items read neighbouring local elements and store neighbouring elements of C.
// Loads are arranged so that neighbouring items read neighbouring global elements whatever the
// transposes; a tile row is padded by one element so that the column-wise stores into it do
// not all hit one local-memory bank. Global size: ⌈N / BLOCK⌉ · TILE by ⌈M / BLOCK⌉ · TILE.
#define BLOCK (ITEM_BLOCK * TILE)
__kernel void matmul_blocked(const int M, const int N, const int K, const int trans_a, const int trans_b,
                             __global const real* A, __global const real* B, __global real* C,
                             const int flags, const real alpha, __global const real* D, __global real* v) {
    __local real a_tile[TILE][BLOCK + 1];
    __local real b_tile[TILE][BLOCK + 1];
    const int tx = get_local_id(0), ty = get_local_id(1);
    const int i0 = get_group_id(1) * BLOCK, j0 = get_group_id(0) * BLOCK;
    real acc[ITEM_BLOCK][ITEM_BLOCK];
    for (int a = 0; a < ITEM_BLOCK; ++a)
        for (int b = 0; b < ITEM_BLOCK; ++b) acc[a][b] = 0;
    for (int t = 0; t < K; t += TILE) {
        for (int s = 0; s < ITEM_BLOCK; ++s) {
            // op(A)[i, p]: A[i·K + p] runs along p, Aᵀ's A[p·M + i] along i; tx walks that way.
            const int r = trans_a ? tx + TILE * s : ty + TILE * s, p = trans_a ? ty : tx;
            const int i = i0 + r, ka = t + p;
            a_tile[p][r] = (i < M && ka < K) ? (trans_a ? A[(size_t)ka * M + i] : A[(size_t)i * K + ka]) : (real)0;
            // op(B)[q, j]: B[q·N + j] runs along j, Bᵀ's B[j·K + q] along q.
            const int c = trans_b ? ty + TILE * s : tx + TILE * s, q = trans_b ? tx : ty;
            const int j = j0 + c, kb = t + q;
            b_tile[q][c] = (kb < K && j < N) ? (trans_b ? B[(size_t)j * K + kb] : B[(size_t)kb * N + j]) : (real)0;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int p = 0; p < TILE; ++p) {
            real a_reg[ITEM_BLOCK], b_reg[ITEM_BLOCK];
            for (int s = 0; s < ITEM_BLOCK; ++s) {
                a_reg[s] = a_tile[p][ty + TILE * s];
                b_reg[s] = b_tile[p][tx + TILE * s];
            }
            for (int a = 0; a < ITEM_BLOCK; ++a)
                for (int b = 0; b < ITEM_BLOCK; ++b) acc[a][b] += a_reg[a] * b_reg[b];
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    for (int a = 0; a < ITEM_BLOCK; ++a) {
        const int i = i0 + ty + TILE * a;
        for (int b = 0; b < ITEM_BLOCK; ++b) {
            const int j = j0 + tx + TILE * b;
            if (i < M && j < N) C[(size_t)i * N + j] = epilogue(acc[a][b], flags, i, j, N, alpha, D, v);
        }
    }
}
#undef BLOCK

// matmul_rows: the same product without local memory or barriers, for CPU devices (PoCL).
// Item (g, h) computes the 4 x 16 block C[4h .. 4h+3, 16g .. 16g+15] in eight real8
// accumulators, so the kernel is vectorised whatever the compiler does across work items, and
// each piece of B loaded serves four rows of C. B comes packed in strips of 16 columns
// (pack_strips): item g reads strip g front to back, one contiguous 64-byte row per step, where
// B's own rows would be N floats apart, a power-of-two stride at the usual widths that maps every
// row to the same few cache sets. The items of a work-group share the strip from cache. Then the
// epilogue; with EPI_ROW_SUMS the items of the first strip also add up their four rows of op(A).
__kernel void matmul_rows(const int M, const int N, const int K, const int trans_a,
                          __global const real* A, __global const real* strips, __global real* C,
                          const int flags, const real alpha, __global const real* D, __global real* v) {
    const int j0 = get_global_id(0) * 16, i0 = get_global_id(1) * 4;
    if (i0 >= M || j0 >= N) return;
    // op(A)[i, p] is A[i*K + p], or A[p*M + i] when trans_a.
    const size_t row_step = trans_a ? 1 : K, p_step = trans_a ? M : 1;
    __global const real* a = A + i0 * row_step;
    if ((flags & EPI_ROW_SUMS) && j0 == 0) {
        for (int i = i0; i < min(i0 + 4, M); ++i) {
            real sum = 0;
            for (int p = 0; p < K; ++p) sum += A[i * row_step + p * p_step];
            v[i] = sum;
        }
    }
    // Rows past M (M not a multiple of 4: a 10-wide layer's gradient) repeat the last row's
    // reads and are not stored: a scalar path took 4x as long for them on PoCL.
    const int rows = min(4, M - i0);
    const size_t s1 = min(1, rows - 1) * row_step, s2 = min(2, rows - 1) * row_step, s3 = min(3, rows - 1) * row_step;
    real8 c0 = 0, c1 = 0, c2 = 0, c3 = 0, d0 = 0, d1 = 0, d2 = 0, d3 = 0;
    __global const real* b = strips + (size_t)(j0 / 16) * K * 16;
    for (int p = 0; p < K; ++p) {
        const real8 b0 = vload8(0, b), b1 = vload8(1, b);
        const real x0 = a[0], x1 = a[s1], x2 = a[s2], x3 = a[s3];
        c0 += x0 * b0; d0 += x0 * b1;
        c1 += x1 * b0; d1 += x1 * b1;
        c2 += x2 * b0; d2 += x2 * b1;
        c3 += x3 * b0; d3 += x3 * b1;
        a += p_step;
        b += 16;
    }
    __global real* c = C + (size_t)i0 * N + j0;
    if (j0 + 16 <= N) {
        const int j1 = j0 + 8;
        vstore8(epilogue8(c0, flags, i0, j0, N, alpha, D, v), 0, c); vstore8(epilogue8(d0, flags, i0, j1, N, alpha, D, v), 1, c); c += N;
        if (rows < 2) return;
        vstore8(epilogue8(c1, flags, i0 + 1, j0, N, alpha, D, v), 0, c); vstore8(epilogue8(d1, flags, i0 + 1, j1, N, alpha, D, v), 1, c); c += N;
        if (rows < 3) return;
        vstore8(epilogue8(c2, flags, i0 + 2, j0, N, alpha, D, v), 0, c); vstore8(epilogue8(d2, flags, i0 + 2, j1, N, alpha, D, v), 1, c); c += N;
        if (rows < 4) return;
        vstore8(epilogue8(c3, flags, i0 + 3, j0, N, alpha, D, v), 0, c); vstore8(epilogue8(d3, flags, i0 + 3, j1, N, alpha, D, v), 1, c);
        return;
    }
    // The last strip sticks out of C (N not a multiple of 16): its padding columns hold zeros;
    // store the columns inside C one by one.
    real block[4][16];
    vstore8(c0, 0, block[0]); vstore8(d0, 1, block[0]);
    vstore8(c1, 0, block[1]); vstore8(d1, 1, block[1]);
    vstore8(c2, 0, block[2]); vstore8(d2, 1, block[2]);
    vstore8(c3, 0, block[3]); vstore8(d3, 1, block[3]);
    for (int r = 0; r < rows; ++r) {
        for (int j = j0; j < N; ++j) C[(size_t)(i0 + r) * N + j] = epilogue(block[r][j - j0], flags, i0 + r, j, N, alpha, D, v);
    }
}

// pack_strips: op(B) [K, N] copied into strips of `width` columns (16 for matmul_rows, 32 for
// input_product), each stored whole:
//   strips[(j / width) · K · width + p · width + j % width] = op(B)[p, j]
// and zeros past column N - 1 up to N rounded up to width. src is B [K, N], or Bᵀ [N, K] when
// trans. An item copies 16 elements that are neighbours in src: 16 columns of a row of B
// (item (j / 16, p)), or 16 rows of a column of op(B), a row of Bᵀ (item (p / 16, j)).
__kernel void pack_strips(const int K, const int N, const int width, const int trans,
                          __global const real* src, __global real* strips) {
    const int padded = (N + width - 1) / width * width;
    if (!trans) {
        const int j0 = get_global_id(0) * 16, p = get_global_id(1);
        if (p >= K || j0 >= padded) return;
        __global real* out = strips + (size_t)(j0 / width) * K * width + (size_t)p * width + j0 % width;
        __global const real* in = src + (size_t)p * N + j0;
        if (j0 + 16 <= N) {
            vstore16(vload16(0, in), 0, out);
        } else {
            for (int j = 0; j < 16; ++j) out[j] = j0 + j < N ? in[j] : (real)0;
        }
        return;
    }
    const int p0 = get_global_id(0) * 16, j = get_global_id(1);
    if (p0 >= K || j >= padded) return;
    __global real* out = strips + (size_t)(j / width) * K * width + (size_t)p0 * width + j % width;
    __global const real* in = src + (size_t)j * K + p0;
    for (int q = 0; q < min(16, K - p0); ++q) out[(size_t)q * width] = j < N ? in[q] : (real)0;
}

// transpose: dst[c, r] = src[r, c]   src [rows, cols], dst [cols, rows]. Item (r, c), so
// consecutive items write consecutive elements of dst.
__kernel void transpose(const int rows, const int cols, __global const real* src, __global real* dst) {
    const int r = get_global_id(0), c = get_global_id(1);
    if (r >= rows || c >= cols) return;
    dst[c * rows + r] = src[r * cols + c];
}

// weight_gradient_lanes (GPUs): a layer's parameter gradients in one launch,
//   dw = dzᵀ · x + alpha · w and db = Σ_r dz[r, :]      dz [m, n], x [m, k], w and dw [n, k], db [n]
// A work-group per (LANE_COLUMNS columns of x, row j of dw), LANES items per column, lane l
// summing rows l, l + LANES, ...: the batch's rows are spread over many items (the tiled
// matmul would run a few groups of many steps for a 32 x 32 gradient); one more group per row j
// for db[j] (see bias_gradient_lanes). Local size (LANE_COLUMNS, LANES); global (k rounded up
// to LANE_COLUMNS, plus LANE_COLUMNS; n · LANES).
__kernel void weight_gradient_lanes(const int m, const int n, const int k, const real alpha,
                                    __global const real* dz, __global const real* x, __global const real* w,
                                    __global real* dw, __global real* db) {
    __local real partial[LANES * LANE_COLUMNS];
    const int c = get_global_id(0), lane = get_local_id(1), j = get_group_id(1);
    if (is_bias_group()) {
        bias_gradient_lanes(m, n, j, dz, db, partial);
        return;
    }
    // Four rows in flight per item: the loads, not the arithmetic, are the time.
    real acc = 0, acc1 = 0, acc2 = 0, acc3 = 0;
    if (c < k) {
        int r = lane;
        for (; r + 3 * LANES < m; r += 4 * LANES) {
            acc += dz[(size_t)r * n + j] * x[(size_t)r * k + c];
            acc1 += dz[(size_t)(r + LANES) * n + j] * x[(size_t)(r + LANES) * k + c];
            acc2 += dz[(size_t)(r + 2 * LANES) * n + j] * x[(size_t)(r + 2 * LANES) * k + c];
            acc3 += dz[(size_t)(r + 3 * LANES) * n + j] * x[(size_t)(r + 3 * LANES) * k + c];
        }
        for (; r < m; r += LANES) acc += dz[(size_t)r * n + j] * x[(size_t)r * k + c];
    }
    acc = sum_lanes((acc + acc1) + (acc2 + acc3), partial);
    if (lane == 0 && c < k) store_weight_gradient(acc, c, j, k, alpha, w, dw);
}
