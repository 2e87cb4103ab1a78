# Sourced by the scripts that run on a GPU machine: unpacks the pack that
# scripts/gpu_pack.sh made ($PACK) into a fresh folder $W (bin/, lib/, data/)
# and puts its libraries, CUDA's and pip's cuBLAS on LD_LIBRARY_PATH.
W=$(mktemp -d)
tar -C "$W" -xJf "$PACK" || exit 1
export LD_LIBRARY_PATH="$W/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
for d in $(python3 -c 'import nvidia, os; print(" ".join(os.path.join(p, "cublas", "lib") for p in nvidia.__path__))' 2>/dev/null); do
  LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$d"
done
