#if canImport(Glibc)
import Glibc
#endif

/// What the CPU can do, read once. Linux lists the instruction sets the CPU and the kernel
/// both support in /proc/cpuinfo's flags; elsewhere we assume nothing beyond the baseline.
enum CPUFeatures {
    static let hasAVX2AndFMA: Bool = {
        #if arch(x86_64) && os(Linux)
        guard let file = fopen("/proc/cpuinfo", "r") else { return false }
        defer { fclose(file) }
        var line: UnsafeMutablePointer<CChar>?
        var capacity = 0
        defer { free(line) }
        while getline(&line, &capacity, file) > 0 {
            guard let line else { break }
            let text = String(cString: line)
            if text.hasPrefix("flags") {
                let flags = Set(text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }))
                return flags.contains("avx2") && flags.contains("fma")
            }
        }
        return false
        #else
        return false
        #endif
    }()
}
