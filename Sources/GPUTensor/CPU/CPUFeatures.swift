#if canImport(Glibc)
import Glibc
#endif

/// What the CPU can do, read once. Linux lists the instruction sets the CPU and the kernel
/// both support in /proc/cpuinfo's flags; elsewhere we assume nothing beyond the baseline.
enum CPUFeatures {
    static var hasAVX2AndFMA: Bool { ["avx2", "fma"].allSatisfy(flags.contains) }
    /// The AVX-512 subsets of Skylake-SP, which the AVX-512 kernel module is compiled for.
    static var hasAVX512: Bool {
        hasAVX2AndFMA && ["avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"].allSatisfy(flags.contains)
    }

    /// The flags line of /proc/cpuinfo, split; empty where there is none.
    private static let flags: Set<Substring> = {
        #if arch(x86_64) && os(Linux)
        guard let file = fopen("/proc/cpuinfo", "r") else { return [] }
        defer { fclose(file) }
        var line: UnsafeMutablePointer<CChar>?
        var capacity = 0
        defer { free(line) }
        while getline(&line, &capacity, file) > 0 {
            guard let line else { break }
            let text = String(cString: line)
            if text.hasPrefix("flags") {
                return Set(text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }))
            }
        }
        return []
        #else
        return []
        #endif
    }()
}
