package main

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// lineTally is an io.Writer that counts the lines starting with prefix and
// keeps the last non-empty line, holding nothing else of what is written
// (a find can print hundreds of thousands of lines; see runner.runTo).
// Close counts a last line without a newline.
type lineTally struct {
	prefix string
	n      int
	cur    []byte // the line being written
	last   []byte
}

func (t *lineTally) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			t.cur = append(t.cur, p...)
			break
		}
		t.cur = append(t.cur, p[:i]...)
		t.endLine()
		p = p[i+1:]
	}
	return n, nil
}

// Close ends the last line, if it has no newline.
func (t *lineTally) Close() error {
	if len(t.cur) > 0 {
		t.endLine()
	}
	return nil
}

func (t *lineTally) endLine() {
	if bytes.HasPrefix(t.cur, []byte(t.prefix)) {
		t.n++
	}
	if len(bytes.TrimSpace(t.cur)) > 0 {
		t.last = append(t.last[:0], t.cur...)
	}
	t.cur = t.cur[:0]
}

// diffCounts is what a diff found, in terms both tools count: entries are
// files, directories and symlinks; changed are files whose content changed.
type diffCounts struct {
	added, addedFiles, removed, removedFiles, changed int64
}

func (d diffCounts) String() string {
	return fmt.Sprintf("%s / %s / %s files added / removed / changed, %s / %s entries added / removed",
		thousands(d.addedFiles), thousands(d.removedFiles), thousands(d.changed), thousands(d.added), thousands(d.removed))
}

var (
	oursDiffLine   = regexp.MustCompile(`^(\d+) added \((\d+) files, [^)]*\), (\d+) removed \((\d+) files, [^)]*\), (\d+) changed`)
	oursDiffChange = regexp.MustCompile(`[( ](\d+) content[,;]`)
	resticDiffLine = regexp.MustCompile(`(?m)^(Files|Dirs|Others):\s+(\d+) new,\s+(\d+) removed(?:,\s+(\d+) changed)?\s*$`)
)

// oursDiffCounts parses the summary line of `restore diff`: "no changes",
// or "A added (F files, …), R removed (G files, …), C changed (N content,
// …; files …)".
func oursDiffCounts(line string) (diffCounts, error) {
	var d diffCounts
	if line == "no changes" {
		return d, nil
	}
	m := oursDiffLine.FindStringSubmatch(line)
	if m == nil {
		return d, fmt.Errorf("restore diff: summary %q not understood", line)
	}
	for k, p := range []*int64{&d.added, &d.addedFiles, &d.removed, &d.removedFiles} {
		*p, _ = strconv.ParseInt(m[k+1], 10, 64)
	}
	if c := oursDiffChange.FindStringSubmatch(line[len(m[0]):]); c != nil {
		d.changed, _ = strconv.ParseInt(c[1], 10, 64)
	}
	return d, nil
}

// resticDiffCounts parses the "Files:", "Dirs:" and "Others:" lines of
// restic diff's summary.
func resticDiffCounts(out string) (diffCounts, error) {
	var d diffCounts
	seen := map[string]bool{}
	for _, m := range resticDiffLine.FindAllStringSubmatch(out, -1) {
		seen[m[1]] = true
		added, _ := strconv.ParseInt(m[2], 10, 64)
		removed, _ := strconv.ParseInt(m[3], 10, 64)
		d.added += added
		d.removed += removed
		if m[1] == "Files" {
			d.addedFiles, d.removedFiles = added, removed
			d.changed, _ = strconv.ParseInt(m[4], 10, 64)
		}
	}
	if len(seen) != 3 {
		return d, fmt.Errorf("restic diff: want Files, Dirs and Others in the summary: %s", tail(strings.TrimSpace(out), 8))
	}
	return d, nil
}
