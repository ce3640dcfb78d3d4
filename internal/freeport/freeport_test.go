package freeport

import (
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
)

// The address is on loopback, free to listen on, and below the kernel's
// ephemeral range.
func TestAddr(t *testing.T) {
	low := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if n, err := strconv.Atoi(strings.Fields(string(b))[0]); err == nil {
			low = n
		}
	}
	for range 20 {
		addr, err := Addr()
		if err != nil {
			t.Fatal(err)
		}
		host, port, err := net.SplitHostPort(addr)
		if err != nil || host != "127.0.0.1" {
			t.Fatalf("Addr() = %q, want 127.0.0.1:PORT", addr)
		}
		if p, _ := strconv.Atoi(port); p >= low || p < 10000 {
			t.Errorf("port %d, want one in [10000, %d)", p, low)
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("listen on %s: %v", addr, err)
		}
		l.Close()
	}
}

// A port once given is not given again, even when nothing listens on it
// (its process has not bound it yet, or has stopped for a while): every
// port of a small range comes once, then the kernel's.
func TestAddrNotGivenTwice(t *testing.T) {
	const from, n = 20000, 20
	seen := map[string]bool{}
	for range n {
		a, err := addr(from, from+n)
		if err != nil {
			t.Fatal(err)
		}
		if seen[a] {
			t.Fatalf("%s given twice", a)
		}
		seen[a] = true
	}
	a, err := addr(from, from+n)
	if err != nil {
		t.Fatal(err)
	}
	if _, port, _ := net.SplitHostPort(a); seen[a] || port == "" {
		t.Errorf("with every port of the range given: %s, want one the kernel picks", a)
	}
}
