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
