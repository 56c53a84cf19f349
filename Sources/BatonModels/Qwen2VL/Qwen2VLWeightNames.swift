import BatonTensor

/// Where a Qwen2.5-VL checkpoint keeps its two halves. Released checkpoints (and transformers
/// 4.52-4.57's `save_pretrained`) use `visual.*` and `model.*`; transformers 5 saves
/// `model.visual.*` and `model.language_model.*`. `lm_head.weight` is the same in both (absent
/// when tied, as in the 3B).
public struct Qwen2VLWeightNames: Sendable, Equatable {
    /// Prefix of the vision tower's tensors: `visual.` or `model.visual.`.
    public let visualPrefix: String
    /// Prefix of the language model's tensors (`embed_tokens`, `layers`, `norm`): `model.` or
    /// `model.language_model.`.
    public let languagePrefix: String

    public static let released = Qwen2VLWeightNames(visualPrefix: "visual.", languagePrefix: "model.")
    public static let transformers5 = Qwen2VLWeightNames(
        visualPrefix: "model.visual.",
        languagePrefix: "model.language_model.")

    /// The naming `names` (a checkpoint's tensor names) use, told by the patch embedding's name.
    public static func detect(in names: [String]) throws -> Qwen2VLWeightNames {
        let known = Set(names)
        for naming in [released, transformers5] where known.contains(naming.visualPrefix + "patch_embed.proj.weight") {
            return naming
        }
        throw BatonError.invalidModel(
            "no vision tower in the checkpoint: neither visual.patch_embed.proj.weight nor "
                + "model.visual.patch_embed.proj.weight is present")
    }

    /// The Llama-family name of a checkpoint tensor (the inverse of `language`); vision tensors keep theirs.
    public func batonName(_ fileName: String) -> String {
        fileName.hasPrefix(languagePrefix) ? "model." + fileName.dropFirst(languagePrefix.count) : fileName
    }

    /// The checkpoint's name for the language-model tensor Baton calls `name` (Llama naming:
    /// `model.layers.0.self_attn.q_proj.weight`, `lm_head.weight`).
    public func language(_ name: String) -> String {
        name.hasPrefix("model.") ? languagePrefix + name.dropFirst("model.".count) : name
    }
}
