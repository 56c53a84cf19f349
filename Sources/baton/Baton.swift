import ArgumentParser

@main
struct Baton: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "baton",
        abstract: "Long-context LLM inference across GPUs with APB and Spava sequence parallelism.",
        subcommands: [Generate.self, Serve.self, Inspect.self, Selftest.self, Bench.self, Eval.self],
        defaultSubcommand: Generate.self)
}
