import ArgumentParser
import Foundation
import GPUTensor

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run every op on the chosen device and on the CPU backend, and compare.",
        discussion: """
            Seeded random inputs of awkward shapes (1x1, 7x33, 500x784, 784x32, both transposes, \
            every broadcast case). Prints each op's largest absolute and relative difference; \
            exits 1 if any element is outside |got − want| ≤ atol + rtol·|want|. This is how to \
            learn whether a GPU and its driver compute correctly.
            """)

    @OptionGroup var backendOptions: BackendOptions

    @Option(help: "Seed for the inputs.")
    var seed: UInt64 = 42

    func run() throws {
        var check = OpCheck()
        check.seed = seed
        try backendOptions.run(CheckJob(check: check))
    }
}

struct CheckJob: BackendJob {
    let check: OpCheck

    func run<B: Backend>(on backend: B) throws {
        // The CPU backend is the reference; it is checked itself against naive Double loops.
        let reference = CPUBackend<Double>(kernels: backend is CPUBackend<B.Element> ? .naive : .best)
        print("checking \(backend.deviceDescription) against \(reference.deviceDescription), seed \(check.seed)")
        let rows = try check.run(backend, against: reference)
        printTable([["op", "shapes", "max abs diff", "max rel diff", ""]] + rows.map { r in
            [r.op.rawValue, r.shapes, String(format: "%.2e", r.closeness.maxAbsoluteDifference),
             String(format: "%.2e", r.closeness.maxRelativeDifference), r.passed ? "pass" : "FAIL"]
        })
        let failed = rows.filter { !$0.passed }
        for r in failed {
            printError("\(r.op.rawValue) \(r.shapes): \(r.closeness.summary)")
        }
        print("\(rows.count - failed.count) passed, \(failed.count) failed")
        if !failed.isEmpty { throw ExitCode.failure }
    }
}
