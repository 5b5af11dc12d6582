import CPUHints
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Worker threads for the CPU kernels' parallel loops: one per core besides the caller's.
///
/// Why not `DispatchQueue.concurrentPerform`: a training step has a few parallel loops of tens
/// to hundreds of microseconds each, and Dispatch's idle workers sleep, so a woken worker
/// joins a short loop too late to take any of it. These workers spin on an atomic for a short
/// while after each loop (the next one usually follows within that time), then sleep on a
/// condition variable, as OpenMP runtimes and BLAS libraries do. Spinners yield the core every
/// few dozen pauses, so that a worker the scheduler put on the caller's core does not hold it.
/// The measurements behind this are in docs/PERFORMANCE.md, "figures behind the code".
///
/// `run` hands out task indices; tasks must be independent. Results do not depend on which
/// thread ran which task, so they are the same on any core count.
public final class WorkerPool: @unchecked Sendable {
    /// The process-wide pool, started on first use.
    public static let shared = WorkerPool(workers: Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))) - 1)

    /// Threads besides the caller's.
    public let workerCount: Int

    /// The current loop in one word, so a worker can never take a task of a loop it did not
    /// see start: generation (20 bits) | task count (22 bits) | next task index (22 bits).
    private let ticket = Atomic<Int>(0)
    /// Tasks of the current loop that have returned.
    private let finished = Atomic<Int>(0)
    /// Workers asleep, or about to be: the caller wakes them when this is not 0.
    private let sleepers = Atomic<Int>(0)
    /// Whether a `run` is in progress; a second caller meanwhile runs its loop by itself.
    private let busy = Atomic<Bool>(false)
    /// The current loop's body. Written by the caller before the loop's ticket is published and
    /// only read by a thread that has claimed one of its tasks, so never while being written.
    private nonisolated(unsafe) var body: ((Int) -> Void)?
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let wake = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    private static let indexBits = 22, countBits = 22
    private static let indexMask = (1 << indexBits) - 1
    private static let countMask = (1 << countBits) - 1
    private static let generationShift = indexBits + countBits
    /// How long an idle worker spins before it sleeps.
    private static let spinDuration = Duration.microseconds(300)

    init(workers: Int) {
        workerCount = max(workers, 0)
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(wake, nil)
        for _ in 0..<workerCount { startThread() }
    }

    /// Calls `body(i)` for every i in 0..<iterations, spread over the caller and the workers;
    /// returns when all have returned.
    public func run(iterations: Int, _ body: (Int) -> Void) {
        precondition(iterations <= Self.countMask, "too many tasks for one loop")
        guard iterations > 1, workerCount > 0,
              busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
            for i in 0..<iterations { body(i) }
            return
        }
        withoutActuallyEscaping(body) { body in
            self.body = body
            finished.store(0, ordering: .relaxed)
            let generation = ((ticket.load(ordering: .relaxed) >> Self.generationShift) + 1) & ((1 << 20) - 1)
            // Sequentially consistent, like the sleepers count: a worker going to sleep either
            // sees this loop's ticket or is counted in `sleepers` here (no lost wake-up).
            ticket.store(generation << Self.generationShift | iterations << Self.indexBits, ordering: .sequentiallyConsistent)
            if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
                pthread_mutex_lock(mutex)
                pthread_cond_broadcast(wake)
                pthread_mutex_unlock(mutex)
            }
            work(generation: generation)
            var spins = 0
            while finished.load(ordering: .acquiring) < iterations {
                spin_pause()
                spins += 1
                if spins % 64 == 0 { sched_yield() }   // the worker we wait for may share this core
            }
            self.body = nil
        }
        busy.store(false, ordering: .releasing)
    }

    /// Claims and runs tasks of loop `generation` until none is left (or a newer loop started).
    private func work(generation: Int) {
        var current = ticket.load(ordering: .acquiring)
        while current >> Self.generationShift == generation {
            let index = current & Self.indexMask
            let count = (current >> Self.indexBits) & Self.countMask
            guard index < count else { return }
            let (exchanged, original) = ticket.compareExchange(expected: current, desired: current + 1,
                                                               ordering: .acquiringAndReleasing)
            if exchanged {
                body!(index)
                finished.add(1, ordering: .releasing)
                current = ticket.load(ordering: .acquiring)
            } else {
                current = original
            }
        }
    }

    private func workerLoop() {
        var seen = ticket.load(ordering: .acquiring) >> Self.generationShift
        let clock = ContinuousClock()
        while true {
            var idleSince = clock.now
            var spins = 0
            while true {
                let generation = ticket.load(ordering: .acquiring) >> Self.generationShift
                if generation != seen {
                    work(generation: generation)
                    seen = generation
                    idleSince = clock.now
                    continue
                }
                spin_pause()
                spins += 1
                if spins % 64 == 0 {
                    if clock.now - idleSince > Self.spinDuration { break }
                    // If the scheduler put this thread on the caller's core, let the caller run.
                    sched_yield()
                }
            }
            // Sleep until a new loop starts. The generation is checked again under the mutex, and
            // the caller broadcasts under it after publishing, so no wake-up is lost.
            sleepers.add(1, ordering: .sequentiallyConsistent)
            pthread_mutex_lock(mutex)
            while ticket.load(ordering: .sequentiallyConsistent) >> Self.generationShift == seen {
                pthread_cond_wait(wake, mutex)
            }
            pthread_mutex_unlock(mutex)
            sleepers.subtract(1, ordering: .sequentiallyConsistent)
        }
    }

    private func startThread() {
        let context = Unmanaged.passRetained(self).toOpaque()
        #if canImport(Darwin)
        var thread: pthread_t?
        #else
        var thread = pthread_t()
        #endif
        let created = pthread_create(&thread, nil, { context in
            Unmanaged<WorkerPool>.fromOpaque(context!).takeUnretainedValue().workerLoop()
            return nil
        }, context)
        precondition(created == 0, "could not start a worker thread (error \(created))")
        pthread_detach(thread)
    }
}
