#!/usr/bin/env bash
# Installs Garage (https://garagehq.deuxfleurs.fr), the peer store
# bench/compare.sh measures Shoal against, from its crate on crates.io.
# Run it on purpose: it is never part of Shoal's build or CI. It compiles
# Garage from source (about 30 minutes on 2 cores) into
# $SHOAL_PEERS_DIR/garage (default /var/tmp/shoal-peers/garage).
#
# usage: bench/peers/install-garage.sh [VERSION]     (default 2.5.0)
set -euo pipefail
version=${1:-2.5.0}
root=${SHOAL_PEERS_DIR:-/var/tmp/shoal-peers}/garage
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR_PEERS:-/var/tmp/shoal-peers/target}
mkdir -p "$root"
cargo install garage --version "$version" --locked --root "$root"
"$root/bin/garage" --version
echo "installed: $root/bin/garage"
