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
            learn whether a GPU and its driver compute correctly:

              deriv8-gpu check --kernels all

            runs both kernel families (gpu and cpu) on the device `auto` picks (--device N for \
            another). --small keeps every shape small (at most a few thousand elements) while \
            still reaching every kernel and every path in it, for simulators such as Oclgrind, \
            which run each work-item in turn.
            """)

    @OptionGroup var backendOptions: BackendOptions

    @Option(help: "Seed for the inputs.")
    var seed: UInt64 = 42

    @Flag(help: "Small shapes only (for simulators): every kernel and path, in seconds instead of minutes there.")
    var small = false

    @Option(help: ArgumentHelp("Only these ops, comma-separated (e.g. inputLinear,matmul); every op when not given.",
                               valueName: "op,op,..."))
    var ops: String?

    func validate() throws {
        for name in selectedOps ?? [] where OpCheck.Op(rawValue: name) == nil {
            throw ValidationError("--ops: no op named '\(name)'; the ops are \(OpCheck.Op.allCases.map(\.rawValue).joined(separator: ", "))")
        }
    }

    private var selectedOps: [String]? { ops.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } } }

    func run() throws {
        var check = OpCheck()
        check.seed = seed
        let all = small ? OpCheck.smallCases : OpCheck.standardCases
        let cases = selectedOps.map { names in all.filter { names.contains($0.op.rawValue) } } ?? all
        let job = CheckJob(check: check, cases: cases)
        var failed: [String] = []
        // Kernel families are OpenCL's: where the CPU backend runs, it runs once.
        var options = backendOptions
        if options.openCLDevice() == nil { options.kernels = .auto }
        for family in options.kernels.families.map({ $0.map(Optional.some) }) ?? [nil] {
            do {
                try options.run(job, family: family)
            } catch let exit as ExitCode where exit == .failure {
                failed.append(family.map { "\($0.rawValue) kernels" } ?? "the check")
            }
        }
        if !failed.isEmpty {
            printError("check failed: \(failed.joined(separator: ", "))")
            throw ExitCode.failure
        }
    }
}

struct CheckJob: BackendJob {
    let check: OpCheck
    let cases: [OpCheck.Case]

    func run<B: Backend>(on backend: B) throws {
        // The CPU backend is the reference; it is checked itself against naive Double loops.
        let reference = CPUBackend<Double>(kernels: backend is CPUBackend<B.Element> ? .naive : .best)
        print("checking \(backend.deviceDescription) against \(reference.deviceDescription), seed \(check.seed)")
        if let opencl = backend as? OpenCLBackend<B.Element> { print("work-groups: \(opencl.workGroupDescription)") }
        let rows = try check.run(backend, against: reference, cases: cases)
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
