// Elementwise ops. One work item per output element; the global size is rounded up, so each
// item returns when it is past the end.

// How an operand of add_broadcast stretches to the output [rows, cols] (the host's Broadcast
// enum, its values in the prelude): BROADCAST_SCALAR (1,1), BROADCAST_COLUMN (rows,1),
// BROADCAST_ROW (1,cols), anything else the same shape.
static inline int broadcast_index(const int mode, const int i, const int j, const int cols) {
    switch (mode) {
        case BROADCAST_SCALAR: return 0;
        case BROADCAST_COLUMN: return i;
        case BROADCAST_ROW: return j;
        default: return i * cols + j;
    }
}

// c[i, j] = a[.] + b[.]   c [rows, cols]; a, b [rows, cols], (1,1), (rows,1) or (1,cols).
// Item (j, i). c may alias a or b: each item reads its own inputs before writing its output,
// and an aliased operand is never broadcast (it has c's shape).
__kernel void add_broadcast(const int rows, const int cols, const int mode_a, const int mode_b,
                            __global const real* a, __global const real* b, __global real* c) {
    const int j = get_global_id(0), i = get_global_id(1);
    if (i >= rows || j >= cols) return;
    c[i * cols + j] = a[broadcast_index(mode_a, i, j, cols)] + b[broadcast_index(mode_b, i, j, cols)];
}

// add_row: c[i, :] = a[i, :] + b, the bias add (add_broadcast's case a full, b (1,cols)). One
// item per row, looping over the columns: a CPU device pays for a per-element 2-D id or a
// modulo to find the column (docs/PERFORMANCE.md, "figures behind the code"). c may alias a.
__kernel void add_row(const int rows, const int cols, __global const real* a, __global const real* b,
                      __global real* c) {
    const int i = get_global_id(0);
    if (i >= rows) return;
    const size_t row = (size_t)i * cols;
    for (int j = 0; j < cols; ++j) c[row + j] = a[row + j] + b[j];
}

// y = max(0, x)   x, y [n]
__kernel void relu(const int n, __global const real* x, __global real* y) {
    const int i = get_global_id(0);
    if (i >= n) return;
    y[i] = x[i] > 0 ? x[i] : (real)0;
}

// dx = dy ⊙ 1[x > 0]   dy, x, dx [n]
__kernel void relu_backward(const int n, __global const real* dy, __global const real* x,
                            __global real* dx) {
    const int i = get_global_id(0);
    if (i >= n) return;
    dx[i] = x[i] > 0 ? dy[i] : (real)0;
}

// y += alpha · x   x, y [n]
__kernel void scaled_add(const int n, const real alpha, __global const real* x, __global real* y) {
    const int i = get_global_id(0);
    if (i >= n) return;
    y[i] += alpha * x[i];
}
