package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/syncd/syncd/internal/cli"
)

// ageString prints seconds as a short duration: "3h25m", "2d4h".
func ageString(secs float64) string {
	d := time.Duration(secs * float64(time.Second))
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%dd%dh", int(d.Hours())/24, int(d.Hours())%24)
	case d >= time.Minute:
		return strings.TrimSuffix(d.Round(time.Minute).String(), "0s")
	}
	return d.Round(time.Millisecond).String()
}

// printDrill prints the report for a person: one block per snapshot, then
// one summary line beginning "drill OK" or "drill FAILED".
func printDrill(w io.Writer, out *drillOutput) {
	rep := out.Report
	for _, s := range rep.Snapshots {
		fmt.Fprintf(w, "snapshot %s of %s (%s), taken %s: %s old (recovery point)\n", s.ID.Short(), s.Host,
			strings.Join(s.Paths, " "), s.Time.Local().Format(time.DateTime), ageString(s.AgeSeconds))
		dur := time.Duration(s.Seconds * float64(time.Second))
		verified := "every byte verified"
		if s.DamagedFiles > 0 {
			verified = fmt.Sprintf("%d file(s) NOT restored", s.DamagedFiles)
		}
		fmt.Fprintf(w, "  restored %d of %d files, %s in %s, %s (recovery time); %s\n", s.Files, s.TotalFiles,
			cli.Bytes(s.Bytes), dur.Round(time.Millisecond), cli.Rate(s.Bytes, dur), verified)
		if rep.Sample > 0 {
			est := time.Duration(s.EstSecs * float64(time.Second))
			fmt.Fprintf(w, "  sample of %d files: estimated full restore of %d files, %s: %s\n", rep.Sample, s.TotalFiles,
				cli.Bytes(s.TotalBytes), est.Round(10*time.Millisecond))
		}
		if s.TooOld {
			fmt.Fprintf(w, "  TOO OLD: more than --max-age %s\n", ageString(rep.MaxAge))
		}
		for _, d := range s.Damaged {
			what := d.Pack
			if what == "" {
				what = "not restored"
			}
			fmt.Fprintf(w, "  DAMAGED %s: %s; %d file(s) affected\n", what, d.Err, len(d.Paths))
			for _, p := range d.Paths {
				fmt.Fprintf(w, "    %s\n", p)
			}
		}
		if s.Drift != nil {
			fmt.Fprintf(w, "  drift since the snapshot: %d file(s)\n", len(s.Drift))
			for _, d := range s.Drift {
				why := ""
				if d.Why != "" {
					why = " (" + d.Why + ")"
				}
				fmt.Fprintf(w, "    %-7s %s%s\n", d.Change, d.Path, why)
			}
		}
	}
	for _, warn := range rep.Warnings {
		fmt.Fprintf(w, "warning: %s\n", warn)
	}
	rec := out.Record
	switch {
	case rec == "" && out.RecordErr != "":
		rec = "record NOT written: " + out.RecordErr
	case rec == "":
		rec = "no record (--no-record)"
	default:
		rec = "record " + rec
	}
	if out.OK {
		fmt.Fprintf(w, "drill OK: %d snapshot(s) in %s; %s\n", len(rep.Snapshots),
			time.Duration(rep.Seconds*float64(time.Second)).Round(time.Millisecond), rec)
		return
	}
	fmt.Fprintf(w, "drill FAILED: %s; %s\n", out.Error, rec)
}

// writeMetrics writes the report in the Prometheus textfile-collector
// format to path, through a temporary file renamed into place, so that
// the collector never reads half a file.
func writeMetrics(path string, out *drillOutput) error {
	var b bytes.Buffer
	gauge := func(name, help string) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name)
	}
	ok := 0
	if out.OK {
		ok = 1
	}
	gauge("syncd_restore_drill_ok", "1 when the last drill restored every snapshot intact within --max-age, else 0.")
	fmt.Fprintf(&b, "syncd_restore_drill_ok %d\n", ok)
	gauge("syncd_restore_drill_timestamp_seconds", "When the last drill began (Unix time).")
	fmt.Fprintf(&b, "syncd_restore_drill_timestamp_seconds %d\n", out.Time.Unix())
	gauge("syncd_restore_drill_duration_seconds", "Wall time of the last drill.")
	fmt.Fprintf(&b, "syncd_restore_drill_duration_seconds %s\n", num(out.Seconds))
	gauge("syncd_restore_drill_sample_files", "--sample of the last drill; 0 for a full drill.")
	fmt.Fprintf(&b, "syncd_restore_drill_sample_files %d\n", out.Sample)
	per := []struct {
		name, help string
		val        func(i int) float64
	}{
		{"syncd_restore_drill_snapshot_age_seconds", "Age of the snapshot drilled when the drill began (the recovery point).",
			func(i int) float64 { return out.Snapshots[i].AgeSeconds }},
		{"syncd_restore_drill_snapshot_timestamp_seconds", "Time of the snapshot drilled (Unix time).",
			func(i int) float64 { return float64(out.Snapshots[i].Time.Unix()) }},
		{"syncd_restore_drill_restore_seconds", "Wall time of the restore (the recovery time; a sample's only).",
			func(i int) float64 { return out.Snapshots[i].Seconds }},
		{"syncd_restore_drill_restore_files", "Regular files restored and verified.",
			func(i int) float64 { return float64(out.Snapshots[i].Files) }},
		{"syncd_restore_drill_restore_bytes", "Bytes of the files restored and verified.",
			func(i int) float64 { return float64(out.Snapshots[i].Bytes) }},
		{"syncd_restore_drill_restore_bytes_per_second", "Throughput of the restore.",
			func(i int) float64 { return out.Snapshots[i].PerSecond }},
		{"syncd_restore_drill_estimated_restore_seconds", "A sample drill's estimate of the full restore's wall time (0 for a full drill).",
			func(i int) float64 { return out.Snapshots[i].EstSecs }},
		{"syncd_restore_drill_snapshot_files", "Regular files in the snapshot.",
			func(i int) float64 { return float64(out.Snapshots[i].TotalFiles) }},
		{"syncd_restore_drill_snapshot_bytes", "Bytes of the regular files in the snapshot.",
			func(i int) float64 { return float64(out.Snapshots[i].TotalBytes) }},
		{"syncd_restore_drill_damaged_files", "Files that could not be restored intact.",
			func(i int) float64 { return float64(out.Snapshots[i].DamagedFiles) }},
		{"syncd_restore_drill_damaged_packs", "Packs whose copies of blobs could not be used.",
			func(i int) float64 { return float64(damagedPacks(out, i)) }},
		{"syncd_restore_drill_drift_files", "With --compare: files of the live tree that differ from the snapshot.",
			func(i int) float64 { return float64(len(out.Snapshots[i].Drift)) }},
	}
	for _, m := range per {
		gauge(m.name, m.help)
		for i, s := range out.Snapshots {
			fmt.Fprintf(&b, "%s{host=%s,snapshot=\"%s\"} %s\n", m.name, strconv.Quote(s.Host), s.ID.Short(), num(m.val(i)))
		}
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after the rename: nothing to remove
	if _, err := tmp.Write(b.Bytes()); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func damagedPacks(out *drillOutput, i int) int {
	n := 0
	for _, d := range out.Snapshots[i].Damaged {
		if d.Pack != "" {
			n++
		}
	}
	return n
}

func num(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
