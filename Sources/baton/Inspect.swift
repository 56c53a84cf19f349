import ArgumentParser

// Placeholder: filled in by the issue that owns `baton inspect`.
struct Inspect: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Not implemented yet.")
    func run() async throws { throw ValidationError("baton inspect is not implemented yet") }
}
