// Package freeport picks loopback addresses for processes a test or the
// bench starts and then tells where to listen.
package freeport

import (
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
)

// Addr returns a loopback address with a port nothing listens on. The
// port is taken below the kernel's range of ephemeral ports: one from that
// range (what listening on port 0 gives) can be taken by an outgoing
// connection between this look and the process binding it, which CI met
// as "bind: address already in use". Only when no port below the range is
// free after 100 tries does it fall back to port 0.
func Addr() (string, error) {
	low := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil {
				low = n
			}
		}
	}
	const from = 10000
	for i := 0; i < 100 && low > from+1000; i++ {
		port := from + rand.IntN(low-from)
		if l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port))); err == nil {
			l.Close()
			return l.Addr().String(), nil
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}
