/// A 2-D tensor of `B.Element`, `shape.rows x shape.cols`, row-major and contiguous, living in
/// the memory of backend `B` (host memory for the CPU backend, a device buffer for OpenCL).
///
/// A tensor is a handle: copies share the same storage, and backend ops write into tensors
/// that the caller allocated once (no allocation in the training loop). Being generic over the
/// backend, a CPU tensor cannot be handed to the OpenCL backend by mistake.
public struct Tensor<B: PrimitiveBackend> {
    public let shape: Shape
    public let storage: B.Storage

    public init(shape: Shape, storage: B.Storage) {
        self.shape = shape
        self.storage = storage
    }

    public var rows: Int { shape.rows }
    public var cols: Int { shape.cols }
    public var count: Int { shape.count }
}

/// Tensors laid out one after another in the memory of one tensor, `whole` [1, n]: an op on
/// `whole` is that op on every part at once, in one launch (one update for all of a model's
/// weights). Each part starts where the backend lets a tensor start; the gaps between parts
/// are zeros that no op on a part writes (an elementwise op on zeros keeps them zero).
public struct TensorGroup<B: PrimitiveBackend> {
    public let whole: Tensor<B>
    public let parts: [Tensor<B>]
    /// Where each part starts in `whole`, in elements.
    public let offsets: [Int]

    public init(whole: Tensor<B>, parts: [Tensor<B>], offsets: [Int]) {
        self.whole = whole
        self.parts = parts
        self.offsets = offsets
    }

    /// Where each of `shapes` starts, in elements, when every start is a multiple of
    /// `alignment` elements; and the whole's element count.
    public static func layout(_ shapes: [Shape], alignment: Int) -> (offsets: [Int], count: Int) {
        var offsets: [Int] = [], end = 0
        for shape in shapes {
            let start = (end + alignment - 1) / alignment * alignment
            offsets.append(start)
            end = start + shape.count
        }
        return (offsets, end)
    }
}

/// A labelled data set kept on the backend as raw bytes, as the IDX files store it:
/// pixels `[count, features]` UInt8 and labels `[count]` UInt8 in `0..<classes`.
/// Batches are gathered from it (and scaled to `pixel / 255`) on the backend itself.
public struct ExampleSet<B: PrimitiveBackend> {
    public let count: Int
    public let features: Int
    public let classes: Int
    public let storage: B.ExampleStorage

    public init(count: Int, features: Int, classes: Int, storage: B.ExampleStorage) {
        self.count = count
        self.features = features
        self.classes = classes
        self.storage = storage
    }
}

/// A list of example indices on the backend: the order in which batches visit an `ExampleSet`.
/// Its smallest index and one past its largest are kept on the host, so a batch can be checked
/// against the example count without reading device memory.
public struct IndexList<B: PrimitiveBackend> {
    public let count: Int
    /// One more than the largest index (0 when empty).
    public let bound: Int
    /// The smallest index (0 when empty).
    public let minimum: Int
    public let storage: B.IndexStorage

    /// The list of `indices`, whose copy on the backend is `storage`.
    public init(_ indices: [Int32], storage: B.IndexStorage) {
        count = indices.count
        bound = Int(indices.max() ?? -1) + 1
        minimum = Int(indices.min() ?? 0)
        self.storage = storage
    }
}
