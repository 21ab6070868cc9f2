#!/usr/bin/env bash
# The CUDA figures in one short run, for a machine with an NVIDIA GPU and PyTorch (about 5 minutes on one H200):
# full GAN steps of the paper networks at 128 px, batch 32, as images/s and peak GPU memory, for fp32 eager, bf16
# autocast, and bf16 + torch.compile (each in its own process); then 20 steps of the tiny preset through torchrun
# and DDP with NCCL, one process per GPU, and a resume of the checkpoint rank 0 wrote.
# Needs torch, torchvision, numpy, scikit-learn, matplotlib, pillow, scipy, tqdm and (for the command line)
# pytorch-fid. Wheels in ./.whl are installed first, for a machine that cannot download: beforehand, where pip
# works, `pip download --no-deps pytorch-fid==0.3.0 -d .whl`. Run from anywhere:
#     bash bench/gpu_check.sh            # logs to $OUT when that is set, else to ./gpu_check/
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
if compgen -G '.whl/*.whl' >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl
    export PYTHONPATH=$PYTHONPATH:/tmp/site
fi
logs=${OUT:-gpu_check}; mkdir -p "$logs"; run=$(mktemp -d)
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch; print('torch', torch.__version__, 'CUDA', torch.version.cuda, torch.cuda.get_device_name())"
python3 bench/step.py --compare --device cuda --size 128 --batch 32 --steps 20 --untimed 5 \
    --modes eager bf16 compile_bf16 2>&1 | tee "$logs/step_cuda_128_b32.log"
gpus=$(python3 -c "import torch; print(torch.cuda.device_count())")
python3 -m torch.distributed.run --nproc_per_node="$gpus" -m tunit_nb.cli train --data digits --preset tiny \
    --warmup-iters 10 --iters 20 --device cuda --no-eval --out "$run/ddp" 2>&1 | tee "$logs/ddp_train.log"
python3 -m tunit_nb.cli train --data digits --out "$run/ddp" --resume --iters 24 --device cuda --no-eval 2>&1 | tee "$logs/ddp_resume.log"
