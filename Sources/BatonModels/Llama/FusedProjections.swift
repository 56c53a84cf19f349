import BatonTensor
import Foundation

/// Projections that read the same input and, on a device, are loaded as one weight whose row
/// blocks are the parts (biases likewise), so that they make one GEMM: q/k/v (`[(H + 2 Hkv) d, D]`,
/// split and RoPE'd by `Backend.rotaryQKV`) and gate/up (`[2F, D]`, read by
/// `siluMultiplyHalves`). A wider GEMM runs closer to the tensor cores' peak than its parts
/// (the narrow k and v ran at ~600 TFLOP/s on an H100, the q/k/v one at ~750; bench/RESULTS.md).
/// The CPU reference keeps every projection apart.
struct ProjectionFusion {
    /// Parts in row order, as they appear in checkpoint names (`model.layers.N.<part>.weight`).
    let parts: [String]
    /// The fused tensor's name in their place.
    let fused: String
    /// The setting that turns this fusion off (`BATON_FUSE_QKV=0`, `BATON_FUSE_GATE_UP=0`: A/B runs).
    let isOn: @Sendable (BatonSettings) -> Bool

    static let qkv = ProjectionFusion(
        parts: ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"],
        fused: "self_attn.qkv_proj", isOn: { $0.fuseQKV })
    static let gateUp = ProjectionFusion(
        parts: ["mlp.gate_proj", "mlp.up_proj"], fused: "mlp.gate_up_proj",
        isOn: { $0.fuseGateUp })

    /// Whether this fusion applies on `backend`: on a device, unless its setting is off.
    func applies(on backend: any Backend) -> Bool {
        backend.device != .cpu && isOn(BatonSettings.current)
    }

    /// For `name` = `prefix<part>.<suffix>`: the fused tensor's name and the part's index.
    func match(_ name: String) -> (fusedName: String, part: Int)? {
        for (index, part) in parts.enumerated() {
            if let range = name.range(of: "." + part + ".") {
                return (name.replacingCharacters(in: range, with: "." + fused + "."), index)
            }
        }
        return nil
    }
}

/// Loads every spec through `loader`, writing the parts of the active `fusions` into their fused
/// tensors; each part passes through one temporary of its own size, so peak memory grows by one
/// part, never by a copy of the model.
func loadFusingProjections(
    specs: [WeightSpec], loader: WeightLoader, fusions: [ProjectionFusion],
    backend: any Backend
) throws -> [String: Tensor] {
    let specsByName = Dictionary(specs.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
    var loaded: [String: Tensor] = [:]
    for spec in specs {
        guard
            let (fusion, (fusedName, partIndex)) = fusions.lazy
                .compactMap({ fusion in fusion.match(spec.name).map { (fusion, $0) } }).first
        else {
            loaded[spec.name] = try loader.load(spec)
            continue
        }
        // Row counts of this tensor's siblings: the same name with each part in place of this one's.
        let rowsOfParts = try fusion.parts.map { part -> Int in
            let sibling = spec.name.replacingOccurrences(
                of: "." + fusion.parts[partIndex] + ".", with: "." + part + ".")
            guard let siblingSpec = specsByName[sibling] else {
                throw BatonError.invalidArgument(
                    "loading \(spec.name): its fused sibling \(sibling) is not in the weight list")
            }
            return siblingSpec.shape.rows
        }
        if loaded[fusedName] == nil {
            loaded[fusedName] = try backend.empty(
                spec.shape.withRows(rowsOfParts.reduce(0, +)),
                dtype: backend.activationDType)
        }
        let start = rowsOfParts[..<partIndex].reduce(0, +)
        let destination = loaded[fusedName]!.rows(start..<start + rowsOfParts[partIndex])
        let part = try loader.load(spec)
        try backend.copy(
            part.dtype == destination.dtype ? part : backend.cast(part, to: destination.dtype),
            into: destination)
    }
    return loaded
}
