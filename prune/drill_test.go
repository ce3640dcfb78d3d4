package prune

import (
	"context"
	"testing"
	"time"

	"github.com/syncd/syncd/chunkstore"
	"github.com/syncd/syncd/chunkstore/backend"
)

// Prune (with repack) and verify leave the drill records alone: they are
// neither garbage to delete nor objects verify does not know. The daemons
// read them to tell whether a drill is overdue.
func TestPruneLeavesDrillRecords(t *testing.T) {
	ctx := context.Background()
	dir, k := history(t, 6)
	r := open(t, localBackend(t, dir), k, true)
	id, err := r.SaveDrill(ctx, &chunkstore.Drill{Time: time.Now().UTC(), Host: "ops", OK: true,
		Snapshots: []chunkstore.DrillSnapshot{{Host: "web0", Files: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	const stray = chunkstore.DrillPrefix + "not-a-record"
	if err := backend.SaveBytes(ctx, r.Backend(), stray, []byte("x")); err != nil {
		t.Fatal(err)
	}
	forgetOldest(t, r, 4)
	st, err := Run(ctx, r, Options{Repack: true})
	if err != nil {
		t.Fatal(err)
	}
	if st.PacksDeleted+st.PacksRewritten == 0 {
		t.Fatalf("the prune changed no pack: %+v", *st)
	}
	check(t, dir, k)
	if d, err := r.LoadDrill(ctx, id); err != nil || !d.OK {
		t.Errorf("the drill record after prune: %+v, %v", d, err)
	}
	if _, err := r.Backend().Stat(ctx, stray); err != nil {
		t.Errorf("the stray object under drills/ after prune: %v", err)
	}
}
