package bell

import "testing"

// A ring closes the channels handed out before it, not those after.
func TestRing(t *testing.T) {
	var b Bell
	before := b.Wait()
	if before != b.Wait() {
		t.Fatal("two waits before a ring got different channels")
	}
	select {
	case <-before:
		t.Fatal("closed before any ring")
	default:
	}
	b.Ring()
	select {
	case <-before:
	default:
		t.Fatal("a ring did not close the channel waited on")
	}
	after := b.Wait()
	select {
	case <-after:
		t.Fatal("a channel handed out after the ring is closed")
	default:
	}
	b.Ring()
	b.Ring() // a ring with nobody waiting is fine
	select {
	case <-after:
	default:
		t.Fatal("the second ring did not close the channel waited on")
	}
}
