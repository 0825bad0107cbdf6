#!/usr/bin/env bash
# Distributed training on a Slurm cluster, one task per GPU (or per CPU process):
#   bash tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [train.py options]
# Environment: GPUS (tasks in all, default 8), GPUS_PER_NODE (default 8; 0 on CPU-only
# nodes: no --gres, processes talk over gloo), CPUS_PER_TASK (default 4), SRUN_ARGS, PYTHON.
exec bash "$(dirname "$0")/slurm_launch.sh" train.py "$1" "$2" "$3" --work-dir "$4" "${@:5}"
