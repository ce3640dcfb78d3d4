package config

import (
	"fmt"
	"strings"
	"testing"
)

func TestParseRate(t *testing.T) {
	for in, want := range map[string]int64{
		"50MB/s": 50e6, "4MiB": 4 << 20, "100Mbit/s": 12.5e6, "1.5GB": 1.5e9, "800 kbit/s": 100e3,
		"1000": 1000, "2 KiB/s": 2048, "1gbit": 125e6, " 10mb/s ": 10e6,
	} {
		if got, err := ParseRate(in); err != nil || got != want {
			t.Errorf("ParseRate(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for in, want := range map[string]string{
		"0":              "must be above 0",
		"0MB/s":          "must be above 0",
		"-5MB/s":         "must be above 0",
		"5 furlong":      `unknown unit "furlong"`,
		"MB/s":           "want a rate like",
		"":               "want a rate like",
		"fast":           "want a rate like",
		"1bit":           "under 1 byte per second",
		"1e30GB":         `unknown unit`,
		"9000000000GB/s": "too large",
	} {
		if got, err := ParseRate(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseRate(%q) = %d, %v; want an error with %q", in, got, err, want)
		}
	}
}

// A rate limit of 0 or a negative one is a config error with its line;
// a valid one reaches the node and the peer.
func TestRateKeys(t *testing.T) {
	c, err := Parse([]byte(minimal+"  max_send_rate: 50MB/s\n  max_recv_rate: 100Mbit/s\n"+
		"peers:\n  - {name: web2, id: "+idX+", address: 'h:1', max_send_rate: 1MiB/s, max_recv_rate: 2MiB}\n"), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if n, p := c.Node, c.Peers[0]; n.MaxSendRate != 50e6 || n.MaxRecvRate != 12.5e6 || p.MaxSendRate != 1<<20 || p.MaxRecvRate != 2<<20 {
		t.Errorf("node %d/%d, peer %d/%d", n.MaxSendRate, n.MaxRecvRate, p.MaxSendRate, p.MaxRecvRate)
	}
	for yaml, want := range map[string]string{
		minimal + "  max_send_rate: 0\n": `t.yaml:4: node.max_send_rate: a rate of "0" is no rate: it must be above 0 (leave the key out for no limit)`,
		minimal + "peers:\n  - name: web2\n    id: " + idX + "\n    address: 'h:1'\n    max_recv_rate: -1MB/s\n": `t.yaml:8: peers[0].max_recv_rate: a rate of "-1MB/s" is no rate: it must be above 0 (leave the key out for no limit)`,
		minimal + "  max_recv_rate: 5 parsecs\n": `t.yaml:4: node.max_recv_rate: unknown unit "parsecs" in "5 parsecs" (B, KB, MB, GB, KiB, MiB, GiB, bit, kbit, Mbit, Gbit)`,
	} {
		_, err := Parse([]byte(yaml), "t.yaml")
		if err == nil || err.Error() != want {
			t.Errorf("error:\ngot  %v\nwant %s", err, want)
		}
	}
}

// A peer's compression is auto when left out; anything but auto, always
// or never is an error with its line.
func TestCompressionKey(t *testing.T) {
	peer := minimal + "peers:\n  - {name: web2, id: " + idX + ", address: 'h:1'%s}\n"
	for in, want := range map[string]Compression{"": CompressAuto, ", compression: never": CompressNever,
		", compression: always": CompressAlways, ", compression: auto": CompressAuto} {
		c, err := Parse(fmt.Appendf(nil, peer, in), "t.yaml")
		if err != nil || c.Peers[0].Compression != want {
			t.Errorf("%q: %v, %v; want %s", in, c.Peers[0].Compression, err, want)
		}
	}
	_, err := Parse(fmt.Appendf(nil, peer, ", compression: gzip"), "t.yaml")
	if want := `t.yaml:5: peers[0].compression: "gzip": want auto, always or never`; err == nil || err.Error() != want {
		t.Errorf("error:\ngot  %v\nwant %s", err, want)
	}
}
