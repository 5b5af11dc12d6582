// SafeTensors.decode (Sources/Deriv8/SafeTensors.swift): the 8-byte length, the JSON header,
// dtypes, shapes, offsets, overlaps.
import Deriv8

func fuzzSeeds() -> [[UInt8]] {
    let sets: [([(name: String, tensor: SafeTensors.Tensor)], [String: String])] = [
        ([("a", SafeTensors.Tensor([0, 0.5, 1, 1.5, 2, 2.5] as [Float], shape: [2, 3])),
          ("b", SafeTensors.Tensor([1, -2, 3, 4] as [Int32], shape: [4]))], ["k": "v"]),
        ([("scalar", SafeTensors.Tensor([2.5] as [Float], shape: [])), ("empty", SafeTensors.Tensor([Float](), shape: [0, 3])),
          ("c", SafeTensors.Tensor([1, 2] as [Float], shape: [1, 2]))], [:]),
        ([], ["only": "metadata"]),
    ]
    return sets.map { try! SafeTensors.encode($0.0, metadata: $0.1) }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    do {
        let (tensors, _) = try SafeTensors.decode(fuzzBytes(data, size), path: "input")
        for (name, tensor) in tensors {
            let elements = tensor.shape.reduce(1, *)
            require(tensor.bytes.count == elements * 4, "tensor \(name) shape \(tensor.shape), \(tensor.bytes.count) bytes")
            require((tensor.dtype == .f32 ? tensor.floats?.count : tensor.int32s?.count) == elements, "tensor \(name) values")
        }
    } catch {
        require(error.path == "input" && !error.problem.isEmpty, "error \(error)")
    }
    return 0
}
