// BatonModels: Hugging Face checkpoints used as they are, one folder per model family.
//
// - Config/: `ModelConfig` parses config.json (transformers 4.x and 5.x layouts); `ModelPreset`
//   holds the papers' model shapes for random-weight speed runs; rotary frequencies.
// - Loading/: `SafetensorsFile` / `SafetensorsCheckpoint` memory-map and validate the weights
//   (tensors are host views of the mapping); `WeightLoader` checks names and shapes and uploads.
// - `ForwardPass`: the per-pass state a model's layers read (positions, strategy, cache, timer).
// - Llama/: the Llama-family decoder (Llama 3.x, Yi, Mistral, Qwen2) through the `Backend` op
//   set, with attention delegated to an `AttentionStrategy`; fused projections; Locret's
//   retaining heads, which APB uses to pick passing blocks.
// - The tokenizer (tokenizer.json BPE, chat templates) is its own module, BatonTokenizer.
import BatonTensor
