import ArgumentParser

@main
struct Deriv8GPU: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deriv8-gpu",
        abstract: "Train a multilayer perceptron on MNIST from scratch, on OpenCL or on the CPU.",
        discussion: """
            The default job trains the reference network (784-32-32-10, ReLU, softmax, \
            cross-entropy + L2, plain SGD, lr 0.1, batch 500, 20 epochs) and prints one line per epoch.

            Examples:
              deriv8-gpu train --epochs 5 --seed 1
              deriv8-gpu train --train-limit 5000 --test-limit 1000 --json
              deriv8-gpu gradcheck

            Exit codes: 0 success; 64 bad flags or values; 1 runtime failure (unreadable data, \
            a failed gradient check).
            """,
        subcommands: [Train.self, GradCheck.self],
        defaultSubcommand: Train.self)
}
