package receive

import (
	"errors"
	"os"
	"syscall"

	"github.com/syncd/syncd/internal/atdir"
	"github.com/syncd/syncd/internal/freelist"
)

// A large file rebuilt from local chunks (a database dump edited in the
// middle: the bench's round rebuilds 511 MiB of its 512 MiB dump from the
// old copy) has those runs written with O_DIRECT: straight from the
// reader's buffer to the disk, not copied into new page-cache pages that
// writeback then copies again. On the bench's VM each new page of the
// page cache also cost a fault on the host: the dump's 511 MiB took 1.6 s
// of one core to write, most of it in that copy, while the other core
// idled (perf). The temporary file is made durable by the commit's
// fsync or syncfs as before (O_DIRECT leaves the file's metadata and the
// device's cache to them). What O_DIRECT cannot write, the parts of a run
// that do not fill an aligned block, goes through the page cache, as
// does everything when the file system refuses O_DIRECT. No 4 KiB block
// is written both ways: a run writes directly only the blocks it fills,
// and runs do not overlap, so the page cache never holds a stale copy of
// a block written directly (the collision the kernel warns of). Nothing
// reads a temporary file while it is being built (sources take it once
// built), except a partial one kept from an earlier try, whose blocks are
// read back to resume it: such a file is written through the page cache
// alone, so that no read of it races a direct write.
const (
	directMin   = 16 << 20 // a file this large has its local runs written with O_DIRECT
	directAlign = 4096     // what O_DIRECT needs of offsets, lengths and buffers
	directBuf   = 4 << 20  // bytes gathered before each write
)

// direct reports whether a's temporary file has its runs written with
// O_DIRECT: a large file, not resumed from an earlier try.
func (a *action) direct() bool { return a.e.Size >= directMin && !a.resumed }

// openRun returns the direct writer of a's temporary file (in the
// directories at), or nil when a is not written with O_DIRECT.
func (r *Receiver) openRun(a *action, at *atdir.Dirs) *directRun {
	if !a.direct() {
		return nil
	}
	d := openDirect(at, a.tmp, a.file, a.wrote)
	d.report = r.Hooks.Direct
	return d
}

// writeAt writes data at off of a's temporary file: through run if it is
// not nil, else through the page cache.
func writeAt(a *action, run *directRun, data []byte, off int64) error {
	if run != nil {
		return run.write(data, off)
	}
	if _, err := a.file.WriteAt(data, off); err != nil {
		return err
	}
	a.wrote(len(data))
	return nil
}

// directBufs holds the buffers of direct writers closed before, mapped
// outside the heap (page-aligned, as O_DIRECT needs): kept in the heap,
// builders of them held 16 MiB of it for good after the first large
// file, and the collector of a receiver near its memory limit ran that
// much more often.
var directBufs = freelist.NewMapped(builders, directBuf)

// directRun writes runs of a temporary file's bytes, each given in order
// (a run ends where a write does not follow the one before), through a
// second descriptor of the file opened with O_DIRECT. Its buffer holds
// the file's bytes from base, an aligned offset: buf[lo:hi] are those not
// written yet.
type directRun struct {
	fd       *os.File    // the file, O_DIRECT; nil: refused, all buffered
	buffered *os.File    // the file as the builder opened it
	dirty    func(int)   // told of the bytes written through the page cache
	buf      []byte      // aligned, directBuf long (from directBufs)
	base     int64       // the file offset of buf[0]
	lo, hi   int         // buf[lo:hi] is not written yet
	direct   int64       // bytes written with O_DIRECT
	report   func(int64) // if set, told of direct at close (Hooks.Direct)

	pwrite func([]byte, int64) (int, error) // the direct write; tests replace it
}

// openDirect returns a direct writer of the temporary file tmp, which the
// builder has open as f; dirty is called with the bytes it writes through
// the page cache (see action.wrote).
func openDirect(at *atdir.Dirs, tmp string, f *os.File, dirty func(int)) *directRun {
	d := &directRun{buffered: f, dirty: dirty}
	if fd, err := at.OpenFile(tmp, os.O_WRONLY|syscall.O_DIRECT|syscall.O_NOFOLLOW, 0); err == nil {
		buf, err := directBufs.Get()
		if err != nil {
			fd.Close()
			return d // no memory to map: all through the page cache
		}
		d.fd, d.buf = fd, buf
		d.pwrite = fd.WriteAt
	}
	return d
}

// write writes p at off: gathered if it follows what was written before,
// otherwise after the run before is written out.
func (d *directRun) write(p []byte, off int64) error {
	if d.fd != nil && d.hi > d.lo && d.base+int64(d.hi) != off {
		if err := d.flush(true); err != nil {
			return err
		}
	}
	for len(p) > 0 && d.fd != nil {
		if d.hi == d.lo {
			d.base = off - off%directAlign
			d.lo = int(off - d.base)
			d.hi = d.lo
		}
		n := copy(d.buf[d.hi:], p)
		d.hi += n
		p, off = p[n:], off+int64(n)
		if d.hi == len(d.buf) {
			if err := d.flush(false); err != nil {
				return err
			}
		}
	}
	return d.writeBuffered(p, off) // what is left when O_DIRECT was refused
}

// flush writes what is gathered: an unaligned head through the page
// cache, the aligned blocks with O_DIRECT, and an unaligned tail through
// the page cache. Without all it is called on a full buffer, which ends
// aligned: it leaves no tail.
func (d *directRun) flush(all bool) error {
	if head := min((d.lo+directAlign-1)/directAlign*directAlign, d.hi); d.lo < head {
		if err := d.writeBuffered(d.buf[d.lo:head], d.base+int64(d.lo)); err != nil {
			return err
		}
		d.lo = head
	}
	if end := d.hi / directAlign * directAlign; end > d.lo {
		p, off := d.buf[d.lo:end], d.base+int64(d.lo)
		if _, err := d.pwrite(p, off); err != nil {
			if !errors.Is(err, syscall.EINVAL) {
				return err
			}
			// refused after all (a file system that takes the flag
			// and not the write): this and the rest through the cache
			d.fd.Close()
			d.fd = nil
			if err := d.writeBuffered(p, off); err != nil {
				return err
			}
		} else {
			d.direct += int64(len(p))
		}
		d.lo = end
	}
	if all || d.fd == nil {
		err := d.writeBuffered(d.buf[d.lo:d.hi], d.base+int64(d.lo))
		d.lo, d.hi = 0, 0
		return err
	}
	// a full buffer: base and its length are aligned, so all of it went
	d.base += int64(d.hi)
	d.lo, d.hi = 0, 0
	return nil
}

func (d *directRun) writeBuffered(p []byte, off int64) error {
	if len(p) == 0 {
		return nil
	}
	if _, err := d.buffered.WriteAt(p, off); err != nil {
		return err
	}
	d.dirty(len(p))
	return nil
}

// close writes what is gathered and closes the O_DIRECT descriptor.
func (d *directRun) close() error {
	var err error
	if d.fd != nil && d.hi > d.lo {
		err = d.flush(true)
	}
	if d.fd != nil {
		if cerr := d.fd.Close(); err == nil {
			err = cerr
		}
		d.fd = nil
	}
	if d.report != nil && d.direct > 0 {
		d.report(d.direct)
	}
	if d.buf != nil {
		directBufs.Put(d.buf)
		d.buf = nil
	}
	return err
}
