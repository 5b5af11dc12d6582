/// The OpenCL C sources, embedded in the binary at build time (SwiftPM's `.embedInCode`), so the
/// installed program never needs the source tree. Each file opens with the formula, the argument
/// shapes and its assumptions. The sources use the types `real`, `real2` ... `real16`, and
/// constants the host defines in a prelude when it builds them (GPUTensor's KernelPrelude.swift):
/// the work-group sizes (`TILE`, `LANE_COLUMNS`, `LANES`, `REDUCE_WG`, `ROW_WG`), the epilogue
/// flags (`EPI_*`), the broadcast modes (`BROADCAST_*`) and `REAL_MIN`. Helper functions are
/// `static inline`: OpenCL C's plain `inline` has C99's meaning, under which no out-of-line
/// copy is emitted, so a compiler that chooses not to inline a call (unoptimised builds, some
/// vendors' drivers) is left with an undefined function.
public enum KernelSources {
    /// (file name, source), in the order they are concatenated into one program.
    public static let files: [(name: String, source: String)] = [
        ("epilogue.cl", text(PackageResources.epilogue_cl)),
        ("gather.cl", text(PackageResources.gather_cl)),
        ("input.cl", text(PackageResources.input_cl)),
        ("matmul.cl", text(PackageResources.matmul_cl)),
        ("elementwise.cl", text(PackageResources.elementwise_cl)),
        ("reduce.cl", text(PackageResources.reduce_cl)),
        ("softmax.cl", text(PackageResources.softmax_cl)),
        ("layers.cl", text(PackageResources.layers_cl)),
        ("optimizer.cl", text(PackageResources.optimizer_cl)),
    ]

    private static func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }
}
