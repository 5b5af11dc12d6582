import Foundation

/// How the step size changes over a run, epoch by epoch (every batch of an epoch uses the
/// epoch's rate, so a run resumed inside an epoch continues with the same rate).
///
/// For epoch e = 1, 2, ... of E epochs, base rate r and W warm-up epochs:
///   warm-up   (e <= W)   r · e / (W + 1)                  (linear: r/(W+1), 2r/(W+1), ..., then r)
///   constant             r
///   step                 r · γ^⌊(e - W - 1) / S⌋          (multiplied by γ every S epochs)
///   cosine               r · (1 + cos(π (e - W - 1) / (E - W))) / 2   (from r towards 0 at epoch E + 1)
public struct LearningRateSchedule: Codable, Sendable, Equatable {
    public enum Kind: String, CaseIterable, Codable, Sendable {
        case constant, step, cosine
    }

    public var kind = Kind.constant
    /// W: epochs of linear warm-up before the schedule proper.
    public var warmupEpochs = 0
    /// S: epochs between the step schedule's multiplications.
    public var stepEpochs = 10
    /// γ: the step schedule's factor.
    public var gamma = 0.1

    public init() {}

    public init(kind: Kind, warmupEpochs: Int = 0, stepEpochs: Int = 10, gamma: Double = 0.1) {
        (self.kind, self.warmupEpochs, self.stepEpochs, self.gamma) = (kind, warmupEpochs, stepEpochs, gamma)
    }

    /// The rate of epoch `epoch` (1-based) of `epochs`, from the base rate `base`.
    public func rate(base: Double, epoch: Int, epochs: Int) -> Double {
        if epoch <= warmupEpochs { return base * Double(epoch) / Double(warmupEpochs + 1) }
        let after = epoch - warmupEpochs - 1   // epochs since the warm-up ended
        switch kind {
        case .constant:
            return base
        case .step:
            return base * pow(gamma, Double(after / max(stepEpochs, 1)))
        case .cosine:
            let span = max(epochs - warmupEpochs, 1)
            return base * (1 + cos(Double.pi * Double(min(after, span)) / Double(span))) / 2
        }
    }

    /// One line for headers: "constant", "step ×0.1 every 10 epochs, 2 warm-up epochs", ...
    public var summary: String {
        var text: String
        switch kind {
        case .constant: text = "constant"
        case .step: text = "step ×\(gamma) every \(stepEpochs) epochs"
        case .cosine: text = "cosine"
        }
        if warmupEpochs > 0 { text += ", \(warmupEpochs) warm-up epoch\(warmupEpochs == 1 ? "" : "s")" }
        return text
    }
}
