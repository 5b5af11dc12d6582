import CBuildInfo

/// `deriv8-gpu --version`: the release and the git commit the binary was built from (written by
/// `make build`, which also touches this file so that a new commit is compiled in).
enum Version {
    static let release = "0.1.0"
    static var commit: String { String(cString: deriv8_commit()) }
    static var description: String { "deriv8-gpu \(release) (commit \(commit))" }
}
