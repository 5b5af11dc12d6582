// Checkpoint.decode (Sources/Deriv8/Checkpoint.swift): safetensors plus the metadata (format,
// architecture, training configuration, counts, generator state) and the tensors it requires.
import Deriv8
import Foundation

func fuzzSeeds() -> [[UInt8]] {
    [OptimizerKind.sgd, .momentum, .adam].map { kind in
        var config = TrainingConfig()
        config.hidden = [3]
        config.optimizer.kind = kind
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys]
        let shapes: [(String, [Int])] = [("w1", [3, 4]), ("b1", [3]), ("w2", [2, 3]), ("b2", [2])]
        func values(_ shape: [Int]) -> SafeTensors.Tensor {
            SafeTensors.Tensor((0..<shape.reduce(1, *)).map { Float($0) / 8 - 1 }, shape: shape)
        }
        var tensors: [(name: String, tensor: SafeTensors.Tensor)] = shapes.map { ($0.0, values($0.1)) }
        let prefixes = kind == .adam ? ["adam.m.", "adam.v."] : kind == .momentum ? ["momentum."] : []
        for (name, shape) in shapes { for prefix in prefixes { tensors.append((prefix + name, values(shape))) } }
        tensors.append(("train_order", SafeTensors.Tensor([2, 0, 1, 3] as [Int32], shape: [4])))
        let metadata = [
            "format": Checkpoint.format, "architecture": "4-3-2",
            "config": String(decoding: try! encoder.encode(config), as: UTF8.self),
            "dataset": "mnist", "epoch": "2", "batch": "1", "optimizer_step": "7", "rng_state": "1,2,3,deadbeef",
        ]
        return try! SafeTensors.encode(tensors, metadata: metadata)
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    do {
        let c = try Checkpoint.decode(fuzzBytes(data, size), path: "input")
        require(c.sizes.count >= 2 && c.parameters.map(\.name) == Checkpoint.parameterNames(layers: c.sizes.count - 1),
                "architecture \(c.architecture), parameters \(c.parameters.map(\.name))")
        for (name, values) in c.parameters + c.optimizerState {
            let parameter = String(name.split(separator: ".").last ?? "")
            require(values.count == Checkpoint.shape(of: parameter, sizes: c.sizes)?.reduce(1, *), "\(name): \(values.count) values")
        }
        require(c.generatorState.count == 4 && c.epoch >= 0 && c.batch >= 0 && c.optimizerStep >= 0, "counts")
    } catch {
        require(error.path == "input" && !error.problem.isEmpty, "error \(error)")
    }
    return 0
}
