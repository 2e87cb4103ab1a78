#!/usr/bin/env bash
# temporary: session's device call
cd "$(dirname "$0")/.."
PACK=.devpack/pack.tar.xz
echo "== tests"; T0=$(date +%s)
MEMCHECK=0 timeout 150 scripts/gpu_check.sh $PACK 2>&1 | grep -v "^\[ cuda \]" | grep -E "FAIL|PASSED|Failure|expected|Which|actual|rows at ties" | head -20
echo "tests took $(( $(date +%s) - T0 )) s"
source scripts/gpu_unpack.sh
T0=$(date +%s)
timeout 200 compute-sanitizer --tool memcheck --leak-check no --print-limit 6 "$W/bin/kvsieve_tests" --gtest_filter='Cuda.Select*:Cuda.Decode*:*CudaModels*EveryMethod*llama3_bf16*:*CudaModels*EveryMethod*qwen2_f32*' > $OUT/mc.log 2>&1
echo "memcheck rc $? in $(( $(date +%s) - T0 )) s"
grep -E "^\[ RUN|^========= (Invalid|Program hit|Error|    at |    by )|ERROR SUMMARY|FAILED" $OUT/mc.log | grep -B1 -A4 "^=========\|FAILED" | head -30
M=/tmp/llama8b-shape
T0=$(date +%s)
python3 scripts/gpu_bench/make_shape_model.py --out $M --lengths 8192,32768,131072 > /dev/null 2>&1
echo "model made in $(( $(date +%s) - T0 )) s"
KV="$W/bin/kvsieve"
for v in 64 128 128p; do echo "flash $v"; KVSIEVE_FLASH=$v timeout 100 "$KV" bench -m $M --device cuda -p 8192,32768 -n 1 -d 0 -r 2 --kv-type bf16 -b 2048 2>&1 | grep prefill; done
timeout 60 "$KV" judgeq-init -m $M --ids $M/ids_8192.npy --count 32 -o /tmp/soft.gguf 2>&1 | tail -1
timeout 150 "$KV" bench -m $M --device cuda -p 32768 -n 1 -d 0 -r 1 --kv-type bf16 -b 2048 --budget 1024 --methods snapkv,pyramidkv,adakv,laq++,judgeq:soft=/tmp/soft.gguf 2>&1 | grep -E "prefill|cut|peak"
echo "== end to end: 32K + snapkv 1024 + 256 tokens"
T0=$(date +%s.%N)
timeout 120 "$KV" run -m $M --device cuda --ids $M/ids_32768.npy -n 256 --ignore-eos --kv-type bf16 -b 2048 --kv snapkv --kv-budget 1024 2>&1 | grep "^kvsieve:" 
echo "wall incl. load $(echo "$(date +%s.%N) - $T0" | bc) s"
echo "== 128K"
(while sleep 0.5; do nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits; done) > $OUT/mem128.txt &
SAMP=$!
timeout 200 "$KV" run -m $M --device cuda --ids $M/ids_131072.npy -n 8 --ignore-eos --kv-type bf16 -b 2048 2>&1 | grep "^kvsieve:"
kill $SAMP; echo "peak MiB $(sort -n $OUT/mem128.txt | tail -1)"
timeout 120 ncu --clock-control none --kernel-name regex:flash --launch-skip 96 --launch-count 1 --section SpeedOfLight --section Occupancy --section WarpStateStats --section LaunchStats "$KV" run -m $M --device cuda --ids $M/ids_8192.npy -n 1 --kv-type bf16 -b 2048 > $OUT/ncu_flash.txt 2>&1
grep -v "^==PROF==" $OUT/ncu_flash.txt | grep -E "Throughput|Duration|Occupancy|Registers|Stall|Warp Cycles|Issued|Shared Memory|Block Limit" | head -40
