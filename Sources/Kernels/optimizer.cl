// Parameter updates beyond plain SGD (which is scaled_add). One work item per parameter
// element; the global size is rounded up, so each item returns when it is past the end.

// momentum_step: v = momentum · v + g; w -= lr · v.   w, g, v [n]
__kernel void momentum_step(const int n, const real lr, const real momentum,
                            __global real* w, __global const real* g, __global real* v) {
    const int i = get_global_id(0);
    if (i >= n) return;
    const real velocity = momentum * v[i] + g[i];
    v[i] = velocity;
    w[i] -= lr * velocity;
}

// adam_step: m = β1·m + (1 − β1)·g; v = β2·v + (1 − β2)·g²;
//            w -= lr · (m · c1) / (sqrt(v · c2) + ε)
// with the bias corrections c1 = 1 / (1 − β1ᵗ), c2 = 1 / (1 − β2ᵗ) from the host.   w, g, m, v [n]
__kernel void adam_step(const int n, const real lr, const real beta1, const real beta2, const real epsilon,
                        const real c1, const real c2,
                        __global real* w, __global const real* g, __global real* m, __global real* v) {
    const int i = get_global_id(0);
    if (i >= n) return;
    const real gi = g[i];
    const real mi = beta1 * m[i] + (1 - beta1) * gi;
    const real vi = beta2 * v[i] + (1 - beta2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    w[i] -= lr * (mi * c1) / (sqrt(vi * c2) + epsilon);
}
