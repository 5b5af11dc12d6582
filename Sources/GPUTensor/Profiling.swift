/// A backend that can time its kernels: on the device from OpenCL profiling events, or on the
/// CPU as each op's wall time.
public protocol ProfilingBackend: AnyObject {
    /// Starts (or stops) recording one event per kernel launch.
    func setProfiling(_ enabled: Bool)
    /// Forgets what was recorded so far (after a warm-up).
    func resetProfile()
    /// Waits for queued work, then sums the recorded kernels' device times by kernel, longest first.
    func profile() throws -> [KernelProfile]
}

public struct KernelProfile: Sendable {
    public let kernel: String
    public let count: Int
    public let totalSeconds: Double
}
