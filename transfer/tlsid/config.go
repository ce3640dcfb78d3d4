package tlsid

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
)

// ErrUnknownPeer is matched (errors.Is) by the handshake error for a peer
// whose certificate is not one the configuration allows.
var ErrUnknownPeer = errors.New("unknown peer")

// ALPN is the application protocol the configurations offer: HTTP/2.
// A server also accepts [ALPNHTTP1], which a client asks for on the
// connections it fetches blocks over (see wire.FeatureBlocksHTTP1).
const ALPN = "h2"

// ALPNHTTP1 is HTTP/1.1's application protocol name.
const ALPNHTTP1 = "http/1.1"

// ServerConfig returns the TLS configuration of a node's listener: TLS 1.3
// only, offering [ALPN], presenting id's certificate and requiring one from
// the client. A client is let in only if allowed knows its node ID (allowed
// returns the peer's configured name and true); any other certificate fails
// the handshake with an error that matches [ErrUnknownPeer] and names the
// ID, and is logged on log at warn level with the remote address, so an
// operator can add the peer. allowed is called once per handshake, from the
// handshake's goroutine, so it may consult a configuration that changes.
// It offers [ALPN] first and [ALPNHTTP1].
func ServerConfig(id *Identity, allowed func(NodeID) (name string, ok bool), log *slog.Logger) *tls.Config {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	server := func(remote string) *tls.Config {
		c := baseConfig(id)
		c.NextProtos = []string{ALPN, ALPNHTTP1}
		c.ClientAuth = tls.RequireAnyClientCert
		c.VerifyPeerCertificate = func(raw [][]byte, _ [][]*x509.Certificate) error {
			peer, err := idOfRaw(raw)
			if err != nil {
				log.Warn("peer refused: bad certificate", "remote", remote, "err", err)
				return err
			}
			if _, ok := allowed(peer); !ok {
				log.Warn("peer refused: unknown node ID", "remote", remote, "id", peer.String())
				return fmt.Errorf("%w: node ID %s is not among the configured peers", ErrUnknownPeer, peer)
			}
			return nil
		}
		return c
	}
	// The per-connection configuration knows the remote address for the
	// log; the outer one checks the same way should a caller drop
	// GetConfigForClient.
	c := server("unknown")
	c.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		remote := "unknown"
		if hello.Conn != nil {
			remote = hello.Conn.RemoteAddr().String()
		}
		return server(remote), nil
	}
	return c
}

// ClientConfig returns the TLS configuration for dialing the peer whose ID
// is want: TLS 1.3 only, offering [ALPN] (a caller may replace NextProtos
// with [ALPNHTTP1]), presenting id's certificate. The
// server is authenticated by its pinned ID, not by a certificate authority
// or a host name: a server with any other key fails the handshake with an
// error that matches [ErrUnknownPeer] and names both IDs.
func ClientConfig(id *Identity, want NodeID) *tls.Config {
	c := baseConfig(id)
	// The standard verification (a chain to a trusted root, the host
	// name) is replaced by VerifyPeerCertificate's, which runs anyway.
	c.InsecureSkipVerify = true
	c.VerifyPeerCertificate = func(raw [][]byte, _ [][]*x509.Certificate) error {
		got, err := idOfRaw(raw)
		if err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("%w: the server is node %s, want %s", ErrUnknownPeer, got, want)
		}
		return nil
	}
	return c
}

// PeerID returns the node ID of the peer of a completed handshake.
func PeerID(cs tls.ConnectionState) (NodeID, error) {
	if len(cs.PeerCertificates) == 0 {
		return NodeID{}, errors.New("peer sent no certificate")
	}
	return NodeIDOf(cs.PeerCertificates[0]), nil
}

func baseConfig(id *Identity) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		MaxVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{id.Cert},
		NextProtos:   []string{ALPN},
	}
}

// idOfRaw returns the node ID of the leaf of a certificate chain as sent
// in a handshake.
func idOfRaw(raw [][]byte) (NodeID, error) {
	if len(raw) == 0 {
		return NodeID{}, errors.New("peer sent no certificate")
	}
	cert, err := x509.ParseCertificate(raw[0])
	if err != nil {
		return NodeID{}, fmt.Errorf("peer certificate: %w", err)
	}
	return NodeIDOf(cert), nil
}
