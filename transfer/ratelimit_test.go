package transfer

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/syncd/syncd/config"
)

// A rate limit holds: 3 MiB of random bytes (zstd cannot shrink them)
// take at least 2 s to cross at 1 MiB/s, whether the sender's node limits
// (on the connections the receiver opened: the limit of the node, or of
// that peer once its TLS handshake tells who it is) or the receiver what
// it receives (on its own connections).
// (A lower bound only: a loaded machine may be slower, never faster.)
func TestRateLimits(t *testing.T) {
	const limit = 1 << 20
	for _, tc := range []struct {
		name string
		set  func(a, b *testNode)
	}{
		{"node max_send_rate", func(a, b *testNode) { a.cfg.Node.MaxSendRate = limit }},
		{"peer max_send_rate", func(a, b *testNode) { a.cfg.Peers[0].MaxSendRate = limit }},
		{"node max_recv_rate", func(a, b *testNode) { b.cfg.Node.MaxRecvRate = limit }},
		{"peer max_recv_rate", func(a, b *testNode) { b.cfg.Peers[0].MaxRecvRate = limit }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newTestNode(t, "a", config.SendOnly)
			b := newTestNode(t, "b", config.ReceiveOnly)
			connect(a, b)
			tc.set(a, b)
			a.start(t)
			b.start(t)
			data := make([]byte, 3<<20)
			rand.Read(data)
			if err := os.WriteFile(filepath.Join(a.dir, "big.bin"), data, 0o644); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			a.index(t)
			converge(t, a, b)
			if d := time.Since(start); d < 2*time.Second {
				t.Errorf("3 MiB crossed in %v at a limit of 1 MiB/s", d)
			}
		})
	}
}
