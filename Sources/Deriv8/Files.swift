#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// File access shared by every reader: a path must name a regular file (a directory, a FIFO or
// a device is refused, so nothing blocks or never ends), and no file is read past a limit.

/// The size of the regular file at `path`, or an error naming what it is instead.
func regularFileSize(_ path: String) throws(DataFileError) -> Int {
    var info = stat()
    guard stat(path, &info) == 0 else {
        throw DataFileError(path: path, problem: String(cString: strerror(errno)).lowercased())
    }
    guard (info.st_mode & S_IFMT) == S_IFREG else {
        throw DataFileError(path: path, problem: (info.st_mode & S_IFMT) == S_IFDIR ? "is a directory, expected a file" : "is not a regular file")
    }
    return Int(info.st_size)
}

/// The bytes of the regular file at `path`, refusing more than `limit` bytes; `kind` names what
/// the file should be in the message ("a PGM image").
func readRegularFile(_ path: String, limit: Int, kind: String) throws(DataFileError) -> [UInt8] {
    let size = try regularFileSize(path)
    guard size <= limit else {
        throw DataFileError(path: path, problem: "file is \(size) bytes, more than the \(limit >> 20) MiB accepted for \(kind)")
    }
    guard let file = fopen(path, "rb") else {
        throw DataFileError(path: path, problem: "cannot open: \(String(cString: strerror(errno)).lowercased())")
    }
    defer { fclose(file) }
    // The size from stat is only a hint (the file may change under us): read until the end,
    // but never past the limit.
    var bytes: [UInt8] = []
    bytes.reserveCapacity(size + 1)
    let chunk = 1 << 16
    while true {
        let before = bytes.count
        guard before <= limit else {
            throw DataFileError(path: path, problem: "more than \(limit >> 20) MiB of data; not \(kind)")
        }
        bytes.append(contentsOf: repeatElement(0, count: chunk))
        let got = bytes.withUnsafeMutableBytes { fread($0.baseAddress! + before, 1, chunk, file) }
        bytes.removeLast(chunk - got)
        if got == 0 { break }
    }
    guard ferror(file) == 0 else {
        throw DataFileError(path: path, problem: "read error: \(String(cString: strerror(errno)).lowercased())")
    }
    return bytes
}

/// Whether `path` names a directory (following links); false when it does not exist.
func isDirectory(_ path: String) -> Bool {
    var info = stat()
    return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
}
