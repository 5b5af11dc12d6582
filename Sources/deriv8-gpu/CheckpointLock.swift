import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An advisory lock (`flock`) on `PATH.lock`, beside the checkpoint a run saves to, held for as
/// long as the run: a second run saving to the same file is refused and told which process holds
/// it, instead of both finishing and the last writer silently winning. The lock file holds the
/// holder's process id and is removed when the run ends (a run killed outright leaves it behind,
/// harmlessly: the lock died with its process).
final class CheckpointLock {
    let path: String
    private let descriptor: Int32

    init(_ checkpoint: String) throws {
        path = checkpoint + ".lock"
        var attempts = 0
        while true {
            let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
            guard descriptor >= 0 else {
                throw SaveError(message: "\(path): cannot create the lock file: \(String(cString: strerror(errno)).lowercased())")
            }
            guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
                let holder = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
                close(descriptor)
                throw SaveError(message: "\(checkpoint) is being written by another run (process \(holder.isEmpty ? "unknown" : holder), lock \(path)); wait for it, or save elsewhere")
            }
            // The holder before us removes the file as it finishes: a lock on a file no longer
            // at `path` protects nothing, so open the path again.
            var held = stat(), named = stat()
            if fstat(descriptor, &held) == 0, stat(path, &named) == 0, held.st_ino == named.st_ino, held.st_dev == named.st_dev {
                self.descriptor = descriptor
                break
            }
            close(descriptor)
            attempts += 1
            guard attempts < 10 else { throw SaveError(message: "\(path): the lock file keeps changing; another run is starting or ending") }
        }
        let pid = "\(getpid())\n"
        _ = ftruncate(descriptor, 0)
        _ = pid.withCString { write(descriptor, $0, strlen($0)) }
    }

    deinit {
        // Removed while still held, so that no other run locks the file being removed.
        unlink(path)
        flock(descriptor, LOCK_UN)
        close(descriptor)
    }
}
