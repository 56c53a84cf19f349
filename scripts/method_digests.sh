#!/usr/bin/env bash
# Greedy text (hex of the first 48 bytes) of dense, APB (default and keep-everything budgets) and
# Spava on 2 ranks for one fixed 1,581-token prompt on tiny-llama, to compare devices:
#   scripts/method_digests.sh cpu        scripts/method_digests.sh cuda
# BATON names the binary (default: baton on PATH).
set -euo pipefail
device=${1:?usage: scripts/method_digests.sh cpu|cuda}
root=$(cd "$(dirname "$0")/.." && pwd)
baton=${BATON:-baton}
prompt=$(mktemp)
trap 'rm -f "$prompt"' EXIT
python3 -c "
import random
random.seed(1)
words = 'the quick brown fox jumps over a lazy dog while seven bright stars watch quietly from far above'.split()
print(' '.join(random.choice(words) for _ in range(700)))" > "$prompt"
run() {
    "$baton" generate --model "$root/Tests/Fixtures/tiny-llama" --prompt-file "$prompt" --max-tokens 16 --device "$device" "$@" \
        2>/dev/null | od -An -tx1 | tr -d ' \n' | head -c 96
    echo "  $*"
}
run --method dense
run --method apb --ranks 2
run --method apb --ranks 2 --passing-length 4096
run --method spava --ranks 2
