package cli

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/term"
)

// Ticker redraws a one-line status on a terminal every 250 ms until Stop.
// Off a terminal it prints nothing: logs get the final summary only.
type Ticker struct {
	stop chan struct{}
	wg   sync.WaitGroup
	out  io.Writer
}

// StartTicker starts a ticker that writes line() to stderr when stderr is
// a terminal.
func StartTicker(line func(elapsed time.Duration) string) *Ticker {
	t := &Ticker{stop: make(chan struct{}), out: os.Stderr}
	if !term.IsTerminal(int(os.Stderr.Fd())) {
		return t
	}
	start := time.Now()
	t.wg.Go(func() {
		tk := time.NewTicker(250 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-t.stop:
				fmt.Fprint(t.out, "\r\033[K")
				return
			case <-tk.C:
				fmt.Fprintf(t.out, "\r\033[K%s", line(time.Since(start)))
			}
		}
	})
	return t
}

// Stop ends the ticker and clears its line.
func (t *Ticker) Stop() {
	close(t.stop)
	t.wg.Wait()
}

// Bytes formats n for people.
func Bytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// Rate formats bytes per elapsed time.
func Rate(n int64, d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	return Bytes(int64(float64(n)/d.Seconds())) + "/s"
}
