// swift-tools-version: 6.0
// deriv8-gpu: an MNIST multilayer perceptron trained from scratch, on OpenCL or on the CPU.
//
// Module layers (each imports only what is below it):
//   deriv8-gpu (command line)  ->  Deriv8 (data, model, training)  ->  GPUTensor (tensors, backends)
//   GPUTensor -> COpenCL (C API), Kernels (.cl sources embedded at build time),
//                CPUKernels (+ its AVX2 and AVX-512 builds) -> WorkerPool (spinning threads),
//                CPUHints (prefetch and pause, from C)
//   Deriv8 -> CZlib (reads the gzipped IDX files)
//   deriv8-gpu -> CBuildInfo (the git commit `make build` writes, for --version)
import PackageDescription

// CPUKernelsAVX2 and CPUKernelsAVX512 compile the same Swift files as CPUKernels (symbolic
// links) for AVX2 + FMA and for AVX-512; the CPU backend uses the best one the CPU runs. Other
// architectures build them plainly.
#if arch(x86_64)
let avx2Settings: [SwiftSetting] = [.unsafeFlags(["-target-cpu", "haswell"]), .define("FMA")]
let avx512Settings: [SwiftSetting] = [.unsafeFlags(["-target-cpu", "skylake-avx512"]), .define("FMA"), .define("AVX512")]
#else
let avx2Settings: [SwiftSetting] = []
let avx512Settings: [SwiftSetting] = []
#endif

let package = Package(
    name: "deriv8-gpu",
    platforms: [.macOS(.v15)],   // Synchronization's atomics (WorkerPool)
    products: [
        .executable(name: "deriv8-gpu", targets: ["deriv8-gpu"]),
        .library(name: "Deriv8", targets: ["Deriv8"]),
        .library(name: "GPUTensor", targets: ["GPUTensor"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CZlib",
            providers: [.apt(["zlib1g-dev"]), .brew(["zlib"])]),
        .systemLibrary(
            name: "COpenCL",
            providers: [.apt(["ocl-icd-opencl-dev", "opencl-c-headers"])]),
        .target(
            name: "Kernels",
            resources: [
                .embedInCode("epilogue.cl"), .embedInCode("gather.cl"), .embedInCode("input.cl"), .embedInCode("matmul.cl"), .embedInCode("elementwise.cl"),
                .embedInCode("softmax.cl"), .embedInCode("layers.cl"), .embedInCode("reduce.cl"), .embedInCode("optimizer.cl"),
            ]),
        .systemLibrary(name: "CPUHints"),
        .systemLibrary(name: "CBuildInfo"),
        .target(name: "WorkerPool", dependencies: ["CPUHints"]),
        .target(name: "CPUKernels", dependencies: ["CPUHints", "WorkerPool"]),
        .target(name: "CPUKernelsAVX2", dependencies: ["CPUHints", "WorkerPool"], swiftSettings: avx2Settings),
        .target(name: "CPUKernelsAVX512", dependencies: ["CPUHints", "WorkerPool"], swiftSettings: avx512Settings),
        .target(
            name: "GPUTensor",
            dependencies: ["COpenCL", "Kernels", "CPUKernels", "CPUKernelsAVX2", "CPUKernelsAVX512"],
            linkerSettings: [
                .linkedLibrary("OpenCL", .when(platforms: [.linux])),
                .linkedFramework("OpenCL", .when(platforms: [.macOS])),
            ]),
        .target(
            name: "Deriv8",
            dependencies: ["GPUTensor", "CZlib"]),
        .executableTarget(
            name: "deriv8-gpu",
            dependencies: [
                "Deriv8", "GPUTensor", "CBuildInfo",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        .testTarget(name: "GPUTensorTests", dependencies: ["GPUTensor", "WorkerPool"]),
        // Fixtures/ holds data files the tests read by path (NumPy-written .npz files).
        .testTarget(name: "Deriv8Tests", dependencies: ["Deriv8", "GPUTensor", "CZlib"], exclude: ["Fixtures"]),
        .testTarget(name: "OpenCLTests", dependencies: ["Deriv8", "GPUTensor"]),
        // Runs the built deriv8-gpu binary (depending on it makes `swift test` build it).
        .testTarget(name: "CLITests", dependencies: ["deriv8-gpu"]),
    ]
)
