#!/usr/bin/env bash
# The main job on one machine: two nodes on loopback mirror a web folder
# both ways (creates, edits, renames, deletes), one of them snapshots it to
# a local repository, and the operator restores the snapshot and verifies
# the repository.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$PWD/bin
DEMO=${DEMO_DIR:-$(mktemp -d /tmp/syncd-demo.XXXXXX)}
mkdir -p "$DEMO"
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null' EXIT

# until CMD succeeds, at most 30 s
until_ok() {
  for _ in $(seq 300); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "timed out: $*" >&2; return 1
}
freeport() {
  local p
  while :; do
    p=$((20000 + RANDOM % 20000))
    (echo >/dev/tcp/127.0.0.1/$p) 2>/dev/null || { echo $p; return; }
  done
}

say "sample content on web1 in $DEMO/web1/www"
W1=$DEMO/web1/www W2=$DEMO/web2/www
mkdir -p "$W1/wp-content/uploads/2026/11" "$W1/wp-includes" "$W2"
for i in $(seq 1 200); do printf '<?php // file %d\n%s\n' "$i" "$(head -c 2000 /dev/zero | tr '\0' 'x')" > "$W1/wp-includes/f$i.php"; done
head -c 3000000 /dev/urandom > "$W1/wp-content/uploads/2026/11/photo.jpg"
ln -sf wp-content/uploads "$W1/uploads"
echo '<?php echo "hello";' > "$W1/index.php"

say "keys: the operator's data identity (kept off the nodes) and the nodes' index key"
"$BIN/syncd" keygen "$DEMO/data.key" > "$DEMO/data.pub"
echo "data recipient: $(cat "$DEMO/data.pub")"
"$BIN/syncd" init --repo "$DEMO/repo" --index-key "$DEMO/index.key" --data-recipient "$(cat "$DEMO/data.pub")"

say "node identities (TLS keys in each node's state_dir)"
for n in web1 web2; do
  printf 'node: {name: %s, state_dir: %s}\n' $n "$DEMO/$n/state" > "$DEMO/$n/id.yaml"
  declare "ID_$n=$("$BIN/syncd" id --config "$DEMO/$n/id.yaml")"
  echo "$n: $(eval echo \$ID_$n)"
done
P1=$(freeport) H1=$(freeport) P2=$(freeport) H2=$(freeport)
conf() { # name listen http peer peer-id peer-port
  cat <<YAML
node:
  name: $1
  state_dir: $DEMO/$1/state
  listen: 127.0.0.1:$2
  http: 127.0.0.1:$3
peers:
  - {name: $4, id: $5, address: "127.0.0.1:$6"}
folders:
  - id: www
    path: $DEMO/$1/www
    mode: send-receive
    peers: [$4]
    ignore: ["wp-content/cache/**"]
repository:
  url: $DEMO/repo
  index_key: $DEMO/index.key
  data_recipients: [$(cat "$DEMO/data.pub")]
YAML
}
conf web1 "$P1" "$H1" web2 "$ID_web2" "$P2" > "$DEMO/web1/syncd.yaml"
conf web2 "$P2" "$H2" web1 "$ID_web1" "$P1" > "$DEMO/web2/syncd.yaml"

say "two nodes on loopback: syncd run (logs in $DEMO/web*/syncd.log)"
"$BIN/syncd" run --config "$DEMO/web1/syncd.yaml" > "$DEMO/web1/syncd.log" 2>&1 & pids+=($!)
"$BIN/syncd" run --config "$DEMO/web2/syncd.yaml" > "$DEMO/web2/syncd.log" 2>&1 & pids+=($!)
same() { diff -r --no-dereference -x .syncd-folder "$W1" "$W2"; }  # each node has its own folder marker
until_ok same && echo "web2 has web1's tree"

say "an edit on web2 reaches web1"
echo '<?php echo "hello from web2";' > "$W2/index.php"
until_ok grep -q web2 "$W1/index.php" && cat "$W1/index.php"
say "a rename and a delete on web1 reach web2 (the rename moves no content)"
mv "$W1/wp-content/uploads/2026/11/photo.jpg" "$W1/wp-content/uploads/2026/11/beach.jpg"
rm "$W1/wp-includes/f1.php"
until_ok same && ls "$W2/wp-content/uploads/2026/11"

say "status of web1"
"$BIN/syncd" status --config "$DEMO/web1/syncd.yaml"

say "a snapshot from web1's index (web1 holds only the index key and the recipient)"
"$BIN/syncd" snapshot --config "$DEMO/web1/syncd.yaml"

export SYNCD_REPO=$DEMO/repo SYNCD_INDEX_KEY=$DEMO/index.key
say "snapshots"
"$BIN/restore" snapshots
say "browse the latest snapshot"
"$BIN/restore" ls latest "$W1/wp-content"

say "restore with the operator's data identity, then compare"
"$BIN/restore" latest --identity "$DEMO/data.key" --target "$DEMO/restored"
diff -r --no-dereference -x .syncd-folder "$W1" "$DEMO/restored$W1" && echo "restored tree equals web1's folder"

say "verify every pack, blob by blob"
"$BIN/restore" verify --identity "$DEMO/data.key" --read-data
echo
echo "demo files are in $DEMO"
