package chunkstore

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestDrillRecords(t *testing.T) {
	ctx := context.Background()
	tr := initLocal(t, InitOptions{})
	r := tr.openNoSession(t)
	d := &Drill{Time: time.Now().UTC().Truncate(time.Second), Host: "ops", OK: true, Seconds: 2.5,
		Snapshots: []DrillSnapshot{{Host: "web1", Paths: []string{"/var/www"}, Files: 3, Bytes: 100, AgeSeconds: 60}}}
	if _, err := r.SaveDrill(ctx, d); !errors.Is(err, ErrNoSession) {
		t.Fatalf("SaveDrill outside a session: %v, want ErrNoSession", err)
	}
	sess, err := r.BeginWrite(ctx, WriteOptions{NoIndex: true})
	if err != nil {
		t.Fatal(err)
	}
	id, err := r.SaveDrill(ctx, d)
	sess.Close()
	if err != nil {
		t.Fatal(err)
	}
	ids, err := r.DrillIDs(ctx)
	if err != nil || len(ids) != 1 || ids[0] != id {
		t.Fatalf("DrillIDs = %v, %v; want [%s]", ids, err, id)
	}
	got, err := r.LoadDrill(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Time.Equal(d.Time) || !got.OK || got.Host != "ops" || len(got.Snapshots) != 1 || got.Snapshots[0].Files != 3 {
		t.Errorf("LoadDrill = %+v, want %+v", got, d)
	}
}
