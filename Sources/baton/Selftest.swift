import ArgumentParser

// Placeholder: filled in by the issue that owns `baton selftest`.
struct Selftest: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Not implemented yet.")
    func run() async throws { throw ValidationError("baton selftest is not implemented yet") }
}
