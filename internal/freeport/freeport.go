// Package freeport picks loopback addresses for processes a test or the
// bench starts and then tells where to listen.
package freeport

import (
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
)

// given holds every port this process has handed out: a port is free to
// listen on only until the process it was meant for binds it, and a
// node that a test stops and starts again leaves its port free meanwhile.
// Handing it out again would give two processes one port, which CI met as
// "bind: address already in use" at a node's first start.
var (
	mu    sync.Mutex
	given = map[int]bool{}
)

// Addr returns a loopback address with a port nothing listens on and
// that no earlier call of this process returned. The port is taken below
// the kernel's range of ephemeral ports: one from that range (what
// listening on port 0 gives) can be taken by an outgoing connection
// between this look and the process binding it. Only when no port below
// the range is free in 100 looks does it fall back to port 0.
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
	if low <= from+1000 {
		low = from // too few ports below the range: port 0
	}
	return addr(from, low)
}

// addr returns a free port of [from, low) not given before, looking at
// up to 100 in a row from a random one, or else one the kernel picks.
func addr(from, low int) (string, error) {
	mu.Lock()
	defer mu.Unlock()
	if n := low - from; n > 0 {
		start := rand.IntN(n)
		for i := range min(n, 100) {
			port := from + (start+i)%n
			if given[port] {
				continue
			}
			if l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port))); err == nil {
				l.Close()
				given[port] = true
				return l.Addr().String(), nil
			}
		}
	}
	for i := 0; ; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", err
		}
		l.Close()
		port := l.Addr().(*net.TCPAddr).Port
		if !given[port] || i == 100 {
			given[port] = true
			return l.Addr().String(), nil
		}
	}
}
