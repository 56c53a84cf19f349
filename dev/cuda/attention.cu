// Development versions of the flash attention kernel, not embedded in the binary: appended to
// Sources/BatonCUDA/Kernels/attention.cu when BATON_DEV_KERNELS names this folder, so
// `baton selftest` checks them and `baton selftest --bench-attention` times them beside the shipped
// v3 (AttentionKernel.flashVersions lists them then). What each bought is in bench/RESULTS.md; v3
// won on the H100, so only v3 ships.
// v2: 8 warps x 16 rows, one block per SM (192 registers).
BATON_FLASH(flash_attention_d64, 64, 8, 1, 64, false, 1)
BATON_FLASH(flash_attention_d128, 128, 8, 1, 64, false, 1)
// v4: 8 warps x 32 rows (256-row blocks, one per SM): each K/V tile read from L2 serves twice the rows.
BATON_FLASH(flash4_attention_d64, 64, 8, 2, 64, false, 1)
BATON_FLASH(flash4_attention_d128, 128, 8, 2, 64, false, 1)
// v5: v3 with the next slice's fragments loaded before this slice's MMAs (two register sets).
BATON_FLASH(flash5_attention_d64, 64, 4, 2, 64, true, 2)
BATON_FLASH(flash5_attention_d128, 128, 4, 2, 64, true, 2)
// v6: v5 with 32-key tiles, which frees the registers the prefetch needs.
BATON_FLASH(flash6_attention_d64, 64, 4, 2, 32, true, 2)
BATON_FLASH(flash6_attention_d128, 128, 4, 2, 32, true, 2)
