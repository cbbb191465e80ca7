#!/usr/bin/env bash
# Fuzz the C runtime's .esg validation + inference with libFuzzer (clang, ASan, UBSan).
#
#   benchmarks/fuzz_esg.sh [SECONDS] [RUNS]      defaults: 120 s, 1,000,000 executions
#
# Seeds: valid models from edgesnn.graph.synth.random_graph (written once into
# firmware/fuzz/corpus/ when it is empty). New inputs are found in a scratch corpus and merged
# back into firmware/fuzz/corpus/ (-max_len keeps files small). Any crash leaves a reproducer
# in $OUT (default: build/fuzz) and makes this script exit non-zero.
# Prints one summary line: executions, exec/s, corpus files, crashes.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SECONDS_BUDGET="${1:-120}"
RUNS="${2:-1000000}"
OUT="${OUT:-$ROOT/build/fuzz}"
CORPUS="$ROOT/firmware/fuzz/corpus"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
CLANG="${CLANG:-clang}"
MAX_LEN=2048
mkdir -p "$OUT/scratch" "$CORPUS"

if [ -z "$(ls -A "$CORPUS" 2>/dev/null)" ]; then
  "$PY" - "$CORPUS" <<'PYEOF'
import sys
from pathlib import Path
from edgesnn.graph import esg
from edgesnn.graph.synth import random_graph
out = Path(sys.argv[1])
k = 0
for enc in ("rate", "latency", "direct"):
    for storage, bits in (("dense", 8), ("sparse", 4), ("dense", 4), ("sparse", 8)):
        g = random_graph(k, input_size=12, hidden=(6,), n_classes=3, steps=4, encoder=enc,
                         storage=storage, weight_bits=bits, per_neuron=bool(k % 2),
                         neuron="if" if k % 3 == 0 else "lif",
                         reset="zero" if k % 2 else "subtract",
                         density=0.5 if storage == "sparse" else 1.0)
        (out / f"seed_{enc}_{storage}_int{bits}.esg").write_bytes(esg.encode(g))
        k += 1
print(f"wrote {k} seed models to {out}")
PYEOF
fi

"$CLANG" -std=c99 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
  -DESNN_MAX_LAYERS=255 -DESNN_MAX_CLASSES=255 -I"$ROOT/firmware/runtime" \
  "$ROOT"/firmware/runtime/esnn_model.c "$ROOT"/firmware/runtime/esnn_infer.c \
  "$ROOT"/firmware/runtime/esnn_crc.c "$ROOT"/firmware/runtime/esnn_status.c \
  "$ROOT/firmware/fuzz/fuzz_esg.c" -o "$OUT/fuzz_esg"

LOG="$OUT/fuzz.log"
set +e
"$OUT/fuzz_esg" "$OUT/scratch" "$CORPUS" -max_len=$MAX_LEN -max_total_time="$SECONDS_BUDGET" \
  -runs="$RUNS" -timeout=10 -rss_limit_mb=1024 -print_final_stats=1 \
  -artifact_prefix="$OUT/" >"$LOG" 2>&1
RC=$?
set -e
# The kept corpus becomes the minimal set of inputs covering every feature seen (seeds stay).
rm -rf "$OUT/merged" && mkdir -p "$OUT/merged"
if "$OUT/fuzz_esg" -merge=1 -max_len=$MAX_LEN "$OUT/merged" "$CORPUS" "$OUT/scratch" >>"$LOG" 2>&1; then
  find "$CORPUS" -type f ! -name 'seed_*' -delete
  find "$OUT/merged" -type f -size -$((MAX_LEN + 1))c -exec cp {} "$CORPUS/" \;
fi
rm -rf "$OUT/merged" "$OUT/scratch"
EXECS=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$LOG" | grep -o '[0-9]*$' | head -1 || true)
RATE=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$LOG" | grep -o '[0-9]*$' | head -1 || true)
CRASHES=$(find "$OUT" -maxdepth 1 \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' \) | wc -l)
echo "fuzz_esg: executions=${EXECS:-0} exec_per_s=${RATE:-0} corpus_files=$(ls "$CORPUS" | wc -l) crashes=$CRASHES exit=$RC"
[ "$RC" -eq 0 ] && [ "$CRASHES" -eq 0 ]
