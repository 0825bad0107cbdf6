#!/usr/bin/env bash
# Distributed training: bash tools/dist_train.sh CONFIG GPUS [train.py options]
exec bash "$(dirname "$0")/dist_launch.sh" train.py "$2" "$1" --launcher pytorch "${@:3}"
