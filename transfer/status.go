package transfer

import (
	"maps"
	"slices"
	"time"

	"github.com/syncd/syncd/state"
)

// PeerStatus is what `syncd status` shows of a peer.
type PeerStatus struct {
	Name      string     `json:"name"`
	ID        string     `json:"id"`
	Address   string     `json:"address"`
	Connected bool       `json:"connected"`
	LastSeen  *time.Time `json:"last_seen,omitempty"`
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

// seenWithin: a peer that asked for something this recently is connected.
const seenWithin = pollWait + 10*time.Second

// Status reports every configured peer, in configuration order.
func (n *Node) Status() []PeerStatus {
	// What the node's lock guards is copied out; the index walks below
	// (SendFiles) take a while and must not hold up serving the peers.
	n.mu.Lock()
	pullers := slices.Clone(n.pullers)
	lastIn := maps.Clone(n.lastIn)
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
		if t, ok := lastIn[cp.Name]; ok {
			last = t
			// Without a puller of ours, the peer's requests are all we know.
			ps.Connected = !pulls && time.Since(t) < seenWithin
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
			for _, e := range st.pending {
				ps.LagFiles++
				ps.LagBytes += e.Size
			}
			ps.LagFiles += int64(st.failed)
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
			f.State.Changed(since, func(_ string, e state.Entry) error {
				ps.SendFiles++
				if !e.Deleted {
					ps.SendBytes += e.Size
				}
				return nil
			})
		}
		if !last.IsZero() {
			ps.LastSeen = &last
		}
		out = append(out, ps)
	}
	return out
}
