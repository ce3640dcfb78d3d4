package transfer

import (
	"fmt"
	"testing"
	"time"

	"github.com/syncd/syncd/config"
	"github.com/syncd/syncd/transfer/wire"
)

// A node writes at most maxServing block responses at once: a request
// beyond that waits for a slot, and is answered once one frees.
func TestBlockResponsesWaitForASlot(t *testing.T) {
	a := newTestNode(t, "a", config.SendReceive)
	b := newTestNode(t, "b", config.SendReceive)
	connect(a, b)
	a.write(t, "ok", "fine")
	a.index(t)
	a.start(t)
	c := newClient(b.id, a.id.ID, a.cfg.Node.Listen, limiters{}, limiters{}, nil)
	defer c.close()
	for range cap(a.node.serving) {
		a.node.serving <- struct{}{} // every slot busy
	}
	got := make(chan string, 1)
	go func() {
		q := wire.BlockRequest{Files: []wire.FileBlocks{{Path: "ok", Blocks: []wire.Block{{Length: 4}}}}}
		var data []byte
		err := c.blocks(t.Context(), "www", &q, func(i, j int, d []byte, ok bool) error {
			data = append(data, d...)
			return nil
		})
		got <- fmt.Sprint(string(data), err)
	}()
	select {
	case g := <-got:
		t.Fatalf("answered with every slot busy: %s", g)
	case <-time.After(300 * time.Millisecond):
	}
	<-a.node.serving
	select {
	case g := <-got:
		if g != "fine<nil>" {
			t.Errorf("answer once a slot freed: %s", g)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("not answered after a slot freed")
	}
}
