package wire

import (
	"bytes"
	"testing"
)

func FuzzDecodeEntry(f *testing.F) {
	e := fileEntry()
	f.Add(AppendEntry(nil, &e))
	f.Add([]byte{1, 0, 1, 1, 'a'})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := DecodeEntry(b)
		if err != nil {
			return
		}
		again, err := DecodeEntry(AppendEntry(nil, &e))
		if err != nil || again.Path != e.Path || again.Size != e.Size {
			t.Fatalf("re-encoding changed the entry: %+v %v", again, err)
		}
	})
}

func FuzzReadIndex(f *testing.F) {
	var buf bytes.Buffer
	iw, _ := NewIndexWriter(&buf)
	e := fileEntry()
	iw.Write(&e)
	iw.Close(3, false)
	f.Add(buf.Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		batch, err := ReadIndex(bytes.NewReader(b))
		if err != nil {
			return
		}
		for _, e := range batch.Entries {
			if err := e.Check(); err != nil {
				t.Fatalf("accepted a bad entry: %v", err)
			}
		}
	})
}

func FuzzDecodeBlockRequest(f *testing.F) {
	q := BlockRequest{Files: []FileBlocks{{Path: "a/b", Blocks: []Block{{Offset: 5, Length: 3}}}}}
	f.Add(q.Append(nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		q, err := DecodeBlockRequest(b)
		if err != nil {
			return
		}
		if q.Bytes() > MaxBlockBytes {
			t.Fatalf("accepted %d bytes", q.Bytes())
		}
		for _, f := range q.Files {
			if err := CheckPath(f.Path); err != nil {
				t.Fatal(err)
			}
		}
	})
}

func FuzzBlockReader(f *testing.F) {
	var buf bytes.Buffer
	bw, _ := NewBlockWriter(&buf)
	bw.Write([]byte("abc"))
	bw.Close()
	f.Add(buf.Bytes(), uint32(3))
	f.Fuzz(func(t *testing.T, b []byte, n uint32) {
		br, err := NewBlockReader(bytes.NewReader(b))
		if err != nil {
			return
		}
		defer br.Close()
		d, ok, err := br.Next(nil, n%(1<<20))
		if err == nil && ok && len(d) != int(n%(1<<20)) {
			t.Fatalf("got %d bytes, asked %d", len(d), n)
		}
	})
}

func FuzzDecodeHello(f *testing.F) {
	f.Add([]byte(`{"protocol":1,"node":"a","folders":[{"id":"www","seq":3}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		DecodeHello(bytes.NewReader(b))
	})
}

func FuzzFrameReader(f *testing.F) {
	var buf bytes.Buffer
	fw, _ := NewFrameWriter(&buf, true)
	fw.Write(bytes.Repeat([]byte("abcd"), 100))
	fw.Write(nil)
	fw.Close()
	f.Add(buf.Bytes(), uint32(400), true)
	f.Fuzz(func(t *testing.T, b []byte, n uint32, compressed bool) {
		fr, err := NewFrameReader(bytes.NewReader(b), compressed)
		if err != nil {
			return
		}
		defer fr.Close()
		for range 3 {
			d, ok, err := fr.Next(nil, n%(1<<20))
			if err != nil {
				return
			}
			if ok && len(d) != int(n%(1<<20)) {
				t.Fatalf("got %d bytes, asked %d", len(d), n%(1<<20))
			}
		}
	})
}
