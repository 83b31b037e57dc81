#!/usr/bin/env bash
# Runs caasd's whole test suite on a fresh machine: installs what the tests
# talk to (redis-server, coturn, the npm socket.io-client), then runs every
# Go test with the race detector and each fuzz target for a short time.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v turnserver >/dev/null || need+=(coturn)
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y "${need[@]}" || { apt-get update && apt-get install -y "${need[@]}"; }
fi

if [ -f transport/socketio/testdata/client/package.json ]; then
  npm ci --no-audit --no-fund --prefix transport/socketio/testdata/client
fi

go mod download
go vet ./...
go test -race -count=1 -timeout 25m ./...

# Fuzz every decoder of client input for a fixed number of inputs. A
# count, not a duration: with -fuzztime=10s Go 1.26's fuzz coordinator can
# report its own deadline as a failure (golang/go#75804).
for target in $(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u); do
  for fz in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$target"/*_test.go | sed 's/^func //'); do
    go test -run='^$' -fuzz="^${fz}\$" -fuzztime=60000x "$target"
  done
done
