import Foundation

/// SIGINT (Ctrl-C) or SIGTERM, once received: training finishes the batch it is on, saves, says
/// where it stopped and exits 128 + the signal (130, 143). A second signal ends the process at once.
enum Signals {
    /// Routes SIGINT and SIGTERM to the flag below, and unblocks them: a process started from
    /// a thread that blocks them (as dispatch and Swift concurrency threads do) inherits that
    /// mask, and a blocked signal would never arrive.
    static func install() {
        signal(SIGINT, recordSignal)
        signal(SIGTERM, recordSignal)
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGINT)
        sigaddset(&set, SIGTERM)
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
    }

    /// The signal received, or 0.
    static var received: Int32 { receivedSignal }
}

/// Written only by the handler (an aligned 32-bit store, safe in a signal handler), read by the
/// training loop between batches.
nonisolated(unsafe) private var receivedSignal: Int32 = 0

private func recordSignal(_ signal: Int32) {
    if receivedSignal != 0 {
        // Second request: the user means it. Default action, re-raised (both async-signal-safe).
        Foundation.signal(signal, SIG_DFL)
        raise(signal)
        return
    }
    receivedSignal = signal
}
