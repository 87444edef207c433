#!/usr/bin/env bash
# The GPU checks of issue 16 in one script (prints one JSON object per part, then a summary line).
#
#   bash bench/gpu.sh              # on a machine with a CUDA device (DEVICE=cuda:0 by default)
#   DEVICE=cpu SMOKE=1 bash bench/gpu.sh   # a quick run of the same code paths on the CPU (checks the script)
#
# Parts and goals:
#   1. explain: bench/explain.py on $DEVICE at batch 1 and 64 (B-cos ResNet-18/50, 224²): our batched explanation
#      against the `bcos` package's explain() loop; goal ≥ 10× at batch 64.
#   2. train:   bench/train.py (its GPU section runs when CUDA is available): guided step images/s and peak memory,
#      fp32 and bf16, per layer.
#   3. one-click demo: a fresh data dir with the demo project, then the one-click fine-tune exactly as a user runs it
#      (`python app.py --data-dir D --device $DEVICE train --project demo --json`), wall seconds; goal ≤ 10 s.
# No code path names a device: every tensor follows its model's (core/explain, core/train), so DEVICE is the only
# switch.
set -euo pipefail
cd "$(dirname "$0")/.."
DEVICE="${DEVICE:-cuda:0}"
SMOKE="${SMOKE:-0}"
OUT="${OUT:-$(mktemp -d)}"
mkdir -p "$OUT"
echo "{\"bench\": \"gpu\", \"device\": \"$DEVICE\", \"out\": \"$OUT\"}"

if [ "$SMOKE" = "1" ]; then
  EXPLAIN_ARGS=(--device "$DEVICE" --batches 1 2 --models resnet18 --size 64 --quick --threads 2)
  TRAIN_FLAGS=(--epochs 1 --max-steps-per-epoch 2)
  DEMO_CONFIG="SyntheticConfig(train_size=128, val_size=32, test_size=32)"
else
  EXPLAIN_ARGS=(--device "$DEVICE" --batches 1 64 --models resnet18 resnet50 --quick)
  TRAIN_FLAGS=()
  DEMO_CONFIG="SyntheticConfig()"
fi

# 1. explanation throughput against the bcos explain() loop
python bench/explain.py "${EXPLAIN_ARGS[@]}" | tee "$OUT/explain.json"

# 2. guided training step (the GPU section needs CUDA; on the CPU this part is skipped)
if python -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  python bench/train.py --quick | tee "$OUT/train.json"
else
  echo '{"bench": "train", "skipped": "no CUDA device"}' | tee "$OUT/train.json"
fi

# 3. the one-click demo fine-tune on a fresh data dir
DATA="$OUT/data"
python - "$DATA" <<PY
import sys
from pathlib import Path
from core.data import SyntheticConfig
from services.database import open_store
from services.demo import create_demo_project
from services.settings import Settings
settings = Settings(data_dir=Path(sys.argv[1]), device="cpu")
create_demo_project(open_store(settings), settings, config=$DEMO_CONFIG)
PY
START=$(date +%s.%N)
python app.py --data-dir "$DATA" --device "$DEVICE" train --project demo --json "${TRAIN_FLAGS[@]}" \
  > "$OUT/one_click.out" 2> "$OUT/one_click.log"
END=$(date +%s.%N)
python - "$OUT/one_click.out" "$START" "$END" "$DEVICE" <<'PY'
import json, sys
out = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
seconds = float(sys.argv[3]) - float(sys.argv[2])
print(json.dumps({"bench": "one_click_demo", "device": sys.argv[4], "wall_s": round(seconds, 2), "goal_s": 10.0,
                  "status": out["status"], "trainer_s": out["seconds"],
                  "before": {k: out["before"][k] for k in ("accuracy", "worst_group_accuracy", "epg")},
                  "after": {k: out["after"][k] for k in ("accuracy", "worst_group_accuracy", "epg")}}))
PY
