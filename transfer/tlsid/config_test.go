package tlsid

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
)

// side is one end of a test handshake.
type side struct {
	state tls.ConnectionState
	err   error
	local string // the side's local address
}

// handshake connects a client with cc to a server with sc over TCP on
// 127.0.0.1 and returns each side's state and error. The server writes one
// byte after its handshake, which the client reads: in TLS 1.3 the server
// checks the client's certificate after the client has finished, so the
// client learns of a refusal on its first read.
func handshake(t *testing.T, sc, cc *tls.Config) (server, client side) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan side, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			done <- side{err: err}
			return
		}
		defer conn.Close()
		tc := tls.Server(conn, sc)
		if err := tc.Handshake(); err != nil {
			done <- side{err: err}
			return
		}
		_, err = tc.Write([]byte{1})
		done <- side{state: tc.ConnectionState(), err: err}
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client.local = conn.LocalAddr().String()
	tc := tls.Client(conn, cc)
	client.err = tc.Handshake()
	if client.err == nil {
		_, client.err = io.ReadFull(tc, make([]byte, 1))
		client.state = tc.ConnectionState()
	}
	conn.Close()
	return <-done, client
}

func newIdentity(t *testing.T) *Identity {
	t.Helper()
	id, err := LoadOrCreate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// allow returns an allowed function knowing ids by the names given.
func allow(known map[NodeID]string) func(NodeID) (string, bool) {
	return func(id NodeID) (string, bool) {
		name, ok := known[id]
		return name, ok
	}
}

func TestHandshakeKnownPeers(t *testing.T) {
	a, b := newIdentity(t), newIdentity(t)
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	server, client := handshake(t, ServerConfig(a, allow(map[NodeID]string{b.ID: "web2"}), log), ClientConfig(b, a.ID))
	if server.err != nil || client.err != nil {
		t.Fatalf("handshake: server %v, client %v", server.err, client.err)
	}
	for _, s := range []struct {
		name  string
		state tls.ConnectionState
		peer  NodeID
	}{{"server", server.state, b.ID}, {"client", client.state, a.ID}} {
		if s.state.Version != tls.VersionTLS13 || s.state.NegotiatedProtocol != "h2" {
			t.Errorf("%s: version %#x protocol %q, want TLS 1.3 and h2", s.name, s.state.Version, s.state.NegotiatedProtocol)
		}
		got, err := PeerID(s.state)
		if err != nil || got != s.peer {
			t.Errorf("%s: PeerID = %s, %v; want %s", s.name, got, err, s.peer)
		}
	}
	if logs.Len() != 0 {
		t.Errorf("a known peer was logged: %s", logs.String())
	}
}

func TestHandshakeUnknownClient(t *testing.T) {
	a, b, stranger := newIdentity(t), newIdentity(t), newIdentity(t)
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	server, client := handshake(t, ServerConfig(a, allow(map[NodeID]string{b.ID: "web2"}), log), ClientConfig(stranger, a.ID))
	if !errors.Is(server.err, ErrUnknownPeer) || !strings.Contains(server.err.Error(), stranger.ID.String()) {
		t.Errorf("server error %v, want ErrUnknownPeer naming %s", server.err, stranger.ID)
	}
	if client.err == nil {
		t.Error("the client got through")
	}
	line := logs.String()
	for _, want := range []string{"level=WARN", "remote=" + client.local, "id=" + stranger.ID.String()} {
		if !strings.Contains(line, want) {
			t.Errorf("log %q, want %q in it", line, want)
		}
	}
}

func TestHandshakeWrongServer(t *testing.T) {
	a, b, other := newIdentity(t), newIdentity(t), newIdentity(t)
	server, client := handshake(t, ServerConfig(a, allow(map[NodeID]string{b.ID: "web2"}), nil), ClientConfig(b, other.ID))
	if !errors.Is(client.err, ErrUnknownPeer) || !strings.Contains(client.err.Error(), a.ID.String()) || !strings.Contains(client.err.Error(), other.ID.String()) {
		t.Errorf("client error %v, want ErrUnknownPeer naming %s and %s", client.err, a.ID, other.ID)
	}
	if server.err == nil {
		t.Error("the server completed a handshake the client refused")
	}
}

func TestHandshakeRefusesWeakerClients(t *testing.T) {
	a, b := newIdentity(t), newIdentity(t)
	sc := ServerConfig(a, allow(map[NodeID]string{b.ID: "web2"}), nil)
	tls12 := ClientConfig(b, a.ID)
	tls12.MinVersion, tls12.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
	noCert := ClientConfig(b, a.ID)
	noCert.Certificates = nil
	for name, cc := range map[string]*tls.Config{"TLS 1.2": tls12, "no client certificate": noCert} {
		server, client := handshake(t, sc, cc)
		if server.err == nil || client.err == nil {
			t.Errorf("%s: server %v, client %v; want both to fail", name, server.err, client.err)
		}
	}
}

func TestPeerIDWithoutCertificate(t *testing.T) {
	if _, err := PeerID(tls.ConnectionState{}); err == nil {
		t.Error("PeerID of a state without certificates succeeded")
	}
}
