import ArgumentParser

// Placeholder: filled in by the issue that owns `baton generate`.
struct Generate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Not implemented yet.")
    func run() async throws { throw ValidationError("baton generate is not implemented yet") }
}
