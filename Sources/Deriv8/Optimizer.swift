import Foundation
import GPUTensor

/// How parameters are updated from their gradients.
public enum OptimizerKind: String, CaseIterable, Codable, Sendable {
    /// Plain gradient descent, θ -= lr · dθ (the reference).
    case sgd
    /// Heavy-ball momentum: v = μ·v + dθ; θ -= lr · v.
    case momentum
    /// Adam (Kingma and Ba) with bias correction.
    case adam

    /// The learning rate used when none is given: the reference's 0.1, Adam's usual 0.001.
    public var defaultLearningRate: Double { self == .adam ? 0.001 : 0.1 }
}

/// The optimiser's settings; the defaults are the usual ones.
public struct OptimizerConfig: Codable, Sendable, Equatable {
    public var kind = OptimizerKind.sgd
    public var momentum = 0.9
    public var beta1 = 0.9
    public var beta2 = 0.999
    public var epsilon = 1e-8

    public init() {}
}

/// The update rule and its state (velocities, or Adam's moments), on the backend. The state is
/// laid out like the model's parameter groups (one update op per group: all weights, then all
/// biases), and is saved and restored with a checkpoint per parameter, in `MLP.parameters` order.
public final class Optimizer<B: Backend> {
    public let config: OptimizerConfig
    /// The step size of the next updates: the trainer sets each epoch's from the schedule.
    public var learningRate: Double
    /// Updates done so far (Adam's t).
    public internal(set) var step = 0
    /// For the weights and for the biases: [] for SGD, [velocity] for momentum, [m, v] for Adam;
    /// zeros at first.
    private let weightState, biasState: [TensorGroup<B>]

    public init(config: OptimizerConfig, learningRate: Double, model: MLP<B>) throws {
        self.config = config
        self.learningRate = learningRate
        let count = config.kind == .sgd ? 0 : config.kind == .momentum ? 1 : 2
        weightState = try (0..<count).map { _ in try model.backend.makeTensorGroup(MLP<B>.weightShapes(model.sizes)) }
        biasState = try (0..<count).map { _ in try model.backend.makeTensorGroup(MLP<B>.biasShapes(model.sizes)) }
    }

    /// The state's groups with their parts' checkpoint names: (["momentum.w1", ...], weights'
    /// velocities), or Adam's (["adam.m.w1", ...], ...), (["adam.v.w1", ...], ...), then the biases'.
    public func namedStateGroups(_ model: MLP<B>) -> [(names: [String], group: TensorGroup<B>)] {
        [("w", weightState), ("b", biasState)].flatMap { kind, groups in
            groups.enumerated().map { index, group in
                let prefix = config.kind == .momentum ? "momentum" : index == 0 ? "adam.m" : "adam.v"
                return ((1...model.layerCount).map { "\(prefix).\(kind)\($0)" }, group)
            }
        }
    }

    /// The state's tensors with their checkpoint names, layer by layer: "momentum.w1",
    /// "momentum.b1", ... or "adam.m.w1", "adam.v.w1", "adam.m.b1", "adam.v.b1", ...
    public func namedState(_ model: MLP<B>) -> [(name: String, tensor: Tensor<B>)] { layerMajor(namedStateGroups(model)) }

    /// Applies one update to every parameter from the gradients in `ws`: one op for all the
    /// weights, one for all the biases.
    public func update(_ model: MLP<B>, gradients ws: Workspace<B>) throws {
        step += 1
        let be = model.backend
        let lr = B.Element(learningRate)
        for (parameters, gradients, state) in [(model.weights, ws.weightGradients, weightState),
                                               (model.biases, ws.biasGradients, biasState)] {
            let (w, g) = (parameters.whole, gradients.whole)
            switch config.kind {
            case .sgd:
                try be.scaledAdd(-lr, g, into: w)
            case .momentum:
                try be.momentumStep(w, gradient: g, velocity: state[0].whole, learningRate: lr,
                                    momentum: B.Element(config.momentum))
            case .adam:
                let t = Double(step)
                try be.adamStep(w, gradient: g, m: state[0].whole, v: state[1].whole,
                                learningRate: lr, beta1: B.Element(config.beta1), beta2: B.Element(config.beta2),
                                epsilon: B.Element(config.epsilon),
                                correction1: B.Element(1 / (1 - pow(config.beta1, t))),
                                correction2: B.Element(1 / (1 - pow(config.beta2, t))))
            }
        }
    }
}
