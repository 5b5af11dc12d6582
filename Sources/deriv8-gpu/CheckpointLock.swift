import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An advisory lock (`flock`) on `PATH.lock`, beside the checkpoint a run saves to, held for as
/// long as the run: a second run saving to the same file is refused and told which process holds
/// it, instead of both finishing and the last writer silently winning. The lock file holds the
/// holder's process id; it stays in place afterwards (removing it would race with a run that is
/// just taking it), and a stale one is harmless: the lock dies with its process.
final class CheckpointLock {
    let path: String
    private let descriptor: Int32

    init(_ checkpoint: String) throws {
        path = checkpoint + ".lock"
        descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw SaveFolderError(message: "\(path): cannot create the lock file: \(String(cString: strerror(errno)).lowercased())")
        }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            let holder = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
            close(descriptor)
            throw SaveFolderError(message: "\(checkpoint) is being written by another run (process \(holder.isEmpty ? "unknown" : holder), lock \(path)); wait for it, or save elsewhere")
        }
        let pid = "\(getpid())\n"
        _ = ftruncate(descriptor, 0)
        _ = pid.withCString { write(descriptor, $0, strlen($0)) }
    }

    deinit {
        flock(descriptor, LOCK_UN)
        close(descriptor)
    }
}
