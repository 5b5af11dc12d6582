#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Like Gemm.swift, this file is also compiled into the AVX2 and AVX-512 modules (symbolic links).

/// The data cache sizes of one core, in bytes, which the blocked kernels size their blocks by.
/// Where the system does not say, the sizes of the smallest common x86 core (32 KiB L1, 256 KiB
/// L2) stand in: blocks that fit a small cache only cost a little speed on a large one.
enum CacheSizes {
    static let level1 = query(level: 1) ?? 32 << 10
    static let level2 = query(level: 2) ?? 256 << 10

    private static func query(level: Int) -> Int? {
        #if canImport(Glibc)
        let bytes = sysconf(Int32(level == 1 ? _SC_LEVEL1_DCACHE_SIZE : _SC_LEVEL2_CACHE_SIZE))
        #elseif canImport(Darwin)
        var bytes = 0, size = MemoryLayout<Int>.size
        if sysctlbyname(level == 1 ? "hw.l1dcachesize" : "hw.l2cachesize", &bytes, &size, nil, 0) != 0 { bytes = 0 }
        #else
        let bytes = 0
        #endif
        // Sanity bounds: a reported 0, -1 or an absurd size is treated as unknown.
        return (4 << 10 ... 64 << 20).contains(bytes) ? bytes : nil
    }
}
