import ArgumentParser

// Placeholder: filled in by the issue that owns `baton eval`.
struct Eval: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Not implemented yet.")
    func run() async throws { throw ValidationError("baton eval is not implemented yet") }
}
