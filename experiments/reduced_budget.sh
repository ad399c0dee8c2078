#!/usr/bin/env bash
# The reduced-budget runs behind results/RESULTS.md, on local
# Fashion-MNIST IDX files (MNIST's format and protocols). Usage:
#   bash experiments/reduced_budget.sh DATA_DIR ROOT
set -euo pipefail
DATA=${1:?folder of Fashion-MNIST IDX files}
ROOT=${2:-runs/reduced}
COMMON=(--set=data.name=idx "--set=data.path=$DATA" --set=train.num_epochs=10
        --set=train.progress_bar=False --set=eval.iw_samples=100
        --set=eval.iw_num_examples=1000)
python -m experiments.run_sweep --sweep=configs/sweeps/fig3.py --root="$ROOT/fig3" "${COMMON[@]}"
python -m experiments.run_sweep --sweep=configs/sweeps/table4.py --root="$ROOT/table4" "${COMMON[@]}" \
  --where=model.num_layers=1 --where=model.hidden_dim=500 --where=model.epitome_size=4
