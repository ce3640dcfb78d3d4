package s3

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/retry"

	"github.com/syncd/syncd/chunkstore/backend"
	"github.com/syncd/syncd/internal/miniotest"
)

// Failures of the endpoint: refused, silent, killed and restarted, stalled
// mid-download. Each must end in a bounded time with an error that says so.

func TestUnreachableEndpoint(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	endpoint := "http://" + l.Addr().String()
	l.Close() // nothing listens there now: connections are refused
	useEnv(t, endpoint, "key", "secretsecret")

	start := time.Now()
	_, err = Open(context.Background(), Config{URL: "s3://bucket"})
	elapsed := time.Since(start)
	checkOneLine(t, err, ErrUnreachable, "cannot reach endpoint "+endpoint, "connection refused")
	if elapsed > 40*time.Second {
		t.Errorf("Open took %v against a closed port, want < 40s", elapsed)
	}
	var retried *retry.MaxAttemptsError
	if !errors.As(err, &retried) || retried.Attempt != maxAttempts {
		t.Errorf("a refused connection was not tried %d times: %#v", maxAttempts, retried)
	}
	t.Logf("closed port: %v after %v", err, elapsed.Round(time.Millisecond))
}

func TestSilentEndpoint(t *testing.T) {
	// A server that accepts connections and never answers.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { io.Copy(io.Discard, c); c.Close() })
		}
	})
	endpoint := "http://" + l.Addr().String()
	useEnv(t, endpoint, "key", "secretsecret")

	start := time.Now()
	_, err = Open(context.Background(), Config{URL: "s3://bucket", Timeout: time.Second})
	elapsed := time.Since(start)
	checkOneLine(t, err, ErrUnreachable, "cannot reach endpoint "+endpoint, "timeout")
	if elapsed > 40*time.Second {
		t.Errorf("Open took %v against a silent server, want < 40s", elapsed)
	}
	t.Logf("silent server: %v after %v", err, elapsed.Round(time.Millisecond))
}

func TestWrongCredentials(t *testing.T) {
	srv := miniotest.Start(t)
	useServer(t, srv)
	mustCreate(t, Config{URL: "s3://creds"})
	for _, c := range []struct{ name, key, secret, want string }{
		{"unknown access key", "nobody", srv.SecretKey, "does not know the access key"},
		{"wrong secret", srv.AccessKey, "wrong-secret-key", "secret access key does not match"},
	} {
		t.Run(c.name, func(t *testing.T) {
			useEnv(t, srv.Endpoint, c.key, c.secret)
			_, err := Open(context.Background(), Config{URL: "s3://creds"})
			checkOneLine(t, err, ErrAccessDenied, "invalid credentials for bucket creds", c.want)
		})
	}
}

func TestServerRestart(t *testing.T) {
	srv := miniotest.Start(t)
	useServer(t, srv)
	ctx := context.Background()
	b := mustCreate(t, Config{URL: "s3://restart/repo"})
	data := random(t, 4096)
	if err := backend.SaveBytes(ctx, b, "index/one", data); err != nil {
		t.Fatal(err)
	}

	srv.Kill()
	start := time.Now()
	_, err := b.Stat(ctx, "index/one")
	checkOneLine(t, err, ErrUnreachable, "s3: stat index/one: cannot reach endpoint "+srv.Endpoint)
	if elapsed := time.Since(start); elapsed > 40*time.Second {
		t.Errorf("Stat against a dead server took %v, want < 40s", elapsed)
	}

	// The same Backend works again once the server is back, data intact.
	srv.Restart(t)
	if got := readRange(t, b, "index/one", 0, 0); !bytes.Equal(got, data) {
		t.Fatal("index/one differs after the server restarted")
	}
}

// stallProxy forwards TCP connections to target; once stall is set, it
// forwards at most 16 KiB more of the server's answers on each connection
// (the headers and a little of the body), then nothing.
type stallProxy struct {
	addr  string
	stall atomic.Bool
}

func newStallProxy(t *testing.T, target string) *stallProxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &stallProxy{addr: l.Addr().String()}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c, s)
			mu.Unlock()
			wg.Go(func() { io.Copy(s, c) })
			wg.Go(func() {
				buf := make([]byte, 1024)
				budget := 16 << 10
				for {
					n, err := s.Read(buf)
					if n > 0 {
						if _, err := c.Write(buf[:n]); err != nil {
							return
						}
						if p.stall.Load() {
							if budget -= n; budget <= 0 {
								io.Copy(io.Discard, s) // swallow the rest
								return
							}
						}
					}
					if err != nil {
						return
					}
				}
			})
		}
	})
	return p
}

func TestStalledRead(t *testing.T) {
	srv := miniotest.Start(t)
	useServer(t, srv)
	if err := backend.SaveBytes(context.Background(), mustCreate(t, Config{URL: "s3://stall"}), "data/big", random(t, 4<<20)); err != nil {
		t.Fatal(err)
	}

	proxy := newStallProxy(t, strings.TrimPrefix(srv.Endpoint, "http://"))
	t.Setenv("AWS_ENDPOINT_URL", "http://"+proxy.addr)
	b, err := Open(context.Background(), Config{URL: "s3://stall", Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	proxy.stall.Store(true)
	rd, err := b.Open(context.Background(), "data/big", 0, 0)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer rd.Close()
	start := time.Now()
	n, err := io.Copy(io.Discard, rd)
	elapsed := time.Since(start)
	if err == nil || !strings.Contains(err.Error(), "no data from the endpoint for 1s") {
		t.Fatalf("reading a stalled body: %d bytes, err %v; want a stall error", n, err)
	}
	if elapsed > 10*time.Second {
		t.Errorf("a stalled read took %v to fail, want about 1s", elapsed)
	}
}
