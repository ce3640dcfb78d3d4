package transfer

import (
	"maps"
	"slices"
	"time"

	"github.com/syncd/syncd/state"
)

// PeerStatus is what `syncd status` shows of a peer.
type PeerStatus struct {
	Name    string `json:"name"`
	ID      string `json:"id"`
	Address string `json:"address"`
	// Connected reports whether the peer is up: one of this node's
	// pullers of it has a session up or, when this node pulls nothing
	// from it, it has a connection open to this node. See
	// [PeerDownAfter] for how soon it goes false.
	Connected bool `json:"connected"`
	// LastSeen is when this node last heard from the peer: the time of
	// the call while Connected, else when the last session or
	// connection with it ended (nil: never since the node started).
	LastSeen *time.Time `json:"last_seen,omitempty"`
	// LagFiles and LagBytes are what this node has yet to receive from
	// the peer: the batch being applied and the entries that failed.
	LagFiles int64 `json:"lag_files"`
	LagBytes int64 `json:"lag_bytes"`
	// Behind is how many of the peer's sequence numbers this node has not
	// asked for yet (changes, not files).
	Behind uint64 `json:"behind"`
	// SendFiles and SendBytes are what the peer has yet to ask of this
	// node: entries changed after the last sequence number it asked from.
	SendFiles int64  `json:"send_files"`
	SendBytes int64  `json:"send_bytes"`
	Error     string `json:"error,omitempty"`
}

// PeerDownAfter bounds how long a peer that stopped answering still
// counts as connected ([PeerStatus].Connected, [PeerMetrics].Connected):
// after pingAfter without a frame from it, an HTTP/2 PING goes out on
// each connection with it, and one not answered within pingTimeout is
// closed. A peer whose process ends (killed, crashed, stopped) or whose
// host refuses connections counts as down at once: its connections
// close and this node's requests fail. A "peer down" alert can fire as
// soon as Connected is false; waiting PeerDownAfter more would only
// spare a restart of the peer.
const PeerDownAfter = pingAfter + pingTimeout

// Status reports every configured peer, in configuration order. It walks
// the changes each peer has yet to ask for (SendFiles, SendBytes): for
// metrics, which are read often, use [Node.PeerMetrics].
func (n *Node) Status() []PeerStatus {
	// What the node's lock guards is copied out; the index walks below
	// (SendFiles) take a while and must not hold up serving the peers.
	n.mu.Lock()
	pullers := slices.Clone(n.pullers)
	acks := make(map[string]map[string]uint64, len(n.acks))
	for peer, m := range n.acks {
		acks[peer] = maps.Clone(m)
	}
	n.mu.Unlock()
	out := make([]PeerStatus, 0, len(n.cfg.Peers))
	for _, cp := range n.cfg.Peers {
		ps := PeerStatus{Name: cp.Name, ID: cp.ID, Address: cp.Address}
		var last time.Time
		pulls := false
		for _, p := range pullers {
			pulls = pulls || p.peer.Name == cp.Name
		}
		if st := n.peerSt[cp.Name]; st != nil {
			if t := st.lastIn.Load(); t != 0 {
				last = time.Unix(0, t)
			}
			// Without a puller of ours, the peer's connections are all we know.
			ps.Connected = !pulls && st.conns.Load() > 0
		}
		for _, p := range pullers {
			if p.peer.Name != cp.Name {
				continue
			}
			p.mu.Lock()
			st := p.stat
			p.mu.Unlock()
			ps.Connected = ps.Connected || st.connected
			if st.lastSeen.After(last) {
				last = st.lastSeen
			}
			ps.LagFiles += st.pendFiles + int64(st.failed)
			ps.LagBytes += st.pendBytes
			ps.LagBytes += st.failBytes
			if st.peerSeq > st.cursor {
				ps.Behind += st.peerSeq - st.cursor
			}
			if !st.connected && st.lastErr != "" {
				ps.Error = st.lastErr
			}
		}
		for folder, since := range acks[cp.Name] {
			f := n.folders[folder]
			if f == nil || !f.sends() {
				continue
			}
			f.Local.Index().Changed(since, func(_ string, e state.Entry) error {
				ps.SendFiles++
				if !e.Deleted {
					ps.SendBytes += e.Size
				}
				return nil
			})
		}
		if ps.Connected {
			last = n.clk.Now()
		}
		if !last.IsZero() {
			ps.LastSeen = &last
		}
		out = append(out, ps)
	}
	return out
}
