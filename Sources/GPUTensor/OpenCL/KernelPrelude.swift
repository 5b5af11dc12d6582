/// What the host and the OpenCL C kernels share, written once here and emitted into the prelude
/// in front of the kernel files: the kernels' names, the work-group sizes compiled into them,
/// and the values of the flags and modes the host passes. A kernel file never spells one of
/// these numbers itself.

/// The two kernel families. Both compute every op; they differ in how they spread the work.
public enum KernelFamily: String, CaseIterable, Sendable {
    /// Local-memory tiles and many small work-groups: the first layer and the weight gradients
    /// as lanes kernels (a batch's rows split over the items of a group), a tiled matrix
    /// multiply, and everything after the first layer in one launch. For GPUs.
    case gpu
    /// Few large items with vector registers and no barriers: a matrix multiply in 4 x 16
    /// blocks, the first layer's gradient from the non-zero pixels summed in a few parts, the
    /// layers after the first as separate ops. For CPU devices (PoCL), where work-items are
    /// loop iterations and a barrier is expensive.
    case cpu

    /// The family `auto` picks for a device: by its type.
    public static func auto(for info: OpenCLDeviceInfo) -> KernelFamily { info.isGPU ? .gpu : .cpu }
}

/// The kernels in Sources/Kernels, by their OpenCL names.
enum KernelName: String, CaseIterable {
    case gatherBatch = "gather_batch"
    case gatherRows = "gather_rows"
    case inputProduct = "input_product"
    case inputProductLanes = "input_product_lanes"
    case inputGradientParts = "input_gradient_parts"
    case inputGradientSum = "input_gradient_sum"
    case inputGradientLanes = "input_gradient_lanes"
    case matmul
    case matmulBlocked = "matmul_blocked"
    case matmulRows = "matmul_rows"
    case packStrips = "pack_strips"
    case weightGradientLanes = "weight_gradient_lanes"
    case transpose
    case addBroadcast = "add_broadcast"
    case addRow = "add_row"
    case relu
    case reluBackward = "relu_backward"
    case scaledAdd = "scaled_add"
    case softmaxRows = "softmax_rows"
    case softmaxXentBackward = "softmax_xent_backward"
    case crossEntropyStats = "cross_entropy_stats"
    case softmaxCrossEntropy = "softmax_cross_entropy"
    case layersAfterFirst = "layers_after_first"
    case rowStatsSum = "row_stats_sum"
    case columnSums = "column_sums"
    case sumOfSquares = "sum_of_squares"
    case momentumStep = "momentum_step"
    case adamStep = "adam_step"

    /// The work-group a kernel with local arrays must be launched with (its arrays and loops
    /// are sized by these constants); nil for kernels that take any group size.
    func compiledGroup(_ sizes: KernelSizes) -> [Int]? {
        switch self {
        case .matmul, .matmulBlocked: return [sizes.tile, sizes.tile]
        case .inputProductLanes, .inputGradientLanes, .weightGradientLanes: return [sizes.columns, sizes.lanes]
        case .sumOfSquares, .crossEntropyStats, .softmaxCrossEntropy: return [sizes.reduce]
        case .layersAfterFirst, .rowStatsSum: return [sizes.rowGroup]
        default: return nil
        }
    }
}

/// The work-group sizes compiled into a program. Chosen from the device's limits, then checked
/// against each built kernel's own limit (CL_KERNEL_WORK_GROUP_SIZE, which a kernel's register
/// and local-memory use can put below the device's maximum) and shrunk where a kernel cannot
/// take them. All are powers of two.
struct KernelSizes: Hashable, CustomStringConvertible {
    /// TILE: the side of the tiled matmuls' square work-groups and tiles.
    var tile: Int
    /// ITEM_BLOCK: matmul_blocked's items each compute an itemBlock x itemBlock block of C.
    static let itemBlock = 4
    /// LANE_COLUMNS and LANES: a lanes kernel's group is `columns` output columns by `lanes`
    /// items per column.
    var columns: Int
    var lanes: Int
    /// REDUCE_WG: the items of the one-group reductions (sum_of_squares, the loss and hits).
    var reduce: Int
    /// ROW_WG: the items of layers_after_first's group per row, and of row_stats_sum.
    var rowGroup: Int

    /// The largest sizes within the device's limits: `maxGroup` items per group, `maxItems[d]`
    /// along dimension d, `localBytes` of local memory for `elementBytes`-byte elements.
    /// `tile` (DERIV8_OPENCL_TILE) replaces the chosen tile when given.
    init(maxGroup: Int, maxItems: [Int], localBytes: Int, elementBytes: Int, tile requestedTile: Int?) {
        let dim0 = maxItems.first ?? maxGroup, dim1 = maxItems.count > 1 ? maxItems[1] : 1
        // A tile of 16 x 16 where groups of 256 are allowed, and matmul_blocked's two tiles
        // (TILE x ITEM_BLOCK · TILE, padded by a column) fit in half the local memory (the rest
        // for the compiler's own use).
        var tile = 16
        while tile > 1 && (tile * tile > maxGroup || tile > min(dim0, dim1)
                           || 2 * tile * (Self.itemBlock * tile + 1) * elementBytes > localBytes / 2) {
            tile /= 2
        }
        self.tile = requestedTile ?? tile
        columns = Self.powerOfTwo(atMost: min(32, maxGroup, dim0))
        lanes = Self.powerOfTwo(atMost: min(32, maxGroup / columns, dim1, localBytes / 2 / (columns * elementBytes)))
        reduce = Self.powerOfTwo(atMost: min(256, maxGroup, dim0, localBytes / 2 / elementBytes))
        // A hidden layer is a few dozen units, and each of layers_after_first's barriers costs
        // more in a larger group: 64 items.
        rowGroup = min(64, reduce)
    }

    /// The largest power of two <= max(n, 1).
    static func powerOfTwo(atMost n: Int) -> Int {
        var p = 1
        while p * 2 <= n { p *= 2 }
        return p
    }

    /// These sizes shrunk so that `kernel`, which takes at most `limit` items per group, can be
    /// launched; unchanged when it already can.
    func fitting(_ kernel: KernelName, limit: Int) -> KernelSizes {
        guard let group = kernel.compiledGroup(self), group.reduce(1, *) > limit else { return self }
        var s = self
        switch kernel {
        case .matmul, .matmulBlocked:
            while s.tile > 1 && s.tile * s.tile > limit { s.tile /= 2 }
        case .inputProductLanes, .inputGradientLanes, .weightGradientLanes:
            s.lanes = Self.powerOfTwo(atMost: limit / s.columns)
            if s.columns > limit { s.columns = Self.powerOfTwo(atMost: limit) }
        case .sumOfSquares, .crossEntropyStats, .softmaxCrossEntropy:
            s.reduce = Self.powerOfTwo(atMost: limit)
            s.rowGroup = min(s.rowGroup, s.reduce)
        default:
            s.rowGroup = Self.powerOfTwo(atMost: limit)
        }
        return s
    }

    var description: String {
        "tile \(tile)x\(tile), lanes groups \(columns)x\(lanes), reductions \(reduce), row groups \(rowGroup)"
    }

    /// The prelude's lines for these sizes.
    var defines: [String] {
        ["#define TILE \(tile)", "#define ITEM_BLOCK \(Self.itemBlock)", "#define LANE_COLUMNS \(columns)", "#define LANES \(lanes)",
         "#define REDUCE_WG \(reduce)", "#define ROW_WG \(rowGroup)"]
    }
}

/// What the product kernels do to each result before storing it (epilogue.cl's EPI_ flags).
struct Epilogue: OptionSet {
    let rawValue: Int
    static let bias = Epilogue(rawValue: 1)      // c += vector[j]
    static let add = Epilogue(rawValue: 2)       // c += alpha · operand[i, j]
    static let relu = Epilogue(rawValue: 4)      // c = max(0, c)
    static let mask = Epilogue(rawValue: 8)      // c = operand[i, j] > 0 ? c : 0
    static let rowSums = Epilogue(rawValue: 16)  // vector[i] = Σ_p op(a)[i, p]

    static let defines = [("EPI_BIAS", bias), ("EPI_ADD", add), ("EPI_RELU", relu), ("EPI_MASK", mask),
                          ("EPI_ROW_SUMS", rowSums)].map { "#define \($0) \($1.rawValue)" }
}

extension Epilogue {
    /// The epilogue that applies `activation` to each result.
    init(_ activation: Activation) {
        switch activation {
        case .identity: self = []
        case .relu: self = .relu
        }
    }

    /// The epilogue that multiplies each result by the derivative of `activation`, read from
    /// the activation's output (the product's operand D): for ReLU, the mask 1[D > 0].
    init(derivativeOf activation: Activation) {
        switch activation {
        case .identity: self = []
        case .relu: self = .mask
        }
    }
}

extension Broadcast {
    /// The mode number elementwise.cl's broadcast_index takes (BROADCAST_ in the prelude).
    var kernelMode: Int {
        switch self {
        case .none: return 0
        case .scalar: return 1
        case .column: return 2
        case .row: return 3
        }
    }

    static let defines = [("BROADCAST_SCALAR", Broadcast.scalar), ("BROADCAST_COLUMN", .column), ("BROADCAST_ROW", .row)]
        .map { "#define \($0) \($1.kernelMode)" }
}

/// The prelude for element type `T` and `sizes`: the types the kernel files use (`real`,
/// `real2` ... `real16`, REAL_MIN) and every shared constant above.
func kernelPrelude<T: TensorElement>(for type: T.Type, sizes: KernelSizes) -> String {
    let name = T.openCLTypeName
    var lines: [String] = []
    if T.self == Double.self { lines.append("#pragma OPENCL EXTENSION cl_khr_fp64 : enable") }
    lines.append("typedef \(name) real;")
    for width in [2, 4, 8, 16] { lines.append("typedef \(name)\(width) real\(width);") }
    lines.append("#define REAL_MIN \(T.self == Double.self ? "DBL_MIN" : "FLT_MIN")")
    lines += sizes.defines + Epilogue.defines + Broadcast.defines + ["#define STATS_WIDTH \(BatchStatistics.width)"]
    return lines.joined(separator: "\n") + "\n"
}
