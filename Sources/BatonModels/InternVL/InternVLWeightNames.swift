import BatonTensor
import Foundation

/// How an InternVL checkpoint names its tensors, and the one naming Baton reads them in: the
/// vision side as transformers names it (`vision_tower.*`, `multi_modal_projector.*`), the
/// language model as a Llama-family decoder (`model.*`, `lm_head.weight`).
///
/// On disk: OpenGVLab's original (`vision_model.*`, `mlp1.{0,1,3}.*`, `language_model.model.*`,
/// `language_model.lm_head.weight`, fused `attn.qkv`); the `-hf` releases (`vision_tower.*`,
/// `multi_modal_projector.*`, `language_model.model.*`); transformers 5's `save_pretrained`
/// (`model.vision_tower.*`, `model.multi_modal_projector.*`, `model.language_model.*`, `lm_head.weight`).
public enum InternVLWeightNames: Sendable, Equatable {
    case original
    case transformers

    /// The naming of a checkpoint's tensor names, told by the patch embedding's name.
    public static func detect(in names: [String]) throws -> InternVLWeightNames {
        let known = Set(names)
        if known.contains("vision_model.embeddings.patch_embedding.weight") { return .original }
        for prefix in ["", "model."]
        where known.contains(prefix + "vision_tower.embeddings.patch_embeddings.projection.weight") {
            return .transformers
        }
        throw BatonError.invalidModel(
            "no InternViT in the checkpoint: neither vision_model.embeddings.patch_embedding.weight nor "
                + "vision_tower.embeddings.patch_embeddings.projection.weight is present")
    }

    /// Whether the attention's q, k and v are one `qkv` tensor (the original) or three.
    public var fusedQKV: Bool { self == .original }

    /// Baton's name for the checkpoint tensor `name`.
    public func batonName(_ name: String) -> String {
        var name = Substring(name)
        for (from, to) in [
            ("model.language_model.", "model."), ("language_model.model.", "model."),
            ("language_model.lm_head.", "lm_head."), ("model.vision_tower.", "vision_tower."),
            ("model.multi_modal_projector.", "multi_modal_projector.")
        ] where name.hasPrefix(from) {
            name = Substring(to) + name.dropFirst(from.count)
            break
        }
        guard self == .original else { return String(name) }
        if name.hasPrefix("mlp1.") {
            let rest = name.dropFirst("mlp1.".count)
            let module = ["0": "layer_norm", "1": "linear_1", "3": "linear_2"][String(rest.prefix { $0 != "." })]
            return module.map { "multi_modal_projector." + $0 + rest.drop { $0 != "." } } ?? String(name)
        }
        guard name.hasPrefix("vision_model.") else { return String(name) }
        var vision = String(name.dropFirst("vision_model.".count))
        for (from, to) in [
            ("embeddings.class_embedding", "embeddings.cls_token"),
            ("embeddings.patch_embedding.", "embeddings.patch_embeddings.projection."),
            ("embeddings.position_embedding", "embeddings.position_embeddings"),
            ("encoder.layers.", "encoder.layer.")
        ] where vision.hasPrefix(from) {
            vision = to + vision.dropFirst(from.count)
        }
        for (from, to) in [
            (".attn.qkv.", ".attention.qkv."), (".attn.proj.", ".attention.projection_layer."),
            (".ls1", ".lambda_1"), (".ls2", ".lambda_2"), (".norm1.", ".layernorm_before."),
            (".norm2.", ".layernorm_after.")
        ] {
            vision = vision.replacingOccurrences(of: from, with: to)
        }
        return "vision_tower." + vision
    }
}
