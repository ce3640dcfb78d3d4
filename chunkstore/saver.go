package chunkstore

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"

	"golang.org/x/sync/errgroup"
)

// SaverOptions tunes a Saver.
type SaverOptions struct {
	Packers   int    // goroutines compressing and encrypting; 0: GOMAXPROCS
	Uploaders int    // concurrent pack uploads; 0: 2
	TempDir   string // where packs wait for their upload; "": os.TempDir()
}

// Saver stores new blobs: it drops the ones the repository already has,
// compresses, packs, encrypts and uploads the rest, and on Finish writes
// the index object that makes them visible. Save and Known are safe for
// concurrent use.
//
// Memory stays small whatever the amount of data: a pack is encrypted into
// an unlinked temporary file as it is filled, and blob buffers are reused.
type Saver struct {
	r      *Repository
	opts   SaverOptions
	parent context.Context // for the index write after the group ends
	ctx    context.Context
	cancel context.CancelFunc
	g      *errgroup.Group
	close  sync.Once
	sendMu sync.RWMutex // held to send on jobs; held exclusively to close it
	closed bool         // jobs is closed (under sendMu)
	jobs   chan saveJob
	packs  chan finishedPack

	mu      sync.Mutex
	pending map[ID]struct{}
	written []IndexPack

	blobBufs bufPool

	blobsAdded atomic.Int64
	bytesAdded atomic.Int64
}

type saveJob struct {
	t    BlobType
	id   ID
	data []byte
	buf  *[]byte // the pooled buffer behind data
}

type finishedPack struct {
	t        BlobType
	id       ID
	file     *packFile
	blobs    []IndexBlob
	sealedTo []string
}

// NewSaver starts a Saver. It stops when ctx ends or at the first error.
func (r *Repository) NewSaver(ctx context.Context, opts SaverOptions) *Saver {
	if opts.Packers <= 0 {
		opts.Packers = runtime.GOMAXPROCS(0)
	}
	if opts.Uploaders <= 0 {
		opts.Uploaders = 2
	}
	if opts.TempDir == "" {
		opts.TempDir = os.TempDir()
	}
	cctx, cancel := context.WithCancel(ctx)
	g, gctx := errgroup.WithContext(cctx)
	s := &Saver{r: r, opts: opts, parent: ctx, ctx: gctx, cancel: cancel, g: g, pending: make(map[ID]struct{}),
		jobs: make(chan saveJob, opts.Packers), packs: make(chan finishedPack, opts.Uploaders)}
	var packers sync.WaitGroup
	for range opts.Packers {
		packers.Add(1)
		g.Go(func() error {
			defer packers.Done()
			return s.pack()
		})
	}
	for range opts.Uploaders {
		g.Go(s.uploadLoop)
	}
	go func() {
		packers.Wait()
		close(s.packs)
	}()
	return s
}

// Save stores blob id of type t with plaintext data unless the repository
// has it or it is already queued. It copies data, so the caller may reuse
// it. It reports whether the blob was new.
func (s *Saver) Save(t BlobType, id ID, data []byte) (bool, error) {
	if s.r.idx.Has(id) {
		return false, nil
	}
	s.mu.Lock()
	if _, ok := s.pending[id]; ok {
		s.mu.Unlock()
		return false, nil
	}
	s.pending[id] = struct{}{}
	s.mu.Unlock()
	bp := s.blobBufs.get(len(data))
	*bp = append((*bp)[:0], data...)
	job := saveJob{t: t, id: id, data: *bp, buf: bp}
	s.sendMu.RLock()
	defer s.sendMu.RUnlock()
	if s.closed {
		return false, fmt.Errorf("save blob: the saver is finished")
	}
	select {
	case s.jobs <- job:
		return true, nil
	case <-s.ctx.Done():
		return false, fmt.Errorf("save blob: %w", context.Cause(s.ctx))
	}
}

// closeJobs ends the input; blocked Save calls return first (the packers
// drain jobs, or the context is cancelled).
func (s *Saver) closeJobs() {
	s.close.Do(func() {
		s.sendMu.Lock()
		s.closed = true
		close(s.jobs)
		s.sendMu.Unlock()
	})
}

// Known reports whether blob id is in the repository or queued.
func (s *Saver) Known(id ID) bool {
	if s.r.idx.Has(id) {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.pending[id]
	return ok
}

// pack is one packer goroutine: it keeps one open pack per blob type.
func (s *Saver) pack() error {
	open := map[BlobType]*packWriter{}
	defer func() { // on error: drop the temporary files
		for _, pw := range open {
			pw.file.close()
		}
	}()
	flush := func(t BlobType) error {
		pw := open[t]
		if pw == nil {
			return nil
		}
		delete(open, t)
		id, err := pw.finish()
		if err != nil {
			pw.file.close()
			return fmt.Errorf("finish pack: %w", err)
		}
		select {
		case s.packs <- finishedPack{t: t, id: id, file: pw.file, blobs: pw.blobs, sealedTo: pw.sealedTo}:
			return nil
		case <-s.ctx.Done():
			pw.file.close()
			return context.Cause(s.ctx)
		}
	}
	limit := int64(s.r.cfg.PackSize)
	var zbuf []byte
	for {
		var job saveJob
		var ok bool
		select {
		case job, ok = <-s.jobs:
		case <-s.ctx.Done():
			return context.Cause(s.ctx)
		}
		if !ok {
			for t := range open {
				if err := flush(t); err != nil {
					return err
				}
			}
			return nil
		}
		if pw := open[job.t]; pw != nil && pw.size()+int64(len(job.data)) > limit {
			if err := flush(job.t); err != nil {
				return err
			}
		}
		pw := open[job.t]
		if pw == nil {
			var err error
			if pw, err = s.r.newPackWriter(job.t, s.opts.TempDir); err != nil {
				return err
			}
			open[job.t] = pw
		}
		zbuf = s.r.compress(zbuf[:0], job.data)
		stored, z := job.data, false
		if zbuf != nil {
			stored, z = zbuf, true
		}
		if err := pw.add(job.id, stored, len(job.data), z); err != nil {
			return fmt.Errorf("add blob to pack: %w", err)
		}
		s.blobsAdded.Add(1)
		s.bytesAdded.Add(int64(len(stored)))
		s.blobBufs.put(job.buf)
	}
}

func (s *Saver) uploadLoop() error {
	for {
		var p finishedPack
		var ok bool
		select {
		case p, ok = <-s.packs:
		case <-s.ctx.Done():
			return context.Cause(s.ctx)
		}
		if !ok {
			return nil
		}
		err := s.r.be.Save(s.ctx, ObjectName(p.t, p.id), p.file, p.file.size)
		p.file.close()
		if err != nil {
			return fmt.Errorf("upload pack: %w", err)
		}
		ip := IndexPack{ID: p.id, Type: p.t, Size: p.file.size, Blobs: p.blobs, SealedTo: p.sealedTo}
		s.r.idx.addPack(ip)
		s.mu.Lock()
		for _, b := range p.blobs {
			delete(s.pending, b.ID)
		}
		s.written = append(s.written, ip)
		s.mu.Unlock()
	}
}

// Finish flushes the open packs, waits for every upload and writes the
// index object for them. After Finish returns nil, every blob passed to
// Save is durable and findable. The Saver cannot be used afterwards.
func (s *Saver) Finish() ([]ID, error) {
	s.closeJobs()
	err := s.g.Wait()
	s.cancel()
	if err != nil {
		s.drain()
		return nil, err
	}
	var ids []ID
	// One index object per 2,000 packs keeps each object small.
	for i := 0; i < len(s.written); i += 2000 {
		id, err := s.r.saveIndex(s.parent, s.written[i:min(i+2000, len(s.written))])
		if err != nil {
			return nil, fmt.Errorf("save index: %w", err)
		}
		s.r.markLoaded(IndexName(id)) // its packs are in the index already
		ids = append(ids, id)
	}
	return ids, nil
}

// Abort stops the Saver without writing an index. Packs already uploaded
// stay in the repository unreferenced until a prune removes them.
func (s *Saver) Abort() {
	s.cancel()
	s.closeJobs()
	s.g.Wait()
	s.drain()
}

// drain closes the temporary files of packs that were never uploaded.
func (s *Saver) drain() {
	for p := range s.packs {
		p.file.close()
	}
}

// Added returns how many blobs and stored bytes the Saver added so far.
func (s *Saver) Added() (blobs, bytes int64) { return s.blobsAdded.Load(), s.bytesAdded.Load() }

// bufPool recycles byte buffers in power-of-two size classes, so that a
// small blob does not hold a large buffer and memory follows the bytes in
// flight.
type bufPool struct {
	classes [28]sync.Pool
}

func sizeClass(n int) int {
	c := 12 // 4 KiB at least
	for 1<<c < n {
		c++
	}
	return c
}

// get returns a buffer with capacity for n bytes.
func (p *bufPool) get(n int) *[]byte {
	c := sizeClass(n)
	if c >= len(p.classes) {
		b := make([]byte, 0, n)
		return &b
	}
	if bp, ok := p.classes[c].Get().(*[]byte); ok {
		return bp
	}
	b := make([]byte, 0, 1<<c)
	return &b
}

// put returns a buffer from get.
func (p *bufPool) put(bp *[]byte) {
	c := sizeClass(cap(*bp))
	if c < len(p.classes) && cap(*bp) == 1<<c {
		p.classes[c].Put(bp)
	}
}
