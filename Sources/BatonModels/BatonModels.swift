// BatonModels: Hugging Face checkpoints used as they are.
//
// - `ModelConfig` parses config.json (transformers 4.x and 5.x layouts); `ModelPreset` holds
//   the papers' model shapes for random-weight speed runs.
// - `SafetensorsFile` / `SafetensorsCheckpoint` memory-map and validate the weights; tensors are
//   host views of the mapping.
// - `LlamaModel` runs the Llama-family decoder (Llama 3.x, Yi, Mistral, Qwen2) through the
//   `Backend` op set, with attention delegated to an `AttentionStrategy`.
// - `RetainingHeads` are Locret's scorers that APB uses to pick passing blocks.
// - Tokenizer/ holds tokenizer.json BPE and chat templates.
import BatonTensor
