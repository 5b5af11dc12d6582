import Foundation
import Synchronization

/// SIGINT (Ctrl-C) or SIGTERM, once received: training finishes the batch it is on, saves, says
/// where it stopped and exits 128 + the signal (130, 143). A second signal says so in one line
/// and ends the process at once, with the same exit code.
enum Signals {
    /// Routes SIGINT and SIGTERM to the flag below, and unblocks them: a process started from
    /// a thread that blocks them (as dispatch and Swift concurrency threads do) inherits that
    /// mask, and a blocked signal would never arrive.
    static func install() {
        _ = secondSignalMessage.count   // made here: the handler may not allocate
        signal(SIGINT, recordSignal)
        signal(SIGTERM, recordSignal)
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGINT)
        sigaddset(&set, SIGTERM)
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
    }

    /// The signal received, or 0.
    static var received: Int32 { receivedSignal.load(ordering: .relaxed) }
}

/// Written only by the handler, read by the training loop between batches; an atomic, so the
/// read and the handler's write never tear (lock-free, so safe in a signal handler).
private let receivedSignal = Atomic<Int32>(0)

/// The second signal's line, prepared before any handler can run.
private let secondSignalMessage: [UInt8] =
    Array("deriv8-gpu: second interrupt: stopping now; the last checkpoint written stays as it was\n".utf8)

private func recordSignal(_ signal: Int32) {
    let (exchanged, _) = receivedSignal.compareExchange(expected: 0, desired: signal, ordering: .relaxed)
    if !exchanged {
        // Second request: the user means it. write and _exit are async-signal-safe.
        secondSignalMessage.withUnsafeBytes { _ = write(STDERR_FILENO, $0.baseAddress, $0.count) }
        _exit(128 + signal)
    }
}
