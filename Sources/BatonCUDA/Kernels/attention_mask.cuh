// The attention masks of Backend.attention (AttentionMask in BatonTensor/Attention.swift is the
// same rule in Swift), shared by attention.cu and attention_hopper.cu (KernelSources pastes this
// file where they include it). maskKind: 0 full; 1 bottom-right causal (row i sees key j iff
// j <= i + Sk - Sq); 2 APB anchor: causal, and rows < anchorLength also skip keys < passingLength.
__device__ __forceinline__ bool attention_allowed(int row, int key, int Sq, int Sk, int maskKind, int anchorLength,
                                                  int passingLength) {
    if (key >= Sk) return false;
    if (maskKind == 0) return true;
    if (maskKind == 2 && row < anchorLength && key < passingLength) return false;
    return key <= row + (Sk - Sq);
}
