import ArgumentParser
import BatonEngine
import Foundation

@main
struct Baton: AsyncParsableCommand {
    /// The version `baton --version` prints.
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "baton",
        abstract: "Long-context LLM inference across GPUs with APB and Spava sequence parallelism.",
        version: version,
        subcommands: [Generate.self, Serve.self, Inspect.self, Selftest.self, Bench.self, Eval.self, Models.self],
        defaultSubcommand: Generate.self)

    /// `baton WORD ...` where WORD is no command is an error: without this check it would fall
    /// through to the default command (`baton serve --help` printed generate's help).
    static func main() async {
        let arguments = Array(CommandLine.arguments.dropFirst())
        if let first = arguments.first, let error = unknownCommandError(first) {
            standardError("baton: \(error)\n")
            Foundation.exit(ExitCode.validationFailure.rawValue)
        }
        await main(nil)
    }

    /// The error for a first argument that is neither an option nor a command, else nil.
    static func unknownCommandError(_ first: String) -> String? {
        let commands = configuration.subcommands.map { $0._commandName }
        guard !first.hasPrefix("-"), !commands.contains(first), first != "help" else { return nil }
        return
            "unknown command '\(first)'; the commands are \(commands.joined(separator: ", ")) (generate is the default: baton --prompt TEXT)"
    }
}
