import ArgumentParser
import Foundation
import GPUTensor

struct Devices: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List every OpenCL platform and device; * marks the one --backend auto uses.",
        discussion: """
            For each device: its type, OpenCL version, compute units, memory, whether it has fp64, \
            the kernel family --kernels auto picks for it (gpu or cpu), and the precision \
            gradcheck runs in there. Exits 1 with a hint when no OpenCL platform is installed.
            """)

    func run() throws {
        let devices = try OpenCLBackend<Float>.devices()
        let autoIndex = try OpenCLBackend<Float>.autoDeviceIndex()
        let header = ["", "index", "platform", "device", "type", "OpenCL", "units", "memory", "fp64", "kernels", "gradcheck"]
        let rows = devices.map { d in
            [d.index == autoIndex ? "*" : "", String(d.index), d.platform, d.name, d.type, d.version,
             String(d.computeUnits), String(format: "%.1f GiB", Double(d.globalMemoryBytes) / Double(1 << 30)),
             d.supportsFP64 ? "yes" : "no", KernelFamily.auto(for: d).rawValue, d.supportsFP64 ? "double" : "float"]
        }
        printTable([header] + rows)
        print("kernels: the family --kernels auto picks; `deriv8-gpu check --kernels all --device N` checks both on a device")
        if autoIndex == nil {
            print("no OpenCL GPU: --backend auto uses the CPU backend; --backend opencl --device N uses a device above")
        }
    }
}

/// Columns padded to their widest cell, two spaces apart.
func printTable(_ rows: [[String]]) {
    let widths = (0..<(rows.first?.count ?? 0)).map { c in rows.map { $0[c].count }.max() ?? 0 }
    for row in rows {
        let line = zip(row, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  ")
        print(line.replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression))
    }
}
