import ArgumentParser
import BatonEngine
import BatonModels
import BatonTensor
import Foundation

struct Inspect: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a model's architecture, parameter count, dtype and context length.")

    @OptionGroup var modelOptions: ModelOptions

    func run() async throws {
        try runReportingErrors {
            let directory = try modelOptions.directory()
            let preflight = try ModelPreflight(directory: directory)
            let checkpoint = try SafetensorsCheckpoint(directory: directory)
            print(
                ModelSummary(
                    config: preflight.config, checkpoint: checkpoint, directory: directory,
                    visionLanguage: preflight.visionLanguageConfig
                ).text)
        }
    }
}
