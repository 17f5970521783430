#!/usr/bin/env bash
# Regenerates the gRPC stubs in assay_client/_proto/ from proto/assay.proto.
#
#   python/scripts/generate.sh [OUT_DIR]
#
# Needs grpcio-tools (`python3 -m pip install grpcio-tools`). OUT_DIR
# defaults to python/assay_client/_proto; the tests generate into a temporary
# folder and compare, so commit what this writes whenever assay.proto changes.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
out="${1:-$repo/python/assay_client/_proto}"
python="${PYTHON:-python3}"
if ! "$python" -c 'import grpc_tools' 2>/dev/null; then
  echo "generate.sh: grpcio-tools is missing: run \`$python -m pip install grpcio-tools\`" >&2
  exit 2
fi
mkdir -p "$out"
"$python" -m grpc_tools.protoc -I"$repo/proto" \
  --python_out="$out" --pyi_out="$out" --grpc_python_out="$out" \
  "$repo/proto/assay.proto"
# protoc writes `import assay_pb2`, which only works with the folder on
# sys.path; inside the package the import must be relative.
sed -i.bak 's/^import assay_pb2 as assay__pb2$/from . import assay_pb2 as assay__pb2/' "$out/assay_pb2_grpc.py"
rm -f "$out/assay_pb2_grpc.py.bak"
