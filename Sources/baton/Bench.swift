import ArgumentParser

// Placeholder: filled in by the issue that owns `baton bench`.
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Not implemented yet.")
    func run() async throws { throw ValidationError("baton bench is not implemented yet") }
}
