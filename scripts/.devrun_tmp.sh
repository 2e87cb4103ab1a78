#!/usr/bin/env bash
# temporary: session's device call
cd "$(dirname "$0")/.."
PACK=.devpack/pack.tar.xz
echo "== tests"; T0=$(date +%s)
MEMCHECK=0 timeout 150 scripts/gpu_check.sh $PACK 2>&1 | grep -v "^\[ cuda \]" | grep -E "FAIL|PASSED|Failure|expected|Which|actual" | head -20
echo "tests took $(( $(date +%s) - T0 )) s"
source scripts/gpu_unpack.sh
T0=$(date +%s)
timeout 200 compute-sanitizer --tool memcheck --leak-check no --print-limit 6 "$W/bin/kvsieve_tests" --gtest_filter='Cuda.Attention*:Cuda.Decode*:Cuda.Fused*:*ApiBatch*/cuda:*CudaModels*llama3_bf16*' > $OUT/mc.log 2>&1
echo "memcheck rc $? in $(( $(date +%s) - T0 )) s"
grep -E "^\[ RUN|^========= (Invalid|Program hit|Error|    at |    by )|ERROR SUMMARY|FAILED" $OUT/mc.log | grep -B1 -A4 "^=========\|FAILED" | head -30
M=/tmp/llama8b-shape
T0=$(date +%s)
[ -f $M/config.json ] || python3 scripts/gpu_bench/make_shape_model.py --out $M > /dev/null 2>&1
echo "model made in $(( $(date +%s) - T0 )) s"
KV="$W/bin/kvsieve"
timeout 150 "$KV" bench -m $M --device cuda -p 16 -n 64 -d 0,8192,32768 -r 3 --kv-type bf16 -b 2048 2>&1 | grep decode
timeout 120 "$KV" run -m $M --device cuda --ids $M/ids_32768.npy -n 64 --ignore-eos --kv-type bf16 -b 2048 --kv snapkv --kv-budget 1024 2>&1 | grep -v "^$" | tail -4
timeout 100 "$KV" bench -m $M --device cuda -p 8192,32768 -n 1 -d 0 -r 2 --kv-type bf16 -b 2048 2>&1 | grep prefill
timeout 180 ncu --clock-control none --kernel-name regex:"attention_merge|rmsnorm|rope|add|swiglu|kv_append" --metrics gpu__time_duration.sum --print-summary per-kernel "$KV" bench -m $M --device cuda -p 16 -n 2 -d 1024 -r 1 --kv-type bf16 -b 2048 > $OUT/ncu.txt 2>&1
echo "ncu rc $?"; grep -v "^==PROF==" $OUT/ncu.txt | grep -E "^  [a-z]|duration" | sed 's/(const.*) (/ (/' | tail -40
