#!/usr/bin/env bash
# The main job on local defaults: keys, a repository, two snapshots of a
# sample web tree (the second reads only what changed), a listing, a
# restore verified byte for byte against the source, and a repository check.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$PWD/bin
DEMO=${DEMO_DIR:-$(mktemp -d /tmp/syncd-demo.XXXXXX)}
mkdir -p "$DEMO"
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "sample content in $DEMO/www"
mkdir -p "$DEMO/www/wp-content/uploads/2026/11" "$DEMO/www/wp-includes"
for i in $(seq 1 200); do printf '<?php // file %d\n%s\n' "$i" "$(head -c 2000 /dev/zero | tr '\0' 'x')" > "$DEMO/www/wp-includes/f$i.php"; done
head -c 3000000 /dev/urandom > "$DEMO/www/wp-content/uploads/2026/11/photo.jpg"
ln -sf wp-content/uploads "$DEMO/www/uploads"
echo '<?php echo "hello";' > "$DEMO/www/index.php"

say "keys: the operator's data identity (kept off the nodes) and the nodes' index key"
"$BIN/syncd" keygen "$DEMO/data.key" > "$DEMO/data.pub"
echo "data recipient: $(cat "$DEMO/data.pub")"
"$BIN/syncd" init --repo "$DEMO/repo" --index-key "$DEMO/index.key" --data-recipient "$(cat "$DEMO/data.pub")"

export SYNCD_REPO=$DEMO/repo SYNCD_INDEX_KEY=$DEMO/index.key
say "first snapshot (a web node holds only the index key and the recipient)"
"$BIN/syncd" snapshot --tag demo "$DEMO/www"
echo '<?php echo "hello, again";' > "$DEMO/www/index.php"
say "second snapshot after one edit: only the changed file is read"
"$BIN/syncd" snapshot --tag demo "$DEMO/www"

say "snapshots"
"$BIN/restore" snapshots
say "browse the latest snapshot"
"$BIN/restore" ls latest "$DEMO/www/wp-content"

say "restore with the operator's data identity, then compare"
"$BIN/restore" latest --identity "$DEMO/data.key" --target "$DEMO/restored"
diff -r --no-dereference "$DEMO/www" "$DEMO/restored$DEMO/www" && echo "restored tree equals the source"

say "verify every pack, blob by blob"
"$BIN/restore" verify --identity "$DEMO/data.key" --read-data
echo
echo "demo files are in $DEMO"
