#!/usr/bin/env bash
# Runs a tool on GPUS processes per node with torch.distributed.run (what dist_train.sh and
# dist_test.sh call): bash tools/dist_launch.sh SCRIPT GPUS [SCRIPT arguments]
# NNODES, NODE_RANK, PORT, MASTER_ADDR and PYTHON may be set in the environment.
# Without CUDA the GPUS processes run on CPUs over gloo. Each process gets cores / GPUS torch
# threads unless OMP_NUM_THREADS is set (torchrun alone would give each one thread).
SCRIPT=$1
GPUS=$2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
ROOT="$(dirname "$0")/.."
PYTHON=${PYTHON:-"$ROOT/.venv/bin/python"}
if [ -z "${OMP_NUM_THREADS:-}" ]; then
    CORES=$(nproc)
    export OMP_NUM_THREADS=$(( CORES / GPUS > 0 ? CORES / GPUS : 1 ))
fi

PYTHONPATH="$ROOT:$PYTHONPATH" \
"$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" --node_rank="$NODE_RANK" --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$GPUS" --master_port="$PORT" \
    "$ROOT/tools/$SCRIPT" "${@:3}"
