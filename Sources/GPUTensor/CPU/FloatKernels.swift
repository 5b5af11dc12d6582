import CPUKernels
import CPUKernelsAVX2
import CPUKernelsAVX512

/// The tuned Float kernels of one build of Sources/CPUKernels: the portable build, or the same
/// source compiled for AVX2 + FMA, or for AVX-512. Function values pin each generic kernel to Float, so the
/// calls land in code specialised for it.
struct FloatKernels: Sendable {
    typealias Pointer = UnsafePointer<Float>
    typealias MutablePointer = UnsafeMutablePointer<Float>

    /// (a, b, c, m, k, n, a holds Aᵀ, b holds Bᵀ)
    let gemm: @Sendable (Pointer, Pointer, MutablePointer, Int, Int, Int, Bool, Bool) -> Void
    /// (w, n, features, wt): w [n, features] transposed into the sparse kernels' column blocks
    let packColumnBlocks: @Sendable (Pointer, Int, Int, MutablePointer) -> Void
    let gatherRows: @Sendable (UnsafePointer<UInt8>, UnsafePointer<Int32>, Int, Int, MutablePointer) -> Void
    let relu: @Sendable (Pointer, MutablePointer, Int) -> Void
    let reluBackward: @Sendable (Pointer, Pointer, MutablePointer, Int) -> Void
    let scaledAdd: @Sendable (Float, Pointer, MutablePointer, Int) -> Void
    let addRow: @Sendable (Pointer, Pointer, MutablePointer, Int, Int) -> Void
    let columnSums: @Sendable (Pointer, MutablePointer, Int, Int) -> Void
    let sumOfSquares: @Sendable (Pointer, Int) -> Float
    let softmaxRows: @Sendable (Pointer, MutablePointer, Int, Int) -> Void
    /// (examples, order, rows, wt, n, features, z)
    let sparseProduct: @Sendable (SparseExamples, UnsafePointer<Int32>, Int, Pointer, Int, Int, MutablePointer) -> Void
    /// (dz, examples, order, rows, n, features, dw, scratch)
    let sparseGradient: @Sendable (Pointer, SparseExamples, UnsafePointer<Int32>, Int, Int, Int, MutablePointer,
                                   MutablePointer) -> Void

    static let portable = FloatKernels(
        gemm: { CPUKernels.gemm($0, $1, $2, m: $3, k: $4, n: $5, transposedA: $6, transposedB: $7) },
        packColumnBlocks: { CPUKernels.packColumnBlocks($0, n: $1, features: $2, into: $3) },
        gatherRows: { CPUKernels.gatherRows($0, order: $1, rows: $2, features: $3, into: $4) },
        relu: { CPUKernels.relu($0, $1, count: $2) },
        reluBackward: { CPUKernels.reluBackward($0, $1, $2, count: $3) },
        scaledAdd: { CPUKernels.scaledAdd($0, $1, $2, count: $3) },
        addRow: { CPUKernels.addRow($0, $1, $2, rows: $3, cols: $4) },
        columnSums: { CPUKernels.columnSums($0, $1, rows: $2, cols: $3) },
        sumOfSquares: { CPUKernels.sumOfSquares($0, count: $1) },
        softmaxRows: { CPUKernels.softmaxRows($0, $1, rows: $2, cols: $3) },
        sparseProduct: { examples, order, rows, wt, n, features, z in
            CPUKernels.sparseProduct(examples.rows(CPUKernels.SparseRows.init), order: order, rows: rows, wt, n: n, features: features, into: z)
        },
        sparseGradient: { dz, examples, order, rows, n, features, dw, scratch in
            CPUKernels.sparseGradient(dz, examples.rows(CPUKernels.SparseRows.init), order: order, rows: rows, n: n,
                              features: features, into: dw, scratch: scratch)
        })

    static let avx2 = FloatKernels(
        gemm: { CPUKernelsAVX2.gemm($0, $1, $2, m: $3, k: $4, n: $5, transposedA: $6, transposedB: $7) },
        packColumnBlocks: { CPUKernelsAVX2.packColumnBlocks($0, n: $1, features: $2, into: $3) },
        gatherRows: { CPUKernelsAVX2.gatherRows($0, order: $1, rows: $2, features: $3, into: $4) },
        relu: { CPUKernelsAVX2.relu($0, $1, count: $2) },
        reluBackward: { CPUKernelsAVX2.reluBackward($0, $1, $2, count: $3) },
        scaledAdd: { CPUKernelsAVX2.scaledAdd($0, $1, $2, count: $3) },
        addRow: { CPUKernelsAVX2.addRow($0, $1, $2, rows: $3, cols: $4) },
        columnSums: { CPUKernelsAVX2.columnSums($0, $1, rows: $2, cols: $3) },
        sumOfSquares: { CPUKernelsAVX2.sumOfSquares($0, count: $1) },
        softmaxRows: { CPUKernelsAVX2.softmaxRows($0, $1, rows: $2, cols: $3) },
        sparseProduct: { examples, order, rows, wt, n, features, z in
            CPUKernelsAVX2.sparseProduct(examples.rows(CPUKernelsAVX2.SparseRows.init), order: order, rows: rows, wt, n: n, features: features, into: z)
        },
        sparseGradient: { dz, examples, order, rows, n, features, dw, scratch in
            CPUKernelsAVX2.sparseGradient(dz, examples.rows(CPUKernelsAVX2.SparseRows.init), order: order, rows: rows, n: n,
                              features: features, into: dw, scratch: scratch)
        })

    static let avx512 = FloatKernels(
        gemm: { CPUKernelsAVX512.gemm($0, $1, $2, m: $3, k: $4, n: $5, transposedA: $6, transposedB: $7) },
        packColumnBlocks: { CPUKernelsAVX512.packColumnBlocks($0, n: $1, features: $2, into: $3) },
        gatherRows: { CPUKernelsAVX512.gatherRows($0, order: $1, rows: $2, features: $3, into: $4) },
        relu: { CPUKernelsAVX512.relu($0, $1, count: $2) },
        reluBackward: { CPUKernelsAVX512.reluBackward($0, $1, $2, count: $3) },
        scaledAdd: { CPUKernelsAVX512.scaledAdd($0, $1, $2, count: $3) },
        addRow: { CPUKernelsAVX512.addRow($0, $1, $2, rows: $3, cols: $4) },
        columnSums: { CPUKernelsAVX512.columnSums($0, $1, rows: $2, cols: $3) },
        sumOfSquares: { CPUKernelsAVX512.sumOfSquares($0, count: $1) },
        softmaxRows: { CPUKernelsAVX512.softmaxRows($0, $1, rows: $2, cols: $3) },
        sparseProduct: { examples, order, rows, wt, n, features, z in
            CPUKernelsAVX512.sparseProduct(examples.rows(CPUKernelsAVX512.SparseRows.init), order: order, rows: rows, wt, n: n, features: features, into: z)
        },
        sparseGradient: { dz, examples, order, rows, n, features, dw, scratch in
            CPUKernelsAVX512.sparseGradient(dz, examples.rows(CPUKernelsAVX512.SparseRows.init), order: order, rows: rows, n: n,
                              features: features, into: dw, scratch: scratch)
        })
}
