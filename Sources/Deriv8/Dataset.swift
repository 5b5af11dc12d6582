/// The data sets in MNIST's format that the trainer knows by name.
public enum DatasetKind: String, CaseIterable, Codable, Sendable {
    case mnist
    /// Zalando's Fashion-MNIST: the same format and sizes, clothing instead of digits.
    case fashionMNIST = "fashion-mnist"

    /// Where the data is unless --data says otherwise: `make datasets` fills datasets/mnist;
    /// Debian's dataset-fashion-mnist package installs Fashion-MNIST system-wide.
    public var defaultFolder: String {
        switch self {
        case .mnist: return "datasets/mnist"
        case .fashionMNIST: return "/usr/share/datasets/fashion-mnist"
        }
    }

    /// The ten class names, by label.
    public var classNames: [String] {
        switch self {
        case .mnist: return (0...9).map(String.init)
        case .fashionMNIST:
            return ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
        }
    }
}
