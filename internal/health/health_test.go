package health

import (
	"testing"
	"time"
)

func TestConditions(t *testing.T) {
	now := time.Unix(1000, 0)
	c := NewConditions(func() time.Time { return now })
	if c.Worst() != 0 || c.Failed() || len(c.List()) != 0 {
		t.Fatalf("new set not empty: %v", c.List())
	}
	if !c.Set("disk-full", Degraded, "no space") {
		t.Fatal("first Set: want changed")
	}
	now = now.Add(time.Minute)
	if c.Set("disk-full", Degraded, "no space, try 2") {
		t.Fatal("same severity again: want unchanged (log once)")
	}
	got, _ := c.Get("disk-full")
	if got.Reason != "no space, try 2" || !got.Since.Equal(time.Unix(1000, 0)) {
		t.Fatalf("got %+v, want the new reason and the first Since", got)
	}
	if c.Worst() != Degraded || c.Failed() {
		t.Fatalf("worst %v, want degraded", c.Worst())
	}
	if !c.Set("marker-missing", Failed, "no marker") {
		t.Fatal("new condition: want changed")
	}
	if l := c.List(); len(l) != 2 || l[0].Name != "marker-missing" || l[0].State != "failed" {
		t.Fatalf("List = %+v, want the failed one first", l)
	}
	if !c.Failed() {
		t.Fatal("Failed() = false with a failed condition")
	}
	if !c.Clear("marker-missing") || c.Clear("marker-missing") {
		t.Fatal("Clear: want true once, then false")
	}
	if c.Failed() || c.Worst() != Degraded {
		t.Fatalf("after Clear: worst %v", c.Worst())
	}
}
